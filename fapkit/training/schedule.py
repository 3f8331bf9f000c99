"""Learning-rate and adversary-weight schedules, as pure functions of the optimisation step.

A stage of ``T`` steps (epochs × batches per epoch) trains at ``lr · lr_factor(t, T, warmup)``:
a linear warm-up over the first ``warmup`` fraction of the steps, then a half cosine that ends
near zero, so the model a table reports is the point the run settled in rather than a sample of
a trajectory still moving at full speed (DESIGN.md §9). The factor depends on ``t`` alone, so a
resumed run continues the schedule exactly where the killed one stopped.

``lam_factor`` ramps the adversary weight λ from 0 to 1 over the first ``ramp`` fraction of the
steps, as domain-adversarial training does, so the generator meets an adversary that has had
time to learn; ``ramp=0`` is the paper's constant λ.
"""
from __future__ import annotations

import math
from typing import Literal

LrSchedule = Literal["constant", "cosine"]
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


def lr_factor(step: int, total: int, warmup: float = 0.0, schedule: LrSchedule = "cosine") -> float:
    """The learning-rate multiplier at ``step`` (0-based) of ``total`` steps.

    ``constant`` is 1 throughout. ``cosine`` rises linearly to 1 over the first
    ``ceil(warmup · total)`` steps (step 0 runs at ``1 / n_warmup``) and then follows
    ``0.5 · (1 + cos(π · (step − n_warmup) / (total − n_warmup)))``, which starts at 1 and whose
    last step (``total − 1``) is small but not zero: every step still learns something.
    """
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    if total < 1 or not 0 <= step < total:
        raise ValueError(f"step must lie in [0, {total}), got {step}")
    n_warmup = min(math.ceil(warmup * total), total - 1)
    if step < n_warmup:
        return (step + 1) / n_warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - n_warmup) / (total - n_warmup)))


def lam_factor(step: int, total: int, ramp: float = 0.0) -> float:
    """The multiplier of λ at ``step`` of ``total``: ``min(1, step / (ramp · total))``; 1 throughout when ``ramp`` = 0."""
    if ramp <= 0:
        return 1.0
    return min(1.0, step / (ramp * total))
