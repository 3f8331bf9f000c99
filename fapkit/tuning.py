"""λ for an accuracy budget: ``fapkit.tune(method, tolerance=0.01, ...)`` (DESIGN.md §12).

A user states how much validation accuracy they will give up, not a λ. `tune` sweeps the method's
knob (``MethodSpec.knob``: λ for FAPrune and Adversarial Debiasing, ε for CEAG) over a geometric
grid (`KNOB_GRIDS`), on the kit's datasets or on a user's ``model=`` with ``train=``/``valid=``/``test=``
loaders alike, and chooses by one rule that reads the validation split only:

* a knob value is *admissible* when its mean validation accuracy over the seeds is at least the
  dense model's (``normal``, the stage every knob value starts from) minus `tolerance`;
* among the admissible values, the one with the fairest mean validation metric (DEO lowest, DI
  highest) is chosen; ties go to the more accurate one;
* when the chosen value lies at the grid's fairer edge (the largest λ, the smallest ε), the grid is
  widened one geometric step beyond it and the rule applied again, at most `widen` times; when no
  value is admissible, it is widened one step the other way (the accuracy side).

The chosen value's test accuracy and metric are then reported with Student-t 95 % intervals over
the seeds, beside the whole frontier (every value searched, validation and test), so a reader sees
what was chosen and what was not. With a Dask `client` (or `scheduler` / `workers`) the runs go to
the cluster: one task per uncached stage on the kit's datasets (`fapkit.sweep`), one per seed for a
user's model and loaders (which must then pickle).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Sequence

import pandas as pd

from . import stats
from .config import default_seeds
from .registry import method_names, spec_of
from .runner import UserModel

Metric = Literal["DI", "DEO"]


@dataclass(frozen=True)
class KnobGrid:
    """A knob's starting grid and how it widens: by `factor` per step, towards `fairer` ("up" or "down")."""

    start: tuple[float, ...]
    factor: float
    fairer: Literal["up", "down"]
    floor: float = 0.0                 # a value the knob cannot go below (ε ≥ 0); 0 itself ends widening down

    def beyond(self, values: Sequence[float], direction: Literal["up", "down"]) -> float | None:
        """The next value past the grid's edge in `direction`, or None where the knob can go no further."""
        if direction == "up":
            return round(max(values) * self.factor, 6)
        low = min(values)
        if low <= self.floor:
            return None
        nxt = round(low / self.factor, 6)
        return nxt if nxt > self.floor else self.floor


#: λ: half-decades around the paper's 1; ε: CEAG's tolerance from 0.05 down to 0 (the tightest).
KNOB_GRIDS: dict[str, KnobGrid] = {
    "lam": KnobGrid(start=(0.3, 1.0, 3.0, 10.0), factor=3.0, fairer="up"),
    "epsilon": KnobGrid(start=(0.05, 0.02, 0.01, 0.0), factor=2.0, fairer="down"),
}


