"""The `Masker` handle and the two ways to create one.

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
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from . import fixed, scores
from ._fast.engine import FastEngine
from .layers import mask_state, resolve_layers
from .reference import ReferenceEngine, ScoreEngine
from .topk import Scope, check_ratio, check_scope, kept_count


@dataclass(frozen=True)
class LayerRecord:
    """One row of `Masker.report`: a masked layer and how much of it is pruned."""

    name: str
    type: str
    shape: tuple[int, ...]
    n: int
    kept: int
    ratio: float  # fraction removed


@dataclass(eq=False)
class Masker:
    """Handle on the masking of one model: masks, report, export, and undo.

    ``ratio`` is the requested pruning ratio (fraction of prunable weights removed), or for
    masks given to `attach_fixed` the ratio they realise; ``scope`` is ``"layer"``,
    ``"global"`` or ``"given"``. The two kinds are `ScoreMasker` (the mask is learned)
    and `FixedMasker` (the mask is fixed, the kept weights train).
    """

    kind: ClassVar[str]
    learns_mask: ClassVar[bool]  # True if the mask changes while training (score masks)

    model: nn.Module = field(repr=False)
    layers: dict[str, nn.Module] = field(repr=False)
    ratio: float
    scope: str
    _active: bool = field(default=True, repr=False)

    # ------------------------------------------------------------------ what a kind provides
    def _layer_mask(self, layer: nn.Module) -> torch.Tensor:
        """The mask in force on ``layer``, shaped like its weight (may be a view)."""
        raise NotImplementedError

    def _strip_copy(self, original: nn.Module, twin: nn.Module) -> None:
        """Remove the masking from ``twin``, a deep copy of the masked layer ``original``."""
        raise NotImplementedError

    def _uninstall(self, layer: nn.Module, *, apply_mask: bool) -> None:
        raise NotImplementedError

    def _unshared(self, layer: nn.Module) -> list[Any]:
        """Objects of ``layer`` that a plain copy must not duplicate (masking state)."""
        return [mask_state(layer)]

    # ------------------------------------------------------------------ masks
    def _check_active(self) -> None:
        if not self._active:
            raise RuntimeError("this Masker was detached or frozen; use the one that replaced it")

    def masks(self) -> dict[str, torch.Tensor]:
        """Current masks (``True`` = kept), shaped like the weights; copies, not views."""
        self._check_active()
        return {name: self._layer_mask(layer).clone() for name, layer in self.layers.items()}

    def score_parameters(self) -> list[nn.Parameter]:
        """The score parameters (empty for fixed masks): give these to the mask optimizer."""
        self._check_active()
        return []

    def invalidate(self) -> None:
        """Recompute everything at the next forward; needed only after ``.data`` edits."""
        self._check_active()

    def bind(self, optimizer: torch.optim.Optimizer) -> None:
        """Keep the masking in line with ``optimizer``'s steps (fixed masks; a no-op for scores)."""
        self._check_active()

    def freeze(self) -> Masker:
        """Fixed masks of the current selection, trainable weights (see `ScoreMasker.freeze`)."""
        self._check_active()
        return self

    # ------------------------------------------------------------------ reporting
    def report(self) -> list[LayerRecord]:
        """One record per masked layer: name, type, shape, weights ``n``, ``kept``, ratio removed."""
        records = []
        for name, mask in self.masks().items():
            n, kept = mask.numel(), int(mask.sum())
            records.append(LayerRecord(name, type(self.layers[name]).__name__, tuple(mask.shape), n, kept, 1 - kept / n))
        return records

    def totals(self) -> dict[str, int]:
        """Weight counts: prunable (masked) weights and kept ones, all parameters and kept ones.

        ``parameters`` counts every model parameter (biases, norm layers, unmasked layers; scores
        excluded); ``kept_parameters`` is that less the pruned weights.
        """
        masks = self.masks()
        n = sum(m.numel() for m in masks.values())
        kept = sum(int(m.sum()) for m in masks.values())
        score_ids = {id(p) for p in self.score_parameters()}
        total = sum(p.numel() for p in self.model.parameters() if id(p) not in score_ids)
        return {"prunable_weights": n, "kept_weights": kept, "parameters": total, "kept_parameters": total - (n - kept)}

    def summary(self) -> dict[str, Any]:
        """`totals` and the pruning ratios they give: over prunable weights and over all parameters.

        ``ratio_prunable`` sums the masked layers; ``ratio_all`` counts every model parameter, so
        it is smaller.
        """
        t = self.totals()
        n, kept = t["prunable_weights"], t["kept_weights"]
        return {"kind": self.kind, "scope": self.scope, "requested_ratio": self.ratio, "layers": len(self.layers),
                **t, "ratio_prunable": 1 - kept / n, "ratio_all": (n - kept) / t["parameters"]}

    # ------------------------------------------------------------------ leaving
    def export(self) -> nn.Module:
        """A plain copy of the model: same classes, pruned weights = 0, nothing extra.

        Its ``state_dict`` loads with ``strict=True`` into a freshly built model of the same
        architecture (e.g. ``torchvision.models.resnet18(num_classes=1)``).
        """
        current = self.masks()
        # deepcopy would duplicate the masking state; map it to None instead and strip it
        memo: dict[int, Any] = {id(obj): None for layer in self.layers.values() for obj in self._unshared(layer)}
        plain = copy.deepcopy(self.model, memo)
        for name, layer in self.layers.items():
            twin = plain.get_submodule(name)
            self._strip_copy(layer, twin)
            with torch.no_grad():
                twin.weight.mul_(current[name].to(twin.weight.device))
        return plain

    def detach(self) -> nn.Module:
        """Remove the masking from the model in place; weights become ``W ⊙ m``."""
        self._check_active()
        self._remove(apply_mask=True)
        return self.model

    def _remove(self, *, apply_mask: bool) -> None:
        for layer in self.layers.values():
            self._uninstall(layer, apply_mask=apply_mask)
        self._active = False


