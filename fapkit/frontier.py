"""Trade-off frontiers: is a method fairer *at the same accuracy*? (DESIGN.md §10, "comparing at matched accuracy")

A fairness method has a knob (λ for FAPrune and Adversarial Debiasing, ε for CEAG; the registry's
``MethodSpec.knob``): one setting of each is a choice, their curves are not. `frontier_grid` sweeps
each knob over its preset's values (`fapkit.plans`; methods without one give a single point), `frontier_frame` summarises
every (method, knob value) over seeds and marks each method's `pareto_front` (accuracy ↑, unfairness ↓),
`fapkit.presentation.figures.frontier_figure` draws it, and `matched_accuracy` gives the number a reader compares: each method's
best DEO (or DI) among its settings whose accuracy is within 1 and 3 points of the dense model's.

The matched-accuracy choice is made on the validation split, never the test split: a setting
qualifies when its mean validation accuracy over seeds is at least the dense model's mean validation
accuracy minus the tolerance, and the qualifying setting with the fairest mean validation metric is
chosen; the table then reports that setting's *test* accuracy and metric, with a Student-t 95 %
interval over seeds. The Pareto marks of `frontier_frame` and the figure are on the test means and
describe the curves; they choose nothing.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from . import stats
from .plans import plan_of
from .registry import method_names, pruning_baselines, row_title, spec_of
from .settings import setting_names

Metric = Literal["DI", "DEO"]

#: Accuracy tolerances of `matched_accuracy`: within 1 and 3 points of the dense model.
TOLERANCES = (0.01, 0.03)


def knob_values(method: str, preset: str, values: Mapping[str, Sequence[float]] | None = None,
                ) -> tuple[float | None, ...]:
    """The values `method`'s knob takes on a frontier: `values` (knob name -> values), by default its
    preset's (`fapkit.plans`); ``(None,)`` for a method without a knob. λ = 1 and ε = 0.01, the
    tables 2–3 defaults, are among the presets' values, so those points come from the cache."""
    knob = spec_of(method).knob
    if knob is None:
        return (None,)
    values = plan_of(preset).knob_values if values is None else values
    if knob not in values:
        raise ValueError(f"no frontier values for knob {knob!r} on preset {preset!r}; known: {sorted(values)}")
    return tuple(values[knob])


def default_methods() -> tuple[str, ...]:
    """Normal training, every method with a knob, and the pruning baselines (`fapkit.registry.pruning_baselines`)."""
    wanted = {"normal", *pruning_baselines(), *(m for m in method_names() if spec_of(m).knob is not None)}
    return tuple(m for m in method_names() if m in wanted)


def frontier_grid(*, preset: str, seeds: Sequence[int], methods: Sequence[str] | None = None,
                  values: Mapping[str, Sequence[float]] | None = None, **settings: Any) -> list[dict[str, Any]]:
    """`fapkit.sweep` specs: every method × its knob values (`knob_values`) × seed, on top of `settings`.

    ``settings`` are `fapkit.run` settings every spec shares (target, alpha, ratio, ...); the knob
    itself may not be among them.
    """
    methods = tuple(methods) if methods is not None else default_methods()
    specs = []
    for method in methods:
        knob = spec_of(method).knob
        if knob is not None and knob in settings:
            raise ValueError(f"{knob!r} is {method!r}'s frontier knob: the frontier sets it, do not pass it")
        for value in knob_values(method, preset, values):
            for seed in seeds:
                spec = {"method": method, "preset": preset, "seed": seed, **settings}
                if knob is not None:
                    spec[knob] = value
                specs.append(spec)
    return specs


def knob_of(result: Any) -> float | None:
    """The value of the result's method's knob in its config, or None for a method without a knob."""
    knob = spec_of(result.method).knob
    if knob is None:
        return None
    section = setting_names()[knob]
    holder = result.config if section == "run" else getattr(result.config, section)
    return float(getattr(holder, knob))


def _fairness(value: float, metric: Metric) -> float:
    """An unfairness to minimise: DEO itself, or −DI (higher DI is fairer)."""
    return value if metric == "DEO" else -value


def pareto_front(acc: Sequence[float], unfairness: Sequence[float]) -> list[bool]:
    """For each point, whether no other point is at least as accurate and as fair and strictly better in one.

    Higher ``acc`` and lower ``unfairness`` are better (pass −DI for DI). Equal points keep each other
    on the front; a point with a NaN coordinate is never on it and dominates nothing.
    """
    if len(acc) != len(unfairness):
        raise ValueError(f"acc and unfairness differ in length: {len(acc)} and {len(unfairness)}")
    a, u = np.asarray(acc, dtype=float), np.asarray(unfairness, dtype=float)
    finite = np.isfinite(a) & np.isfinite(u)
    front = []
    for i in range(len(a)):
        if not finite[i]:
            front.append(False)
            continue
        dominated = finite & (a >= a[i]) & (u <= u[i]) & ((a > a[i]) | (u < u[i]))
        front.append(not bool(dominated.any()))
    return front


def _groups(results: Iterable[Any]) -> dict[tuple[str, float | None], list[Any]]:
    groups: dict[tuple[str, float | None], list[Any]] = {}
    for r in results:
        groups.setdefault((r.method, knob_of(r)), []).append(r)
    return groups


