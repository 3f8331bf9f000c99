"""Our results beside the paper's: the tables of the notebook series, saved as CSV and Markdown.

Every table builder takes a list of `RunResult`s (anything with the same attributes works: tests
pass fakes) and returns a DataFrame with one row per method/ratio/architecture and columns

    PR. | achieved PR. | acc | acc std | DEO | DEO std | seeds | degenerate | paper PR. |
    paper acc (CelebA) | paper DEO (CelebA)

(DI instead of DEO for the DI tables). Our side is the mean and sample standard deviation over
the seeds run for that row (`fapkit.stats`), ``seeds`` their number and ``degenerate`` how many
of them are degenerate (a constant prediction inside a sensitive group, whose DI/DEO are
trivially "fair"; see `fapkit.metrics.is_degenerate`). Rows are the union of what we ran and
what the paper reports: a row the paper has and we did not run shows blanks on our side, and a
row where our method does worse than a baseline is never dropped. ``df.attrs["note"]`` says
which data and seeds each side comes from, because our default benchmark is the embedded
SynthFaces, not CelebA/LFW, so numbers are compared by direction, not by value.

`direction_summary` compares FAPrune with each baseline through the paired difference over seeds
and calls a direction only when its Student-t 95 % interval excludes 0. `save_table` and `show`
print each value/std pair as one "mean ± std" column (`readable`); the CSV keeps them apart.

Accuracy and the pruning ratio are fractions (0.8 = 80 % of prunable weights removed). The figure
functions live in `fapkit.figures` and are re-exported here.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from . import paper, stats
from .config import METHODS, method_title
from .figures import (
    figure1,
    figure3,
    group_rates_figure,
    layer_sparsity_figure,
    metrics_bars,
    sample_grid,
    training_curves,
)
from .registry import spec_of

Metric = Literal["DI", "DEO"]

__all__ = [
    "results_frame", "baseline_table", "ratio_table", "arch_table", "random_init_table",
    "metrics_table", "split_rates", "group_confusion", "layer_table", "history_frame",
    "adversary_table", "direction_summary", "direction_table", "direction_text", "readable", "save_table", "show",
    "figure1", "figure3", "group_rates_figure", "layer_sparsity_figure", "metrics_bars", "sample_grid",
    "training_curves",
]

#: Display names of the architectures, as the paper writes them.
ARCH_TITLES = {"resnet18": "ResNet18", "shufflenet_v2_x1_0": "ShuffleNet v2", "mobilenet_v2": "MobileNet v2",
               "small_cnn": "SmallCNN"}
DENSE_METHODS = tuple(name for name in METHODS if spec_of(name).dense)  # tables put them at ratio 0
_DATASET_TITLES = {"synth": "SynthFaces (embedded synthetic benchmark)", "celeba": "CelebA", "lfw": "LFW"}


# ----------------------------------------------------------------------------- reading results


def _metric_key(metric: str) -> str:
    if metric not in ("DI", "DEO"):
        raise ValueError(f"metric must be 'DI' or 'DEO', got {metric!r}")
    return metric.lower()


def nominal_ratio(result: Any) -> float:
    """The requested pruning ratio; 0 for the dense methods, whose config still carries a default ratio."""
    return 0.0 if result.method in DENSE_METHODS else float(result.config.ratio)


def results_frame(results: Iterable[Any]) -> pd.DataFrame:
    """One row per result with its settings and test metrics (the raw material of every table)."""
    rows = []
    for r in results:
        cfg = r.config
        rows.append({
            "method": r.method, "title": method_title(r.method),
            "dataset": cfg.data.name, "target": cfg.data.target, "sensitive": cfg.data.sensitive,
            "arch": cfg.arch, "init": cfg.init, "alpha": cfg.alpha, "lam": cfg.lam, "preset": cfg.preset,
            "seed": int(cfg.seed), "PR.": nominal_ratio(r), "achieved PR.": float(r.ratio),
            "acc": float(r.acc), "DI": float(r.di), "DEO": float(r.deo), "degenerate": bool(r.degenerate),
            "seconds": float(getattr(r, "seconds", 0.0) or 0.0),
        })
    return pd.DataFrame(rows)


def _seed_list(seeds: Iterable[int]) -> str:
    """"seed 0" or "seeds 0, 1, 2"."""
    unique = sorted(set(seeds))
    return f"seed{'s' if len(unique) != 1 else ''} {', '.join(str(s) for s in unique)}"


def _describe_ours(results: Sequence[Any]) -> str:
    """One sentence on where our numbers come from (dataset, attributes, arch, preset, α)."""
    if not results:
        return "Ours: no runs."
    cfg = results[0].config
    data = _DATASET_TITLES.get(cfg.data.name, cfg.data.name)
    archs = sorted({ARCH_TITLES.get(r.config.arch, r.config.arch) for r in results})
    alphas = sorted({r.config.alpha for r in results if r.method in ("faprune", "adv_debias", "fair_sgdp", "fair_lmw")})
    inits = sorted({r.config.init for r in results})
    text = (f"Ours: {data}, target {cfg.data.target}, sensitive {cfg.data.sensitive}, "
            f"{'/'.join(archs)}, preset {cfg.preset}, {_seed_list(r.config.seed for r in results)}")
    if alphas:
        text += f", α={'/'.join(f'{a:g}' for a in alphas)}"
    if inits != ["pretrained"]:
        text += f", init {'/'.join(inits)}"
    return text + "."


def _describe_paper(panel: paper.PaperPanel | None, table: str, target: str | None, metric: Metric) -> str:
    if panel is None:
        return f"Paper: table {table} has no panel for target {target} with {metric}; its columns are blank."
    return (f"Paper: table {panel.table}, {panel.dataset}, target {panel.target}, sensitive {panel.sensitive} "
            f"(gender), ResNet-18 unless named. Values are not expected to match ours; compare directions.")


# ----------------------------------------------------------------------------- the joined tables


def _by_seed(results: Iterable[Any], key_of_result: Callable[[Any], Hashable],
             label: Callable[[Hashable], str]) -> dict[Hashable, dict[int, Any]]:
    """Group results by row key, then by seed; two results with the same key and seed are an error."""
    grouped: dict[Hashable, dict[int, Any]] = {}
    for r in results:
        key, seed = key_of_result(r), int(r.config.seed)
        row = grouped.setdefault(key, {})
        if seed in row:
            raise ValueError(f"two results for the same table row {label(key)!r} and seed {seed}; pass one run "
                             f"per row and seed (first: {row[seed].config}, second: {r.config})")
        row[seed] = r
    return grouped


def _beside_paper(results: Sequence[Any], panel: paper.PaperPanel | None, metric: Metric,
                  key_of_result: Callable[[Any], Hashable], key_of_paper: Callable[[paper.PaperRow], Hashable],
                  label: Callable[[Hashable], str], order: Callable[[Hashable], Any],
                  required: Iterable[Hashable] = ()) -> pd.DataFrame:
    """Join our results and a paper panel on a row key; keep the union of rows (plus `required`) in `order`.

    Our runs of one row key are summarised over their seeds (mean, sample std, number of seeds,
    number of degenerate runs). ``df.attrs["seeds"]`` keeps each row's seeds for the note.
    """
    ours = _by_seed(results, key_of_result, label)
    theirs = {key_of_paper(row): row for row in panel.rows} if panel is not None else {}
    dataset = panel.dataset if panel is not None else "no panel"
    m = _metric_key(metric)
    rows, index, seeds_of_row, undefined = [], [], {}, 0
    for key in sorted(set(ours) | set(theirs) | set(required), key=order):
        runs, p = list(ours.get(key, {}).values()), theirs.get(key)
        acc, acc_std, _ = stats.mean_std(float(r.acc) for r in runs)
        value, value_std, finite = stats.mean_std(float(r.metrics[m]) for r in runs)
        undefined += len(runs) - finite  # DI is nan when a model selects nobody; left out of the mean
        rows.append({
            "PR.": stats.mean_std(nominal_ratio(r) for r in runs)[0],
            "achieved PR.": stats.mean_std(float(r.ratio) for r in runs)[0],
            "acc": acc, "acc std": acc_std,
            metric: value, f"{metric} std": value_std,
            "seeds": len(runs),
            "degenerate": sum(bool(r.degenerate) for r in runs),
            "paper PR.": p.ratio if p is not None else math.nan,
            f"paper acc ({dataset})": p.acc if p is not None else math.nan,
            f"paper {metric} ({dataset})": p.value if p is not None else math.nan,
        })
        index.append(label(key))
        if runs:
            seeds_of_row[label(key)] = sorted(ours[key])
    df = pd.DataFrame(rows, index=pd.Index(index, name="row"))
    df.attrs["seeds"] = seeds_of_row
    df.attrs["undefined"] = undefined
    df.attrs["degenerate_of"] = "seeds"  # `readable` prints the degenerate count out of this column
    return df


def _describe_seeds(df: pd.DataFrame, metric: Metric) -> str:
    """How many seeds our columns average, which rows hold degenerate runs, and what that means."""
    seeds_of_row: dict[str, list[int]] = df.attrs.get("seeds", {})
    if not seeds_of_row:
        return ""
    counts = sorted({len(s) for s in seeds_of_row.values()})
    seeds = _seed_list(s for row in seeds_of_row.values() for s in row)
    if len(counts) == 1:
        n = counts[0]
        text = (f"Our columns: mean ± std over {n} seeds ({seeds}); sample std (ddof=1)." if n > 1 else
                f"Our columns: one seed per row ({seeds}), so no std.")
    else:
        text = (f"Our columns: mean ± std over {counts[0]}–{counts[-1]} seeds per row ({seeds}); rows differ "
                "in their number of seeds (the seeds column); a row with one seed has no std.")
    undefined = int(df.attrs.get("undefined", 0))
    if undefined:
        text += f" {metric} is undefined (a model predicts no positives) in {undefined} run(s), left out of the mean."
    flagged = df[df["degenerate"] > 0]
    if len(flagged):
        parts = ", ".join(f"{row} ({int(n)} of {int(k)})" for row, n, k in
                          zip(flagged.index, flagged["degenerate"], flagged["seeds"]))
        text += (f" ⚠ Degenerate runs in {parts}: a degenerate run predicts (almost) one class inside a sensitive "
                 "group, so its DI/DEO are trivially fair and must not be read as fairness.")
    return text


def _finish(df: pd.DataFrame, title: str, results: Sequence[Any], panel: paper.PaperPanel | None,
            table: str, target: str | None, metric: Metric) -> pd.DataFrame:
    df.attrs["title"] = title
    df.attrs["note"] = " ".join(part for part in [
        _describe_ours(results), _describe_seeds(df, metric), _describe_paper(panel, table, target, metric),
        "Accuracy and PR. (fraction of prunable weights removed) are fractions.",
        "DI: higher is fairer; DEO: lower is fairer."] if part)
    return df


def _single_target(results: Sequence[Any], target: str | None) -> str:
    targets = sorted({r.config.data.target for r in results})
    if target is None:
        if len(targets) > 1:
            raise ValueError(f"results mix targets {targets}; pass target= to choose one")
        return targets[0] if targets else "Attractive"
    return target


def baseline_table(results: Sequence[Any], *, metric: Metric, target: str | None = None) -> pd.DataFrame:
    """Tables 2 (DEO) and 3 (DI): the eight methods in the paper's order, ours beside the paper's.

    `results` holds at most one run per method and seed for `target` (other targets are ignored);
    a method's runs over several seeds become one row (mean, std, number of seeds). All eight rows
    appear even where a method was not run, so a row where FAPrune loses can never go missing.
    """
    target = _single_target(results, target)
    chosen = [r for r in results if r.config.data.target == target]
    table = "2" if metric == "DEO" else "3"
    panel = paper.panel(table, target=target, metric=metric)
    rank = {m: i for i, m in enumerate(METHODS)}
    df = _beside_paper(chosen, panel, metric, lambda r: r.method, lambda p: p.method,
                       lambda k: method_title(str(k)), lambda k: (rank.get(str(k), len(rank)), str(k)),
                       required=METHODS)  # all eight rows, even for a target the paper lacks
    return _finish(df, f"Table {table} ({metric}), target {target}", chosen, panel, table, target, metric)


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def ratio_table(results: Sequence[Any], *, metric: Metric) -> pd.DataFrame:
    """Table 4: FAPrune at several pruning ratios, with the dense (normal) model as the 0 % row."""
    chosen = [r for r in results if r.method in ("normal", "faprune")]
    panel = paper.panel("4", metric=metric)

    def label(key: Hashable) -> str:
        method, ratio = key  # type: ignore[misc]
        return "Dense (Normal training)" if method == "normal" else f"Ours {_pct(ratio)}"

    df = _beside_paper(chosen, panel, metric, lambda r: (r.method, round(nominal_ratio(r), 4)),
                       lambda p: (p.method, round(p.ratio, 4)), label, lambda k: (k[1], k[0]))
    target = _single_target(chosen, None) if chosen else "Attractive"
    return _finish(df, f"Table 4 ({metric}): FAPrune across pruning ratios, target {target}", chosen, panel, "4",
                   target, metric)


def arch_table(results: Sequence[Any], *, metric: Metric) -> pd.DataFrame:
    """Table 5: each architecture dense (normal training) and pruned by FAPrune."""
    chosen = [r for r in results if r.method in ("normal", "faprune")]
    panel = paper.panel("5", metric=metric)
    archs = list(ARCH_TITLES)

    def label(key: Hashable) -> str:
        arch, ratio = key  # type: ignore[misc]
        name = ARCH_TITLES.get(arch, arch)
        return f"{name} (Dense)" if ratio == 0 else f"{name} ({_pct(ratio)})"

    def order(key: Hashable) -> Any:
        arch, ratio = key  # type: ignore[misc]
        return (archs.index(arch) if arch in archs else len(archs), arch, ratio)

    df = _beside_paper(chosen, panel, metric, lambda r: (r.config.arch, round(nominal_ratio(r), 4)),
                       lambda p: (p.arch, round(p.ratio, 4)), label, order)
    target = _single_target(chosen, None) if chosen else "Attractive"
    return _finish(df, f"Table 5 ({metric}): architectures, dense vs pruned, target {target}", chosen, panel, "5",
                   target, metric)


def random_init_table(results: Sequence[Any], *, metric: Metric, target: str | None = None) -> pd.DataFrame:
    """Table 6: SGDP and FAPrune masks over *random* weights, beside the trained dense models."""
    target = _single_target(results, target)
    chosen = [r for r in results if r.config.data.target == target]
    panel = paper.panel("6", target=target, metric=metric)
    rank = {"normal": 0, "adv_debias": 1, "sgdp": 2, "faprune": 3}

    def label(key: Hashable) -> str:
        method, ratio = key  # type: ignore[misc]
        title = method_title(method)
        if method in DENSE_METHODS:
            return f"{title} (trained, dense)"
        return f"{title} {_pct(ratio)} (random init)"

    df = _beside_paper(chosen, panel, metric, lambda r: (r.method, round(nominal_ratio(r), 4)),
                       lambda p: (p.method, round(p.ratio, 4)), label,
                       lambda k: (k[1] > 0, k[1], rank.get(k[0], 9)))
    return _finish(df, f"Table 6 ({metric}): random-init sub-network search, target {target}", chosen, panel, "6",
                   target, metric)


# ----------------------------------------------------------------------------- single-run views


def metrics_table(results: Sequence[Any]) -> pd.DataFrame:
    """Accuracy, DI, DEO (and the DEO variants) of a few runs, with the paper's row for each beside it.

    The paper columns come from table 3 (DI) and table 2 (DEO) for the run's method and target;
    they are blank where the paper has no such row (e.g. a target it does not report). One row per
    run (no averaging over seeds); ``degenerate`` marks a constant predictor in a sensitive group.
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
                     "paper acc": row_deo.acc if row_deo is not None else math.nan,
                     "paper DI": row_di.value if row_di is not None else math.nan,
                     "paper DEO": row_deo.value if row_deo is not None else math.nan})
        index.append(method_title(r.method))
    df = pd.DataFrame(rows, index=pd.Index(index, name="method"))
    df.attrs["title"] = "Test metrics"
    paper_note = (f"Paper columns: tables 2 (DEO) and 3 (DI), {'/'.join(sorted(datasets))}, ResNet-18."
                  if datasets else "The paper reports no row for these targets.")
    df.attrs["note"] = " ".join([_describe_ours(list(results)), paper_note,
                                 "DEO = |ΔTPR| + |ΔFPR| (the paper's); "
                                 "DEO (max) is fairlearn's equalized_odds_difference."] +
                                (["⚠ degenerate: a constant prediction inside a sensitive group; its DI/DEO are "
                                  "trivially fair and must not be read as fairness."]
                                 if "degenerate" in df and df["degenerate"].any() else []))
    return df


