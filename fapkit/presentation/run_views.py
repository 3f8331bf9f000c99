"""Views of single runs and of the data: the tables the walkthrough notebooks show along the way.

`metrics_table` lists a few runs' test metrics beside the paper's rows (one row per run, nothing
averaged); `group_confusion`, `layer_table` and `history_frame` open one run (per-group
confusion, per-layer masks, per-epoch history); `split_rates` shows how a dataset's bias is
built; `adversary_table` says whether the adversarial game was live (the discriminators'
advantage, mean ± std over seeds). Each returns a DataFrame with a title and a note in
``df.attrs`` for `fapkit.presentation.display`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from .. import paper, stats
from ..registry import method_names, method_title, spec_of
from ._common import describe_ours, nominal_ratio

__all__ = ["metrics_table", "split_rates", "group_confusion", "group_labels", "result_group_labels", "layer_table",
           "history_frame", "adversary_table"]


def metrics_table(results: Sequence[Any]) -> pd.DataFrame:
    """Accuracy, DI, DEO (and the DEO variants) of a few runs, with the paper's row for each beside it.

    The paper columns come from table 3 (DI) and table 2 (DEO) for the run's method and target;
    they are blank where the paper has no such row (e.g. a target it does not report). One row per
    run (no averaging over seeds); ``degenerate`` marks a constant predictor in a sensitive group,
    ``near-constant`` the wider second level (`fapkit.fairness.metrics.is_near_constant`).
    """
    rows, index, datasets = [], [], set()
    for r in results:
        p_di = paper.panel("3", target=r.config.data.target, metric="DI")
        p_deo = paper.panel("2", target=r.config.data.target, metric="DEO")
        row_di = p_di.find(r.method) if p_di is not None else None
        row_deo = p_deo.find(r.method) if p_deo is not None else None
        if p_deo is not None:
            datasets.add(p_deo.dataset)
        m = r.metrics
        rows.append({"target": r.config.data.target, "arch": r.config.arch, "PR.": nominal_ratio(r),
                     "achieved PR.": float(r.ratio), "acc": float(r.acc), "DI": float(r.di), "DEO": float(r.deo),
                     "DEO (max)": float(m.get("deo_max", math.nan)),
                     "DEO (TPR only)": float(m.get("deo_tpr", math.nan)), "degenerate": bool(r.degenerate),
                     "near-constant": bool(getattr(r, "near_constant", False)),
                     "paper acc": row_deo.acc if row_deo is not None else math.nan,
                     "paper DI": row_di.value if row_di is not None else math.nan,
                     "paper DEO": row_deo.value if row_deo is not None else math.nan})
        index.append(method_title(r.method))
    df = pd.DataFrame(rows, index=pd.Index(index, name="method"))
    df.attrs["title"] = "Test metrics"
    paper_note = (f"Paper columns: tables 2 (DEO) and 3 (DI), {'/'.join(sorted(datasets))}, ResNet-18."
                  if datasets else "The paper reports no row for these targets.")
    df.attrs["note"] = " ".join([describe_ours(list(results)), paper_note,
                                 "DEO = |ΔTPR| + |ΔFPR| (the paper's); "
                                 "DEO (max) is fairlearn's equalized_odds_difference."] +
                                (["⚠ degenerate: a constant prediction inside a sensitive group; its DI/DEO are "
                                  "trivially fair and must not be read as fairness."]
                                 if "degenerate" in df and df["degenerate"].any() else []) +
                                (["⚠ near-constant: a selection rate within 0.05 of 0 or 1 in a sensitive group; "
                                  "much of its DI/DEO comes from predicting one class there."]
                                 if df["near-constant"].any() else []))
    return df


def _sensitive_name(sensitive: Any) -> str:
    """``"Male"``, or ``"Male|Young"`` for an intersection given as a list/tuple."""
    return sensitive if isinstance(sensitive, str) else "|".join(map(str, sensitive))


def group_labels(sensitive: Any, k: int, names: Sequence[Any] | None = None) -> list[str]:
    """A display label per group id ``0..k-1``: ``"Male=0"`` without names; with names, each name, prefixed
    ``"{sensitive}="`` when it is a bare value (``"gender=Female"``; ``"Male=0|Young=1"`` stays)."""
    label = _sensitive_name(sensitive)
    if names is None:
        return [f"{label}={g}" for g in range(k)]
    return [str(n) if "=" in str(n) else f"{label}={n}" for n in list(names)[:k]] + \
        [f"{label}={g}" for g in range(len(names), k)]


def _dataset_groups(ds: Any) -> tuple[int, list[Any] | None]:
    """(k, group names or None) of a dataset: its ``group_names`` when it has them, else 1 + max(z), at least 2."""
    names = getattr(ds, "group_names", None)
    if names is not None:
        return len(names), list(names)
    z = ds.z.reshape(-1)
    return (max(2, int(z.max()) + 1) if len(z) else 2), None


def dataset_group_labels(ds: Any, sensitive: Any) -> list[str]:
    """`group_labels` of a dataset's groups (its ``group_names`` when it has them)."""
    k, names = _dataset_groups(ds)
    return group_labels(sensitive, k, names)


