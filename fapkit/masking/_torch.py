"""Every use of torch internals by the masking package, in one place.

Masks are attached to a model in place, without replacing its modules, which needs a few
things ``nn.Module`` does not offer publicly: removing a hook by id from a *copy* of a module,
dropping a buffer or parameter, running a layer's own forward with another weight tensor,
and noticing in-place edits of a tensor (its version counter). If a torch release changes
one of these, this is the only module to update.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def version_key(tensor: torch.Tensor) -> tuple[int, int]:
    """``(version counter, storage address)``: changes on any in-place edit or ``.data`` swap.

    The counter catches optimizer steps and ``load_state_dict``; the address catches a tensor
    replaced by another. Edits through ``.data`` bypass both (``Masker.invalidate`` exists for them).
    """
    return tensor._version, tensor.data_ptr()


def remove_forward_pre_hook(module: nn.Module, hook_id: int) -> None:
    """Remove a forward pre-hook by id (works on a deep copy, where the handle does not)."""
    # torch keeps pre-hook bookkeeping in several dicts, not all present in every version
    for attr in ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_pre_hooks_always_called"):
        getattr(module, attr, {}).pop(hook_id, None)


def remove_forward_hook(module: nn.Module, hook_id: int) -> None:
    """Remove a forward hook by id (works on a deep copy, where the handle does not)."""
    for attr in ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called"):
        getattr(module, attr, {}).pop(hook_id, None)


def remove_buffer(module: nn.Module, name: str) -> None:
    """Drop buffer ``name`` from ``module`` (and from its ``state_dict``)."""
    module._buffers.pop(name, None)


def has_parameter(module: nn.Module, name: str) -> bool:
    """True if ``module`` itself (not a child) registers a parameter called ``name``."""
    return name in module._parameters


def has_buffer(module: nn.Module, name: str) -> bool:
    """True if ``module`` itself (not a child) registers a buffer called ``name``."""
    return name in module._buffers


def remove_parameter(module: nn.Module, name: str) -> None:
    """Drop parameter ``name`` from ``module`` (and from its ``state_dict``)."""
    del module._parameters[name]


def call_with_weight(layer: nn.Module, weight: torch.Tensor, args: tuple, kwargs: dict[str, Any]) -> Any:
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
