"""Our results beside the paper's: the tables of the notebook series, saved as CSV and Markdown.

Every table builder takes a list of `RunResult`s (anything with the same attributes works: tests
pass fakes) and returns a DataFrame with one row per method/ratio/architecture and columns

    PR. | achieved PR. | acc | DEO | paper PR. | paper acc (CelebA) | paper DEO (CelebA)

(DI instead of DEO for the DI tables). Rows are the union of what we ran and what the paper
reports: a row the paper has and we did not run shows blanks on our side, and a row where our
method does worse than a baseline is never dropped. ``df.attrs["note"]`` says which data each
side comes from, because our default benchmark is the embedded SynthFaces, not CelebA/LFW, so
numbers are compared by direction, not by value.

Accuracy and the pruning ratio are fractions (0.8 = 80 % of prunable weights removed). The figure
functions live in `fapkit.figures` and are re-exported here.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Literal, Mapping, Sequence

import pandas as pd

from . import paper
from .config import METHODS, method_title
from .figures import (figure1, figure3, group_rates_figure, layer_sparsity_figure, metrics_bars, sample_grid,
                      training_curves)

Metric = Literal["DI", "DEO"]

__all__ = [
    "results_frame", "baseline_table", "ratio_table", "arch_table", "random_init_table",
    "metrics_table", "split_rates", "group_confusion", "layer_table", "history_frame",
    "direction_summary", "direction_table", "direction_text", "save_table", "show",
    "figure1", "figure3", "group_rates_figure", "layer_sparsity_figure", "metrics_bars", "sample_grid",
    "training_curves",
]

#: Display names of the architectures, as the paper writes them.
ARCH_TITLES = {"resnet18": "ResNet18", "shufflenet_v2_x1_0": "ShuffleNet v2", "mobilenet_v2": "MobileNet v2",
               "small_cnn": "SmallCNN"}
DENSE_METHODS = ("normal", "adv_debias")
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
            "PR.": nominal_ratio(r), "achieved PR.": float(r.ratio),
            "acc": float(r.acc), "DI": float(r.di), "DEO": float(r.deo),
            "seconds": float(getattr(r, "seconds", 0.0) or 0.0),
        })
    return pd.DataFrame(rows)


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
            f"{'/'.join(archs)}, preset {cfg.preset}, seed {cfg.seed}")
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


def _beside_paper(results: Sequence[Any], panel: paper.PaperPanel | None, metric: Metric,
                  key_of_result: Callable[[Any], Hashable], key_of_paper: Callable[[paper.PaperRow], Hashable],
                  label: Callable[[Hashable], str], order: Callable[[Hashable], Any],
                  required: Iterable[Hashable] = ()) -> pd.DataFrame:
    """Join our results and a paper panel on a row key; keep the union of rows (plus `required`) in `order`."""
    ours: dict[Hashable, Any] = {}
    for r in results:
        key = key_of_result(r)
        if key in ours:
            raise ValueError(f"two results for the same table row {label(key)!r}; pass one run per row "
                             f"(first: {ours[key].config}, second: {r.config})")
        ours[key] = r
    theirs = {key_of_paper(row): row for row in panel.rows} if panel is not None else {}
    dataset = panel.dataset if panel is not None else "no panel"
    m = _metric_key(metric)
    rows, index = [], []
    for key in sorted(set(ours) | set(theirs) | set(required), key=order):
        r, p = ours.get(key), theirs.get(key)
        rows.append({
            "PR.": nominal_ratio(r) if r is not None else math.nan,
            "achieved PR.": float(r.ratio) if r is not None else math.nan,
            "acc": float(r.acc) if r is not None else math.nan,
            metric: float(r.metrics[m]) if r is not None else math.nan,
            "paper PR.": p.ratio if p is not None else math.nan,
            f"paper acc ({dataset})": p.acc if p is not None else math.nan,
            f"paper {metric} ({dataset})": p.value if p is not None else math.nan,
        })
        index.append(label(key))
    return pd.DataFrame(rows, index=pd.Index(index, name="row"))


def _finish(df: pd.DataFrame, title: str, results: Sequence[Any], panel: paper.PaperPanel | None,
            table: str, target: str | None, metric: Metric) -> pd.DataFrame:
    df.attrs["title"] = title
    df.attrs["note"] = " ".join([_describe_ours(results), _describe_paper(panel, table, target, metric),
                                 "Accuracy and PR. (fraction of prunable weights removed) are fractions.",
                                 "DI: higher is fairer; DEO: lower is fairer."])
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

    `results` holds at most one run per method for `target` (others are ignored); all eight rows
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
    they are blank where the paper has no such row (e.g. a target it does not report).
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
                     "DEO (TPR only)": float(m.get("deo_tpr", math.nan)),
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
                                 "DEO (max) is fairlearn's equalized_odds_difference."])
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


# ----------------------------------------------------------------------------- direction of the comparisons


def direction_summary(results: Sequence[Any], *, metric: Metric, target: str | None = None,
                      baselines: Sequence[str] = ("sgdp", "lmw")) -> pd.DataFrame:
    """Does FAPrune make the pruned model fairer than each baseline (lower DEO / higher DI)?

    One row per baseline: both values, the difference (ours − baseline), whether ours is fairer,
    the accuracy difference, and whether the paper's table reports ours as fairer.
    """
    target = _single_target(results, target)
    by_method = {r.method: r for r in results if r.config.data.target == target}
    table = "2" if metric == "DEO" else "3"
    panel = paper.panel(table, target=target, metric=metric)
    m = _metric_key(metric)
    rows = []
    for base in baselines:
        ours, other = by_method.get("faprune"), by_method.get(base)
        row: dict[str, Any] = {"target": target, "metric": metric, "baseline": method_title(base)}
        if ours is None or other is None:
            missing = "FAPrune" if ours is None else method_title(base)
            row.update(ours=math.nan, theirs=math.nan, delta=math.nan, fairer=None, acc_delta=math.nan,
                       paper_fairer=None, note=f"{missing} not run")
        else:
            a, b = float(ours.metrics[m]), float(other.metrics[m])
            row.update(ours=a, theirs=b, delta=a - b, fairer=bool(a < b if metric == "DEO" else a > b),
                       acc_delta=float(ours.acc) - float(other.acc), note="", paper_fairer=None)
            if math.isnan(a) or math.isnan(b):  # DI is undefined when a model selects nobody
                row.update(fairer=None, note=f"{metric} undefined (a model predicts no positives)")
        if panel is not None:
            po, pb = panel.find("faprune"), panel.find(base)
            if po is not None and pb is not None:
                row["paper_fairer"] = bool(po.value < pb.value if metric == "DEO" else po.value > pb.value)
        rows.append(row)
    columns = ["target", "metric", "baseline", "ours", "theirs", "delta", "fairer", "acc_delta", "paper_fairer", "note"]
    df = pd.DataFrame(rows, columns=columns)
    df.attrs["title"] = f"Direction: FAPrune vs {', '.join(method_title(b) for b in baselines)} ({metric})"
    df.attrs["note"] = ("delta = ours − baseline; fairer = lower DEO or higher DI; "
                        "acc_delta = our accuracy − baseline's.")
    return df


def direction_table(groups: Mapping[tuple[str, str], Sequence[Any]],
                    baselines: Sequence[str] = ("sgdp", "lmw")) -> pd.DataFrame:
    """`direction_summary` for every (target, metric) group of runs, in one table."""
    parts = [direction_summary(runs, metric=metric, target=target, baselines=baselines)  # type: ignore[arg-type]
             for (target, metric), runs in groups.items()]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    df.attrs["title"] = f"Direction: FAPrune vs {', '.join(method_title(b) for b in baselines)}"
    df.attrs["note"] = ("delta = ours − baseline; fairer = lower DEO or higher DI; acc_delta = our accuracy − "
                        "baseline's; paper_fairer = the same comparison in the paper's table 2 (DEO) or 3 (DI).")
    return df


def _missing(value: Any) -> bool:
    """None or NaN: a comparison that could not be made (pandas turns None into NaN in some columns)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def direction_text(summary: pd.DataFrame) -> str:
    """Plain sentences from one or more `direction_summary` frames (concatenate them first)."""
    lines, wins, total, paper_wins, paper_total = [], 0, 0, 0, 0
    for _, row in summary.iterrows():
        head = f"{row['target']}, {row['metric']}: FAPrune vs {row['baseline']}"
        if _missing(row["fairer"]):
            lines.append(f"- {head}: not compared ({row['note']}).")
            continue
        total += 1
        wins += bool(row["fairer"])
        verb = ("lower" if row["delta"] < 0 else "higher") if row["delta"] != 0 else "equal"
        verdict = "fairer" if row["fairer"] else "not fairer"
        paper_part = ""
        if not _missing(row["paper_fairer"]):
            paper_total += 1
            paper_wins += bool(row["paper_fairer"])
            paper_part = "; the paper reports FAPrune " + ("fairer" if row["paper_fairer"] else "not fairer")
        lines.append(f"- {head}: {row['ours']:.4f} vs {row['theirs']:.4f} ({verb}, {verdict}), "
                     f"accuracy {row['acc_delta'] * 100:+.2f} points{paper_part}.")
    head = f"FAPrune was fairer in {wins} of {total} comparisons"
    if paper_total:
        head += f" (in the paper's tables: {paper_wins} of {paper_total})"
    return head + ".\n" + "\n".join(lines)


# ----------------------------------------------------------------------------- saving


def show(df: pd.DataFrame) -> None:
    """Display a table in a notebook under its title and note (from ``df.attrs``)."""
    from IPython.display import Markdown, display

    caption = " — ".join(part for part in (f"**{df.attrs['title']}**" if df.attrs.get("title") else "",
                                           df.attrs.get("note", "")) if part)
    if caption:
        display(Markdown(caption))
    display(df)


def save_table(df: pd.DataFrame, name: str, results_dir: str | Path = "results") -> tuple[Path, Path]:
    """Write `results_dir/<name>.csv` and `results_dir/<name>.md`; return both paths.

    The Markdown file starts with the table's title and note (from ``df.attrs``) and prints
    numbers with 4 decimals and blanks as "—".
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"table name must be a plain file stem, got {name!r}")
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    df.to_csv(csv_path)
    shown = df.astype(object).where(df.notna(), None)
    parts = []
    if df.attrs.get("title"):
        parts.append(f"### {df.attrs['title']}\n")
    if df.attrs.get("note"):
        parts.append(f"{df.attrs['note']}\n")
    parts.append(shown.to_markdown(floatfmt=".4f", missingval="—"))
    md_path.write_text("\n".join(parts) + "\n")
    return csv_path, md_path
