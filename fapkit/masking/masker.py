"""The :class:`Masker` handle and the two ways to create one.

``attach_scores`` turns a model into a score-masked model (mask search: SGDP / FAPrune),
``attach_fixed`` into a fixed-mask model (fine-tuning, training from scratch). Both modify
the model in place without replacing any module, so the architecture, module names and
the weight keys of ``state_dict()`` stay those of the original model; the extra entries
are ``<layer>.scores`` (score mode) or ``<layer>.weight_mask`` (fixed mode). To reload a
checkpoint: rebuild the model, attach the same kind of masking, ``load_state_dict``.

Batch norm is untouched in both modes: its affine parameters train if the caller gives them
to an optimizer and its running statistics update in ``train()`` mode as usual. (Edge-popup
used non-affine BN for random-weight search; with a frozen pretrained net the caller may
simply not optimise BN, as HYDRA does.)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from . import fixed, scores
from ._common import Scope, check_ratio, check_scope, kept_count, resolve_layers
from .engine import ScoreEngine, Slot


@dataclass(eq=False)
class Masker:
    """Handle on the masking of one model: masks, report, export, and undo.

    ``ratio`` is the requested pruning ratio (fraction of prunable weights removed), or for
    masks given to :func:`attach_fixed` the ratio they realise; ``scope`` is ``"layer"``,
    ``"global"`` or ``"given"``; ``kind`` is ``"scores"`` or ``"fixed"``.
    """

    model: nn.Module = field(repr=False)
    layers: dict[str, nn.Module] = field(repr=False)
    ratio: float
    scope: str
    kind: Literal["scores", "fixed"]
    engine: ScoreEngine | None = field(default=None, repr=False)
    _hooks: list[Any] = field(default_factory=list, repr=False)
    _active: bool = field(default=True, repr=False)

    # ------------------------------------------------------------------ masks
    def _check_active(self) -> None:
        if not self._active:
            raise RuntimeError("this Masker was detached or frozen; use the one that replaced it")

    def masks(self) -> dict[str, torch.Tensor]:
        """Current masks (``True`` = kept), shaped like the weights; copies, not views."""
        self._check_active()
        out = {}
        for name, layer in self.layers.items():
            if self.kind == "scores":
                slot: Slot = getattr(layer, scores.STATE_ATTR)
                slot.engine.sync()
                out[name] = slot.current_mask().view(layer.weight.shape).clone()
            else:
                out[name] = getattr(layer, fixed.MASK_BUFFER).clone()
        return out

    def score_parameters(self) -> list[nn.Parameter]:
        """The score parameters (empty for fixed masks): give these to the mask optimizer."""
        self._check_active()
        if self.kind != "scores":
            return []
        return [layer.scores for layer in self.layers.values()]

    def invalidate(self) -> None:
        """Recompute everything at the next forward; needed only after ``.data`` edits."""
        self._check_active()
        if self.engine is not None:
            self.engine.invalidate()
        for layer in self.layers.values():
            state = getattr(layer, fixed.FIXED_ATTR, None)
            if state is not None:
                state.key = ()

    # ------------------------------------------------------------------ training glue
    def bind(self, optimizer: torch.optim.Optimizer) -> None:
        """Fixed masks: mask gradients before and re-zero pruned weights after every step.

        For score masks the weights are frozen, so there is nothing to keep in line; the
        call is accepted and does nothing.
        """
        self._check_active()
        if self.kind != "fixed":
            return
        states = [getattr(layer, fixed.FIXED_ATTR) for layer in self.layers.values()]

        def before_step(opt, args, kwargs) -> None:
            for state in states:
                state.mask_grad()

        def after_step(opt, args, kwargs) -> None:
            for state in states:
                state.enforce()

        self._hooks.append(optimizer.register_step_pre_hook(before_step))
        self._hooks.append(optimizer.register_step_post_hook(after_step))

    def freeze(self) -> Masker:
        """Score masks -> fixed masks of the current selection; weights become trainable.

        Returns the new fixed :class:`Masker`; this one becomes inactive.
        """
        self._check_active()
        if self.kind != "scores":
            return self
        current = self.masks()
        self._remove(apply_mask=False)
        for layer in self.layers.values():
            layer.weight.requires_grad_(True)
        frozen = attach_fixed(self.model, current)
        frozen.ratio, frozen.scope = self.ratio, self.scope
        return frozen

    # ------------------------------------------------------------------ reporting
    def report(self) -> pd.DataFrame:
        """Per-layer table (name, type, shape, n, kept, ratio) plus two summary rows.

        ``ratio`` is the fraction removed. The row ``[prunable]`` sums the masked layers;
        the row ``[all parameters]`` counts every model parameter (biases, norm layers,
        unmasked layers; scores excluded), so its ratio is smaller.
        """
        rows = []
        for name, mask in self.masks().items():
            n, kept = mask.numel(), int(mask.sum())
            rows.append(
                {
                    "name": name,
                    "type": type(self.layers[name]).__name__,
                    "shape": tuple(mask.shape),
                    "n": n,
                    "kept": kept,
                    "ratio": 1 - kept / n,
                }
            )
        s = self.summary()
        rows.append(
            {"name": "[prunable]", "type": "", "shape": (), "n": s["prunable_weights"],
             "kept": s["kept_weights"], "ratio": s["ratio_prunable"]}
        )
        rows.append(
            {"name": "[all parameters]", "type": "", "shape": (), "n": s["parameters"],
             "kept": s["kept_parameters"], "ratio": s["ratio_all"]}
        )
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """Totals: pruning ratio over prunable weights and over all parameters."""
        masks = self.masks()
        n = sum(m.numel() for m in masks.values())
        kept = sum(int(m.sum()) for m in masks.values())
        score_ids = {id(p) for p in self.score_parameters()}
        total = sum(p.numel() for p in self.model.parameters() if id(p) not in score_ids)
        return {
            "kind": self.kind,
            "scope": self.scope,
            "requested_ratio": self.ratio,
            "layers": len(masks),
            "prunable_weights": n,
            "kept_weights": kept,
            "ratio_prunable": 1 - kept / n,
            "parameters": total,
            "kept_parameters": total - (n - kept),
            "ratio_all": (n - kept) / total,
        }

    # ------------------------------------------------------------------ leaving
    def export(self) -> nn.Module:
        """A plain copy of the model: same classes, pruned weights = 0, nothing extra.

        Its ``state_dict`` loads with ``strict=True`` into a freshly built model of the same
        architecture (e.g. ``torchvision.models.resnet18(num_classes=1)``).
        """
        current = self.masks()
        # deepcopy would duplicate the per-layer buffers; map them to None instead and strip
        memo: dict[int, Any] = {}
        for layer in self.layers.values():
            if self.kind == "scores":
                slot = getattr(layer, scores.STATE_ATTR)
                for obj in (slot, layer.scores, layer.__dict__["forward"]):
                    memo[id(obj)] = None
            else:
                memo[id(getattr(layer, fixed.FIXED_ATTR))] = None
        plain = copy.deepcopy(self.model, memo)
        for name, layer in self.layers.items():
            twin = plain.get_submodule(name)
            if self.kind == "scores":
                slot = getattr(layer, scores.STATE_ATTR)
                del twin._parameters["scores"]
                del twin.forward
                delattr(twin, scores.STATE_ATTR)
                twin.weight.requires_grad_(slot.weight_requires_grad)
            else:
                fixed.strip(twin, getattr(layer, fixed.FIXED_ATTR).hook_id)
            with torch.no_grad():
                twin.weight.mul_(current[name].to(twin.weight.device))
        return plain

    def detach(self) -> nn.Module:
        """Remove the masking from the model in place; weights become ``W ⊙ m``."""
        self._check_active()
        self._remove(apply_mask=True)
        return self.model

    def _remove(self, *, apply_mask: bool) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        for layer in self.layers.values():
            if self.kind == "scores":
                scores.uninstall(layer, apply_mask=apply_mask)
            else:
                fixed.uninstall(layer)
        self._active = False


def attach_scores(
    model: nn.Module,
    ratio: float,
    *,
    init: Literal["magnitude", "random"] = "magnitude",
    scope: Scope = "layer",
    seed: int = 0,
    layers: Mapping[str, nn.Module] | Iterable[str] | None = None,
) -> Masker:
    """Give every prunable weight a learnable score and mask the forward by top-k(|s|).

    ``init="magnitude"``: HYDRA scores ``s = W / max|W|`` (max per layer for
    ``scope="layer"``, over all masked layers for ``scope="global"``), so before any step
    the mask equals :func:`magnitude_masks` with the same ratio and scope. ``init="random"``:
    kaiming-uniform scores drawn from ``seed``. Weights are frozen; every other parameter is
    left as it is (the caller decides what trains). See :mod:`fapkit.masking.scores`.
    """
    ratio = check_ratio(ratio)
    scope = check_scope(scope)
    chosen = resolve_layers(model, layers)
    for name, layer in chosen.items():
        scores.check_free(layer, name)
    gen = torch.Generator().manual_seed(int(seed))
    peak = None
    if scope == "global":  # one scale for all layers: step 0 = global magnitude pruning
        peak = max(float(layer.weight.detach().abs().max()) for layer in chosen.values())
    engine = ScoreEngine(scope)
    for name, layer in chosen.items():
        slot = engine.add(name, layer)
        scores.install(layer, slot, scores.init_scores(layer.weight, init, gen, peak))
    engine.allocate(lambda n: kept_count(n, ratio))
    engine.link()  # the score parameters become views of the engine's score arena
    return Masker(model, chosen, ratio, scope, "scores", engine)


def attach_fixed(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> Masker:
    """Apply fixed bool ``masks`` (``{layer name: mask}``, True = kept) to ``model``.

    Pruned weights are set to 0 now and kept at exactly 0 (see :mod:`fapkit.masking.fixed`);
    call ``masker.bind(optimizer)`` so this also holds right after each optimizer step.
    """
    chosen = resolve_layers(model, list(masks))
    for name, layer in chosen.items():
        fixed.install(layer, name, masks[name])
    n = sum(masks[name].numel() for name in chosen)
    kept = sum(int(masks[name].sum()) for name in chosen)
    return Masker(model, chosen, 1 - kept / n, "given", "fixed")
