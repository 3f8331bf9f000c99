"""Per-epoch validation trajectories of the quick preset's methods, and what BN re-estimation changes.

For each (method, seed) the run's history gives validation accuracy and DEO after every epoch
(the monitoring split); the final model is then evaluated on the whole validation split as
reported and again after re-estimating BatchNorm's running statistics on the training split.
The test split is never read here. Writes ``<out>.csv`` (one row per run) and prints a table.

``python scripts/convergence_diagnosis.py --seeds 10 11 --runs-dir runs_diag --out results/diag``
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import pandas as pd

import fapkit
from fapkit.config import make_config
from fapkit.runner import _dataset_loaders
from fapkit.training.batchnorm import reestimate_batchnorm
from fapkit.training.evaluation import evaluate

RUNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("normal", {}), ("sgdp", {}), ("lmw", {}), ("scratch", {}),
    ("adv_debias", dict(alpha=0.0)), ("fair_sgdp", dict(alpha=0.0)), ("faprune", dict(alpha=0.0)),
    ("faprune", dict(alpha=1.0)),
)


def diagnose(seeds: list[int], runs_dir: str, **settings: Any) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        cfg = make_config("normal", preset="quick", seed=seed, **settings)
        train, valid, _, _ = _dataset_loaders(cfg)
        for method, extra in RUNS:
            result = fapkit.run(method, preset="quick", seed=seed, runs_dir=runs_dir, **settings, **extra)
            model = copy.deepcopy(result.model)
            reestimate_batchnorm(model, train)
            after = evaluate(model, valid)
            hist = result.history
            rows.append({
                "method": method, "alpha": extra.get("alpha"), "seed": seed,
                "val_acc_by_epoch": " ".join(f"{h['val_acc']:.3f}" for h in hist),
                "val_deo_by_epoch": " ".join(f"{h['val_deo']:.3f}" for h in hist),
                "acc_swing": max(h["val_acc"] for h in hist[1:] or hist) - min(h["val_acc"] for h in hist[1:] or hist),
                "valid_acc": result.valid_metrics["acc"], "valid_deo": result.valid_metrics["deo"],
                "valid_acc_bn": after["acc"], "valid_deo_bn": after["deo"],
                "sel_rates": " ".join(f"{g['selection_rate']:.2f}" for g in result.valid_metrics["groups"].values()),
            })
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11])
    parser.add_argument("--runs-dir", default="runs_diag")
    parser.add_argument("--out", default="results/convergence_diagnosis")
    args = parser.parse_args()
    df = diagnose(args.seeds, args.runs_dir)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(f"{args.out}.csv", index=False)
    print(df.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
