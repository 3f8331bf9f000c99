"""One-shot masks: layer-wise magnitude pruning (LMW, Han et al. 2015) and random masks.

Both return ``{layer name: BoolTensor shaped like the weight}`` with ``True`` = kept, and
keep exactly ``k`` weights per layer (``scope="layer"``) or over all selected layers
(``scope="global"``); ties are broken by position (see `.topk.exact_topk_masks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .layers import resolve_layers
from .topk import Scope, check_ratio, check_scope, exact_topk_masks, kept_count


def masks_from_values(
    values: Mapping[str, torch.Tensor], ratio: float, scope: Scope
) -> dict[str, torch.Tensor]:
    """Keep the largest ``values`` (one tensor per layer) at pruning ratio ``ratio``."""
    check_ratio(ratio)
    check_scope(scope)
    names = list(values)
    flats = [values[name].detach().reshape(-1) for name in names]
    if scope == "layer":
        picked = [exact_topk_masks([f], kept_count(f.numel(), ratio))[0] for f in flats]
    else:
        picked = exact_topk_masks(flats, kept_count(sum(f.numel() for f in flats), ratio))
    return {
        name: keep.reshape(values[name].shape).clone() for name, keep in zip(names, picked)
    }


def magnitude_masks(
    model: nn.Module,
    ratio: float,
    *,
    scope: Scope = "layer",
    layers: Mapping[str, nn.Module] | Iterable[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Magnitude pruning masks: keep the ``k`` weights of largest ``|W|``.

    ``scope="layer"`` prunes every layer at the same ratio (LMW); ``scope="global"`` ranks
    all selected weights together, so layers end up with different ratios.
    """
    chosen = resolve_layers(model, layers)
    return masks_from_values({n: m.weight.abs() for n, m in chosen.items()}, ratio, scope)


def random_masks(
    model: nn.Module,
    ratio: float,
    *,
    seed: int,
    scope: Scope = "layer",
    layers: Mapping[str, nn.Module] | Iterable[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Uniformly random masks with exactly ``k`` kept weights, reproducible from ``seed``."""
    chosen = resolve_layers(model, layers)
    gen = torch.Generator().manual_seed(int(seed))
    draws = {n: torch.rand(m.weight.shape, generator=gen) for n, m in chosen.items()}
    masks = masks_from_values(draws, ratio, scope)
    return {n: masks[n].to(chosen[n].weight.device) for n in masks}
