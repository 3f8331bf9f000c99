"""Channel surgery: the pruned channels of a channel-masked model physically removed, and narrowed models rebuilt.

`shrink` turns a `fapkit.masking.channels.ChannelMasker`'s model into a smaller dense network of
the same family (a torchvision ResNet stays a ``torchvision.models.ResNet`` with narrower layers),
the gates gone: torch-pruning's group pruning (`prune_channels`) removes each group's pruned
output channels from every producing Conv/Linear and BatchNorm and the matching input channels
of every consumer. `rebuild` goes the other way for a saved narrowed state dict: it builds the
plain architecture and narrows each Conv/BatchNorm/Linear to the shapes the state dict holds, so
``rebuild("resnet18", load_file("model.safetensors"))`` loads it with ``strict=True``.
`count` gives the MACs and parameters torch-pruning's counter measures on one input.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch
from torch import nn

if TYPE_CHECKING:
    from .masking.channels import ChannelMasker

#: Largest |gated logit − narrowed logit| `shrink` accepts on its check batch (eval mode).
SHRINK_TOLERANCE = 1e-5


def count(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """``(MACs, parameters)`` of `model` on one sample of `example` (torch-pruning's counter, on a copy)."""
    import torch_pruning as tp

    device = next(model.parameters()).device
    macs, params = tp.utils.count_ops_and_params(model, example[:1].to(device))
    return int(macs), int(params)


def prune_channels(model: nn.Module, example: torch.Tensor, pruned: Mapping[str, Sequence[int]]) -> nn.Module:
    """Remove, in place, the output channels `pruned` lists (``{group root layer: channel indices}``) with their
    coupled layers; returns `model`. A group is named by its root layer (`fapkit.masking.channels.channel_groups`)."""
    import torch_pruning as tp

    from .masking.channels import dependency_graph

    graph = dependency_graph(model, example)
    for name, indices in pruned.items():
        if not indices:
            continue
        root = model.get_submodule(name)
        handler = (tp.prune_linear_out_channels if isinstance(root, nn.Linear) else tp.prune_conv_out_channels)
        group = graph.get_pruning_group(root, handler, idxs=list(indices))
        if not graph.check_pruning_group(group):
            raise ValueError(f"pruning {len(indices)} channels of group {name!r} would leave a layer without any")
        group.prune()
    return model


def shrink(model: nn.Module, masker: ChannelMasker, *, check: bool = True) -> nn.Module:
    """A copy of `model` with `masker`'s pruned channels physically removed and no gates (eval-mode copy checked).

    With `check`, the narrowed copy's logits on the masker's example batch must equal the gated model's
    within `SHRINK_TOLERANCE` (both in eval mode); a RuntimeError says by how much they differ
    otherwise (e.g. an activation between a gate and its consumer that maps 0 elsewhere).
    """
    narrow = prune_channels(masker.plain_copy(), masker.example, masker.pruned())
    narrow.train(model.training)
    if check:
        difference = _difference(model, narrow, masker.example)
        if not difference <= SHRINK_TOLERANCE:
            raise RuntimeError(f"the narrowed model's logits differ from the gated model's by {difference:.3g} "
                               f"(tolerance {SHRINK_TOLERANCE:g}): its channel gates do not equal removing the channels")
    return narrow


def _difference(gated: nn.Module, narrow: nn.Module, example: torch.Tensor) -> float:
    modes = (gated.training, narrow.training)
    gated.eval()
    narrow.eval()
    try:
        device = next(gated.parameters()).device
        with torch.no_grad():
            return float((gated(example.to(device)) - narrow(example.to(device))).abs().max())
    finally:
        gated.train(modes[0])
        narrow.train(modes[1])


def rebuild(arch: str | nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """The architecture `arch` (a kit architecture name, or a dense module of the user's, copied) with each
    Conv2d/BatchNorm/Linear narrowed to the shapes in `state`, loaded from it with ``strict=True``."""
    import copy

    from .models import build_model

    model = build_model(arch) if isinstance(arch, str) else copy.deepcopy(arch)
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, nn.Conv2d) and f"{prefix}weight" in state:
            _narrow_conv(module, state[f"{prefix}weight"].shape)
        elif isinstance(module, nn.Linear) and f"{prefix}weight" in state:
            out_features, in_features = state[f"{prefix}weight"].shape
            module.in_features, module.out_features = int(in_features), int(out_features)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and f"{prefix}running_mean" in state:
            module.num_features = int(state[f"{prefix}running_mean"].shape[0])
        else:
            continue
        _resize(module, prefix, state)
    model.load_state_dict(state, strict=True)
    return model


def _narrow_conv(conv: nn.Conv2d, shape: Sequence[int]) -> None:
    out_channels = int(shape[0])
    per_group = conv.out_channels // conv.groups
    groups = 1 if conv.groups == 1 else out_channels // per_group  # a depthwise conv stays depthwise
    conv.out_channels, conv.groups, conv.in_channels = out_channels, groups, int(shape[1]) * groups


def _resize(module: nn.Module, prefix: str, state: Mapping[str, Any]) -> None:
    """Replace `module`'s own parameters and buffers by empty ones of `state`'s shapes (values come with loading)."""
    for key, param in list(module.named_parameters(recurse=False)):
        if f"{prefix}{key}" in state:
            shape = state[f"{prefix}{key}"].shape
            setattr(module, key, nn.Parameter(torch.empty(shape, dtype=param.dtype), param.requires_grad))
    for key, buffer in list(module.named_buffers(recurse=False)):
        if f"{prefix}{key}" in state and buffer.dim() > 0:  # setattr replaces a registered buffer
            setattr(module, key, torch.empty(state[f"{prefix}{key}"].shape, dtype=buffer.dtype))
