"""The series' figures: each function draws from RunResults, writes a PNG and returns the Figure.

Each figure is created through pyplot (so that, in Jupyter, pyplot loads the inline backend,
which teaches IPython to render a Figure as PNG) and released from pyplot at once: nothing
accumulates in pyplot's figure list, and a notebook cell that ends with the returned figure shows
it exactly once instead of twice.
Every method keeps one colour across all figures (`method_color`, read from its registered spec).
Pass ``path=None`` to skip writing the file (the slider explorer redraws without saving).

Figures over several runs (1 and 3) draw each method at its mean over seeds with ±1 sample std
(error bars, shaded bands); with one seed per method they draw exactly the single runs.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter

from .. import paper
from ..frontier import TOLERANCES, frontier_frame
from ..registry import NOT_IN_PAPER, method_names, method_title, row_title, spec_of
from ..stats import mean_std
from ._common import Metric

_CB = sns.color_palette("colorblind", 10)


def method_color(method: str) -> Any:
    """The method's colour in every figure: its spec's index into seaborn's colour-blind palette (the
    built-ins chosen like the paper's figure 1: SGDP pink, debias-then-prune yellow/orange, FAPrune green)."""
    return _CB[spec_of(method).color % len(_CB)]


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"figures are written as PNG; got {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def _new_figure(width: float, height: float) -> Figure:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width, height), layout="constrained")
    plt.close(fig)  # still drawable and savable; just not shown again by the backend at cell end
    return fig


def _style(ax: Any) -> None:
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def _value(result: Any, metric: Metric) -> float:
    return float(result.metrics[metric.lower()])


# ----------------------------------------------------------------------------- over seeds


class _Summary:
    """Mean and sample std of accuracy, a metric and the achieved ratio over a group of runs (seeds)."""

    def __init__(self, runs: Sequence[Any], metric: Metric) -> None:
        self.acc, self.acc_std, _ = mean_std(float(r.acc) for r in runs)
        self.value, self.value_std, _ = mean_std(_value(r, metric) for r in runs)
        self.ratio = mean_std(float(r.ratio) for r in runs)[0]
        self.n = len(runs)
        self.degenerate = sum(bool(r.degenerate) for r in runs)
        self.near_constant = sum(bool(getattr(r, "near_constant", False)) for r in runs)


def _seeds_phrase(counts: Sequence[int]) -> str:
    """"mean ± std over 3 seeds", "mean ± std over 1–3 seeds" or "one seed per point", for titles."""
    if not counts:
        return "no runs"
    low, high = min(counts), max(counts)
    if high == 1:
        return "one seed per point"
    return f"mean ± std over {low}–{high} seeds" if low != high else f"mean ± std over {high} seeds"


def _band(ax: Any, xs: Sequence[float], means: Sequence[float], stds: Sequence[float], color: Any) -> None:
    """A light ±std band around a line; nothing where the std is undefined (one seed)."""
    lows = [m - s if not math.isnan(s) else m for m, s in zip(means, stds)]
    highs = [m + s if not math.isnan(s) else m for m, s in zip(means, stds)]
    ax.fill_between(xs, lows, highs, color=color, alpha=0.15, linewidth=0)


# ----------------------------------------------------------------------------- figure 1


_DEGENERATE_EDGE = "#b00020"
_NEAR_CONSTANT_EDGE = "#d06000"