def split_rates(splits: dict[str, Any], *, target: str, sensitive: str) -> pd.DataFrame:
    """How a dataset's bias is built: per split, group sizes and P(target=1 | sensitive=g).

    `splits` maps a split name to a dataset with `y` and `z` tensors (e.g. `fapkit.data.load`).
    The gap between the two groups' positive rates is the shortcut a normally trained model learns.
    """
    rows = []
    for name, ds in splits.items():
        y, z = ds.y.reshape(-1).float(), ds.z.reshape(-1)
        row: dict[str, Any] = {"split": name, "n": int(len(y))}
        for g in (0, 1):
            in_g = z == g
            row[f"n {sensitive}={g}"] = int(in_g.sum())
            row[f"P({target}=1 | {sensitive}={g})"] = float(y[in_g].mean()) if in_g.any() else math.nan
        row[f"P({target}=1)"] = float(y.mean())
        row["gap"] = row[f"P({target}=1 | {sensitive}=1)"] - row[f"P({target}=1 | {sensitive}=0)"]
        row["DI of the labels"] = _ratio_min_max(row[f"P({target}=1 | {sensitive}=0)"],
                                                 row[f"P({target}=1 | {sensitive}=1)"])
        rows.append(row)
    df = pd.DataFrame(rows).set_index("split")
    df.attrs["title"] = f"Label rates per group: target {target}, sensitive {sensitive}"
    df.attrs["note"] = ("gap = P(y=1|z=1) − P(y=1|z=0); 'DI of the labels' is the DI a classifier that copied "
                        "the labels would get.")
    return df


