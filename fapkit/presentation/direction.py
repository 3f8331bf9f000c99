"""Direction of the comparisons: is FAPrune fairer than each baseline, paired over seeds?

`direction_summary` pairs FAPrune's run of each seed with a baseline's run of the same seed
(same dense model and data order) and calls a direction only when the Student-t 95 % interval
of the paired difference excludes 0 (`fapkit.stats.verdict`); `direction_table` does so for
every (target, metric) group of runs in one table, and `direction_text` says it in sentences,
beside the direction of the paper's tables 2 (DEO) and 3 (DI).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd

from .. import paper, stats
from ..registry import NOT_IN_PAPER, method_title, pruning_baselines, row_title, spec_of
from ._common import Metric, by_seed, metric_key, missing, seed_list, single_target

__all__ = ["direction_summary", "direction_table", "direction_text"]


_DIRECTION_COLUMNS = ["target", "metric", "baseline", "seeds", "ours", "theirs", "delta", "low", "high", "ratio",
                      "verdict", "acc_delta", "acc_low", "acc_high", "degenerate", "near_constant", "uninformed",
                      "paper_fairer", "note"]
_INTERVAL_NOTE = ("paired over seeds, Student-t 95 % interval; a direction is called only when the interval "
                  "excludes 0")


def direction_summary(results: Sequence[Any], *, metric: Metric, target: str | None = None,
                      baselines: Sequence[str] | None = None, paper_table: str | None = None) -> pd.DataFrame:
    """Does FAPrune make the pruned model fairer than each baseline (lower DEO / higher DI)?

    ``baselines`` defaults to SGDP, LMW and every other pruning method among ``results``
    (`fapkit.registry.pruning_baselines`: FairGRAPE, CEAG, marked †, whose ``paper_fairer`` is None).

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
    * ``degenerate``: how many of the paired runs (both sides) are degenerate; ``near_constant``: how
      many are near-constant (`fapkit.fairness.metrics.is_near_constant`); ``uninformed``: how many played
      against an uninformed adversary (`fapkit.cache.RunResult.uninformed`);
    * ``paper_fairer``: whether the paper's `paper_table` has FAPrune fairer than the baseline (None
      when it does not report both); by default table 2 for DEO and 3 for DI ("1" for table 1).
    """
    baselines = tuple(baselines) if baselines is not None else _default_baselines(results)
    target = single_target(results, target)
    chosen = [r for r in results if r.config.data.target == target]
    by_method = by_seed(chosen, lambda r: r.method, lambda k: method_title(str(k)))
    table = paper_table or ("2" if metric == "DEO" else "3")
    panel = paper.panel(table, target=target, metric=metric)
    metric_key(metric)  # an unknown metric is refused before any pairing
    rows = []
    for base in baselines:
        title = row_title(base)
        ours, other = by_method.get("faprune", {}), by_method.get(base, {})
        row: dict[str, Any] = {"target": target, "metric": metric, "baseline": title, "seeds": 0,
                               "verdict": None, "degenerate": 0, "near_constant": 0, "uninformed": 0,
                               "paper_fairer": None}
        row.update({k: math.nan for k in ("ours", "theirs", "delta", "low", "high", "ratio",
                                          "acc_delta", "acc_low", "acc_high")})
        notes: list[str] = []
        if not ours or not other:
            notes.append(f"{'FAPrune' if not ours else title} not run")
        else:
            used = _pairable_seeds(ours, other, title, metric, notes)
            if used:
                row.update(_paired(ours, other, used, metric))
        row["note"] = "; ".join(notes)
        row["paper_fairer"] = _paper_fairer(panel, base, metric)
        rows.append(row)
    df = pd.DataFrame(rows, columns=_DIRECTION_COLUMNS)
    df.attrs["title"] = f"Direction: FAPrune vs {', '.join(method_title(b) for b in baselines)} ({metric})"
    df.attrs["note"] = (f"delta = ours − baseline, {_INTERVAL_NOTE}; fairer = lower DEO or higher DI; "
                        "acc_delta = our accuracy − baseline's (same pairing)." + _marked(baselines))
    return df


def _pairable_seeds(ours: Mapping[Any, Any], other: Mapping[Any, Any], title: str, metric: Metric,
                    notes: list[str]) -> list[Any]:
    """The seeds both sides ran with the metric defined on both; what was left out, and why, added to `notes`."""
    m = metric_key(metric)
    unpaired = [f"{seed_list(only)} only for {who}" for only, who in
                ((sorted(set(ours) - set(other)), "FAPrune"), (sorted(set(other) - set(ours)), title)) if only]
    if unpaired:
        notes.append(", ".join(unpaired) + ": not paired")
    common = sorted(set(ours) & set(other))
    undefined = [s for s in common if math.isnan(float(ours[s].metrics[m])) or math.isnan(float(other[s].metrics[m]))]
    if undefined:
        notes.append(f"{metric} undefined in {seed_list(undefined)} (a model predicts no positives)")
    used = [s for s in common if s not in undefined]
    if not common:
        notes.append("no seed run by both")
    elif len(used) == 1:
        notes.append("1 seed: no interval")
    return used


def _flagged(ours: Mapping[Any, Any], other: Mapping[Any, Any], used: Sequence[Any], flag: str) -> int:
    """How many of the paired runs, both sides, carry `flag` (degenerate, near_constant, uninformed)."""
    return sum(int(bool(getattr(ours[s], flag, False))) + int(bool(getattr(other[s], flag, False))) for s in used)


def _paired(ours: Mapping[Any, Any], other: Mapping[Any, Any], used: Sequence[Any], metric: Metric) -> dict[str, Any]:
    """The row's numbers over the paired seeds: means, the paired interval and verdict, accuracy, the flag counts."""
    m = metric_key(metric)
    a, b = [float(ours[s].metrics[m]) for s in used], [float(other[s].metrics[m]) for s in used]
    diff = stats.paired_interval(a, b)
    acc = stats.paired_interval([float(ours[s].acc) for s in used], [float(other[s].acc) for s in used])
    mean_a, mean_b = stats.mean_std(a)[0], stats.mean_std(b)[0]
    return dict(seeds=len(used), ours=mean_a, theirs=mean_b, delta=diff.mean, low=diff.low, high=diff.high,
                ratio=mean_a / mean_b if mean_b != 0 else math.nan,
                verdict=stats.verdict(diff, lower_is_fairer=metric == "DEO"),
                acc_delta=acc.mean, acc_low=acc.low, acc_high=acc.high,
                **{flag: _flagged(ours, other, used, flag) for flag in ("degenerate", "near_constant", "uninformed")})