def _scatter_panel(ax: Any, points: Sequence[tuple[str, float, float, float]], metric: Metric, title: str,
                   errors: Sequence[tuple[float, float, bool | str]] | None = None) -> None:
    """Circles at (accuracy, metric) with area ∝ 1 − pruning ratio (the model's remaining size).

    `errors` gives, per point, (acc std, metric std, flag): ±1 std error bars in both axes, and a
    hatched, red-edged circle where the flag is ``"degenerate"`` (or True: some of the point's runs
    are degenerate), a dashed orange edge where it is ``"near-constant"``.
    """
    for i, (method, acc, value, ratio) in enumerate(points):
        color = method_color(method) if method in method_names() else "grey"
        acc_std, value_std, flagged = errors[i] if errors is not None else (math.nan, math.nan, False)
        if not (math.isnan(acc_std) and math.isnan(value_std)):
            ax.errorbar([acc], [value], xerr=[0.0 if math.isnan(acc_std) else acc_std],
                        yerr=[0.0 if math.isnan(value_std) else value_std], fmt="none", ecolor=color,
                        elinewidth=1.2, capsize=3, zorder=2)
        degenerate, near = flagged is True or flagged == "degenerate", flagged == "near-constant"
        edge = _DEGENERATE_EDGE if degenerate else _NEAR_CONSTANT_EDGE if near else "black"
        ax.scatter([acc], [value], s=900 * max(1.0 - ratio, 0.02), color=color, alpha=0.75,
                   edgecolor=edge, linewidth=1.6 if degenerate or near else 0.6,
                   linestyle="--" if near else "-", hatch="xxx" if degenerate else None, zorder=3)
    ax.set_xlabel("accuracy ↑")
    if metric == "DEO":
        ax.set_ylabel("DEO ↓")
    else:
        ax.set_ylabel("DI ↑ (axis inverted)")
        ax.invert_yaxis()  # keep the paper's reading: bottom-right = accurate and fair
    ax.set_title(title, fontsize=10)
    ax.margins(0.18)
    _style(ax)


def figure1(results: Sequence[Any], *, metric: Metric = "DEO", with_paper: bool = True,
            path: str | Path | None = "figures/figure1.png") -> Figure:
    """Figure 1: accuracy vs fairness per method, circle area ∝ model size after pruning.

    One panel per target in `results`; each method sits at its mean (accuracy, metric) over its
    seeds with ±1 std error bars in both axes, and a hatched red-edged circle when some of its
    runs are degenerate (a constant prediction inside a sensitive group: trivially "fair"). With
    `with_paper`, a second row shows the paper's table 2 (DEO) or 3 (DI) numbers for that target
    in the same encoding. Bottom-right is accurate and fair.
    """
    targets = sorted({r.config.data.target for r in results}) or ["Attractive"]
    table = "2" if metric == "DEO" else "3"
    panels = {t: paper.panel(table, target=t, metric=metric) for t in targets}
    n_rows = 2 if with_paper and any(panels.values()) else 1
    fig = _new_figure(4.6 * len(targets), 4.0 * n_rows + 0.8)
    axes = fig.subplots(n_rows, len(targets), squeeze=False)
    counts, any_degenerate, any_near = [], False, False
    for j, target in enumerate(targets):
        by_method: dict[str, list[Any]] = {}
        for r in results:
            if r.config.data.target == target:
                by_method.setdefault(r.method, []).append(r)
        order = [m for m in method_names() if m in by_method] + sorted(m for m in by_method if m not in method_names())
        summaries = {m: _Summary(by_method[m], metric) for m in order}
        counts += [s.n for s in summaries.values()]
        any_degenerate |= any(s.degenerate for s in summaries.values())
        any_near |= any(s.near_constant and not s.degenerate for s in summaries.values())
        mine = [(m, s.acc, s.value, s.ratio) for m, s in summaries.items()]
        errors = [(s.acc_std, s.value_std, "degenerate" if s.degenerate else "near-constant" if s.near_constant else "")
                  for s in summaries.values()]
        dataset = results[0].config.data.name if results else "synth"
        _scatter_panel(axes[0][j], mine, metric, f"ours ({dataset}): {target}", errors)
        if n_rows == 2:
            ax = axes[1][j]
            p = panels[target]
            if p is None:
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"the paper has no\n{metric} panel for {target}", ha="center", va="center")
            else:
                _scatter_panel(ax, [(row.method, row.acc, row.value, row.ratio) for row in p.rows], metric,
                               f"paper table {p.table} ({p.dataset}): {target}")
    present = [m for m in method_names() if any(r.method == m for r in results)] or list(method_names())
    handles = [Line2D([], [], marker="o", linestyle="", markersize=9, color=method_color(m),
                      markeredgecolor="black", label=row_title(m)) for m in present]
    if any_degenerate:
        handles.append(Line2D([], [], marker="X", linestyle="", markersize=9, color="white",
                              markeredgecolor=_DEGENERATE_EDGE, markeredgewidth=1.6,
                              label="hatched: degenerate runs included"))
    if any_near:
        handles.append(Line2D([], [], marker="o", linestyle="", markersize=9, color="white",
                              markeredgecolor=_NEAR_CONSTANT_EDGE, markeredgewidth=1.6,
                              label="orange edge: near-constant runs included"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), fontsize=8, frameon=False)
    title = (f"Accuracy vs {metric}; circle area ∝ model size after pruning (1 − PR.); "
             f"ours: {_seeds_phrase(counts)}")
    if any(not spec_of(m).paper for m in present):
        title += f"\n{NOT_IN_PAPER}"
    if any_degenerate:
        title += ("\n⚠ hatched circles include degenerate runs (constant prediction in a sensitive group): "
                  "their DI/DEO are trivially fair")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


