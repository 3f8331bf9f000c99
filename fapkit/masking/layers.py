"""Which weights are prunable: the explicit "prunable layer names" contract.

Prunable weights are the ``.weight`` tensors of ``nn.Conv2d`` and ``nn.Linear`` modules
(subclasses included). Biases and normalisation layers are never pruned. By default every
such layer is prunable, including the first convolution and the last linear layer; the
``include_first`` / ``include_last`` switches drop them (a common convention, because the
stem and the classifier are small and sensitive). "First" and "last" mean first and last in
module registration order (``model.named_modules()``), which is the data-flow order of the
torchvision models this kit is tested on.
"""

from __future__ import annotations

from torch import nn


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