def _ratio_min_max(a: float, b: float) -> float:
    hi = max(a, b)
    return min(a, b) / hi if hi > 0 else math.nan


def _groups(result: Any) -> dict[int, dict[str, Any]]:
    """Per-group rates with int keys (a run loaded from its JSON record has "0"/"1" keys)."""
    return {int(k): v for k, v in result.metrics["groups"].items()}


def group_confusion(result: Any) -> pd.DataFrame:
    """Per-group confusion counts and rates of one run (z=0 and z=1 rows)."""
    sensitive = result.config.data.sensitive
    rows, index = [], []
    for g, s in sorted(_groups(result).items()):
        n_pos, n_neg = int(s["n_pos"]), int(s["n_neg"])
        tp = round(s["tpr"] * n_pos) if n_pos else 0
        fp = round(s["fpr"] * n_neg) if n_neg else 0
        rows.append({"count": int(s["count"]), "TP": tp, "FN": n_pos - tp, "FP": fp, "TN": n_neg - fp,
                     "selection rate": s["selection_rate"], "TPR": s["tpr"], "FPR": s["fpr"],
                     "accuracy": s["accuracy"]})
        index.append(f"{sensitive}={g}")
    df = pd.DataFrame(rows, index=pd.Index(index, name="group"))
    df.attrs["title"] = f"Per-group confusion, {method_title(result.method)}"
    df.attrs["note"] = (f"Test split; target {result.config.data.target}, sensitive {sensitive}. "
                        "DI = min/max of the selection rates; DEO = |ΔTPR| + |ΔFPR|.")
    return df