# ----------------------------------------------------------------------------- figure 3


def figure3(results: Sequence[Any], dense: Sequence[Any], *, metric: Metric,
            path: str | Path | None = "figures/figure3.png", title: str | None = None) -> Figure:
    """Figure 3: random-init sub-networks across pruning ratios; trained dense models dashed.

    `results` are the searched sub-networks (SGDP and/or FAPrune with ``init="random"``, any
    targets, any number of seeds; pretrained-init runs work too, with a `title` saying so);
    `dense` the normally trained dense model(s) of each target. Left: accuracy vs ratio, right:
    `metric` vs ratio. Colour = target, line style = method. Each line joins the per-ratio means
    over seeds, with a shaded ±1 std band; a dense reference is a dashed line at its mean with a
    light ±1 std band.
    """
    targets = sorted({r.config.data.target for r in list(results) + list(dense)})
    colors = dict(zip(targets, sns.color_palette("deep", max(len(targets), 1))))
    styles = {"faprune": ("-", "o"), "sgdp": (":", "s")}
    fig = _new_figure(10, 4.4)
    ax_acc, ax_fair = fig.subplots(1, 2)
    counts: list[int] = []
    for target in targets:
        color = colors[target]
        for method in ("sgdp", "faprune"):
            by_ratio: dict[float, list[Any]] = {}
            for r in results:
                if r.method == method and r.config.data.target == target:
                    by_ratio.setdefault(round(float(r.config.ratio), 4), []).append(r)
            if not by_ratio:
                continue
            xs = sorted(by_ratio)
            points = [_Summary(by_ratio[x], metric) for x in xs]
            counts += [p.n for p in points]
            line, marker = styles[method]
            n = max(p.n for p in points)
            label = f"{method_title(method)}, {target}" + (f" ({n} seeds)" if n > 1 else "")
            for ax, means, stds in ((ax_acc, [p.acc for p in points], [p.acc_std for p in points]),
                                    (ax_fair, [p.value for p in points], [p.value_std for p in points])):
                ax.plot(xs, means, line, marker=marker, color=color, label=label)
                _band(ax, xs, means, stds, color)
        refs = [r for r in dense if r.config.data.target == target]
        if refs:
            ref = _Summary(refs, metric)
            counts.append(ref.n)
            label = f"trained dense, {target}" + (f" ({ref.n} seeds)" if ref.n > 1 else "")
            for ax, mean, std in ((ax_acc, ref.acc, ref.acc_std), (ax_fair, ref.value, ref.value_std)):
                ax.axhline(mean, linestyle="--", color=color, alpha=0.8, label=label)
                if not math.isnan(std):
                    ax.axhspan(mean - std, mean + std, color=color, alpha=0.08, linewidth=0)
    ax_acc.set_ylabel("accuracy ↑")
    ax_fair.set_ylabel(f"{metric} {'↓' if metric == 'DEO' else '↑'}")
    for ax in (ax_acc, ax_fair):
        ax.set_xlabel("pruning ratio (fraction of weights removed)")
        _style(ax)
    ax_fair.legend(fontsize=7, loc="best")
    heading = title or f"Sub-networks of randomly initialised networks: accuracy and {metric} vs pruning ratio"
    if counts and max(counts) > 1:
        low, high = min(counts), max(counts)
        heading += f"\n(lines: means over {f'{low}–{high}' if low != high else high} seeds; bands: ±1 std)"
    fig.suptitle(heading, fontsize=11)
    return _save(fig, path)