@dataclass(eq=False)
class ScoreMasker(Masker):
    """Learned masks: top-k of per-weight scores, weights frozen (see `.reference`)."""

    kind: ClassVar[str] = "scores"
    learns_mask: ClassVar[bool] = True

    engine: ScoreEngine | None = field(default=None, repr=False)

    def _layer_mask(self, layer: nn.Module) -> torch.Tensor:
        slot = mask_state(layer)
        slot.engine.sync()
        return slot.current_mask().view(layer.weight.shape)

    def score_parameters(self) -> list[nn.Parameter]:
        self._check_active()
        return [layer.scores for layer in self.layers.values()]

    def invalidate(self) -> None:
        self._check_active()
        self.engine.invalidate()

    def freeze(self) -> Masker:
        """Score masks -> fixed masks of the current selection; weights become trainable.

        Returns the new `FixedMasker`; this one becomes inactive.
        """
        self._check_active()
        current = self.masks()
        self._remove(apply_mask=False)
        for layer in self.layers.values():
            layer.weight.requires_grad_(True)
        frozen = attach_fixed(self.model, current)
        frozen.ratio, frozen.scope = self.ratio, self.scope
        return frozen

    def _unshared(self, layer: nn.Module) -> list[Any]:
        return [mask_state(layer), layer.scores, layer.__dict__["forward"]]

    def _strip_copy(self, original: nn.Module, twin: nn.Module) -> None:
        scores.strip(twin)
        twin.weight.requires_grad_(mask_state(original).weight_requires_grad)

    def _uninstall(self, layer: nn.Module, *, apply_mask: bool) -> None:
        scores.uninstall(layer, apply_mask=apply_mask)


