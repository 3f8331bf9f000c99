"""Stage budgets that fit the architecture: the patience rule (DESIGN.md §12).

A fixed epoch count tuned for ResNet18 starves MobileNetV2. With ``budget="patience"`` a stage
has no epoch count of its own; one rule, fixed before any result was looked at and the same for
every stage of every method (dense pretraining included), decides its length:

1. *main phase*: after the linear lr warm-up, train at the stage's peak learning rate for at least
   the *floor* (`floor_epochs`: the stage's fixed-budget epoch count, and at least as many optimiser
   steps as those epochs take on the preset's home split, ``epoch_steps`` per epoch: the rule only
   ever adds training) and evaluate the monitored validation split after every epoch; the phase ends
   once, over the last ``patience`` epochs, neither its loss fell by more than `MIN_DELTA` nor its
   accuracy rose by more than one binomial standard error (`main_phase_over`), or at the ceiling
   (``ceiling`` × the floor);
2. *tail*: a half cosine from the peak to ≈ 0 over ``ceil(budget_tail × main epochs)`` epochs
   (at least one), so the reported model is one the schedule settled in (`lr_factor`).

The lr warm-up and the λ ramp are fractions of the floor, as under the fixed budget.

Why each part (measured, README "FAPrune off the benchmark"): a first version without a floor
stopped MobileNetV2's dense training after 4 epochs on a validation loss that was still noisy
(0.703, 0.692, 0.701, 0.712), at 0.63 accuracy. A second floored the phase in epochs and read the
loss alone: on 2,000 images (32 steps an epoch) dense models stopped after 160–256 steps, because
a few hundred steps make a model over-confident, so its validation loss rises while its accuracy
still does (ShuffleNetV2: loss 0.712 → 0.792 as accuracy rose 0.505 → 0.601). Hence the floor in
steps and the accuracy's vote.

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


def floor_epochs(epochs: int, steps_per_epoch: int, epoch_steps: int = 0) -> int:
    """The main phase's floor: `epochs`, and at least ``epochs × epoch_steps`` optimiser steps."""
    return max(epochs, math.ceil(epochs * epoch_steps / max(steps_per_epoch, 1)))


def main_phase_over(val_losses: Sequence[float], *, patience: int, max_epochs: int, min_epochs: int = 1,
                    min_delta: float = MIN_DELTA, val_accs: Sequence[float] = (), n_valid: int = 0) -> bool:
    """Whether the main phase ends after these epochs' validation losses (and accuracies, one each per epoch).

    The phase goes on while the last `patience` epochs either lowered the best loss before them by more
    than `min_delta`, or (`val_accs` given) raised the best accuracy before them by more than its binomial
    standard error on `n_valid` examples (any rise when `n_valid` is 0).
    """
    n = len(val_losses)
    if n >= max_epochs:
        return True
    if n <= patience or n < min_epochs:
        return False
    loss_fell = min(val_losses[-patience:]) < min(val_losses[:-patience]) - min_delta
    return not (loss_fell or _accuracy_rose(val_accs, patience, n_valid))


def _accuracy_rose(val_accs: Sequence[float], patience: int, n_valid: int) -> bool:
    if len(val_accs) <= patience:
        return False
    best = max(val_accs[:-patience])
    se = math.sqrt(best * (1.0 - best) / n_valid) if n_valid > 0 else 0.0
    return max(val_accs[-patience:]) > best + se


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
