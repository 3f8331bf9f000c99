"""Each method's training cost relative to SGDP, read from the run cache (no training when the runs are cached).

A stage's record keeps the seconds it took itself (its parents excluded: SGDP's time does not
include pretraining the dense model it prunes). For every registered method this prints the mean
seconds of its own stage over the given seeds at α = 0 and the ratio to SGDP's mean, measured in
the same session as the runs were (compare ratios, not wall times, across sessions).

``python scripts/method_costs.py --seeds 0 1 2 --runs-dir runs``
"""
from __future__ import annotations

import argparse
import statistics
import warnings

import fapkit
from fapkit.registry import method_names, row_title


def costs(seeds: list[int], runs_dir: str, preset: str = "quick") -> str:
    seconds = {method: [fapkit.run(method, preset=preset, seed=s, alpha=0.0, runs_dir=runs_dir).seconds
                        for s in seeds] for method in method_names()}
    sgdp = statistics.mean(seconds["sgdp"])
    lines = ["| method | own stage seconds (mean ± std) | relative to SGDP |", "|---|---|---|"]
    for method, values in seconds.items():
        std = statistics.stdev(values) if len(values) > 1 else float("nan")
        lines.append(f"| {row_title(method)} | {statistics.mean(values):.1f} ± {std:.1f} "
                     f"| {statistics.mean(values) / sgdp:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    print(costs(args.seeds, args.runs_dir, args.preset))


if __name__ == "__main__":
    main()
