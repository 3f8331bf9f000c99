"""The checks a batch of (x, y, z) and a model's output go through, shared by training and evaluation."""
from __future__ import annotations

from typing import Any

import torch

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def as_batch(batch: Any, device: torch.device, index: int | None = None) -> Batch:
    """(x, y, z) on `device`, with y and z flat; a ValueError unless `batch` is such a triple."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 3:
        where = "" if index is None else f"; batch {index} is not a 3-tuple"
        raise ValueError(f"a loader must yield (x, y, z) batches{where}")
    x, y, z = (torch.as_tensor(t).to(device) for t in batch)
    return x, y.reshape(-1), z.reshape(-1)


def check_binary(y: torch.Tensor, z: torch.Tensor) -> None:
    """A ValueError naming the offending values unless labels y and sensitive values z are 0/1."""
    for name, t in (("labels y", y), ("sensitive values z", z)):
        bad = t[(t != 0) & (t != 1)]
        if bad.numel():
            values = sorted(set(bad.unique().tolist()))
            hint = " (they look like ±1 labels: map them with (v + 1) // 2)" if set(t.unique().tolist()) <= {-1, 1} else ""
            raise ValueError(f"{name} must be binary 0/1, found {values[:5]}{hint}")


def one_logit(out: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The model's output as one logit per sample of the batch (y, z), or an error saying what was expected."""
    n = len(y)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 1:
        raise ValueError(f"the model must output one logit per sample (shape [{n}] or [{n}, 1]), got shape "
                         f"{list(out.shape)}; for a two-class head use one output unit (binary cross-entropy on logits)")
    if not len(out) == n == len(z):
        raise ValueError(f"the batch has mismatched sizes: {len(out)} logits, len(y)={n}, len(z)={len(z)}")
    return out