def layer_table(result: Any) -> pd.DataFrame:
    """The per-layer mask report of a pruned run (`RunResult.layers`) as a DataFrame."""
    df = pd.DataFrame(result.layers)
    df.attrs["title"] = f"Per-layer masks, {method_title(result.method)}"
    df.attrs["note"] = (f"Requested pruning ratio {result.config.ratio:g}; achieved {result.ratio:.4f} over "
                        "prunable weights. Ratio = fraction of the layer's weights removed.")
    return df


def history_frame(result: Any) -> pd.DataFrame:
    """The per-epoch history of a run (training losses, validation metrics, mask movement)."""
    df = pd.DataFrame(result.history)
    if "epoch" in df:
        df = df.set_index("epoch")
    df.attrs["title"] = f"Training history, {method_title(result.method)}"
    df.attrs["note"] = "train_* are epoch means over training batches; val_* are measured on the validation split."
    return df


_ADVANTAGE_KEYS = (("DI", "adv_di"), ("DEO y=0", "adv_deo_y0"), ("DEO y=1", "adv_deo_y1"))


def adversary_table(results: Sequence[Any]) -> pd.DataFrame:
    """Was the adversarial game live? The discriminators' advantage, mean ± std over seeds.

    One row per adversarial run kind (FAPrune, Adversarial Debiasing) and α. The advantage of a
    head is H(z) − its cross-entropy in nats (per y cell for the DEO heads; see
    `fapkit.discriminators.AdversaryMonitor`): "warm-up" is measured on the starting model's
    predictions before the first generator step, "last epoch" during the last epoch of the game.
    Heads that do not train at a given α are blank.
    """
    groups: dict[tuple[str, float], list[Any]] = {}
    for r in results:
        if r.method in ("faprune", "adv_debias") and r.history:
            groups.setdefault((r.method, float(r.config.alpha)), []).append(r)
    rows, index = [], []
    for (method, alpha), runs in sorted(groups.items(), key=lambda kv: (METHODS.index(kv[0][0]), kv[0][1])):
        row: dict[str, Any] = {"α": alpha, "seeds": len({r.config.seed for r in runs})}
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


