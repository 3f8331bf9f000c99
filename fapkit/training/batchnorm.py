"""Re-estimating BatchNorm's running statistics once a stage's weights and mask are final.

BN's running mean and variance are exponential averages over the training steps; while a mask
(or the weights) still moves, they describe a mixture of earlier networks, and in the score modes,
where nothing else about BN trains, that lag is all the evaluated network sees of BN. After the
last step every stage therefore recomputes them with one pass over the training data in train
mode (cumulative averages of the batch statistics, torch's `torch.optim.swa_utils.update_bn`),
gradient-free, so evaluation reads the statistics of the network that is reported.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn as nn
from torch.optim.swa_utils import update_bn


def has_batchnorm(model: nn.Module) -> bool:
    """Whether `model` holds a BatchNorm layer that tracks running statistics."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules())


def reestimate_batchnorm(model: nn.Module, loader: Iterable[Any], device: torch.device | str = "cpu") -> bool:
    """Recompute every BatchNorm layer's running statistics from one pass over `loader`; False if there is none.

    ``loader`` yields ``(x, ...)`` batches; only ``x`` is read. The model's train/eval mode and
    each layer's momentum are restored afterwards; no parameter changes. A loader with an
    ``epoch`` attribute (`fapkit.data.TensorLoader`) is read in its epoch-0 order, so the result
    does not depend on how far training got.
    """
    if not has_batchnorm(model):
        return False
    if hasattr(loader, "epoch"):
        epoch, loader.epoch = loader.epoch, 0
    try:
        with torch.no_grad():  # update_bn itself would build a graph through any trainable scores
            update_bn(loader, model, device=torch.device(device))
    finally:
        if hasattr(loader, "epoch"):
            loader.epoch = epoch
    return True
