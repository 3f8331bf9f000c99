"""Summaries over seeds: mean ± std, paired differences with a Student-t interval, and verdicts.

A single training run says little on the small benchmarks of this kit: the dense model's own
bias moves a lot from seed to seed, so a direction read off one seed can flip. The tables
therefore report the mean and the sample standard deviation over seeds, and FAPrune is compared
with a baseline through the *paired* difference ``d_i = ours_i − theirs_i`` of runs that share
seed ``i`` (both start from the same pretrained model and data order, so pairing removes the
seed's common part of the variation).

Conventions:

* ``nan`` values are dropped before anything is computed (DI is ``nan`` when a model selects
  nobody); ``n`` always counts the finite values (pairs) that were used.
* The standard deviation is the sample one (``ddof=1``); it is ``nan`` with fewer than 2 values.
* The interval for the mean paired difference is ``mean ± t_{(1+c)/2, n−1} · std / √n``; with
  fewer than 2 pairs it is ``(nan, nan)``.
* A direction is called only when the whole interval lies on one side of 0 (see `verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["fairer", "less fair", "not distinguishable"]

__all__ = ["PairedDifference", "Verdict", "mean_interval", "mean_std", "paired_interval", "verdict"]


def _finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """``(mean, std, n)`` of the finite ``values`` (floats, ints, numpy scalars; ``nan``, ``±inf`` dropped).

    ``n`` counts the finite values; ``std`` is the sample standard deviation (``ddof=1``), ``nan``
    when ``n < 2``; ``mean`` is ``nan`` when ``n == 0``.
    """
    arr = _finite(values)
    n = int(arr.size)
    if n == 0:
        return math.nan, math.nan, 0
    # Work relative to the first value: equal values (e.g. one nominal ratio over seeds) then give
    # exactly that value and a std of exactly 0, not 0.8000000000000002 and 1e-16.
    shifted = arr - arr[0]
    mean = float(arr[0] + shifted.mean())
    std = float(shifted.std(ddof=1)) if n >= 2 else math.nan
    return mean, std, n


@dataclass(frozen=True)
class PairedDifference:
    """The mean paired difference ``ours − theirs`` over seeds and its confidence interval.

    ``mean``, ``std`` and ``n`` are `mean_std` of the paired differences; ``low`` and ``high`` the
    interval's bounds (``nan`` when ``n < 2``); ``method`` how it was computed (``"t"``: Student-t
    on the paired differences).
    """

    mean: float
    std: float
    n: int
    low: float
    high: float
    method: str = "t"


def paired_interval(ours: Sequence[float], theirs: Sequence[float], *,
                    confidence: float = 0.95) -> PairedDifference:
    """Student-t interval of the mean of ``d_i = ours_i − theirs_i`` over paired seeds.

    Position ``i`` of ``ours`` and ``theirs`` is the same seed; a pair where either value is
    ``nan`` is dropped. ``confidence`` is the coverage of the two-sided interval, in ``(0, 1)``.
    The interval is ``mean ± t_{(1+c)/2, n−1} · std / √n``; with ``n < 2`` pairs ``std``, ``low``
    and ``high`` are ``nan``, and with ``std == 0`` it is the single point ``mean``. Raises
    ValueError if the sequences differ in length or ``confidence`` is outside ``(0, 1)``.
    """
    if len(ours) != len(theirs):
        raise ValueError(f"ours and theirs must be paired: len(ours)={len(ours)}, len(theirs)={len(theirs)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    diffs = [float(a) - float(b) for a, b in zip(ours, theirs)]
    mean, std, n = mean_std(diffs)  # a pair with a nan side gives a nan difference and is dropped
    if n < 2:
        return PairedDifference(mean, std, n, math.nan, math.nan)
    from scipy.stats import t  # imported here: scipy.stats is slow to import and only needed now

    half = float(t.ppf((1.0 + confidence) / 2.0, n - 1)) * std / math.sqrt(n)
    return PairedDifference(mean, std, n, mean - half, mean + half)


def mean_interval(values: Sequence[float], *, confidence: float = 0.95) -> PairedDifference:
    """Student-t interval of the mean of the finite ``values`` (over seeds), as `paired_interval` against 0."""
    return paired_interval(list(values), [0.0] * len(values), confidence=confidence)


def verdict(interval: PairedDifference, *, lower_is_fairer: bool) -> Verdict:
    """Read a paired difference (`paired_interval` of ours − theirs for a fairness metric) as a direction.

    ``lower_is_fairer`` is True for DEO, False for DI. The verdict is ``"fairer"`` only when the
    whole interval lies strictly on the fairer side of 0, ``"less fair"`` when it lies strictly on
    the other side, and otherwise (0 inside or on the interval, fewer than 2 pairs, ``nan`` bounds)
    ``"not distinguishable"``.
    """
    low, high = interval.low, interval.high
    if interval.n < 2 or math.isnan(low) or math.isnan(high):
        return "not distinguishable"
    if high < 0:
        return "fairer" if lower_is_fairer else "less fair"
    if low > 0:
        return "less fair" if lower_is_fairer else "fairer"
    return "not distinguishable"