# ----------------------------------------------------------------------------- direction of the comparisons


_DIRECTION_COLUMNS = ["target", "metric", "baseline", "seeds", "ours", "theirs", "delta", "low", "high", "ratio",
                      "verdict", "acc_delta", "acc_low", "acc_high", "degenerate", "paper_fairer", "note"]
_INTERVAL_NOTE = ("paired over seeds, Student-t 95 % interval; a direction is called only when the interval "
                  "excludes 0")


def direction_summary(results: Sequence[Any], *, metric: Metric, target: str | None = None,
                      baselines: Sequence[str] = ("sgdp", "lmw")) -> pd.DataFrame:
    """Does FAPrune make the pruned model fairer than each baseline (lower DEO / higher DI)?

    FAPrune's run of each seed is paired with the baseline's run of the same seed (and target);
    seeds that only one side ran, and seeds where the metric is undefined (DI of a model that
    selects nobody), are left out of the pairing and named in ``note``. One row per baseline:

    * ``seeds``: the number of pairs used; ``ours`` / ``theirs``: the two means over them;
    * ``delta``, ``low``, ``high``: mean paired difference ours − theirs and its Student-t 95 %
      interval (`fapkit.stats.paired_interval`; nan bounds with one pair);
    * ``ratio``: mean ours / mean theirs;
    * ``verdict``: "fairer", "less fair" or "not distinguishable" (`fapkit.stats.verdict`: a
      direction only when the interval excludes 0); None when nothing could be paired;
    * ``acc_delta``, ``acc_low``, ``acc_high``: the same paired difference for accuracy;
    * ``degenerate``: how many of the paired runs (both sides) are degenerate;
    * ``paper_fairer``: whether the paper's table 2 (DEO) or 3 (DI) has FAPrune fairer.
    """
    target = _single_target(results, target)
    chosen = [r for r in results if r.config.data.target == target]
    by_method = _by_seed(chosen, lambda r: r.method, lambda k: method_title(str(k)))
    table = "2" if metric == "DEO" else "3"
    panel = paper.panel(table, target=target, metric=metric)
    m = _metric_key(metric)
    rows = []
    for base in baselines:
        title = method_title(base)
        ours, other = by_method.get("faprune", {}), by_method.get(base, {})
        row: dict[str, Any] = {"target": target, "metric": metric, "baseline": title, "seeds": 0,
                               "verdict": None, "degenerate": 0, "paper_fairer": None}
        row.update({k: math.nan for k in ("ours", "theirs", "delta", "low", "high", "ratio",
                                          "acc_delta", "acc_low", "acc_high")})
        notes: list[str] = []
        if not ours or not other:
            notes.append(f"{'FAPrune' if not ours else title} not run")
        else:
            unpaired = [f"{_seed_list(only)} only for {who}" for only, who in
                        ((sorted(set(ours) - set(other)), "FAPrune"), (sorted(set(other) - set(ours)), title)) if only]
            if unpaired:
                notes.append(", ".join(unpaired) + ": not paired")
            common = sorted(set(ours) & set(other))
            undefined = [s for s in common
                         if math.isnan(float(ours[s].metrics[m])) or math.isnan(float(other[s].metrics[m]))]
            if undefined:
                notes.append(f"{metric} undefined in {_seed_list(undefined)} (a model predicts no positives)")
            used = [s for s in common if s not in undefined]
            if not common:
                notes.append("no seed run by both")
            elif len(used) == 1:
                notes.append("1 seed: no interval")
            if used:
                a = [float(ours[s].metrics[m]) for s in used]
                b = [float(other[s].metrics[m]) for s in used]
                diff = stats.paired_interval(a, b)
                acc = stats.paired_interval([float(ours[s].acc) for s in used], [float(other[s].acc) for s in used])
                mean_a, mean_b = stats.mean_std(a)[0], stats.mean_std(b)[0]
                row.update(seeds=len(used), ours=mean_a, theirs=mean_b, delta=diff.mean, low=diff.low,
                           high=diff.high, ratio=mean_a / mean_b if mean_b != 0 else math.nan,
                           verdict=stats.verdict(diff, lower_is_fairer=metric == "DEO"),
                           acc_delta=acc.mean, acc_low=acc.low, acc_high=acc.high,
                           degenerate=sum(int(ours[s].degenerate) + int(other[s].degenerate) for s in used))
        row["note"] = "; ".join(notes)
        if panel is not None:
            po, pb = panel.find("faprune"), panel.find(base)
            if po is not None and pb is not None:
                row["paper_fairer"] = bool(po.value < pb.value if metric == "DEO" else po.value > pb.value)
        rows.append(row)
    df = pd.DataFrame(rows, columns=_DIRECTION_COLUMNS)
    df.attrs["title"] = f"Direction: FAPrune vs {', '.join(method_title(b) for b in baselines)} ({metric})"
    df.attrs["note"] = (f"delta = ours − baseline, {_INTERVAL_NOTE}; fairer = lower DEO or higher DI; "
                        "acc_delta = our accuracy − baseline's (same pairing).")
    return df