def split_rates(splits: dict[str, Any], *, target: str, sensitive: Any) -> pd.DataFrame:
    """How a dataset's bias is built: per split, group sizes and P(target=1 | sensitive=g).

    `splits` maps a split name to a dataset with `y` and `z` tensors (e.g. `fapkit.data.load`);
    `sensitive` is the attribute's name (a list/tuple for an intersection). Every group ``0..k-1``
    gets its two columns, labelled by the datasets' ``group_names`` when they have them. The gap
    between the groups' positive rates is the shortcut a normally trained model learns: for two
    groups ``P(y=1|z=1) − P(y=1|z=0)``, for more the largest minus the smallest.
    """
    rows = []
    layout = [_dataset_groups(ds) for ds in splits.values()]
    k = max((kk for kk, _ in layout), default=2)
    names = next((nn for _, nn in layout if nn is not None), None)
    labels = group_labels(sensitive, k, names)
    for name, ds in splits.items():
        y, z = ds.y.reshape(-1).float(), ds.z.reshape(-1)
        row: dict[str, Any] = {"split": name, "n": int(len(y))}
        rates = []
        for g, label in enumerate(labels):
            in_g = z == g
            row[f"n {label}"] = int(in_g.sum())
            row[f"P({target}=1 | {label})"] = float(y[in_g].mean()) if in_g.any() else math.nan
            rates.append(row[f"P({target}=1 | {label})"])
        row[f"P({target}=1)"] = float(y.mean())
        present = [r for r in rates if not math.isnan(r)]
        if k == 2:
            row["gap"] = rates[1] - rates[0]
        else:
            row["gap"] = max(present) - min(present) if present else math.nan
        row["DI of the labels"] = _ratio_min_max(*rates)
        rows.append(row)
    df = pd.DataFrame(rows).set_index("split")
    df.attrs["title"] = f"Label rates per group: target {target}, sensitive {_sensitive_name(sensitive)}"
    gap = "gap = P(y=1|z=1) − P(y=1|z=0)" if k == 2 else f"gap = max − min of P(y=1|z=g) over the {k} groups"
    df.attrs["note"] = (f"{gap}; 'DI of the labels' is the DI a classifier that copied the labels would get "
                        "(min/max over the groups present).")
    return df


def _ratio_min_max(*values: float) -> float:
    """min/max of the values that are not nan (nan with fewer than two of them, or a max of 0)."""
    present = [v for v in values if not math.isnan(v)]
    if len(present) < 2:
        return math.nan
    hi = max(present)
    return min(present) / hi if hi > 0 else math.nan


def _groups(result: Any) -> dict[int, dict[str, Any]]:
    """Per-group rates with int keys (a run loaded from its JSON record has "0"/"1" keys)."""
    return {int(k): v for k, v in result.metrics["groups"].items()}


def result_group_labels(result: Any) -> list[str]:
    """The display label of each group of a run, in id order: its ``metrics["group_names"]`` when the run
    recorded them (`group_labels`), else ``"{sensitive}={g}"``."""
    groups = _groups(result)
    k = max(groups) + 1 if groups else 2
    return group_labels(result.config.data.sensitive, k, result.metrics.get("group_names"))


def group_confusion(result: Any) -> pd.DataFrame:
    """Per-group confusion counts and rates of one run: one row per sensitive group (z=0 and z=1 for a
    binary attribute; all k groups, by name when the run recorded ``group_names``)."""
    sensitive = _sensitive_name(result.config.data.sensitive)
    labels = result_group_labels(result)
    rows, index = [], []
    for g, s in sorted(_groups(result).items()):
        n_pos, n_neg = int(s["n_pos"]), int(s["n_neg"])
        tp = round(s["tpr"] * n_pos) if n_pos else 0
        fp = round(s["fpr"] * n_neg) if n_neg else 0
        rows.append({"count": int(s["count"]), "TP": tp, "FN": n_pos - tp, "FP": fp, "TN": n_neg - fp,
                     "selection rate": s["selection_rate"], "TPR": s["tpr"], "FPR": s["fpr"],
                     "accuracy": s["accuracy"]})
        index.append(labels[g])
    df = pd.DataFrame(rows, index=pd.Index(index, name="group"))
    df.attrs["title"] = f"Per-group confusion, {method_title(result.method)}"
    deo = "|ΔTPR| + |ΔFPR|" if len(rows) <= 2 else f"(max − min TPR) + (max − min FPR) over the {len(rows)} groups"
    df.attrs["note"] = (f"Test split; target {result.config.data.target}, sensitive {sensitive}. "
                        f"DI = min/max of the selection rates; DEO = {deo}.")
    return df


_LAYER_COLUMNS = ("name", "type", "shape", "n", "kept", "ratio")  # fapkit.masking.LayerRecord's fields


