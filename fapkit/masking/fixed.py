"""Fixed masks whose pruned weights stay exactly zero while the kept weights train.

Used for LMW fine-tuning, training a sparse net from scratch, and fine-tuning after a score
search (`Masker.freeze`). The layer keeps its plain dense forward (fast); instead of
multiplying by the mask on every call, we make sure the pruned entries *are* zero:

* at attach time they are set to 0;
* a bound optimizer (``masker.bind(opt)``) zeroes their gradients before each step (so
  momentum / Adam moments of pruned entries stay 0 and non-elementwise optimizers see
  the masked gradient) and sets them back to 0 after each step (so weight decay, stale
  momentum or any other update rule cannot leave them moving -- ``torch.nn.utils.prune``
  only masks the forward, the underlying weights keep drifting);
* a forward pre-hook re-zeroes them whenever the weight or the mask changed since the last
  check (an unbound optimizer, ``load_state_dict``, manual edits through the parameter).

The mask is a persistent buffer ``weight_mask`` so checkpoints carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import _torch
from .layers import check_unmasked, clear_mask_state, mask_state, set_mask_state

MASK_BUFFER = "weight_mask"


@dataclass(eq=False)
class FixedState:
    """Bookkeeping of one fixed-mask layer (kept on the layer, not in its state_dict)."""

    name: str
    layer: nn.Module
    hook_id: int = -1
    key: tuple = ()
    mask_key: tuple = ()
    pruned: torch.Tensor | None = None  # ~mask, cached for masked_fill_

    def mask(self) -> torch.Tensor:
        return getattr(self.layer, MASK_BUFFER)

    def pruned_positions(self) -> torch.Tensor:
        mask_key = _torch.version_key(self.mask())
        if self.pruned is None or mask_key != self.mask_key:
            self.pruned = ~self.mask()
            self.mask_key = mask_key
        return self.pruned

    def enforce(self) -> None:
        """Zero the pruned weights if the weight or mask changed since the last call."""
        if self.current_key() == self.key:
            return
        with torch.no_grad():
            self.layer.weight.masked_fill_(self.pruned_positions(), 0.0)
        self.key = self.current_key()  # the fill itself bumped the weight's version

    def current_key(self) -> tuple:
        return _torch.version_key(self.layer.weight) + _torch.version_key(self.mask())

    def mask_grad(self) -> None:
        g = self.layer.weight.grad
        if g is not None:
            g.masked_fill_(self.pruned_positions(), 0.0)


def _enforce_before_forward(module: nn.Module, args) -> None:
    mask_state(module).enforce()


def install(layer: nn.Module, name: str, mask: torch.Tensor) -> FixedState:
    """Register ``weight_mask`` on ``layer``, zero its pruned weights, hook its forward."""
    check_unmasked(layer, name)
    w = layer.weight
    if tuple(mask.shape) != tuple(w.shape):
        raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, weight {tuple(w.shape)}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask for {name!r} must be a bool tensor, got {mask.dtype}")
    layer.register_buffer(MASK_BUFFER, mask.detach().to(w.device).clone())
    state = FixedState(name, layer)
    set_mask_state(layer, state)
    state.hook_id = layer.register_forward_pre_hook(_enforce_before_forward).id
    state.enforce()
    return state


def strip(layer: nn.Module, hook_id: int) -> None:
    """Remove buffer, hook and state from ``layer`` (a masked layer or a copy of one; its
    weights are left as they are)."""
    _torch.remove_forward_pre_hook(layer, hook_id)
    _torch.remove_buffer(layer, MASK_BUFFER)
    clear_mask_state(layer)


def uninstall(layer: nn.Module) -> None:
    """Undo `install` after a last `FixedState.enforce`."""
    state: FixedState = mask_state(layer)
    state.enforce()
    strip(layer, state.hook_id)