@dataclass(eq=False)
class FixedMasker(Masker):
    """Fixed masks: pruned weights stay exactly zero while the kept ones train (see `.fixed`)."""

    kind: ClassVar[str] = "fixed"
    learns_mask: ClassVar[bool] = False

    _hooks: list[Any] = field(default_factory=list, repr=False)

    def _layer_mask(self, layer: nn.Module) -> torch.Tensor:
        return mask_state(layer).mask()

    def invalidate(self) -> None:
        self._check_active()
        for layer in self.layers.values():
            mask_state(layer).key = ()

    def bind(self, optimizer: torch.optim.Optimizer) -> None:
        """Mask gradients before and re-zero pruned weights after every step of ``optimizer``."""
        self._check_active()
        states = [mask_state(layer) for layer in self.layers.values()]

        def before_step(opt, args, kwargs) -> None:
            for state in states:
                state.mask_grad()

        def after_step(opt, args, kwargs) -> None:
            for state in states:
                state.enforce()

        self._hooks.append(optimizer.register_step_pre_hook(before_step))
        self._hooks.append(optimizer.register_step_post_hook(after_step))

    def _strip_copy(self, original: nn.Module, twin: nn.Module) -> None:
        fixed.strip(twin, mask_state(original).hook_id)

    def _uninstall(self, layer: nn.Module, *, apply_mask: bool) -> None:
        fixed.uninstall(layer)

    def _remove(self, *, apply_mask: bool) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        super()._remove(apply_mask=apply_mask)


_ENGINES = {"fast": FastEngine, "reference": ReferenceEngine}


def attach_scores(
    model: nn.Module,
    ratio: float,
    *,
    init: Literal["magnitude", "random"] = "magnitude",
    scope: Scope = "layer",
    seed: int = 0,
    layers: Mapping[str, nn.Module] | Iterable[str] | None = None,
    engine: Literal["fast", "reference"] = "fast",
) -> ScoreMasker:
    """Give every prunable weight a learnable score and mask the forward by top-k(|s|).

    ``init="magnitude"``: HYDRA scores ``s = W / max|W|`` (max per layer for
    ``scope="layer"``, over all masked layers for ``scope="global"``), so before any step
    the mask equals `magnitude_masks` with the same ratio and scope. ``init="random"``:
    kaiming-uniform scores drawn from ``seed``. Weights are frozen; every other parameter is
    left as it is (the caller decides what trains). See `fapkit.masking.reference`.
    ``engine="reference"`` computes the same masks the plain, slow way (for checking).
    """
    ratio = check_ratio(ratio)
    scope = check_scope(scope)
    if engine not in _ENGINES:
        raise ValueError(f"engine must be one of {sorted(_ENGINES)}, got {engine!r}")
    chosen = resolve_layers(model, layers)
    for name, layer in chosen.items():
        scores.check_free(layer, name)
    gen = torch.Generator().manual_seed(int(seed))
    peak = None
    if scope == "global":  # one scale for all layers: step 0 = global magnitude pruning
        peak = max(float(layer.weight.detach().abs().max()) for layer in chosen.values())
    masks = _ENGINES[engine](scope)
    for name, layer in chosen.items():
        slot = masks.add(name, layer)
        scores.install(layer, slot, scores.init_scores(layer.weight, init, gen, peak))
    masks.allocate(lambda n: kept_count(n, ratio))
    masks.link()  # the fast engine: the score parameters become views of its score arena
    return ScoreMasker(model, chosen, ratio, scope, engine=masks)


def attach_fixed(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> FixedMasker:
    """Apply fixed bool ``masks`` (``{layer name: mask}``, True = kept) to ``model``.

    Pruned weights are set to 0 now and kept at exactly 0 (see `fapkit.masking.fixed`);
    call ``masker.bind(optimizer)`` so this also holds right after each optimizer step.
    """
    chosen = resolve_layers(model, list(masks))
    for name, layer in chosen.items():
        fixed.install(layer, name, masks[name])
    n = sum(masks[name].numel() for name in chosen)
    kept = sum(int(masks[name].sum()) for name in chosen)
    return FixedMasker(model, chosen, 1 - kept / n, "given")