# ----------------------------------------------------------------------------- single-run figures


#: Discriminator advantage per epoch: H(z) − the discriminator's loss, in nats (> 0: the adversary
#: predicts z from the model's output better than the base rate, i.e. it is informative).
_ADVANTAGE_KEYS = (("train_adv_di", "DI"), ("train_adv_deo_y0", "DEO, y=0"), ("train_adv_deo_y1", "DEO, y=1"))


def training_curves(result: Any, *, path: str | Path | None = "figures/training_curves.png") -> Figure:
    """Per-epoch training losses, validation accuracy, validation DI/DEO and, where recorded, mask
    movement (score masks) and the discriminator advantage (adversarial stages)."""
    history = list(result.history)
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    loss_keys = [k for k in ("train_loss", "train_ce", "train_l_d", "train_l_di", "train_l_deo")
                 if any(k in h for h in history)]
    has_mask = any("mask_changed" in h for h in history)
    advantage = [(k, name) for k, name in _ADVANTAGE_KEYS if any(k in h for h in history)]
    n_panels = 3 + has_mask + bool(advantage)
    if n_panels == 3:
        fig = _new_figure(12, 3.4)
        axes = list(fig.subplots(1, 3))
    elif n_panels == 4:
        fig = _new_figure(9, 6.4)
        axes = list(fig.subplots(2, 2).flat)
    else:
        fig = _new_figure(13, 6.4)
        axes = list(fig.subplots(2, 3).flat)
        axes.pop().set_axis_off()  # five panels on a 2×3 grid

    def series(key: str) -> list[float]:
        return [float(h.get(key, math.nan)) for h in history]

    for key in loss_keys:
        axes[0].plot(epochs, series(key), marker="o", label=key.removeprefix("train_"))
    axes[0].set_title("training losses", fontsize=10)
    axes[1].plot(epochs, series("val_acc"), marker="o", color="black")
    axes[1].set_title("validation accuracy ↑", fontsize=10)
    axes[2].plot(epochs, series("val_di"), marker="o", label="DI ↑")
    axes[2].plot(epochs, series("val_deo"), marker="s", label="DEO ↓")
    axes[2].set_title("validation fairness", fontsize=10)
    if has_mask:
        axes[3].plot(epochs, series("mask_changed"), marker="o", color="purple")
        axes[3].set_title("share of initially kept weights\nno longer kept", fontsize=10)
    if advantage:
        ax = axes[-1]
        for key, name in advantage:
            ax.plot(epochs, series(key), marker="o", label=name)
        ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title("discriminator advantage (nats)\n> 0: the adversary is informative", fontsize=10)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _style(ax)
    if loss_keys:
        axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.suptitle(f"{method_title(result.method)}: training history", fontsize=11)
    return _save(fig, path)


_RATE_KEYS = (("selection_rate", "selection rate"), ("tpr", "TPR"), ("fpr", "FPR"), ("accuracy", "accuracy"))