def _paper_fairer(panel: Any, base: str, metric: Metric) -> bool | None:
    """Whether the paper's panel has FAPrune fairer than `base` (None when it does not report both)."""
    if panel is None:
        return None
    po, pb = panel.find("faprune"), panel.find(base)
    if po is None or pb is None:
        return None
    return bool(po.value < pb.value if metric == "DEO" else po.value > pb.value)


def direction_table(groups: Mapping[tuple[str, str], Sequence[Any]],
                    baselines: Sequence[str] | None = None, paper_table: str | None = None) -> pd.DataFrame:
    """`direction_summary` for every (target, metric) group of runs, in one table (baselines, paper table as there)."""
    if baselines is None:
        baselines = _default_baselines([r for runs in groups.values() for r in runs])
    parts = [direction_summary(runs, metric=metric, target=target, baselines=baselines,  # type: ignore[arg-type]
                               paper_table=paper_table)
             for (target, metric), runs in groups.items()]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_DIRECTION_COLUMNS)
    df.attrs = {}  # concat may carry one part's attrs; this table has its own
    df.attrs["title"] = f"Direction: FAPrune vs {', '.join(method_title(b) for b in baselines)}"
    df.attrs["note"] = (f"delta = ours − baseline over the seeds both ran ({_INTERVAL_NOTE}); low/high = the "
                        "interval; verdict: fairer = lower DEO or higher DI; acc_delta/acc_low/acc_high = the same "
                        "for accuracy; degenerate = degenerate runs among the paired ones; paper_fairer = the same "
                        f"comparison in the paper's {_paper_tables(paper_table)}." + _marked(baselines))
    return df


def _default_baselines(results: Sequence[Any]) -> tuple[str, ...]:
    """SGDP and LMW (the paper's), then the other pruning baselines that were run."""
    ran = {r.method for r in results}
    return tuple(m for m in pruning_baselines() if m in ("sgdp", "lmw") or m in ran)


def _paper_tables(paper_table: str | None) -> str:
    """Which paper table ``paper_fairer`` reads, in words."""
    return "table 2 (DEO) or 3 (DI)" if paper_table is None else f"table {paper_table}"


def _marked(methods: Sequence[str]) -> str:
    """The note's explanation of "†" when some of `methods` are not in the paper's tables."""
    return f" {NOT_IN_PAPER}." if any(not spec_of(m).paper for m in methods) else ""

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
        if missing(row["verdict"]):
            lines.append(f"- {head}: not compared ({row['note']}).")
            continue
        counts[row["verdict"]] += 1
        n, base = int(row["seeds"]), row["baseline"]
        interval = (f" [95 % CI {_signed(row['low'], 4)}, {_signed(row['high'], 4)}]"
                    if not missing(row["low"]) else " (no interval from 1 seed)")
        ratio = f" (FAPrune/{base} = {row['ratio']:.2f})" if not missing(row["ratio"]) else ""
        acc = f"; accuracy {_signed(row['acc_delta'] * 100, 2)} points"
        if not missing(row["acc_low"]):
            acc += f" [{_signed(row['acc_low'] * 100, 1)}, {_signed(row['acc_high'] * 100, 1)}]"
        extra = ""
        if int(row["degenerate"]):
            extra += (f"; ⚠ {int(row['degenerate'])} of the {2 * n} paired runs are degenerate "
                      "(DI/DEO trivially fair)")
        if int(row.get("near_constant", 0) or 0):
            extra += (f"; ⚠ {int(row['near_constant'])} of the {2 * n} paired runs are near-constant "
                      "(a group's selection rate within 0.05 of 0 or 1)")
        if int(row.get("uninformed", 0) or 0):
            extra += (f"; ⚠ {int(row['uninformed'])} of the {2 * n} paired runs played against an uninformed "
                      "adversary (its warm-up ended below the stated share of what the predictions carry about z)")
        note = "; ".join(part for part in str(row["note"] or "").split("; ") if part and part != "1 seed: no interval")
        if note:
            extra += f" ({note})"
        if not missing(row["paper_fairer"]):
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
