"""Tables 2–3's FAPrune verdicts against SGDP and LMW on seeds never used before (the no-regression check).

Runs Normal, SGDP, LMW and FAPrune (α = 0 for DEO, α = 1 for DI) on the quick preset over the given
seeds into their own run cache and prints the paired direction table (``results/fresh_direction.md``).

``python scripts/fresh_seed_verdicts.py --seeds 20 21 22 --runs-dir runs_fresh``
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from fapkit.presentation import direction
from fapkit.presentation.display import save_table
from fapkit.sweeps import grid, sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[20, 21, 22])
    parser.add_argument("--runs-dir", default="runs_fresh")
    parser.add_argument("--results-dir", default="results")
    args = parser.parse_args()
    specs = {metric: grid(seed=args.seeds, method=["normal", "sgdp", "lmw", "faprune"], alpha=alpha, preset="quick")
             for metric, alpha in (("DEO", 0.0), ("DI", 1.0))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = sweep(specs, runs_dir=args.runs_dir, progress=True)
    table = direction.direction_table({("Attractive", m): runs for m, runs in results.items()},
                                      baselines=["sgdp", "lmw"])
    save_table(table, "fresh_direction", Path(args.results_dir))
    print(direction.direction_text(table))
    for metric, runs in results.items():
        for r in runs:
            if r.method == "faprune":
                h = r.history[0]
                print(metric, r.config.seed, "warm-up", h.get("warmup_status"), h.get("warmup_passes"),
                      (h.get("warmup_heldout_adv") or [None])[-1], "reference", h.get("warmup_reference"))


if __name__ == "__main__":
    main()