def group_rates_figure(results: Any, *, path: str | Path | None = "figures/group_rates.png") -> Figure:
    """Per-group selection rate, TPR, FPR and accuracy of one run or a list of runs (one panel each).

    One bar per sensitive group (all k of them, labelled by the run's ``group_names`` when it recorded
    them, see `fapkit.presentation.run_views.result_group_labels`). DI is the ratio of the smallest
    to the largest selection-rate bar; DEO the sum of the TPR and FPR gaps (max − min).
    """
    from .run_views import result_group_labels

    runs = list(results) if isinstance(results, (list, tuple)) else [results]
    k = max(len(r.metrics["groups"]) for r in runs)
    fig = _new_figure(max(4.2, 1.2 + 0.75 * k) * len(runs), 3.6)
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    palette = sns.color_palette("muted", k)
    for ax, r in zip(axes, runs):
        groups = {int(key): v for key, v in r.metrics["groups"].items()}
        labels = result_group_labels(r)
        width = 0.76 / len(groups)
        for g in sorted(groups):
            values = [float(groups[g][key]) for key, _ in _RATE_KEYS]
            xs = [i + (g - (len(groups) - 1) / 2) * width for i in range(len(_RATE_KEYS))]
            ax.bar(xs, values, width=width, color=palette[g], label=f"{labels[g]} (n={int(groups[g]['count'])})")
        ax.set_xticks(range(len(_RATE_KEYS)), [name for _, name in _RATE_KEYS], fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{method_title(r.method)}\nDI {r.di:.3f} · DEO {r.deo:.3f} · acc {r.acc:.3f}",
                     fontsize=9)
        ax.legend(fontsize=7 if len(groups) <= 4 else 6, loc="upper right", ncol=1 if len(groups) <= 4 else 2)
        _style(ax)
    return _save(fig, path)


def layer_sparsity_figure(result: Any, *, path: str | Path | None = "figures/layer_sparsity.png") -> Figure:
    """Fraction of weights removed in each prunable layer, from `RunResult.layers` (`fapkit.masking.LayerRecord`)."""
    rows = result.layers
    if not rows:
        raise ValueError(f"{result.method} has no per-layer mask report (dense methods prune nothing)")
    names = [str(row["name"]) for row in rows]
    fracs = [float(row["ratio"]) for row in rows]
    sizes = [float(row["n"]) for row in rows]
    fig = _new_figure(10, 0.22 * len(rows) + 1.6)
    axes = fig.subplots(1, 2, squeeze=False, sharey=True)[0]
    ax = axes[0]
    ax.barh(range(len(rows)), fracs, color=method_color(result.method))
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()  # first layer on top, as in the network
    ax.axvline(float(result.config.ratio), linestyle="--", color="black", linewidth=1, label="requested ratio")
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of the layer's weights removed")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{method_title(result.method)}: per-layer sparsity "
                 f"(achieved {float(result.ratio):.3f})", fontsize=10)
    _style(ax)
    # where the remaining weights are: the deep, wide layers hold most of them
    kept = [n * (1.0 - f) for n, f in zip(sizes, fracs)]
    axes[1].barh(range(len(rows)), sizes, color="lightgrey", label="weights")
    axes[1].barh(range(len(rows)), kept, color=method_color(result.method), label="kept")
    axes[1].set_xscale("log")
    axes[1].xaxis.set_minor_formatter(NullFormatter())
    axes[1].set_xlabel("number of weights (log scale)")
    axes[1].legend(fontsize=7, loc="lower right")
    _style(axes[1])
    return _save(fig, path)


def metrics_bars(result: Any, *, path: str | Path | None = None, reference: Any | None = None) -> Figure:
    """Accuracy, DI and DEO of one run as bars (beside a reference run, e.g. the dense model)."""
    runs = [reference, result] if reference is not None else [result]
    fig = _new_figure(4.8, 3.2)
    ax = fig.subplots()
    width = 0.8 / len(runs)
    for i, r in enumerate(runs):
        xs = [k + (i - (len(runs) - 1) / 2) * width for k in range(3)]
        label = f"{method_title(r.method)} (PR. {float(r.ratio):.2f})"
        ax.bar(xs, [float(r.acc), float(r.di), float(r.deo)], width=width,
               color=method_color(r.method), alpha=0.6 if r is reference else 1.0, label=label)
    ax.set_xticks(range(3), ["accuracy ↑", "DI ↑", "DEO ↓"])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    _style(ax)
    return _save(fig, path)