def frontier_frame(results: Iterable[Any], *, metric: Metric) -> pd.DataFrame:
    """One row per (method, knob value): test and validation means over seeds, and the method's Pareto front.

    Columns: method, title, knob, value (the knob's value; NaN without a knob), seeds, acc, acc std,
    <metric>, <metric> std, val acc, val <metric>, degenerate, near-constant, pareto (on the test
    means, among the method's own settings).
    """
    m = metric.lower()
    rank = {name: i for i, name in enumerate(method_names())}
    rows = []
    for (method, value), runs in sorted(_groups(results).items(),
                                        key=lambda kv: (rank.get(kv[0][0], len(rank)), kv[0][1] or 0.0)):
        acc, acc_std, _ = stats.mean_std(float(r.acc) for r in runs)
        fair, fair_std, _ = stats.mean_std(float(r.metrics[m]) for r in runs)
        rows.append({"method": method, "title": row_title(method), "knob": spec_of(method).knob or "",
                     "value": math.nan if value is None else value, "seeds": len(runs),
                     "acc": acc, "acc std": acc_std, metric: fair, f"{metric} std": fair_std,
                     "val acc": stats.mean_std(float(r.valid_metrics.get("acc", math.nan)) for r in runs)[0],
                     f"val {metric}": stats.mean_std(float(r.valid_metrics.get(m, math.nan)) for r in runs)[0],
                     "degenerate": sum(bool(r.degenerate) for r in runs),
                     "near-constant": sum(bool(getattr(r, "near_constant", False)) for r in runs),
                     "uninformed": sum(bool(getattr(r, "uninformed", False)) for r in runs)})
    df = pd.DataFrame(rows)
    if len(df):
        df["pareto"] = False
        for method, part in df.groupby("method", sort=False):
            marks = pareto_front(part["acc"].tolist(), [_fairness(v, metric) for v in part[metric]])
            df.loc[part.index, "pareto"] = marks
    df.attrs["title"] = f"Trade-off frontier: accuracy against {metric}"
    df.attrs["note"] = (f"Mean ± std over seeds per method and knob value (λ: adversary weight; ε: CEAG's "
                        f"tolerance). pareto: on its method's own accuracy–{metric} front (test means; chooses "
                        "nothing). val columns: the validation split, which `matched_accuracy` chooses on.")
    return df


def matched_accuracy(results: Iterable[Any], *, metric: Metric, dense: str = "normal",
                     tolerances: Sequence[float] = TOLERANCES) -> pd.DataFrame:
    """Each method's fairest setting within each accuracy tolerance of the dense model, chosen on validation.

    For every method but `dense` and every tolerance t: the settings whose mean validation accuracy
    is at least the dense model's mean validation accuracy − t qualify; the one with the fairest mean
    validation metric is chosen (ties: the more accurate). Its test metric and accuracy are reported
    as means with Student-t 95 % intervals over its seeds. A method none of whose settings qualifies
    gets an empty row that says so.
    """
    m = metric.lower()
    results = list(results)
    groups = _groups(results)
    dense_runs = [r for (method, _), runs in groups.items() if method == dense for r in runs]
    if not dense_runs:
        raise ValueError(f"matched_accuracy needs the dense model's runs ({dense!r}) among the results")
    dense_val = stats.mean_std(float(r.valid_metrics["acc"]) for r in dense_runs)[0]
    dense_test = stats.mean_std(float(r.acc) for r in dense_runs)[0]
    rank = {name: i for i, name in enumerate(method_names())}
    methods = sorted({method for method, _ in groups if method != dense}, key=lambda x: rank.get(x, len(rank)))
    rows = []
    for tol in tolerances:
        for method in methods:
            settings = [(value, runs) for (name, value), runs in groups.items() if name == method]
            row: dict[str, Any] = {"within": tol, "method": method, "title": row_title(method),
                                   "knob": spec_of(method).knob or "", "value": math.nan, "settings": len(settings),
                                   "qualifying": 0, "seeds": 0}
            row.update({k: math.nan for k in ("val acc", f"val {metric}", "acc", "acc low", "acc high",
                                              metric, f"{metric} low", f"{metric} high")})
            scored = []
            for value, runs in settings:
                val_acc = stats.mean_std(float(r.valid_metrics["acc"]) for r in runs)[0]
                val_fair = stats.mean_std(float(r.valid_metrics[m]) for r in runs)[0]
                if val_acc >= dense_val - tol and not math.isnan(val_fair):
                    scored.append((_fairness(val_fair, metric), -val_acc, value, runs, val_acc, val_fair))
            row["qualifying"] = len(scored)
            if scored:
                _, _, value, runs, val_acc, val_fair = min(scored, key=lambda s: (s[0], s[1]))
                fair = stats.mean_interval([float(r.metrics[m]) for r in runs])
                acc = stats.mean_interval([float(r.acc) for r in runs])
                row.update({"value": math.nan if value is None else value, "seeds": fair.n, "val acc": val_acc,
                            f"val {metric}": val_fair, "acc": acc.mean, "acc low": acc.low, "acc high": acc.high,
                            metric: fair.mean, f"{metric} low": fair.low, f"{metric} high": fair.high})
            rows.append(row)
    df = pd.DataFrame(rows)
    points = ", ".join(f"{t * 100:g}" for t in tolerances)
    df.attrs["title"] = f"Fairest {metric} at matched accuracy (within {points} points of dense)"
    df.attrs["note"] = (f"Dense ({row_title(dense)}): validation accuracy {dense_val:.4f}, test {dense_test:.4f}. "
                        "A setting qualifies when its mean validation accuracy over seeds is within the tolerance "
                        f"of the dense model's; the qualifying setting with the fairest mean validation {metric} is "
                        f"chosen (never on the test split), and its test accuracy and {metric} are shown with "
                        "Student-t 95 % intervals over seeds (low, high). qualifying = 0: no setting of the method "
                        "is that accurate.")
    return df
