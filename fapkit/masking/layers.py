"""Which weights are prunable (the "prunable layer names" contract) and how a masked layer is marked.

Prunable weights are the ``.weight`` tensors of ``nn.Conv2d`` and ``nn.Linear`` modules
(subclasses included). Biases and normalisation layers are never pruned. By default every
such layer is prunable, including the first convolution and the last linear layer; the
``include_first`` / ``include_last`` switches drop them (a common convention, because the
stem and the classifier are small and sensitive). "First" and "last" mean first and last in
module registration order (``model.named_modules()``), which is the data-flow order of the
torchvision models this kit is tested on.

A masked layer keeps its masking state in one attribute (`MASK_STATE`), whichever the
kind of mask, so a layer cannot be masked twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from torch import nn

#: The attribute a masked layer carries its masking state in (both kinds of mask), so that
#: one check refuses to mask a layer twice.
MASK_STATE = "_fapkit_mask"


def is_prunable(module: nn.Module) -> bool:
    """True for Conv2d/Linear modules that own a weight parameter."""
    return isinstance(module, (nn.Conv2d, nn.Linear)) and isinstance(
        getattr(module, "weight", None), nn.Parameter
    )


def prunable_layers(
    model: nn.Module, *, include_first: bool = True, include_last: bool = True
) -> dict[str, nn.Module]:
    """Ordered ``name -> module`` dict of the layers whose weights may be pruned.

    Names are the dotted names of ``model.named_modules()``, e.g. ``"layer1.0.conv1"``.
    """
    found = {name: m for name, m in model.named_modules() if is_prunable(m)}
    names = list(found)
    if not names:
        raise ValueError(f"{type(model).__name__} has no Conv2d/Linear layer to prune")
    if not include_first:
        names = names[1:]
    if not include_last:
        names = names[:-1]
    if not names:
        raise ValueError("excluding the first/last layer leaves nothing to prune")
    return {name: found[name] for name in names}


def resolve_layers(
    model: nn.Module,
    layers: Mapping[str, nn.Module] | Iterable[str] | None,
) -> dict[str, nn.Module]:
    """Turn the ``layers=`` argument of the public functions into an ordered name -> module dict.

    ``None`` means every prunable layer (see `prunable_layers`); a mapping is taken as is
    (e.g. the output of ``prunable_layers(model, include_first=False)``); an iterable of names
    is looked up in ``model``.
    """
    if layers is None:
        return prunable_layers(model)
    if isinstance(layers, Mapping):
        chosen = dict(layers)
    else:
        modules = dict(model.named_modules())
        chosen = {}
        for name in layers:
            if name not in modules:
                raise KeyError(f"model has no submodule named {name!r}")
            chosen[name] = modules[name]
    for name, module in chosen.items():
        if not is_prunable(module):
            raise TypeError(f"layer {name!r} is a {type(module).__name__}, not Conv2d/Linear")
    if not chosen:
        raise ValueError("no prunable layers selected")
    return chosen


def mask_state(layer: nn.Module) -> Any:
    """The masking state a masked layer carries (a score slot or a fixed-mask state)."""
    return getattr(layer, MASK_STATE)


def set_mask_state(layer: nn.Module, state: Any) -> None:
    setattr(layer, MASK_STATE, state)


def clear_mask_state(layer: nn.Module) -> None:
    if MASK_STATE in layer.__dict__:
        delattr(layer, MASK_STATE)


def check_unmasked(layer: nn.Module, name: str) -> None:
    """Refuse to mask a layer twice."""
    if hasattr(layer, MASK_STATE):
        raise ValueError(f"layer {name!r} is already masked; detach the old masker first")
