"""The paper's table 1 (MobileNetV2, 80 %: Normal, FairGRAPE, FAPrune) under the run's stage budgets, with paired intervals.

Notebook 06 shows the same table inside the series; this script runs it alone (e.g. with the patience
budget the quick preset gives MobileNetV2, `fapkit.config.resolve_budget`) and writes
``results/table1_<metric>.md``, ``results/table1_direction.md`` and ``results/table1_budgets.md`` (the
epochs each stage trained). Runs are cached, so a second call only reads them.

``python scripts/table1.py --seeds 0 1 2 --metrics DEO`` (α = 0 for DEO, α = 1 for DI).
"""
from __future__ import annotations

import argparse
import statistics
import warnings
from pathlib import Path

from fapkit.presentation import direction, tables
from fapkit.presentation.display import save_table
from fapkit.sweeps import grid, sweep

ALPHA_OF = {"DEO": 0.0, "DI": 1.0}


def budgets(results: list) -> str:
    """Epochs each stage trained (main phase + tail for the patience rule), mean and range over seeds."""
    lines = ["| method | epochs trained (mean, min–max) | of which cosine tail |", "|---|---|---|"]
    by_method: dict[str, list] = {}
    for r in results:
        by_method.setdefault(r.method, []).append(r)
    for method, runs in by_method.items():
        epochs = [len(r.history) for r in runs]
        tails = [next((h["budget_tail_epochs"] for h in r.history if "budget_tail_epochs" in h), 0) for r in runs]
        lines.append(f"| {method} | {statistics.mean(epochs):.1f} ({min(epochs)}–{max(epochs)}) | "
                     f"{statistics.mean(tails):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--metrics", nargs="+", default=["DEO", "DI"], choices=list(ALPHA_OF))
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--budget", default=None, help="fixed, patience or auto (default: the preset's)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--results-dir", default="results")
    args = parser.parse_args()
    extra = {"budget": args.budget} if args.budget else {}
    specs = {m: grid(seed=args.seeds, method=list(tables.TABLE1_METHODS), alpha=ALPHA_OF[m], ratio=0.8,
                     arch=args.arch, size=args.size, pretrain_epochs=args.pretrain_epochs, **extra)
             for m in args.metrics}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = sweep(specs, runs_dir=args.runs_dir, progress=True)
    out = Path(args.results_dir)
    for metric, runs in results.items():
        table = tables.fairgrape_table(runs, metric=metric)
        save_table(table, f"table1_{metric}", out)
        print(table.to_string())
    verdicts = direction.direction_table({("Attractive", m): runs for m, runs in results.items()},
                                         baselines=["fairgrape"], paper_table="1")
    save_table(verdicts, "table1_direction", out)
    print(direction.direction_text(verdicts))
    text = budgets([r for runs in results.values() for r in runs])
    (out / "table1_budgets.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
