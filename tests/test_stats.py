"""fapkit.stats against hand-computed numbers: mean ± std, the paired t-interval, verdicts."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from fapkit.stats import PairedDifference, mean_std, paired_interval, verdict

# t quantile t_{0.975, 2}: for 2 degrees of freedom t_p = (2p − 1)·sqrt(2 / (4p(1 − p))),
# i.e. 0.95·sqrt(2 / 0.0975) = 4.30265272974946 (tables print 4.303).
T_975_2 = 4.302652729749464
# t_{0.975, 1} = tan(π(p − 1/2)) = tan(0.475π) = 12.7062047361747 (tables print 12.706).
T_975_1 = 12.706204736174694


def test_mean_std_is_the_sample_std() -> None:
    assert mean_std([0.1, 0.2, 0.3]) == pytest.approx((0.2, 0.1, 3))
    # [1, 2, 3, 4]: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, /3 → sd sqrt(5/3)
    mean, std, n = mean_std([1, 2, 3, 4])
    assert (mean, n) == (2.5, 4) and std == pytest.approx(1.2909944487358056)
    assert mean_std(np.array([0.7, 0.9])) == pytest.approx((0.8, 0.1414213562373095, 2))


def test_equal_values_give_exactly_that_mean_and_zero_std() -> None:
    assert mean_std([0.8, 0.8, 0.8]) == (0.8, 0.0, 3)  # not 0.8000000000000002


def test_mean_std_drops_nan_and_counts_finite_values() -> None:
    assert mean_std([0.1, math.nan, 0.3]) == pytest.approx((0.2, 0.1414213562373095, 2))
    mean, std, n = mean_std([0.4, math.nan])
    assert (mean, n) == (0.4, 1) and math.isnan(std)
    mean, std, n = mean_std([math.nan])
    assert n == 0 and math.isnan(mean) and math.isnan(std)
    mean, std, n = mean_std([])
    assert n == 0 and math.isnan(mean) and math.isnan(std)


def test_paired_interval_by_hand() -> None:
    # d = [0.1, 0.2, 0.3]: mean 0.2, sd 0.1, half-width t·sd/√3 = 4.3026527·0.1/1.7320508 = 0.2484138
    diff = paired_interval([0.5, 0.7, 0.9], [0.4, 0.5, 0.6])
    assert isinstance(diff, PairedDifference) and diff.method == "t" and diff.n == 3
    assert diff.mean == pytest.approx(0.2) and diff.std == pytest.approx(0.1)
    assert T_975_2 * 0.1 / math.sqrt(3) == pytest.approx(0.248413771175033)
    assert diff.low == pytest.approx(0.2 - 0.248413771175033)
    assert diff.high == pytest.approx(0.2 + 0.248413771175033)
    with pytest.raises(dataclasses.FrozenInstanceError):
        diff.mean = 0.0  # type: ignore[misc]


def test_paired_interval_two_pairs_and_other_confidence() -> None:
    # d = [−0.1, −0.3]: mean −0.2, sd sqrt(0.02) = 0.1414214, half-width 12.7062·0.1414214/√2 = 1.2706205
    diff = paired_interval([0.2, 0.1], [0.3, 0.4])
    assert diff.std == pytest.approx(0.1414213562373095)
    assert (diff.low, diff.high) == pytest.approx((-0.2 - 1.2706204736174694, -0.2 + 1.2706204736174694))
    assert T_975_1 * 0.1414213562373095 / math.sqrt(2) == pytest.approx(1.2706204736174694)
    # 90 %: t_{0.95, 2} = 0.9·sqrt(2 / (4·0.95·0.05)) = 2.919985580353726
    narrow = paired_interval([0.5, 0.7, 0.9], [0.4, 0.5, 0.6], confidence=0.9)
    assert narrow.high - narrow.mean == pytest.approx(2.919985580353726 * 0.1 / math.sqrt(3))


def test_paired_interval_drops_nan_pairs_and_n_below_two() -> None:
    diff = paired_interval([0.5, math.nan, 0.9, 0.7], [0.4, 0.5, 0.6, math.nan])
    assert diff.n == 2 and diff.mean == pytest.approx(0.2)  # pairs (0.5, 0.4) and (0.9, 0.6)
    single = paired_interval([0.3], [0.1])
    assert single.n == 1 and single.mean == pytest.approx(0.2)
    assert math.isnan(single.std) and math.isnan(single.low) and math.isnan(single.high)
    empty = paired_interval([], [])
    assert empty.n == 0 and math.isnan(empty.mean)


def test_paired_interval_refuses_unpaired_input() -> None:
    with pytest.raises(ValueError, match="paired"):
        paired_interval([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="confidence"):
        paired_interval([0.1, 0.2], [0.1, 0.3], confidence=1.0)


def _interval(low: float, high: float, n: int = 3) -> PairedDifference:
    return PairedDifference(mean=(low + high) / 2, std=0.1, n=n, low=low, high=high)


def test_verdict_in_both_directions() -> None:
    below, above, around = _interval(-0.3, -0.1), _interval(0.1, 0.3), _interval(-0.1, 0.2)
    # DEO: lower is fairer
    assert verdict(below, lower_is_fairer=True) == "fairer"
    assert verdict(above, lower_is_fairer=True) == "less fair"
    assert verdict(around, lower_is_fairer=True) == "not distinguishable"
    # DI: higher is fairer
    assert verdict(above, lower_is_fairer=False) == "fairer"
    assert verdict(below, lower_is_fairer=False) == "less fair"
    assert verdict(around, lower_is_fairer=False) == "not distinguishable"


def test_verdict_needs_the_interval_to_exclude_zero() -> None:
    assert verdict(_interval(-0.2, 0.0), lower_is_fairer=True) == "not distinguishable"  # touches 0
    assert verdict(_interval(0.0, 0.2), lower_is_fairer=False) == "not distinguishable"
    assert verdict(paired_interval([0.3], [0.1]), lower_is_fairer=False) == "not distinguishable"  # n = 1
    assert verdict(_interval(math.nan, math.nan), lower_is_fairer=True) == "not distinguishable"
    # the hand-computed example: [−0.048, 0.448] contains 0
    assert verdict(paired_interval([0.5, 0.7, 0.9], [0.4, 0.5, 0.6]), lower_is_fairer=False) == "not distinguishable"
    clear = paired_interval([0.20, 0.25, 0.30], [0.30, 0.37, 0.44])  # d = −0.10, −0.12, −0.14
    assert clear.high < 0 and verdict(clear, lower_is_fairer=True) == "fairer"
