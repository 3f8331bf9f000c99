"""The converged-runs check of issue 16 on fresh seeds: seed-to-seed spread and the drop below the dense parent.

For every method of tables 2–3 (α = 0 and α = 1 for the adversarial ones) over the given seeds:
mean ± std of **test** accuracy (the check is run once, after every setting was fixed), and each
pruned or debiased run's accuracy minus its own dense parent's (Normal for SGDP, LMW, FAPrune and
Adversarial Debiasing; the debiased dense model for Fair-SGDP and Fair-LMW; Normal, at the same
budget, for Scratch). Runs come from the run cache, e.g. after
``python -m fapkit.series --preset quick --only 03 -p SEEDS '[20, 21, 22]' -p RUNS_DIR '"runs_fresh"'``.

``python scripts/convergence_check.py --seeds 20 21 22 --runs-dir runs_fresh``
"""
from __future__ import annotations

import argparse
import statistics
import warnings

import fapkit
from fapkit.registry import method_names, method_title, spec_of

_DENSE_PARENT = {"fair_sgdp": "adv_debias", "fair_lmw": "adv_debias", "scratch": "normal"}


def check(seeds: list[int], runs_dir: str, preset: str = "quick") -> str:
    lines = ["| method | α | test acc (mean ± std) | worst drop below its dense parent (points) | flags |",
             "|---|---|---|---|---|"]
    worst_std, worst_drop = 0.0, 0.0
    for method in method_names():
        spec = spec_of(method)
        alphas = (0.0, 1.0) if spec.step != "ce" or spec.parent == "adv_debias" else (0.0,)
        for alpha in alphas:
            runs = [fapkit.run(method, preset=preset, seed=s, alpha=alpha, runs_dir=runs_dir) for s in seeds]
            accs = [r.acc for r in runs]
            std = statistics.stdev(accs) if len(accs) > 1 else float("nan")
            parent = _DENSE_PARENT.get(method, spec.parent)
            drop = ""
            if parent is not None:
                drops = [(fapkit.run(parent, preset=preset, seed=s, alpha=alpha, runs_dir=runs_dir).acc - r.acc) * 100
                         for s, r in zip(seeds, runs)]
                worst_drop = max(worst_drop, max(drops))
                drop = f"{max(drops):+.1f}"
            worst_std = max(worst_std, std)
            flags = ", ".join(f"seed {r.config.seed} {'degenerate' if r.degenerate else 'near-constant'}"
                              for r in runs if r.degenerate or r.near_constant)
            lines.append(f"| {method_title(method)} | {alpha:g} | {statistics.mean(accs):.3f} ± {std:.3f} | {drop} "
                         f"| {flags} |")
    lines.append(f"\nLargest std: {worst_std:.3f} (target ≤ 0.025); largest drop below the dense parent: "
                 f"{worst_drop:.1f} points (target ≤ 5).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[20, 21, 22])
    parser.add_argument("--runs-dir", default="runs_fresh")
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    print(check(args.seeds, args.runs_dir, args.preset))


if __name__ == "__main__":
    main()
