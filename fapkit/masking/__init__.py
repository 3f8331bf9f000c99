"""Pruning masks for any ``nn.Module`` with Conv2d/Linear layers, without rewriting it.

Public API:

* `prunable_layers` -- which weights can be pruned (Conv2d/Linear ``.weight``);
* `magnitude_masks`, `random_masks` -- one-shot masks (LMW and random);
* `attach_scores` -- learnable score masks (SGDP / edge-popup, HYDRA init), the
  "generator" of FAPrune; returns a `ScoreMasker`;
* `attach_fixed` -- fixed masks whose pruned weights stay exactly 0 while training;
  returns a `FixedMasker`;
* `Masker` -- masks, per-layer report, freeze (scores -> fixed), export, detach;
* `.channels` -- the same over whole output channels (``structure="channel"``): coupled channel
  groups, channel gates, `attach_channel_scores` / `attach_channel_fixed`; `fapkit.surgery`
  removes the pruned channels.

Modules, readable first: `.topk` (pruning ratio, kept count, canonical top-k),
`.layers` (the prunable-layer contract), `.static` (one-shot masks),
`.reference` (what a score mask computes, and the engine interface), `.scores` and
`.fixed` (the two kinds of mask on a layer), `.masker` (the handles). Private:
`._fast` (the fast score engine, tested bit for bit against the reference) and
`._torch` (every use of torch internals).

The **pruning ratio** is the fraction of prunable weights *removed*; the kept count per
layer is ``k = max(1, round((1 - ratio) * n))`` (over all selected weights for
``scope="global"``). Masks keep exactly ``k`` weights; ties are broken by position.
"""

from .layers import prunable_layers
from .masker import FixedMasker, LayerRecord, Masker, ScoreMasker, attach_fixed, attach_scores
from .static import magnitude_masks, random_masks
from .topk import check_ratio, kept_count

__all__ = [
    "FixedMasker",
    "LayerRecord",
    "Masker",
    "ScoreMasker",
    "attach_fixed",
    "attach_scores",
    "check_ratio",
    "kept_count",
    "magnitude_masks",
    "prunable_layers",
    "random_masks",
]
