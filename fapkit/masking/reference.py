"""What a score mask computes, written plainly: the reference every faster engine must equal.

A score-masked layer (SGDP / edge-popup; the generator of FAPrune) keeps its weight ``W``
frozen and learns a score ``s`` per weight. Its forward uses ``W ⊙ m``, where the mask ``m``
keeps the ``k`` largest ``|s|`` of the layer (``scope="layer"``) or of all masked layers
together (``scope="global"``), ties broken by position (`.topk.exact_topk_masks`).
The top-k step has no useful gradient, so the backward pass is *straight-through*: it treats
``m`` as the identity, and the chain rule through ``W ⊙ |s|`` gives

    ∂L/∂s = ∂L/∂(W ⊙ m) ⊙ W ⊙ sign(s)          (sign(0) taken as +1, so a zero score learns)
    ∂L/∂W = ∂L/∂(W ⊙ m) ⊙ m                     (only if the caller unfreezes W)

An engine serves all masked layers of one model; each layer holds a `ScoreSlot` that
hands the layer ``W ⊙ m`` and the backward pass ``m`` and ``W ⊙ sign(s)``. This module gives
the interface (`ScoreSlot`, `ScoreEngine`) and `ReferenceEngine`, which
recomputes everything from scratch at every call. The kit trains with the fast engine of
`._fast`, which gives bit-identical masks and effective weights (tested) far faster;
``attach_scores(..., engine="reference")`` switches to this one to check it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from .topk import Scope, exact_topk_masks


class ScoreSlot(Protocol):
    """One score-masked layer, as its forward and backward see it."""

    engine: ScoreEngine
    weight_requires_grad: bool  # restored when the masking is removed

    def effective_weight(self) -> torch.Tensor:
        """``W ⊙ m``, shaped like the weight."""

    def gradient_factor(self) -> torch.Tensor:
        """``W ⊙ sign(s)``, flat: what the straight-through backward multiplies ∂L/∂(W ⊙ m) by."""

    def current_mask(self) -> torch.Tensor:
        """``m``, flat bool."""


class ScoreEngine(Protocol):
    """Masks of all score-masked layers of one model (a layer's mask may depend on the others)."""

    def add(self, name: str, layer: nn.Module) -> ScoreSlot:
        """Register ``layer``, in model order (the order global ties are broken in)."""

    def allocate(self, kept: Callable[[int], int]) -> None:
        """Called once after the last `add`; ``kept(n)`` is the kept count of ``n`` scores."""

    def link(self) -> None:
        """Called once the layers have their ``scores`` parameters."""

    def sync(self, caller: ScoreSlot | None = None) -> None:
        """Bring masks and effective weights up to date with the scores and weights."""

    def invalidate(self) -> None:
        """Forget anything cached (after edits through ``.data``, which version counters miss)."""


@dataclass(eq=False)
class ReferenceSlot:
    engine: ReferenceEngine = field(repr=False)
    name: str
    layer: nn.Module = field(repr=False)
    weight_requires_grad: bool
    mask: torch.Tensor | None = None
    weight_times_mask: torch.Tensor | None = None
    weight_times_sign: torch.Tensor | None = None

    def effective_weight(self) -> torch.Tensor:
        return self.weight_times_mask.view(self.layer.weight.shape)

    def gradient_factor(self) -> torch.Tensor:
        return self.weight_times_sign

    def current_mask(self) -> torch.Tensor:
        return self.mask


@dataclass(eq=False)
class ReferenceEngine:
    """Recomputes every mask with one exact top-k per layer (or over all layers) at every call."""

    scope: Scope
    slots: list[ReferenceSlot] = field(default_factory=list)
    kept: Callable[[int], int] | None = None

    def add(self, name: str, layer: nn.Module) -> ReferenceSlot:
        slot = ReferenceSlot(self, name, layer, layer.weight.requires_grad)
        self.slots.append(slot)
        return slot

    def allocate(self, kept: Callable[[int], int]) -> None:
        self.kept = kept

    def link(self) -> None:
        pass  # the scores stay where they are

    def invalidate(self) -> None:
        pass  # nothing is cached

    def sync(self, caller: ReferenceSlot | None = None) -> None:
        groups = [self.slots] if self.scope == "global" else [[slot] for slot in self.slots]
        with torch.no_grad():
            for group in groups:
                scores = [slot.layer.scores.reshape(-1) for slot in group]
                masks = exact_topk_masks([s.abs() for s in scores], self.kept(sum(s.numel() for s in scores)))
                for slot, s, m in zip(group, scores, masks):
                    w = slot.layer.weight.reshape(-1)
                    slot.mask = m
                    slot.weight_times_mask = w * m
                    slot.weight_times_sign = torch.where(s < 0, -w, w)
