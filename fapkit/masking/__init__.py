"""Pruning masks for any ``nn.Module`` with Conv2d/Linear layers, without rewriting it.

* :func:`prunable_layers` -- which weights can be pruned (Conv2d/Linear ``.weight``).
* :func:`magnitude_masks`, :func:`random_masks` -- one-shot masks (LMW and random).
* :func:`attach_scores` -- learnable score masks (SGDP / edge-popup, HYDRA init), the
  "generator" of FAPrune; fast exact top-k per training step.
* :func:`attach_fixed` -- fixed masks whose pruned weights stay exactly 0 while training.
* :class:`Masker` -- masks, report, freeze (scores -> fixed), export, detach.

The **pruning ratio** is the fraction of prunable weights *removed*; the kept count per
layer is ``k = max(1, round((1 - ratio) * n))`` (over all selected weights for
``scope="global"``). Masks keep exactly ``k`` weights; ties are broken by position.
"""

from ._common import check_ratio, kept_count
from .layers import prunable_layers
from .masker import Masker, attach_fixed, attach_scores
from .static import magnitude_masks, random_masks

__all__ = [
    "Masker",
    "attach_fixed",
    "attach_scores",
    "check_ratio",
    "kept_count",
    "magnitude_masks",
    "prunable_layers",
    "random_masks",
]
