"""The checks a batch of (x, y, z) and a model's output go through, shared by training and evaluation."""
from __future__ import annotations

from typing import Any, Iterable

import torch

from ..fairness.metrics import group_ids

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def as_batch(batch: Any, device: torch.device, index: int | None = None) -> Batch:
    """(x, y, z) on `device`, with y and z flat; a ValueError unless `batch` is such a triple."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 3:
        where = "" if index is None else f"; batch {index} is not a 3-tuple"
        raise ValueError(f"a loader must yield (x, y, z) batches{where}")
    x, y, z = (torch.as_tensor(t).to(device) for t in batch)
    return x, y.reshape(-1), z.reshape(-1)


def _check_01(name: str, t: torch.Tensor) -> None:
    bad = t[(t != 0) & (t != 1)]
    if bad.numel():
        values = sorted(set(bad.unique().tolist()))
        raise ValueError(f"{name} must be binary 0/1, found {values[:5]}{_plus_minus_one_hint(t)}")


def _plus_minus_one_hint(t: torch.Tensor) -> str:
    return " (they look like ±1 labels: map them with (v + 1) // 2)" if set(t.unique().tolist()) <= {-1, 1} else ""


def check_labels(y: torch.Tensor) -> None:
    """A ValueError naming the offending values unless the labels y are 0/1 (the target is binary)."""
    _check_01("labels y", y)


def check_groups(z: torch.Tensor, groups: int | None = None) -> None:
    """A ValueError naming the offending values unless z holds sensitive group ids 0, …, k−1.

    `fapkit.fairness.metrics.group_ids` decides (non-negative integer ids, below ``groups`` when given;
    ``groups=2``: 0/1 only), so training and evaluation accept the same z.
    """
    try:
        group_ids(z, "sensitive values z", groups=groups)
    except ValueError as err:
        raise ValueError(f"{err}{_plus_minus_one_hint(z)}") from None


def check_binary(y: torch.Tensor, z: torch.Tensor) -> None:
    """A ValueError naming the offending values unless labels y and sensitive values z are 0/1.

    For a binary attribute only; training checks y with `check_labels` and z with `check_groups`.
    """
    for name, t in (("labels y", y), ("sensitive values z", z)):
        _check_01(name, t)


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


def _dataset(loader: Iterable) -> Any:
    """The dataset behind a `fapkit.data.TensorLoader` (``.ds``) or a torch DataLoader (``.dataset``), or None."""
    data = getattr(loader, "ds", None)
    return data if data is not None else getattr(loader, "dataset", None)


def group_count(loader: Iterable) -> int:
    """The number of sensitive groups of a loader's data (at least 2).

    The dataset's own count when it has one (`fapkit.data.FaceTensors.n_groups`: a group absent
    from this split keeps its place), else 1 + the largest z of its ``z``, else of one pass over the
    batches (so the loader must be iterable more than once, as any training loader is). The ids
    themselves are checked where the batches are used (`check_groups`).
    """
    data = _dataset(loader)
    known = getattr(data, "n_groups", None)
    if isinstance(known, int) and not isinstance(known, bool):
        return max(2, known)
    z = getattr(data, "z", None)
    if z is None:
        z = [torch.as_tensor(batch[2]).reshape(-1) for batch in loader]
        z = torch.cat(z) if z else torch.zeros(0)
    z = torch.as_tensor(z).reshape(-1)
    return max(2, int(z.max()) + 1) if z.numel() else 2


def group_names(loader: Iterable) -> list[str] | None:
    """The names of the loader's sensitive groups in id order (`fapkit.data.FaceTensors.names_of_groups`), or None."""
    names = getattr(_dataset(loader), "group_names", None)
    return [str(n) for n in names] if names else None
