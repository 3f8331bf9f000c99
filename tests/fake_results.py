"""RunResults for presentation and widget tests: real configs, made-up metrics, no model, no training."""
from __future__ import annotations

from typing import Any

from fapkit.cache import RunResult
from fapkit.config import make_config
from fapkit.registry import spec_of


def groups(sel0: float = 0.3, sel1: float = 0.6, *, str_keys: bool = False) -> dict[Any, dict[str, float]]:
    """Per-group rates in the shape of `fapkit.fairness.metrics.group_rates` (str keys as after a JSON round trip)."""
    out = {}
    for g, sel in ((0, sel0), (1, sel1)):
        out[str(g) if str_keys else g] = {"count": 100, "n_pos": 40, "n_neg": 60, "selection_rate": sel,
                                          "tpr": min(1.0, sel + 0.2), "fpr": max(0.0, sel - 0.2), "accuracy": 0.8}
    return out


def fake(method: str = "faprune", *, acc: float = 0.8, di: float = 0.5, deo: float = 0.2, ratio: float = 0.8,
         target: str = "Attractive", arch: str = "small_cnn", alpha: float = 0.0, init: str = "pretrained",
         str_keys: bool = False, sel0: float = 0.3, sel1: float = 0.6, **settings: Any) -> RunResult:
    """One fake result; the achieved ratio is 0 for dense methods and the requested `ratio` otherwise.

    `sel0`/`sel1` are the groups' selection rates: a value of 0 or 1 makes the run degenerate.
    """
    cfg = make_config(method, preset="smoke", target=target, arch=arch, alpha=alpha, init=init, ratio=ratio,
                      **settings)
    achieved = 0.0 if spec_of(method).dense else cfg.ratio
    history = [{"epoch": e, "train_loss": 0.7 - 0.1 * e, "train_ce": 0.6 - 0.1 * e, "val_acc": 0.7 + 0.02 * e,
                "val_di": 0.4 + 0.05 * e, "val_deo": 0.4 - 0.05 * e, "val_loss": 0.6} for e in (1, 2)]
    if method in ("sgdp", "faprune", "fair_sgdp"):
        for h in history:
            h["mask_changed"] = 0.01 * h["epoch"]
    layers = [] if achieved == 0 else [
        {"name": "features.0", "shape": [16, 3, 3, 3], "n": 432, "kept": 86, "ratio": 0.8009},
        {"name": "fc", "shape": [1, 64], "n": 64, "kept": 13, "ratio": 0.7969}]
    totals = {} if achieved == 0 else {"prunable_weights": 496, "kept_weights": 99, "parameters": 600, "kept_parameters": 203}
    metrics = {"acc": acc, "di": di, "deo": deo, "deo_max": deo / 2, "deo_mean": deo / 2, "deo_tpr": deo / 2,
               "groups": groups(sel0, sel1, str_keys=str_keys)}
    return RunResult(method, cfg, metrics, achieved, achieved * 0.9, history, layers=layers, mask_totals=totals)


def eight(target: str = "Attractive", alpha: float = 0.0, seed: int = 0) -> list[RunResult]:
    """All eight methods of tables 2/3; FAPrune deliberately loses to LMW on DEO.

    Seed 0 gives the values below exactly; another seed shifts each method's numbers up by
    0.01·(seed·k mod 7), k = the method's position (1–8), so paired differences over seeds have a
    spread. Over seeds 0, 1, 2 FAPrune stays clearly fairer than SGDP and LMW on DI and than SGDP
    on DEO, and clearly less fair than LMW on DEO.
    """
    values = {"normal": (0.82, 0.30, 0.50), "adv_debias": (0.80, 0.50, 0.16), "scratch": (0.78, 0.38, 0.51),
              "sgdp": (0.81, 0.27, 0.50), "lmw": (0.78, 0.38, 0.10), "fair_sgdp": (0.79, 0.47, 0.33),
              "fair_lmw": (0.79, 0.44, 0.36), "faprune": (0.80, 0.48, 0.21)}
    out = []
    for rank, (m, (a, d, e)) in enumerate(values.items()):
        shift = 0.01 * ((seed * (rank + 1)) % 7)
        out.append(fake(m, acc=a + shift, di=d + shift, deo=e + shift, target=target, alpha=alpha, seed=seed))
    return out


def eight_seeds(target: str = "Attractive", alpha: float = 0.0, seeds: tuple[int, ...] = (0, 1, 2)) -> list[RunResult]:
    """`eight` for each of `seeds`, in one list."""
    return [r for seed in seeds for r in eight(target, alpha, seed)]
