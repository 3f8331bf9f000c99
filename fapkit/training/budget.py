"""Stage budgets that fit the architecture: the patience rule (DESIGN.md §12).

A fixed epoch count tuned for ResNet18 starves MobileNetV2. With ``budget="patience"`` a stage
has no epoch count of its own; one rule, fixed before any result was looked at and the same for
every stage of every method (dense pretraining included), decides its length:

1. *main phase*: after the linear lr warm-up, train at the stage's peak learning rate for at least
   the stage's fixed-budget epoch count (the floor: the rule only ever adds training) and evaluate
   the monitored validation split after every epoch; the phase ends once its loss has not improved
   by more than `MIN_DELTA` over the last ``patience`` epochs (`main_phase_over`), or at
   ``max_epochs`` (the ceiling: ``budget_ceiling`` × the floor);
2. *tail*: a half cosine from the peak to ≈ 0 over ``ceil(budget_tail × main epochs)`` epochs
   (at least one), so the reported model is one the schedule settled in (`lr_factor`).

The lr warm-up and the λ ramp are fractions of the floor, as under the fixed budget. The floor
exists because a first version without one (the phase could end after ``patience + 1`` epochs)
stopped MobileNetV2's dense training after 4 epochs on a validation loss that was still noisy
(0.703, 0.692, 0.701, 0.712), at 0.63 accuracy: less training than the fixed budget gave.

Every decision is a function of the epoch records alone, so a
resumed stage reaches the same decision (`fapkit.training.loop.fit` reads it back from the history).
"""
from __future__ import annotations

import math
from typing import Sequence

#: The least fall of the monitored validation loss (nats) that counts as an improvement.
MIN_DELTA = 1e-3
#: The ceiling of the main phase, in multiples of the floor, when a stage names none (`RunConfig.budget_ceiling`).
DEFAULT_CEILING = 4


def main_phase_over(val_losses: Sequence[float], *, patience: int, max_epochs: int, min_epochs: int = 1,
                    min_delta: float = MIN_DELTA) -> bool:
    """Whether the main phase ends after these epochs' validation losses (one per epoch so far)."""
    n = len(val_losses)
    if n >= max_epochs:
        return True
    if n <= patience or n < min_epochs:
        return False
    best_before = min(val_losses[:-patience])
    return not min(val_losses[-patience:]) < best_before - min_delta


def tail_epochs(main_epochs: int, tail: float) -> int:
    """The cosine tail's length after a main phase of `main_epochs` epochs: ``ceil(tail × main)``, at least 1."""
    return max(1, math.ceil(tail * main_epochs))


def lr_factor(step: int, steps_per_epoch: int, *, warmup_steps: int, tail_start: int | None,
              tail_length: int) -> float:
    """The lr multiplier at `step` (0-based, counted over the whole stage) under the patience rule.

    Linear warm-up over `warmup_steps`, then 1, and from epoch `tail_start` (None: not decided yet)
    a half cosine over `tail_length` epochs that starts at 1 and ends small but not zero.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if tail_start is None or step < tail_start * steps_per_epoch:
        return 1.0
    t, total = step - tail_start * steps_per_epoch, tail_length * steps_per_epoch
    return 0.5 * (1.0 + math.cos(math.pi * min(t, total - 1) / total))