def direction_table(groups: Mapping[tuple[str, str], Sequence[Any]],
                    baselines: Sequence[str] = ("sgdp", "lmw")) -> pd.DataFrame:
    """`direction_summary` for every (target, metric) group of runs, in one table."""
    parts = [direction_summary(runs, metric=metric, target=target, baselines=baselines)  # type: ignore[arg-type]
             for (target, metric), runs in groups.items()]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_DIRECTION_COLUMNS)
    df.attrs = {}  # concat may carry one part's attrs; this table has its own
    df.attrs["title"] = f"Direction: FAPrune vs {', '.join(method_title(b) for b in baselines)}"
    df.attrs["note"] = (f"delta = ours − baseline over the seeds both ran ({_INTERVAL_NOTE}); low/high = the "
                        "interval; verdict: fairer = lower DEO or higher DI; acc_delta/acc_low/acc_high = the same "
                        "for accuracy; degenerate = degenerate runs among the paired ones; paper_fairer = the same "
                        "comparison in the paper's table 2 (DEO) or 3 (DI).")
    return df


def _missing(value: Any) -> bool:
    """None or NaN: a comparison that could not be made (pandas turns None into NaN in some columns)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _signed(value: float, digits: int) -> str:
    """+0.1100 / −0.1400 (a typographic minus, as in the paper's prose)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def direction_text(summary: pd.DataFrame) -> str:
    """Plain sentences from one or more `direction_summary` frames (concatenate them first).

    The first line counts the verdicts; then one line per comparison with both means, the paired
    difference and its interval, the verdict, the accuracy difference (in points) and the paper's
    direction.
    """
    lines: list[str] = []
    counts = {"fairer": 0, "less fair": 0, "not distinguishable": 0}
    paper_wins = paper_total = 0
    for _, row in summary.iterrows():
        head = f"{row['target']}, {row['metric']}: FAPrune vs {row['baseline']}"
        if _missing(row["verdict"]):
            lines.append(f"- {head}: not compared ({row['note']}).")
            continue
        counts[row["verdict"]] += 1
        n, base = int(row["seeds"]), row["baseline"]
        interval = (f" [95 % CI {_signed(row['low'], 4)}, {_signed(row['high'], 4)}]"
                    if not _missing(row["low"]) else " (no interval from 1 seed)")
        ratio = f" (FAPrune/{base} = {row['ratio']:.2f})" if not _missing(row["ratio"]) else ""
        acc = f"; accuracy {_signed(row['acc_delta'] * 100, 2)} points"
        if not _missing(row["acc_low"]):
            acc += f" [{_signed(row['acc_low'] * 100, 1)}, {_signed(row['acc_high'] * 100, 1)}]"
        extra = ""
        if int(row["degenerate"]):
            extra += (f"; ⚠ {int(row['degenerate'])} of the {2 * n} paired runs are degenerate "
                      "(DI/DEO trivially fair)")
        note = "; ".join(part for part in str(row["note"] or "").split("; ") if part and part != "1 seed: no interval")
        if note:
            extra += f" ({note})"
        if not _missing(row["paper_fairer"]):
            paper_total += 1
            paper_wins += bool(row["paper_fairer"])
            extra += "; the paper reports FAPrune " + ("fairer" if row["paper_fairer"] else "less fair")
        lines.append(f"- {head} over {n} seed{'s' if n != 1 else ''}: {row['ours']:.4f} vs {row['theirs']:.4f}, "
                     f"difference {_signed(row['delta'], 4)}{interval} → {row['verdict']}{ratio}{acc}{extra}.")
    total = sum(counts.values())
    head = (f"FAPrune was fairer in {counts['fairer']} of {total} comparisons, less fair in {counts['less fair']}, "
            f"not distinguishable in {counts['not distinguishable']} ({_INTERVAL_NOTE}")
    if paper_total:
        head += f"; in the paper's tables: fairer in {paper_wins} of {paper_total}"
    return head + ").\n" + "\n".join(lines)


# ----------------------------------------------------------------------------- saving


def _pair(value: Any, std: Any) -> str | None:
    """"0.7810 ± 0.0123", or "0.7810" without a std, or None (printed "—") without a value."""
    if pd.isna(value):
        return None
    text = f"{float(value):.4f}"
    return text if pd.isna(std) else f"{text} ± {float(std):.4f}"


def _flag(count: Any, of: Any) -> str:
    """"⚠ 2/3" for 2 degenerate runs of 3, "⚠" for a single flagged run, "" for none."""
    if isinstance(count, (bool, np.bool_)):
        return "⚠" if count else ""
    if _missing(count) or not int(count):
        return ""
    return f"⚠ {int(count)}/{int(of)}" if not _missing(of) else f"⚠ {int(count)}"


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """The table as `show` and `save_table`'s Markdown print it (the CSV keeps the numbers apart).

    Each ``X`` / ``X std`` column pair becomes one column ``X`` holding "mean ± std" (4 decimals;
    just the mean when the std is nan, i.e. one seed), and a ``degenerate`` column becomes
    "⚠ k/n" (k degenerate runs of the row's n seeds), "⚠" (a flagged single run) or blank.
    """
    out = df.copy()
    for column in list(df.columns):
        if isinstance(column, str) and f"{column} std" in df.columns:
            out[column] = [_pair(v, e) for v, e in zip(df[column], df[f"{column} std"])]
            out = out.drop(columns=f"{column} std")
    if "degenerate" in df.columns:
        of_column = df.attrs.get("degenerate_of")
        of = df[of_column] if of_column in df.columns else [None] * len(df)
        out["degenerate"] = [_flag(k, n) for k, n in zip(df["degenerate"], of)]
    out.attrs = dict(df.attrs)
    return out


def show(df: pd.DataFrame) -> None:
    """Display a table in a notebook under its title and note (from ``df.attrs``), as `readable` prints it."""
    from IPython.display import Markdown, display

    caption = " — ".join(part for part in (f"**{df.attrs['title']}**" if df.attrs.get("title") else "",
                                           df.attrs.get("note", "")) if part)
    if caption:
        display(Markdown(caption))
    display(readable(df))


def save_table(df: pd.DataFrame, name: str, results_dir: str | Path = "results") -> tuple[Path, Path]:
    """Write `results_dir/<name>.csv` and `results_dir/<name>.md`; return both paths.

    The CSV holds the numbers as they are (separate value and std columns). The Markdown file
    starts with the table's title and note (from ``df.attrs``) and prints the table as `readable`
    does: "mean ± std" cells, other numbers with 4 decimals and blanks as "—".
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"table name must be a plain file stem, got {name!r}")
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    df.to_csv(csv_path)
    shown = readable(df)
    shown = shown.astype(object).where(shown.notna(), None)
    parts = []
    if df.attrs.get("title"):
        parts.append(f"### {df.attrs['title']}\n")
    if df.attrs.get("note"):
        parts.append(f"{df.attrs['note']}\n")
    parts.append(shown.to_markdown(floatfmt=".4f", missingval="—"))
    md_path.write_text("\n".join(parts) + "\n")
    return csv_path, md_path
