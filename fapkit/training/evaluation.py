"""Running a model over a loader of (x, y, z) batches and reporting `fapkit.fairness.metrics` on its predictions.

Beside the training loop and sharing its batch checks (`fapkit.training.batches`), so a malformed batch or
model output reads the same in training and evaluation.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..fairness.metrics import binary_array, fairness_report, group_ids
from .batches import as_batch, one_logit


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` for fast float32 inference: each BatchNorm folded into the convolution before it, channels-last.

    The same function up to float rounding (about 1e-7 on a logit of ResNet18); on a 2-core CPU a
    ResNet18 at 32 px evaluates about 2.5× faster (README "Speed"). A model torch.fx cannot trace (a
    user's module with data-dependent control flow) is copied unchanged.
    """
    import torch.fx.experimental.optimization as fx_optimization

    plain = copy.deepcopy(model).eval()
    try:
        fused = fx_optimization.fuse(plain, inplace=True)
    except Exception:  # noqa: BLE001 -- any tracing failure: evaluate the plain copy instead
        return plain
    return fused.to(memory_format=torch.channels_last)


def evaluate(model: nn.Module, loader: Iterable[Any], *, device: torch.device | str | None = None,
             groups: int | None = None, fused: bool = False) -> dict[str, Any]:
    """Run ``model`` over ``loader`` and return `fapkit.fairness.metrics.fairness_report` plus ``loss``.

    ``loader`` yields ``(x, y, z)`` batches of tensors; ``z`` holds sensitive group ids ``0, …, k−1``
    (``groups`` is ``k``, inferred when None, as `fapkit.fairness.metrics.group_rates` says). The model returns one
    logit per sample, with shape ``[B]`` or ``[B, 1]``. The hard prediction is ``ŷ = logit > 0``. ``loss`` is the mean
    binary cross-entropy with logits over all samples.

    The model runs in eval mode under ``torch.no_grad()``; the previous train/eval mode of every
    submodule is restored afterwards, even if an error is raised. ``device`` defaults to the device
    of the model's first parameter, or CPU if the model has none. ``fused`` evaluates an
    `inference_copy` (BatchNorm folded, channels-last) instead: the final evaluations of a stage,
    whose model is plain; a masked model under training is evaluated as it is.

    Raises ``ValueError`` for a malformed batch or an empty loader, and for the bad inputs
    `fairness_report` rejects; a metric the split cannot define (one group present, or a ``(y, z)``
    cell with no samples) is ``nan`` and named with its reason in ``report["undefined"]``.
    """
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    if fused:
        model = inference_copy(model)
    layout = torch.channels_last if fused else torch.contiguous_format
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    preds, ys, zs = [], [], []
    total_loss, n = 0.0, 0
    try:
        with torch.no_grad():
            for i, batch in enumerate(loader):
                x, y, z = as_batch(batch, device, index=i)
                if x.dim() == 4:
                    x = x.contiguous(memory_format=layout)
                logits = one_logit(model(x), y, z)
                if len(y) == 0:  # an empty batch adds nothing
                    continue
                y_bin = binary_array(y, "y")  # validated before it is the BCE target
                target = torch.as_tensor(y_bin, dtype=torch.float32, device=logits.device)
                total_loss += float(F.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum"))
                n += len(y_bin)
                preds.append((logits > 0).cpu().numpy().astype(np.int64))
                ys.append(y_bin)
                zs.append(group_ids(z, "z", groups=groups))
    finally:
        for m, training in modes:
            m.training = training
    if n == 0:
        raise ValueError("loader yielded no samples")
    # A split too small to define a metric (a (y, z) cell with no samples) gives that metric nan, flagged under
    # "undefined", and keeps the others: a trained model is always measured, never lost to an exception.
    report = fairness_report(np.concatenate(ys), np.concatenate(preds), sensitive_features=np.concatenate(zs),
                             groups=groups, undefined="nan")
    report["loss"] = total_loss / n
    return report
