"""Running a model over a loader of (x, y, z) batches and reporting `fapkit.metrics` on its predictions.

Beside the training loop and sharing its batch checks (`fapkit.batches`), so a malformed batch or
model output reads the same in training and evaluation.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .batches import as_batch, one_logit
from .metrics import binary_array, fairness_report, group_ids


def evaluate(model: nn.Module, loader: Iterable[Any], *, device: torch.device | str | None = None,
             groups: int | None = None) -> dict[str, Any]:
    """Run ``model`` over ``loader`` and return `fapkit.metrics.fairness_report` plus ``loss``.

    ``loader`` yields ``(x, y, z)`` batches of tensors; ``z`` holds sensitive group ids ``0, …, k−1``
    (``groups`` is ``k``, inferred when None, as `fapkit.metrics.group_rates` says). The model returns one logit per sample,
    with shape ``[B]`` or ``[B, 1]``. The hard prediction is ``ŷ = logit > 0``. ``loss`` is the mean
    binary cross-entropy with logits over all samples.

    The model runs in eval mode under ``torch.no_grad()``; the previous train/eval mode of every
    submodule is restored afterwards, even if an error is raised. ``device`` defaults to the device
    of the model's first parameter, or CPU if the model has none.

    Raises ``ValueError`` for a malformed batch or an empty loader, and for every case that
    `fairness_report` rejects.
    """
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    preds, ys, zs = [], [], []
    total_loss, n = 0.0, 0
    try:
        with torch.no_grad():
            for i, batch in enumerate(loader):
                x, y, z = as_batch(batch, device, index=i)
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
    report = fairness_report(np.concatenate(ys), np.concatenate(preds), sensitive_features=np.concatenate(zs),
                             groups=groups)
    report["loss"] = total_loss / n
    return report
