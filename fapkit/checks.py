"""The value checks every entry point shares (config, masking, discriminators, widgets), so they cannot drift.

Each check returns the value (as a float where that applies) or raises a ValueError that names the
setting, the bad value and what is allowed.
"""
from __future__ import annotations

import math
from typing import Any


def check_ratio(ratio: Any) -> float:
    """A pruning ratio: the fraction of prunable weights removed, in [0, 1).

    A ratio of 1 would remove every weight, so it is refused like any value outside the interval;
    the message names the value because a slider or a config typo (``80`` for ``0.8``) is the usual cause.
    """
    value = _number("pruning ratio", ratio, "in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1) (fraction of weights removed), got {ratio!r}")
    return value


def check_alpha(alpha: Any) -> float:
    """The DI/DEO mix α of L_D = α·L_DI + (1−α)·L_DEO, in [0, 1]."""
    value = _number("alpha", alpha, "in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r} (1: DI only, 0: DEO only)")
    return value


def check_finite(name: str, value: Any) -> float:
    """Any real-valued setting: a finite number (NaN and ±inf would only fail at the first step)."""
    return _number(name, value, "a finite number")


def _number(name: str, value: Any, allowed: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    """A TypeError naming the setting, unless `value` is of `kind` (a bool is never taken for a number)."""
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float, (int, float)))
    if not ok:
        wanted = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TypeError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}")