@dataclass
class TuneResult:
    """What `tune` chose and everything it looked at."""

    method: str
    knob: str
    tolerance: float
    metric: Metric
    value: float | None                # the chosen knob value; None when no value was admissible
    dense_val_acc: float               # the dense model's mean validation accuracy, the budget's reference
    frontier: pd.DataFrame             # one row per value searched (validation and test, admissible, chosen)
    runs: dict[float, list[Any]] = field(repr=False, default_factory=dict)  # value -> RunResults over seeds
    dense: list[Any] = field(repr=False, default_factory=list)  # the dense model's RunResults over seeds
    widened: int = 0                   # grid steps added beyond the starting grid

    @property
    def chosen(self) -> list[Any]:
        """The runs of the chosen value over seeds (empty when nothing was admissible)."""
        return self.runs.get(self.value, []) if self.value is not None else []

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the choice and its test numbers with intervals (the frontier row of the chosen value)."""
        out: dict[str, Any] = {"method": self.method, "knob": self.knob, "tolerance": self.tolerance,
                               "metric": self.metric, "value": self.value, "dense_val_acc": self.dense_val_acc,
                               "widened": self.widened, "searched": sorted(self.runs)}
        if self.value is not None:
            row = self.frontier[self.frontier["value"] == self.value].iloc[0]
            out.update({k: _json(row[k]) for k in row.index if k not in ("value", "chosen")})
        return out

    def json_lines(self) -> list[dict[str, Any]]:
        """One dict per frontier point (``"kind": "point"``), then the choice (``"kind": "chosen"``)."""
        points = [{"kind": "point", **{k: _json(v) for k, v in row.items()}}
                  for row in self.frontier.to_dict(orient="records")]
        return [*points, {"kind": "chosen", **self.summary()}]


def _json(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def tune(method: str = "faprune", *, tolerance: float = 0.01, metric: Metric = "DEO",
         values: Sequence[float] | None = None, seeds: Sequence[int] | None = None, widen: int = 2,
         preset: str = "quick", model: UserModel | None = None, train: Iterable | None = None,
         valid: Iterable | None = None, test: Iterable | None = None, client: Any = None,
         scheduler: str | None = None, workers: int | None = None, runs_dir: str = "runs",
         progress: bool = False, **settings: Any) -> TuneResult:
    """The fairest setting of `method`'s knob within `tolerance` of the dense model's validation accuracy.

    `values`: the starting grid (default `KNOB_GRIDS`); `seeds`: the seeds every value runs on
    (default: the preset's main seeds, 3 on quick; the choice reads their validation means);
    `widen`: the most grid steps added beyond the starting grid. `settings` are `fapkit.run`
    settings shared by every run (target, alpha, ratio, ...; not the knob itself).
    """
    knob = spec_of(method).knob
    if knob is None:
        raise ValueError(f"{method!r} has no knob to tune; methods with one: "
                         f"{', '.join(m for m in _knob_methods())}")
    if knob in settings:
        raise ValueError(f"{knob!r} is the knob tune chooses; do not pass it (give values= to set the grid)")
    if "seed" in settings:
        raise ValueError("tune runs every value on several seeds: pass seeds=[...] instead of seed=")
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be an accuracy difference in [0, 1), e.g. 0.01 for one point, "
                         f"got {tolerance!r}")
    if metric not in ("DI", "DEO"):
        raise ValueError(f"metric must be 'DI' or 'DEO', got {metric!r}")
    if isinstance(widen, bool) or not isinstance(widen, int) or widen < 0:
        raise ValueError(f"widen must be an int >= 0 (grid steps beyond the starting grid), got {widen!r}")
    grid = KNOB_GRIDS[knob]
    searched = sorted({float(v) for v in (values if values is not None else grid.start)})
    if not searched:
        raise ValueError("values must hold at least one knob value")
    seeds = list(seeds) if seeds is not None else default_seeds(preset, "main")
    runner = _Runner(method, knob, seeds, preset, model, train, valid, test, client, scheduler, workers,
                     runs_dir, progress, settings)
    runs, dense = runner.run(searched)
    dense_val = stats.mean_std(float(r.valid_metrics["acc"]) for r in dense)[0]
    widened = 0
    while True:
        value = choose(runs, dense_val, tolerance, metric)
        step = _widening(grid, sorted(runs), value)
        if step is None or widened >= widen:
            break
        more, _ = runner.run([step])
        runs.update(more)
        widened += 1
    frontier = _frontier(runs, dense_val, tolerance, metric, value)
    return TuneResult(method, knob, float(tolerance), metric, value, dense_val, frontier, runs, dense, widened)


def _knob_methods() -> list[str]:
    return [m for m in method_names() if spec_of(m).knob is not None]


def _val(runs: Sequence[Any], key: str) -> float:
    return stats.mean_std(float(r.valid_metrics.get(key, math.nan)) for r in runs)[0]


def _unfairness(value: float, metric: Metric) -> float:
    return value if metric == "DEO" else -value


def choose(runs: dict[float, list[Any]], dense_val_acc: float, tolerance: float, metric: Metric) -> float | None:
    """The admissible knob value with the fairest mean validation metric (ties: the more accurate); None if none.

    Reads `valid_metrics` only: the test split never takes part in the choice.
    """
    m = metric.lower()
    scored = []
    for value, part in runs.items():
        acc, fair = _val(part, "acc"), _val(part, m)
        if acc >= dense_val_acc - tolerance and not math.isnan(fair):
            scored.append((_unfairness(fair, metric), -acc, value))
    return min(scored)[2] if scored else None


def _widening(grid: KnobGrid, values: list[float], chosen: float | None) -> float | None:
    """The value to add: beyond the fairer edge when it was chosen, towards accuracy when nothing was admissible."""
    if chosen is None:
        return grid.beyond(values, "down" if grid.fairer == "up" else "up")
    edge = max(values) if grid.fairer == "up" else min(values)
    return grid.beyond(values, grid.fairer) if chosen == edge else None


def _frontier(runs: dict[float, list[Any]], dense_val: float, tolerance: float, metric: Metric,
              chosen: float | None) -> pd.DataFrame:
    m = metric.lower()
    rows = []
    for value in sorted(runs):
        part = runs[value]
        acc = stats.mean_interval([float(r.acc) for r in part])
        fair = stats.mean_interval([float(r.metrics[m]) for r in part])
        val_acc = _val(part, "acc")
        rows.append({"value": value, "seeds": len(part), "val acc": val_acc, f"val {metric}": _val(part, m),
                     "admissible": bool(val_acc >= dense_val - tolerance), "chosen": value == chosen,
                     "acc": acc.mean, "acc low": acc.low, "acc high": acc.high,
                     metric: fair.mean, f"{metric} low": fair.low, f"{metric} high": fair.high,
                     "uninformed": sum(bool(getattr(r, "uninformed", False)) for r in part),
                     "degenerate": sum(bool(r.degenerate) for r in part)})
    df = pd.DataFrame(rows)
    df.attrs["title"] = f"Knob frontier: validation accuracy within {tolerance * 100:g} points of dense ({dense_val:.4f})"
    df.attrs["note"] = ("admissible and chosen read the validation columns only; acc and the metric are the test "
                        "split's means with Student-t 95 % intervals over seeds (low, high).")
    return df


@dataclass
class _Runner:
    """Runs knob values over seeds: through the cache on the kit's datasets, sharing the dense model on a user's."""

    method: str
    knob: str
    seeds: list[int]
    preset: str
    model: UserModel | None
    train: Iterable | None
    valid: Iterable | None
    test: Iterable | None
    client: Any
    scheduler: str | None
    workers: int | None
    runs_dir: str
    progress: bool
    settings: dict[str, Any]
    dense_of: dict[int, dict[str, Any]] = field(default_factory=dict)  # seed -> its shared stages (in process)

    @property
    def user(self) -> bool:
        return self.model is not None or self.train is not None

    def run(self, values: Sequence[float]) -> tuple[dict[float, list[Any]], list[Any]]:
        """Each value's results over the seeds, and the dense model's (``normal``) over the same seeds."""
        if self.user:
            return self._run_user(values)
        from .sweeps import sweep

        specs = [{"method": self.method, "preset": self.preset, "seed": s, self.knob: v, **self.settings}
                 for v in values for s in self.seeds]
        specs += [{"method": "normal", "preset": self.preset, "seed": s, **self.settings} for s in self.seeds]
        results = sweep(specs, client=self.client, scheduler=self.scheduler, workers=self.workers,
                        runs_dir=self.runs_dir, progress=self.progress)
        n = len(self.seeds)
        runs = {float(v): results[i * n:(i + 1) * n] for i, v in enumerate(values)}
        return runs, results[len(values) * n:]

    def _run_user(self, values: Sequence[float]) -> tuple[dict[float, list[Any]], list[Any]]:
        args = (self.method, self.knob, list(values), self.preset, self.model, self.train, self.valid, self.test,
                self.runs_dir, self.progress, self.settings)
        if self.client is None and self.scheduler is None and self.workers is None:
            # in this process the dense model of each seed is kept for a widened grid's later values
            per_seed = [_one_seed(seed, *args, shared=self.dense_of.setdefault(seed, {})) for seed in self.seeds]
        else:
            per_seed = self._on_cluster(args)
        runs = {float(v): [results[i] for _, results in per_seed] for i, v in enumerate(values)}
        return runs, [dense for dense, _ in per_seed]

    def _on_cluster(self, args: tuple[Any, ...]) -> list[tuple[Any, list[Any]]]:
        from .sweeps import _cluster_client

        if self.client is not None:
            return self.client.gather([self.client.submit(_one_seed, s, *args, strip=True, pure=False)
                                       for s in self.seeds])
        with _cluster_client(self.workers, self.scheduler) as client:
            return client.gather([client.submit(_one_seed, s, *args, strip=True, pure=False) for s in self.seeds])


def _one_seed(seed: int, method: str, knob: str, values: list[float], preset: str, model: Any, train: Any,
              valid: Any, test: Any, runs_dir: str, progress: bool, settings: dict[str, Any], *,
              shared: dict[str, Any] | None = None, strip: bool = False) -> tuple[Any, list[Any]]:
    """One seed of a user's tune: the dense model once (or from `shared`), then every knob value from it.

    `strip`: drop the models (results coming back from a cluster carry numbers, not networks).
    """
    from .runner import run_variants

    shared, results = run_variants(method, [{knob: v} for v in values], preset=preset, model=model, train=train,
                                   valid=valid, test=test, progress=progress, runs_dir=runs_dir, shared=shared,
                                   seed=seed, **settings)
    if strip:
        for r in [*results, *shared.values()]:
            r.model = None
    return shared["normal"], results
