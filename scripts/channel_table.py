"""Tables 2–3 with channel pruning: FAPrune against SGDP, LMW (channel norms), Fair-SGDP and Fair-LMW, all
``structure="channel"``, and the CPU latency of FAPrune's exported (narrowed) model against the dense one.

Runs the five methods (α = 0 for DEO, α = 1 for DI) at `--ratio` of the channels removed over `--seeds` on
`--preset` into their own run cache, prints the paired direction table (`fapkit.presentation.direction`:
paired Student-t intervals over seeds, `fapkit.stats`) and writes ``results/channel_direction.md`` and
``results/channel_latency.md`` (medians of interleaved rounds, `fapkit.bench.latency`).

``python scripts/channel_table.py`` (quick preset, seeds 0 1 2: hours of CPU); a check that it runs:
``python scripts/channel_table.py --preset smoke --seeds 0 --tiny --runs-dir /tmp/channel_runs --results-dir /tmp/r``
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pandas as pd
import torch

import fapkit
from fapkit.bench.latency import _median_ms
from fapkit.models import build_model
from fapkit.presentation import direction
from fapkit.presentation.display import save_table
from fapkit.sweeps import grid, sweep

METHODS = ["faprune", "sgdp", "lmw", "fair_sgdp", "fair_lmw"]
#: --tiny: the smallest settings that run every stage (a check of the script, not a result).
TINY = dict(pretrain_epochs=1, epochs=1, n_train=256, n_valid=128, n_test=128)


def latency(model: torch.nn.Module, arch: str, size: int, *, batches=(1, 32), threads=(1, 2), repeats=20) -> pd.DataFrame:
    """Median ms of the dense architecture and of `model` (interleaved), and their ratio, per batch and thread count."""
    dense = build_model(arch, seed=0).eval()
    model = model.eval()
    saved, rows = torch.get_num_threads(), []
    try:
        for n in threads:
            torch.set_num_threads(n)
            for batch in batches:
                x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
                with torch.inference_mode():
                    ms = _median_ms({"dense": lambda: dense(x), "channel": lambda: model(x)}, repeats)
                rows.append({"batch": batch, "threads": n, "dense_ms": ms["dense"], "channel_ms": ms["channel"],
                             "channel_over_dense": ms["channel"] / ms["dense"]})
    finally:
        torch.set_num_threads(saved)
    df = pd.DataFrame(rows)
    df.attrs["title"] = f"CPU latency: FAPrune's exported channel-pruned {arch} against the dense one"
    df.attrs["note"] = f"torch eval mode, {size}×{size} inputs, medians of {repeats} interleaved rounds"
    return df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--ratio", type=float, default=0.5, help="fraction of channels removed")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--tiny", action="store_true", help="the smallest settings that run (a check)")
    args = parser.parse_args()
    extra = {**(TINY if args.tiny else {}), "structure": "channel", "ratio": args.ratio, "preset": args.preset}
    specs = {metric: grid(seed=args.seeds, method=METHODS, alpha=alpha, **extra)
             for metric, alpha in (("DEO", 0.0), ("DI", 1.0))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = sweep(specs, runs_dir=args.runs_dir, progress=True)
        best = fapkit.run("faprune", seed=args.seeds[0], alpha=0.0, runs_dir=args.runs_dir, **extra)  # cached
    table = direction.direction_table({(best.config.data.target, m): runs for m, runs in results.items()},
                                      baselines=METHODS[1:])
    table.attrs["title"] = f"Channel pruning ({args.ratio:.0%} of channels): " + table.attrs["title"]
    out = Path(args.results_dir)
    save_table(table, "channel_direction", out)
    print(direction.direction_text(table))
    repeats = 3 if args.tiny else 20
    speed = latency(best.model, best.config.arch, best.config.data.size, repeats=repeats)
    speed.attrs["note"] += (f"; parameters {best.mask_totals['kept_parameters']:,} of {best.mask_totals['parameters']:,}, "
                            f"MACs {best.mask_totals['kept_macs']:,} of {best.mask_totals['macs']:,}")
    save_table(speed, "channel_latency", out)
    print(speed.to_string(index=False))


if __name__ == "__main__":
    main()
