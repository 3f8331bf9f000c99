"""Shared vocabulary of the masking package: pruning ratio, kept counts, layer lookup.

Words used throughout (see DESIGN.md §2):

* **pruning ratio** -- the fraction of prunable weights that is *removed* (0.8 means 80 %
  of the weights are zero after pruning);
* **kept count** ``k`` -- how many weights survive: ``k = max(1, round((1 - ratio) * n))``
  for ``n`` prunable weights (per layer, or over all prunable layers for global scope).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import torch
from torch import nn

from ..checks import check_ratio  # noqa: F401  (re-exported: the masking API checks ratios too)

Scope = Literal["layer", "global"]


def check_scope(scope: str) -> Scope:
    """Validate the ``scope`` keyword shared by all mask builders."""
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    return scope  # type: ignore[return-value]


def kept_count(n: int, ratio: float) -> int:
    """Number of weights kept out of ``n`` at pruning ratio ``ratio`` (at least one)."""
    return max(1, round((1.0 - check_ratio(ratio)) * n))


def resolve_layers(
    model: nn.Module,
    layers: Mapping[str, nn.Module] | Iterable[str] | None,
) -> dict[str, nn.Module]:
    """Turn the ``layers=`` argument of the public functions into an ordered name -> module dict.

    ``None`` means every prunable layer (see :func:`prunable_layers`); a mapping is taken
    as is (e.g. the output of ``prunable_layers(model, include_first=False)``); an iterable
    of names is looked up in ``model``.
    """
    from .layers import is_prunable, prunable_layers

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


def exact_topk_masks(values: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Canonical top-k selection over the concatenation of flat ``values``.

    Keeps every value above the k-th largest value ``t`` and, among values equal to ``t``,
    the ones that come first in concatenation order (layer order, then flat index), so the
    result has exactly ``k`` ones even when many values tie (e.g. constant scores). This is
    the reference that the incremental search (:mod:`.threshold`, :mod:`.scores`) must
    reproduce.
    One ``kthvalue`` over all values: fine for one-off masks, too slow per training step.
    """
    flat = values[0] if len(values) == 1 else torch.cat(values)
    n = flat.numel()
    if not 1 <= k <= n:
        raise ValueError(f"kept count {k} outside [1, {n}]")
    t = torch.kthvalue(flat.float(), n - k + 1).values.to(flat.dtype)
    keep = flat > t
    quota = k - int(keep.sum())
    if quota > 0:
        tied = torch.nonzero(flat == t).squeeze(1)[:quota]
        keep[tied] = True
    return list(torch.split(keep, [v.numel() for v in values]))


def padded_bools(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A zeroed bool buffer of at least ``n`` entries, padded to a multiple of 64.

    The padding lets :func:`sparse_nonzero` and the change detection view the buffer as
    int64 words; padded entries are never written and stay False.
    """
    return torch.zeros(-(-n // 64) * 64, dtype=torch.bool, device=device)


def sparse_nonzero(flags: torch.Tensor) -> torch.Tensor:
    """Sorted positions of the True entries of a padded bool buffer with few True entries.

    ``torch.nonzero`` scans byte by byte; scanning eight flags at a time as int64 words
    and expanding only the non-zero words is several times faster when flags are sparse.
    """
    words = flags.view(torch.int64)
    hit = torch.nonzero(words).squeeze(1)
    if hit.numel() == 0:
        return hit
    row, col = torch.nonzero(flags.view(-1, 8)[hit], as_tuple=True)
    return hit[row] * 8 + col