def layer_table(result: Any) -> pd.DataFrame:
    """The per-layer mask report of a pruned run (`RunResult.layers`), with two total rows.

    ``[prunable]`` sums the masked layers; ``[all parameters]`` counts every parameter of the model
    (biases, norm layers, unmasked layers), so its ratio is smaller (from `RunResult.mask_totals`).
    """
    rows = list(result.layers)
    totals = result.mask_totals
    if totals and "channels" in totals:  # a channel run: one row per channel group, counts of the narrowed model
        n, kept = totals["channels"], totals["kept_channels"]
        rows += [{"name": "[channels]", "type": "", "shape": [], "n": n, "kept": kept, "ratio": 1 - kept / n},
                 {"name": "[all parameters]", "type": "", "shape": [], "n": totals["parameters"],
                  "kept": totals["kept_parameters"], "ratio": 1 - totals["kept_parameters"] / totals["parameters"]},
                 {"name": "[MACs]", "type": "", "shape": [], "n": totals["macs"], "kept": totals["kept_macs"],
                  "ratio": 1 - totals["kept_macs"] / totals["macs"]}]
    elif totals:
        n, kept, total = totals["prunable_weights"], totals["kept_weights"], totals["parameters"]
        rows += [{"name": "[prunable]", "type": "", "shape": [], "n": n, "kept": kept, "ratio": 1 - kept / n},
                 {"name": "[all parameters]", "type": "", "shape": [], "n": total, "kept": totals["kept_parameters"],
                  "ratio": (n - kept) / total}]
    df = pd.DataFrame(rows)
    df = df[[c for c in _LAYER_COLUMNS if c in df.columns]]  # a record read back from JSON has its keys sorted
    df.attrs["title"] = f"Per-layer masks, {method_title(result.method)}"
    df.attrs["note"] = (f"Requested pruning ratio {result.config.ratio:g}; achieved {result.ratio:.4f} over "
                        "prunable weights. Ratio = fraction of the layer's weights removed.")
    return df


def history_frame(result: Any) -> pd.DataFrame:
    """The per-epoch history of a run (training losses, validation metrics, mask movement)."""
    records = [{k: v for k, v in h.items() if not isinstance(v, list)} for h in result.history]
    df = pd.DataFrame(records)
    if "epoch" in df:
        df = df.set_index("epoch")
    df.attrs["title"] = f"Training history, {method_title(result.method)}"
    note = ("train_* are epoch means over training batches; val_* are measured on the validation split (BN "
            "statistics as training left them); lr (and lam) are those of the epoch's last step.")
    trajectory = result.history[0].get("warmup_heldout_adv") if result.history else None
    if trajectory:
        note += (f" The discriminator's warm-up ran {len(trajectory)} passes; its held-out advantage per pass: "
                 + ", ".join(f"{v:.4f}" for v in trajectory) + ".")
    if result.history and result.history[-1].get("bn_reestimated"):
        note += " BN statistics were re-estimated on the training split after the last epoch."
    df.attrs["note"] = note
    return df


_ADVANTAGE_KEYS = (("DI", "adv_di"), ("DEO y=0", "adv_deo_y0"), ("DEO y=1", "adv_deo_y1"))


def adversary_table(results: Sequence[Any]) -> pd.DataFrame:
    """Was the adversarial game live? The discriminators' advantage, mean ± std over seeds.

    One row per adversarial run kind (FAPrune, Adversarial Debiasing) and α. The advantage of a
    head is H(z) − its cross-entropy in nats (per y cell for the DEO heads; see
    `fapkit.fairness.discriminators.AdversaryMonitor`): "warm-up" is measured on the starting model's
    predictions before the first generator step, "last epoch" during the last epoch of the game.
    Heads that do not train at a given α are blank.
    """
    groups: dict[tuple[str, float], list[Any]] = {}
    for r in results:
        if spec_of(r.method).adversarial and r.history:
            groups.setdefault((r.method, float(r.config.alpha)), []).append(r)
    rows, index = [], []
    for (method, alpha), runs in sorted(groups.items(), key=lambda kv: (method_names().index(kv[0][0]), kv[0][1])):
        row: dict[str, Any] = {"α": alpha, "seeds": len({r.config.seed for r in runs})}
        row["warm-up passes"], row["warm-up passes std"], _ = stats.mean_std(
            r.history[0].get("warmup_passes", r.config.adversary.disc_warmup) for r in runs)
        for phase, history_key, prefix in (("warm-up", 0, "warmup_"), ("last epoch", -1, "train_")):
            for label, key in _ADVANTAGE_KEYS:
                mean, std, _ = stats.mean_std(r.history[history_key].get(prefix + key, math.nan) for r in runs)
                row[f"{phase} {label}"], row[f"{phase} {label} std"] = mean, std
        rows.append(row)
        index.append(method_title(method))
    df = pd.DataFrame(rows, index=pd.Index(index, name="method"))
    df = df.dropna(axis=1, how="all")  # heads that never trained in these runs
    df.attrs["title"] = "Discriminator advantage H(z) − loss (nats)"
    df.attrs["note"] = ("Mean ± std over seeds. > 0: the head predicts z better than its base rate (the adversary is "
                        "informative); ≤ 0 at warm-up: it found nothing to use; near 0 in the last epoch after a "
                        "positive warm-up: the generator has hidden z from it. DEO heads per y cell, DI head overall.")
    return df
