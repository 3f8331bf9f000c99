"""The words of pruning: pruning ratio, kept count, scope, and the canonical top-k.

* **pruning ratio** -- the fraction of prunable weights that is *removed* (0.8 means 80 %
  of the weights are zero after pruning);
* **kept count** ``k`` -- how many weights survive: ``k = max(1, round((1 - ratio) * n))``
  for ``n`` prunable weights;
* **scope** -- ``"layer"`` counts ``n`` and ``k`` per layer (every layer pruned at the same
  ratio), ``"global"`` over all selected layers together (layers end up with different ratios);
* **canonical top-k** -- the ``k`` largest values, ties at the threshold broken by position
  (layer order, then flat index), so a mask keeps exactly ``k`` weights. Every mask of the
  kit is this selection, the fast per-step engine included (it is tested against it).
"""

from __future__ import annotations

from typing import Literal

import torch

from ..checks import check_ratio

Scope = Literal["layer", "global"]


def check_scope(scope: str) -> Scope:
    """Validate the ``scope`` keyword shared by all mask builders."""
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    return scope  # type: ignore[return-value]


def kept_count(n: int, ratio: float) -> int:
    """Number of weights kept out of ``n`` at pruning ratio ``ratio`` (at least one)."""
    return max(1, round((1.0 - check_ratio(ratio)) * n))


def exact_topk_masks(values: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Canonical top-k over the concatenation of the flat tensors ``values``; one bool mask each.

    Keeps every value above the k-th largest value ``t`` and, among values equal to ``t``, the
    ones that come first in concatenation order, so exactly ``k`` are kept even when many values
    tie (e.g. constant scores). One ``kthvalue`` over all values: fine for one-off masks, too
    slow to run at every training step of a large model (that is what `._fast` is for).
    """
    flat = values[0] if len(values) == 1 else torch.cat(values)
    n = flat.numel()
    if not 1 <= k <= n:
        raise ValueError(f"kept count {k} outside [1, {n}]")
    # in the values' own precision: float64 scores that differ beyond float32's would collide there
    # and break "exactly k"; half precision is widened, which keeps every distinct value distinct
    exact = flat if flat.dtype in (torch.float32, torch.float64) else flat.float()
    t = torch.kthvalue(exact, n - k + 1).values.to(flat.dtype)
    keep = flat > t
    quota = k - int(keep.sum())
    if quota > 0:
        tied = torch.nonzero(flat == t).squeeze(1)[:quota]
        keep[tied] = True
    return list(torch.split(keep, [v.numel() for v in values]))
