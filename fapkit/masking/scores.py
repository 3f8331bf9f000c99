"""Score masks on a layer: learnable scores, masked forward, straight-through backward.

Every prunable weight ``W`` gets a score ``s`` (``layer.scores``, an ``nn.Parameter`` of the
weight's shape) and the layer computes with ``W ⊙ m``, ``m`` the top-k of ``|s|``; see
`.reference` for the definition and the gradients. Weights are frozen
(``requires_grad=False``); if the caller unfreezes them they receive ``∂L/∂(W ⊙ m) ⊙ m``.

This module is the layer-facing part (autograd function, forward, install/uninstall, score
initialisation); an engine (`.reference`, or the fast one in `._fast`) computes the
masks and effective weights for all layers of a model.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from . import _torch
from .layers import check_unmasked, clear_mask_state, mask_state, set_mask_state
from .reference import ScoreSlot


class _MaskedWeight(torch.autograd.Function):
    """``W ⊙ topk(|s|)`` forward, straight-through backward ``grad ⊙ W ⊙ sign(s)``."""

    @staticmethod
    def forward(ctx, scores, weight, slot: ScoreSlot):  # type: ignore[override]
        slot.engine.sync(slot)
        ctx.slot = slot
        # a fresh view per call: autograd's version check then catches an old graph
        # being backpropagated after the arena was updated in place
        return slot.effective_weight()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        slot: ScoreSlot = ctx.slot
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = grad * slot.current_mask().view_as(grad)
        grad_s = None
        if ctx.needs_input_grad[0]:
            # out of place: autograd may hand the same incoming gradient to other consumers
            grad_s = grad * slot.gradient_factor().view_as(grad)
        return grad_s, grad_w, None


def masked_forward(layer: nn.Module, *args, **kwargs):
    """Forward installed on a score-masked layer (bound with functools.partial)."""
    weight = _MaskedWeight.apply(layer.scores, layer.weight, mask_state(layer))
    return _torch.call_with_weight(layer, weight, args, kwargs)


def power_of_two_at_least(x: float) -> float:
    """Smallest power of two ``>= x`` for ``x > 0``."""
    mantissa, exponent = math.frexp(x)  # x = mantissa * 2**exponent, 0.5 <= mantissa < 1
    return 2.0 ** (exponent - 1) if mantissa == 0.5 else 2.0**exponent


def init_scores(
    weight: torch.Tensor, init: str, generator: torch.Generator, peak: float | None = None
) -> torch.Tensor:
    """Initial scores: HYDRA-style ``W / c`` ("magnitude") or kaiming-uniform ("random").

    HYDRA divides by ``max|W|``; we divide by ``c``, the smallest power of two ``>= max|W|``
    (so ``max|s|`` lies in (0.5, 1]). A power of two makes the division exact, so the
    order of ``|s|`` is exactly the order of ``|W|``, ties included, and step 0 equals
    magnitude pruning bit for bit. ``peak`` defaults to the layer's ``max|W|``; global
    scope passes the maximum over all masked layers (one ``c`` for all layers).
    """
    w = weight.detach()
    if init == "magnitude":
        peak = float(w.abs().max()) if peak is None else peak
        if peak == 0:
            return torch.zeros_like(w).contiguous()
        return (w / power_of_two_at_least(peak)).contiguous()
    if init == "random":
        s = torch.empty(w.shape, dtype=w.dtype)
        nn.init.kaiming_uniform_(s, a=5**0.5, generator=generator)
        return s.to(w.device)
    raise ValueError(f"init must be 'magnitude' or 'random', got {init!r}")


def install(layer: nn.Module, slot: ScoreSlot, scores: torch.Tensor) -> None:
    """Give ``layer`` a ``scores`` parameter, freeze its weight and mask its forward (after `check_free`)."""
    layer.register_parameter("scores", nn.Parameter(scores))
    layer.weight.requires_grad_(False)
    set_mask_state(layer, slot)
    layer.forward = functools.partial(masked_forward, layer)


def check_free(layer: nn.Module, name: str) -> None:
    """Refuse to mask a layer twice or to hide a parameter of the user's called ``scores``."""
    check_unmasked(layer, name)
    if _torch.has_parameter(layer, "scores"):
        raise ValueError(f"layer {name!r} already has a parameter called 'scores'")


def strip(layer: nn.Module) -> None:
    """Remove scores, masked forward and slot from ``layer`` (a masked layer or a copy of one)."""
    _torch.remove_parameter(layer, "scores")
    del layer.forward  # the instance attribute: the class's forward shows again
    clear_mask_state(layer)


def uninstall(layer: nn.Module, *, apply_mask: bool) -> None:
    """Undo `install`; with ``apply_mask`` the weight becomes ``W ⊙ m`` in place."""
    slot: ScoreSlot = mask_state(layer)
    if apply_mask:
        slot.engine.sync()
        with torch.no_grad():
            layer.weight.mul_(slot.current_mask().view(layer.weight.shape))
    layer.weight.requires_grad_(slot.weight_requires_grad)
    strip(layer)
