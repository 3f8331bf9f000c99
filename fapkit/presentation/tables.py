"""Our results beside the paper's: the joined tables of the notebook series (tables 2 to 6).

Every table builder takes a list of `RunResult`s (anything with the same attributes works: tests
pass fakes) and returns a DataFrame with one row per method/ratio/architecture and columns

    PR. | achieved PR. | acc | acc std | DEO | DEO std | seeds | degenerate | paper PR. |
    paper acc (CelebA) | paper DEO (CelebA)

(DI instead of DEO for the DI tables). Our side is the mean and sample standard deviation over
the seeds run for that row (`fapkit.stats`), ``seeds`` their number and ``degenerate`` how many
of them are degenerate (a constant prediction inside a sensitive group, whose DI/DEO are
trivially "fair"; see `fapkit.fairness.metrics.is_degenerate`). Rows are the union of what we ran and
what the paper reports: a row the paper has and we did not run shows blanks on our side, and a
row where our method does worse than a baseline is never dropped. ``df.attrs["note"]`` says
which data and seeds each side comes from, because our default benchmark is the embedded
SynthFaces, not CelebA/LFW, so numbers are compared by direction, not by value.
`results_frame` is the raw material: one row per run, nothing averaged.

Accuracy and the pruning ratio are fractions (0.8 = 80 % of prunable weights removed). The
views of single runs are in `fapkit.presentation.run_views`, the paired FAPrune-vs-baseline
verdicts in `fapkit.presentation.direction`; `fapkit.presentation.display` prints and saves
every table.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Iterable, Sequence

import pandas as pd

from .. import paper, stats
from ..registry import NOT_IN_PAPER, method_names, method_title, paper_methods, row_title, spec_of
from ._common import (
    ARCH_TITLES,
    Metric,
    by_seed,
    describe_ours,
    metric_key,
    nominal_ratio,
    seed_list,
    single_target,
)

__all__ = ["results_frame", "baseline_table", "fairgrape_table", "method_table", "accuracy_change_table", "ratio_table",
           "arch_table", "random_init_table"]


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
            "near-constant": bool(getattr(r, "near_constant", False)),
            "uninformed": bool(getattr(r, "uninformed", False)),
            "seconds": float(getattr(r, "seconds", 0.0) or 0.0),
        })
    return pd.DataFrame(rows)


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
    """Join our results and a paper panel on a row key; keep the union of rows (plus `required`) in `order`.

    Our runs of one row key are summarised over their seeds (mean, sample std, number of seeds,
    number of degenerate runs). ``df.attrs["seeds"]`` keeps each row's seeds for the note.
    """
    ours = by_seed(results, key_of_result, label)
    theirs = {key_of_paper(row): row for row in panel.rows} if panel is not None else {}
    dataset = panel.dataset if panel is not None else "no panel"
    m = metric_key(metric)
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
            "near-constant": sum(bool(getattr(r, "near_constant", False)) for r in runs),
            "uninformed": sum(bool(getattr(r, "uninformed", False)) for r in runs),
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
    seeds = seed_list(s for row in seeds_of_row.values() for s in row)
    if len(counts) == 1:
        n = counts[0]
        text = (f"Our columns: mean ± std over {n} seeds ({seeds}); sample std (ddof=1)." if n > 1 else
                f"Our columns: one seed per row ({seeds}), so no std.")
    else:
        text = (f"Our columns: mean ± std over {counts[0]}–{counts[-1]} seeds per row ({seeds}); rows differ "
                "in their number of seeds (the seeds column); a row with one seed has no std.")
    undefined = int(df.attrs.get("undefined", 0))
    if undefined:
        text += (f" {metric} is undefined in {undefined} run(s) (a model predicts no positives, or the test split "
                 "has no samples in some (y, z) cell: the run's record says which), left out of the mean.")
    flagged = df[df["degenerate"] > 0]
    if len(flagged):
        parts = ", ".join(f"{row} ({int(n)} of {int(k)})" for row, n, k in
                          zip(flagged.index, flagged["degenerate"], flagged["seeds"]))
        text += (f" ⚠ Degenerate runs in {parts}: a degenerate run predicts (almost) one class inside a sensitive "
                 "group, so its DI/DEO are trivially fair and must not be read as fairness.")
    near = df[df["near-constant"] > 0] if "near-constant" in df else df.iloc[:0]
    if len(near):
        parts = ", ".join(f"{row} ({int(n)} of {int(k)})" for row, n, k in
                          zip(near.index, near["near-constant"], near["seeds"]))
        text += (f" ⚠ Near-constant runs in {parts}: some group's selection rate is within 0.05 of 0 or 1 "
                 "(but not within 0.01), so much of its DI/DEO comes from predicting one class there.")
    return text


def _finish(df: pd.DataFrame, title: str, results: Sequence[Any], panel: paper.PaperPanel | None,
            table: str, target: str | None, metric: Metric) -> pd.DataFrame:
    df.attrs["title"] = title
    df.attrs["note"] = " ".join(part for part in [
        describe_ours(results), _describe_seeds(df, metric), _describe_paper(panel, table, target, metric),
        "Accuracy and PR. (fraction of prunable weights removed) are fractions.",
        "DI: higher is fairer; DEO: lower is fairer."] if part)
    return df


def baseline_table(results: Sequence[Any], *, metric: Metric, target: str | None = None) -> pd.DataFrame:
    """Tables 2 (DEO) and 3 (DI): the eight methods in the paper's order, ours beside the paper's.

    `results` holds at most one run per method and seed for `target` (other targets are ignored);
    a method's runs over several seeds become one row (mean, std, number of seeds). All eight rows
    appear even where a method was not run, so a row where FAPrune loses can never go missing.
    """
    target = single_target(results, target)
    chosen = [r for r in results if r.config.data.target == target]
    table = "2" if metric == "DEO" else "3"
    panel = paper.panel(table, target=target, metric=metric)
    rank = {m: i for i, m in enumerate(method_names())}
    df = _beside_paper(chosen, panel, metric, lambda r: r.method, lambda p: p.method,
                       lambda k: row_title(str(k)), lambda k: (rank.get(str(k), len(rank)), str(k)),
                       required=paper_methods())  # all eight rows, even for a target the paper lacks
    df = _finish(df, f"Table {table} ({metric}), target {target}", chosen, panel, table, target, metric)
    if any(not spec_of(r.method).paper for r in chosen):
        df.attrs["note"] += f" {NOT_IN_PAPER}."
    return df


#: The rows of the paper's table 1 (FAPrune against FairGRAPE), in its order.
TABLE1_METHODS = ("normal", "fairgrape", "faprune")


def fairgrape_table(results: Sequence[Any], *, metric: Metric, target: str | None = None) -> pd.DataFrame:
    """Table 1: Normal training, FairGRAPE and FAPrune at the run's ratio, ours beside the paper's.

    DEO comes from the runs at α = 0 and DI from those at α = 1, as in tables 2–3 (pass each table
    its runs); every row appears, run or not. The paired FAPrune-vs-FairGRAPE interval over seeds is
    `fapkit.presentation.direction.direction_summary` with ``baselines=["fairgrape"]``.
    """
    target = single_target(results, target)
    chosen = [r for r in results if r.config.data.target == target and r.method in TABLE1_METHODS]
    panel = paper.panel("1", metric=metric)
    df = _beside_paper(chosen, panel, metric, lambda r: r.method, lambda p: p.method,
                       lambda k: method_title(str(k)), lambda k: TABLE1_METHODS.index(str(k)),
                       required=TABLE1_METHODS)
    return _finish(df, f"Table 1 ({metric}): FAPrune vs FairGRAPE, target {target}", chosen, panel, "1", target, metric)


def method_table(results: Sequence[Any], *, metric: Metric, title: str) -> pd.DataFrame:
    """One row per method run (mean ± std over seeds), for an experiment the paper does not have.

    The columns of tables 2–3 without the paper's side, e.g. a sensitive attribute with k groups.
    """
    rank = {m: i for i, m in enumerate(method_names())}
    df = _beside_paper(results, None, metric, lambda r: r.method, lambda p: p.method, lambda k: row_title(str(k)),
                       lambda k: (rank.get(str(k), len(rank)), str(k)))
    df = df.drop(columns=[c for c in df.columns if c.startswith("paper")])
    df.attrs["title"] = title
    df.attrs["note"] = " ".join(part for part in [
        describe_ours(results), _describe_seeds(df, metric), "The paper has no such experiment.",
        "DI: higher is fairer; DEO: lower is fairer."] if part)
    return df


def accuracy_change_table(results: Sequence[Any]) -> pd.DataFrame:
    """Each pruned method's group accuracies against its dense parent, mean ± std over seeds (test split).

    Columns: ``Δacc g`` per group (pruned − dense accuracy of group g), ``Δacc std`` (the spread of
    those changes over groups, FairGRAPE's disparity measure) and ``max excess gap`` (max_g ψ_g,
    the largest extra loss of a group beyond the model's; CEAG bounds it by ε), with their stds.
    Dense methods have no parent to compare with and are left out.
    """
    rank = {m: i for i, m in enumerate(method_names())}
    chosen = [r for r in results if "acc_change_std" in r.metrics]
    rows, index = [], []
    for method in sorted({r.method for r in chosen}, key=lambda m: (rank.get(m, len(rank)), m)):
        runs = [r for r in chosen if r.method == method]
        row: dict[str, Any] = {"seeds": len(runs)}
        groups = sorted({int(g) for r in runs for g in r.metrics["group_acc_change"]})
        for g in groups:
            values = [float(r.metrics["group_acc_change"].get(g, r.metrics["group_acc_change"].get(str(g), math.nan)))
                      for r in runs]
            row[f"Δacc {g}"], row[f"Δacc {g} std"], _ = stats.mean_std(values)
        for key, name in (("acc_change_std", "Δacc std"), ("max_excess_gap", "max excess gap")):
            row[name], row[f"{name} std"], _ = stats.mean_std(float(r.metrics[key]) for r in runs)
        rows.append(row)
        index.append(row_title(method))
    df = pd.DataFrame(rows, index=pd.Index(index, name="row"))
    df.attrs["title"] = "Group accuracy against the dense parent (test split)"
    df.attrs["note"] = (describe_ours(chosen) + " Δacc g = pruned − dense accuracy of group g; Δacc std = their "
                        "standard deviation over groups (FairGRAPE's measure, lower: groups lose alike); max excess "
                        "gap = max over groups of (dense − pruned accuracy of the group) − (dense − pruned accuracy), "
                        "CEAG's constraint (≤ ε when met). Mean ± std over seeds.")
    if any(not spec_of(m).paper for m in {r.method for r in chosen}):
        df.attrs["note"] += f" {NOT_IN_PAPER}."
    return df


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
    target = single_target(chosen, None) if chosen else "Attractive"
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
    target = single_target(chosen, None) if chosen else "Attractive"
    return _finish(df, f"Table 5 ({metric}): architectures, dense vs pruned, target {target}", chosen, panel, "5",
                   target, metric)


def random_init_table(results: Sequence[Any], *, metric: Metric, target: str | None = None) -> pd.DataFrame:
    """Table 6: SGDP and FAPrune masks over *random* weights, beside the trained dense models."""
    target = single_target(results, target)
    chosen = [r for r in results if r.config.data.target == target]
    panel = paper.panel("6", target=target, metric=metric)
    rank = {"normal": 0, "adv_debias": 1, "sgdp": 2, "faprune": 3}

    def label(key: Hashable) -> str:
        method, ratio = key  # type: ignore[misc]
        title = method_title(method)
        if spec_of(method).dense:
            return f"{title} (trained, dense)"
        return f"{title} {_pct(ratio)} (random init)"

    df = _beside_paper(chosen, panel, metric, lambda r: (r.method, round(nominal_ratio(r), 4)),
                       lambda p: (p.method, round(p.ratio, 4)), label,
                       lambda k: (k[1] > 0, k[1], rank.get(k[0], 9)))
    return _finish(df, f"Table 6 ({metric}): random-init sub-network search, target {target}", chosen, panel, "6",
                   target, metric)
