"""Learnable score masks (SGDP / edge-popup, Ramanujan et al. 2020; HYDRA init).

Every prunable weight ``W`` gets a score ``s`` (``layer.scores``, an ``nn.Parameter`` of
the weight's shape). The layer computes with ``W ⊙ m`` where ``m`` keeps the ``k`` largest
``|s|`` of the layer (``scope="layer"``) or of all masked layers (``scope="global"``).
The backward pass is straight-through: the top-k step is treated as the identity, so
``grad_s = grad_Weff ⊙ W ⊙ sign(s)`` -- the chain rule through ``|s|``, what edge-popup and
HYDRA get from autograd with ``GetSubnet.apply(scores.abs())`` -- except that ``sign(0)``
is taken as +1 so that a zero score still learns. Weights are frozen
(``requires_grad=False``); if the caller unfreezes them they receive ``grad_Weff ⊙ m``.

This module holds the layer-facing part (autograd function, forward, install/uninstall,
score initialisation); :mod:`.engine` computes masks and effective weights.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .engine import Slot

STATE_ATTR = "_fapkit_scores"


class _MaskedWeight(torch.autograd.Function):
    """``W ⊙ topk(|s|)`` forward, straight-through backward ``grad ⊙ W ⊙ sign(s)``."""

    @staticmethod
    def forward(ctx, scores, weight, slot: Slot):  # type: ignore[override]
        slot.engine.sync(slot)
        ctx.slot = slot
        # a fresh view per call: autograd's version check then catches an old graph
        # being backpropagated after the arena was updated in place
        return slot.effective_weight()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        slot: Slot = ctx.slot
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = grad * slot.current_mask().view_as(grad)
        grad_s = None
        if ctx.needs_input_grad[0]:
            factor = slot.gradient_factor().view_as(grad)
            # the incoming gradient feeds only this node, so reuse its memory unless a
            # double-backward graph is being built
            if grad.is_contiguous() and not torch.is_grad_enabled():
                grad_s = grad.mul_(factor)
            else:
                grad_s = grad * factor
        return grad_s, grad_w, None


def call_with_weight(layer: nn.Module, weight: torch.Tensor, args, kwargs):
    """Run ``layer``'s own forward computation with ``weight`` in place of ``layer.weight``."""
    cls_forward = type(layer).forward
    if cls_forward is nn.Conv2d.forward and len(args) == 1 and not kwargs:
        return layer._conv_forward(args[0], weight, layer.bias)
    if cls_forward is nn.Linear.forward and len(args) == 1 and not kwargs:
        return F.linear(args[0], weight, layer.bias)
    # a subclass with its own forward: swap the tensor in for the duration of the call
    params = layer._parameters
    original = params["weight"]
    params["weight"] = weight
    try:
        return cls_forward(layer, *args, **kwargs)
    finally:
        params["weight"] = original


def masked_forward(layer: nn.Module, *args, **kwargs):
    """Forward installed on a score-masked layer (bound with functools.partial)."""
    slot: Slot = getattr(layer, STATE_ATTR)
    weight = _MaskedWeight.apply(layer.scores, layer.weight, slot)
    return call_with_weight(layer, weight, args, kwargs)


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


def install(layer: nn.Module, slot: Slot, scores: torch.Tensor) -> None:
    """Give ``layer`` a ``scores`` parameter, freeze its weight and mask its forward."""
    layer.register_parameter("scores", nn.Parameter(scores))
    layer.weight.requires_grad_(False)
    setattr(layer, STATE_ATTR, slot)
    layer.forward = functools.partial(masked_forward, layer)


def check_free(layer: nn.Module, name: str) -> None:
    """Refuse to mask a layer twice."""
    if hasattr(layer, STATE_ATTR) or hasattr(layer, "_fapkit_fixed"):
        raise ValueError(f"layer {name!r} is already masked; detach the old masker first")
    if "scores" in layer._parameters:
        raise ValueError(f"layer {name!r} already has a parameter called 'scores'")


def uninstall(layer: nn.Module, *, apply_mask: bool) -> None:
    """Undo :func:`install`; with ``apply_mask`` the weight becomes ``W ⊙ m`` in place."""
    slot: Slot = getattr(layer, STATE_ATTR)
    if apply_mask:
        slot.engine.sync()
        with torch.no_grad():
            layer.weight.mul_(slot.current_mask().view(layer.weight.shape))
    layer.weight.requires_grad_(slot.weight_requires_grad)
    del layer._parameters["scores"]
    del layer.forward
    delattr(layer, STATE_ATTR)