def sample_grid(dataset: Any, *, target: str, sensitive: Any, per_cell: int = 8, seed: int = 0,
                path: str | Path | None = "figures/samples.png") -> Figure:
    """Example images for each (sensitive group, target label) cell: 2k rows of `per_cell` images for k groups.

    `dataset` has ``images`` (uint8, N×3×H×W), ``y`` and ``z`` tensors (e.g. `fapkit.data.load`);
    its ``group_names``, when it has them, label the rows, and `sensitive` (a list/tuple for an
    intersection) otherwise. The row titles give each cell's size, so the correlation between
    target and group is visible.
    """
    import torch

    from .run_views import dataset_group_labels

    gen = torch.Generator().manual_seed(seed)
    y, z = dataset.y.reshape(-1), dataset.z.reshape(-1)
    labels = dataset_group_labels(dataset, sensitive)
    cells = [(g, label) for g in range(len(labels)) for label in (0, 1)]
    fig = _new_figure(1.1 * per_cell + 1.6, 1.1 * len(cells) + 0.5)
    axes = fig.subplots(len(cells), per_cell, squeeze=False)
    for row, (g, label) in enumerate(cells):
        idx = torch.nonzero((z == g) & (y == label)).reshape(-1)
        pick = idx[torch.randperm(len(idx), generator=gen)[:per_cell]]
        for col in range(per_cell):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(pick):
                ax.imshow(dataset.images[int(pick[col])].permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[row][0].set_ylabel(f"{labels[g].replace('|', chr(10))}\n{target}={label}\n(n={len(idx)})", fontsize=8,
                                rotation=0, ha="right", va="center")
    shown = sensitive if isinstance(sensitive, str) else "|".join(map(str, sensitive))
    fig.suptitle(f"Samples per cell: sensitive {shown} × target {target}", fontsize=11)
    return _save(fig, path)


# ----------------------------------------------------------------------------- trade-off frontier


def frontier_figure(results: Sequence[Any], *, metric: Metric, dense: str = "normal",
                    path: str | Path | None = "figures/frontier.png") -> Figure:
    """Accuracy against `metric`: per-seed points (faint), means ± std, each method's front joined by a line.

    (`fapkit.frontier`). Knob values label the mean points; dotted vertical lines mark the dense model's mean test
    accuracy minus 1 and 3 points (the tolerances of `fapkit.frontier.matched_accuracy`).
    """
    df = frontier_frame(results, metric=metric)
    fig = _new_figure(7.0, 5.0)
    ax = fig.subplots()
    m = metric.lower()
    for method, part in df.groupby("method", sort=False):
        color = method_color(method)
        runs = [r for r in results if r.method == method]
        ax.scatter([float(r.acc) for r in runs], [float(r.metrics[m]) for r in runs], s=12, color=color, alpha=0.3,
                   linewidth=0)
        ax.errorbar(part["acc"], part[metric], xerr=part["acc std"].fillna(0.0), yerr=part[f"{metric} std"].fillna(0.0),
                    fmt="o", color=color, ecolor=color, elinewidth=1, capsize=2, markeredgecolor="black",
                    markersize=7, label=row_title(method))
        front = part[part["pareto"]].sort_values("acc")
        if len(front) > 1:
            ax.plot(front["acc"], front[metric], color=color, linewidth=1.5)
        for _, row in part.iterrows():
            if not math.isnan(row["value"]):
                symbol = "λ" if row["knob"] == "lam" else "ε" if row["knob"] == "epsilon" else row["knob"]
                ax.annotate(f"{symbol}={row['value']:g}", (row["acc"], row[metric]), textcoords="offset points",
                            xytext=(5, 4), fontsize=7, color=color)
    dense_acc = df.loc[df["method"] == dense, "acc"]
    if len(dense_acc):
        for tol in TOLERANCES:
            ax.axvline(float(dense_acc.iloc[0]) - tol, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("accuracy ↑")
    ax.set_ylabel(f"{metric} {'↓' if metric == 'DEO' else '↑'}")
    if metric == "DI":
        ax.invert_yaxis()  # bottom right stays accurate and fair
    seeds = sorted({int(s) for s in df["seeds"]}) if len(df) else [0]
    ax.set_title(f"Trade-off frontier: accuracy vs {metric}; means ± std over {seeds[-1]} seeds, faint: single "
                 f"seeds;\nlines: each method's Pareto front; dotted: dense accuracy − 1 and − 3 points", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="best")
    _style(ax)
    return _save(fig, path)
