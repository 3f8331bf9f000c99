"""Output-channel (structured) masks: coupled channel groups, channel gates, learned and fixed channel masks.

A **channel group** is a set of output channels that must be removed together: the channels of
every Conv/Linear layer whose outputs meet (a residual addition sums a ResNet stage's convs, a
depthwise conv has exactly the channels of the expansion conv that feeds it), with the BatchNorm
layers and the consumers' input channels that go with them. `channel_groups` finds them with
torch-pruning's `DependencyGraph` traced on an example input, and leaves out what cannot be
pruned: the channels that reach the model's output (the classifier's logits), and groups holding a
layer whose gating would not equal its removal (LayerNorm/GroupNorm over channels, grouped but not
depthwise convolutions, unwrapped parameters, any module kind not listed in `_MODULES`).

Each group has one mask ``m ∈ {0, 1}^C``. It is applied as a **gate**: a forward hook multiplies the
output of every member that produces those channels, *after* its BatchNorm (the BN's output when the
producing conv feeds one of the group, else the conv/linear output), so a bias or BN's β cannot leak a
constant through a pruned channel. A pruned channel then carries exactly 0 to every consumer, and the
gated model computes what the physically narrowed model (`fapkit.surgery.shrink`) computes, provided the
activations between a gate and its consumers map 0 to 0 (ReLU, ReLU6, pooling: every torchvision model
the kit builds); `shrink` checks this on the example input.

* `attach_channel_scores`: one learnable score per group channel; the forward keeps the top-k scores
  (``k = max(1, round((1 - ratio) * C))`` per group for ``scope="layer"``; over all groups for
  ``"global"``, every group keeping at least one), straight-through backward as in `.scores`;
* `channel_magnitude_masks` + `attach_channel_fixed`: LMW's channel version (channel norms), kept
  channels train, pruned ones stay gated to 0.

The **pruning ratio** here is the fraction of *channels* removed (over all groups); `ChannelMasker.summary`
also reports the fractions of parameters and MACs the narrowed model saves.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from . import _torch
from .layers import MASK_STATE
from .scores import power_of_two_at_least
from .topk import Scope, check_ratio, check_scope, exact_topk_masks, kept_count

SCORES, MASK = "channel_scores", "channel_mask"  # on a group's root layer, so checkpoints carry them
#: Module kinds a group may hold: their gating equals their removal (others exclude the group).
_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class ChannelGroup:
    """One group of coupled output channels: who produces them, where the mask gates them, who reads them."""

    name: str                          # the root layer: the group's first producing layer in model order
    size: int                          # C, its channel count
    producers: tuple[str, ...]         # Conv/Linear layers whose output channels these are (depthwise included)
    gates: tuple[str, ...]             # modules whose output the mask multiplies (a producer's BN, else itself)
    consumers: tuple[str, ...]         # layers reading them as input channels


def default_example(model: nn.Module) -> torch.Tensor:
    """An input batch of 2 for tracing: 32×32 images for a model starting with a Conv2d, vectors for a Linear."""
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
    if first is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d/Linear layer to prune channels of")
    gen = torch.Generator().manual_seed(0)
    if isinstance(first, nn.Conv2d):
        return torch.rand(2, first.in_channels, 32, 32, generator=gen)
    return torch.rand(2, first.in_features, generator=gen)


def dependency_graph(model: nn.Module, example: torch.Tensor) -> Any:
    """torch-pruning's graph of `model` traced on `example` (eval mode, no gradients, mode restored)."""
    import torch_pruning as tp

    was_training = model.training
    frozen = [p for p in model.parameters() if not p.requires_grad]
    model.eval()
    for p in frozen:  # it traces the autograd graph, which frozen weights (score modes) would not build
        p.requires_grad_(True)
    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(model, example_inputs=example.to(_device(model)),
                                                         verbose=False)
    except Exception as err:  # e.g. ShuffleNetV2's channel shuffle (VainF/Torch-Pruning#14)
        raise ValueError(f"torch-pruning cannot trace the channel dependencies of {type(model).__name__} "
                         f"({type(err).__name__}: {err}); structure='channel' needs a model it can trace "
                         "(ShuffleNetV2's channel shuffle is one it cannot)") from err
    finally:
        model.train(was_training)
        for p in frozen:
            p.requires_grad_(False)


def channel_groups(model: nn.Module, example: torch.Tensor | None = None, *, graph: Any = None) -> dict[str, ChannelGroup]:
    """The prunable groups of coupled output channels of `model`, by root layer name, in model order.

    `example`: an input batch to trace (default `default_example`). Groups reaching the model's
    output and groups the gates cannot handle exactly are left out (module docstring).
    """
    import torch_pruning as tp

    graph = dependency_graph(model, default_example(model) if example is None else example) if graph is None else graph
    names = {module: name for name, module in model.named_modules()}
    found: dict[str, ChannelGroup] = {}
    for group in graph.get_all_groups(root_module_types=(nn.Conv2d, nn.Linear)):
        producers, bns, consumers, ok = [], [], [], True
        for item in group.items:
            target, handler = item.dep.target, item.dep.handler
            module = target.module
            if target.type == tp.ops.OPTYPE.OUTPUT or (not target.outputs and graph.is_out_channel_pruning_fn(handler)):
                ok = False  # channels that reach the model's output: the logits
                break
            if not isinstance(module, nn.Module) or module not in names:
                ok = target.type in (tp.ops.OPTYPE.ELEMENTWISE, tp.ops.OPTYPE.RESHAPE, tp.ops.OPTYPE.CONCAT,
                                     tp.ops.OPTYPE.SPLIT, tp.ops.OPTYPE.SLICE)
                if not ok:
                    break
                continue
            if not isinstance(module, _MODULES) or (isinstance(module, nn.Conv2d) and 1 < module.groups
                                                    and module.groups != module.out_channels):
                ok = False
                break
            out = graph.is_out_channel_pruning_fn(handler)
            if out and list(item.idxs) != list(item.root_idxs):
                ok = False  # a producer whose channels are not the root's one to one
                break
            if out and isinstance(module, _BATCHNORM):
                bns.append(module)
            elif out:
                producers.append(module)
            else:
                consumers.append(module)
        if not ok or not producers:
            continue
        gates = set(bns)
        for module in producers:
            after = graph.module2node[module].outputs
            if not (len(after) == 1 and after[0].module in gates):
                gates.add(module)  # no BN of the group right after it: gate its own output
        order = {module: i for i, module in enumerate(names)}
        ordered = lambda modules: tuple(names[m] for m in sorted(set(modules), key=order.__getitem__))  # noqa: E731
        first = ordered(producers)[0]  # the group's name: its first producer in model order
        found[first] = ChannelGroup(first, len(group[0].idxs), ordered(producers), ordered(gates), ordered(consumers))
    if not found:
        raise ValueError(f"{type(model).__name__} has no prunable channel group (every group reaches the output or "
                         "holds a layer whose channels cannot be gated exactly)")
    order = {name: i for i, name in enumerate(names.values())}
    return dict(sorted(found.items(), key=lambda kv: order[kv[0]]))


def channel_norms(model: nn.Module, groups: Mapping[str, ChannelGroup]) -> dict[str, torch.Tensor]:
    """Each group channel's norm: the sum over its producing layers of the L2 norm of that output filter."""
    norms = {}
    for name, group in groups.items():
        total = None
        for producer in group.producers:
            w = model.get_submodule(producer).weight.detach()
            n = w.reshape(w.shape[0], -1).norm(dim=1)
            total = n if total is None else total + n
        norms[name] = total
    return norms


def select(values: Mapping[str, torch.Tensor], ratio: float, scope: Scope) -> dict[str, torch.Tensor]:
    """Keep the largest `values` (one vector per group) at channel pruning ratio `ratio` (canonical top-k).

    ``scope="layer"``: ``k = max(1, round((1 - ratio) * C))`` per group. ``"global"``: that count over
    all channels, every group first keeping its largest channel, the rest ranked together.
    """
    names = list(values)
    flats = [values[n].detach().reshape(-1) for n in names]
    if scope == "layer":
        return {n: exact_topk_masks([f], kept_count(f.numel(), ratio))[0].clone() for n, f in zip(names, flats)}
    k = max(len(flats), kept_count(sum(f.numel() for f in flats), ratio))
    forced = [torch.zeros(f.numel(), dtype=torch.bool) for f in flats]
    for keep, f in zip(forced, flats):
        keep[int(torch.argmax(f))] = True  # the first largest: ties broken by position
    rest = [torch.where(keep, torch.full_like(f, -float("inf")), f) for keep, f in zip(forced, flats)]
    extra = exact_topk_masks(rest, k - len(flats)) if k > len(flats) else [torch.zeros_like(keep) for keep in forced]
    return {n: (keep | more.to(keep.device)).clone() for n, keep, more in zip(names, forced, extra)}


def channel_magnitude_masks(model: nn.Module, ratio: float, *, scope: Scope = "layer",
                            example: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """LMW's channel version: keep the channels of largest norm (`channel_norms`), ``{group: bool vector}``."""
    check_ratio(ratio)
    check_scope(scope)
    groups = channel_groups(model, example)
    return select(channel_norms(model, groups), ratio, scope)


# ----------------------------------------------------------------------------- the gates


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard 0/1 mask; backward: its gradient to the scores, ``grad ⊙ sign(s)`` (as `.scores`)."""

    @staticmethod
    def forward(ctx, scores, hard):  # type: ignore[override]
        ctx.save_for_backward(scores)
        return hard

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (scores,) = ctx.saved_tensors
        return torch.where(scores < 0, -grad, grad), None


def _gate_output(out: torch.Tensor, module: nn.Module, gate: torch.Tensor) -> torch.Tensor:
    """``out`` times the channel gate, along the channel dimension (dim 1; the last for a Linear)."""
    if isinstance(module, nn.Linear):
        return out * gate
    return out * gate.view(1, -1, *([1] * (out.dim() - 2)))


@dataclass(eq=False)
class ChannelMasker:
    """Handle on the channel masking of one model, with the interface `fapkit.training.loop.fit` uses of a `Masker`.

    ``masks()`` is ``{group root: bool vector}`` (True = kept); `report` one row per group;
    `export` the narrowed model (`fapkit.surgery.shrink`); `detach` narrows the model in place.
    """

    kind: ClassVar[str]
    learns_mask: ClassVar[bool]
    structure: ClassVar[str] = "channel"

    model: nn.Module = field(repr=False)
    groups: dict[str, ChannelGroup] = field(repr=False)
    ratio: float
    scope: str
    example: torch.Tensor = field(repr=False)
    dense_counts: tuple[int, int] = (0, 0)       # MACs and parameters of the model before masking
    _hooks: list[tuple[str, Any]] = field(default_factory=list, repr=False)
    _active: bool = field(default=True, repr=False)
    _shrunk: tuple | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ what a kind provides
    def _hard(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _gate(self, name: str) -> torch.Tensor:
        raise NotImplementedError

    _extra: ClassVar[str]                         # the parameter/buffer name on each root layer

    # ------------------------------------------------------------------ installing
    def _install(self) -> None:
        for name, group in self.groups.items():
            for gate in group.gates:
                def hook(module, args, out, _name=name):
                    return _gate_output(out, module, self._gate(_name))
                handle = self.model.get_submodule(gate).register_forward_hook(hook)
                self._hooks.append((gate, handle))

    def _check_active(self) -> None:
        if not self._active:
            raise RuntimeError("this ChannelMasker was detached or frozen; use the one that replaced it")

    def _strip(self, model: nn.Module) -> None:
        """Remove the gates and the extra tensors from `model` (this masker's model or a deep copy of it)."""
        for gate, handle in self._hooks:
            _torch.remove_forward_hook(model.get_submodule(gate), handle.id)
        for name in self.groups:
            module = model.get_submodule(name)
            _torch.remove_buffer(module, self._extra)
            if _torch.has_parameter(module, self._extra):
                _torch.remove_parameter(module, self._extra)

    # ------------------------------------------------------------------ the Masker interface
    def masks(self) -> dict[str, torch.Tensor]:
        """Current masks, one bool vector per group (True = kept); copies."""
        self._check_active()
        return {name: m.clone() for name, m in self._hard().items()}

    def score_parameters(self) -> list[nn.Parameter]:
        self._check_active()
        return []

    def invalidate(self) -> None:
        self._check_active()

    def bind(self, optimizer: torch.optim.Optimizer) -> None:
        """Nothing to keep in line: a pruned channel is gated whatever its weights do."""
        self._check_active()

    def freeze(self) -> ChannelMasker:
        self._check_active()
        return self

    def report(self) -> list[dict[str, Any]]:
        """One row per group: its root ``name``, ``type`` "channels", ``shape`` (C,), ``n``, ``kept``, ``ratio``
        removed and the ``layers`` producing its channels."""
        rows = []
        for name, mask in self.masks().items():
            n, kept = mask.numel(), int(mask.sum())
            rows.append({"name": name, "type": "channels", "shape": (n,), "n": n, "kept": kept,
                         "ratio": 1 - kept / n, "layers": list(self.groups[name].producers)})
        return rows

    def totals(self) -> dict[str, int]:
        """Channels (in groups) and kept ones; parameters and MACs of the dense model and of the narrowed one."""
        masks = self.masks()
        _, (macs, params) = self._narrowed()
        return {"channels": sum(m.numel() for m in masks.values()), "kept_channels": sum(int(m.sum()) for m in masks.values()),
                "parameters": self.dense_counts[1], "kept_parameters": params,
                "macs": self.dense_counts[0], "kept_macs": macs}

    def summary(self) -> dict[str, Any]:
        """`totals` and the fractions removed: of channels (``ratio_prunable``), parameters (``ratio_all``), MACs."""
        t = self.totals()
        return {"kind": self.kind, "structure": "channel", "scope": self.scope, "requested_ratio": self.ratio,
                "layers": len(self.groups), **t,
                "ratio_prunable": 1 - t["kept_channels"] / t["channels"],
                "ratio_all": 1 - t["kept_parameters"] / t["parameters"], "ratio_macs": 1 - t["kept_macs"] / t["macs"]}

    def plain_copy(self) -> nn.Module:
        """A deep copy of the model without the masking (every channel back): what `fapkit.surgery` narrows."""
        twin = copy.deepcopy(self.model)
        self._strip(twin)
        return twin

    def pruned(self) -> dict[str, list[int]]:
        """``{group root: the indices of its pruned channels}``."""
        return {name: torch.nonzero(~m).reshape(-1).tolist() for name, m in self.masks().items()}

    def export(self) -> nn.Module:
        """The narrowed model: a copy with the pruned channels removed (`fapkit.surgery.shrink`)."""
        return copy.deepcopy(self._narrowed()[0])

    def _narrowed(self) -> tuple[nn.Module, tuple[int, int]]:
        """The narrowed model and its (MACs, parameters), recomputed only when a tensor of the model changed
        (a stage's end reports, counts and exports the same model: one surgery, not three)."""
        from ..surgery import count, shrink

        self._check_active()
        key = tuple(_torch.version_key(t) for t in (*self.model.parameters(), *self.model.buffers()))
        key += (tuple(tuple(v) for v in self.pruned().values()), self.model.training)
        if self._shrunk is None or self._shrunk[0] != key:
            narrow = shrink(self.model, self)
            self._shrunk = (key, narrow, count(narrow, self.example))
        return self._shrunk[1], self._shrunk[2]

    def detach(self) -> nn.Module:
        """Remove the masking and the pruned channels from the model in place; returns it (narrowed)."""
        from ..surgery import prune_channels

        pruned = self.pruned()
        self._remove()
        prune_channels(self.model, self.example, pruned)
        return self.model

    def _remove(self) -> None:
        self._check_active()
        self._strip(self.model)
        self._active = False


@dataclass(eq=False)
class ChannelScoreMasker(ChannelMasker):
    """Learned channel masks: top-k of one score per group channel (``<root>.channel_scores``), weights frozen."""

    kind: ClassVar[str] = "scores"
    learns_mask: ClassVar[bool] = True
    _extra: ClassVar[str] = SCORES
    _cache: tuple[tuple, dict[str, torch.Tensor]] | None = field(default=None, repr=False)

    def _scores(self) -> dict[str, nn.Parameter]:
        return {name: getattr(self.model.get_submodule(name), SCORES) for name in self.groups}

    def _hard(self) -> dict[str, torch.Tensor]:
        scores = self._scores()
        key = tuple(_torch.version_key(s) for s in scores.values())
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, select({n: s.abs() for n, s in scores.items()}, self.ratio, self.scope))
        return self._cache[1]

    def _gate(self, name: str) -> torch.Tensor:
        scores = getattr(self.model.get_submodule(name), SCORES)
        return _StraightThrough.apply(scores, self._hard()[name].to(scores.dtype))

    def score_parameters(self) -> list[nn.Parameter]:
        self._check_active()
        return list(self._scores().values())

    def invalidate(self) -> None:
        self._check_active()
        self._cache = None

    def freeze(self) -> ChannelMasker:
        """Score masks -> fixed masks of the current selection; weights become trainable. This one becomes inactive."""
        current = self.masks()
        self._remove()
        for p in self.model.parameters():
            p.requires_grad_(True)
        frozen = attach_channel_fixed(self.model, current, example=self.example, groups=self.groups)
        frozen.ratio, frozen.scope = self.ratio, self.scope
        return frozen


@dataclass(eq=False)
class ChannelFixedMasker(ChannelMasker):
    """Fixed channel masks (``<root>.channel_mask``): kept channels train, pruned ones stay gated to 0."""

    kind: ClassVar[str] = "fixed"
    learns_mask: ClassVar[bool] = False
    _extra: ClassVar[str] = MASK

    def _hard(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self.model.get_submodule(name), MASK) for name in self.groups}

    def _gate(self, name: str) -> torch.Tensor:
        mask = getattr(self.model.get_submodule(name), MASK)
        return mask.to(torch.get_default_dtype())


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _prepare(model: nn.Module, example: torch.Tensor | None,
             groups: Mapping[str, ChannelGroup] | None) -> tuple[torch.Tensor, dict[str, ChannelGroup], tuple[int, int]]:
    """The example, the groups and the dense MACs/parameters of a model about to be channel-masked."""
    from ..surgery import count

    for name, module in model.named_modules():
        if hasattr(module, MASK_STATE) or _torch.has_parameter(module, SCORES) or _torch.has_buffer(module, MASK):
            raise ValueError(f"layer {name!r} is already masked; detach the old masker first")
    example = (default_example(model) if example is None else example).detach().cpu()
    groups = dict(channel_groups(model, example) if groups is None else groups)
    return example, groups, count(model, example)


def attach_channel_scores(model: nn.Module, ratio: float, *, init: Literal["magnitude", "random"] = "magnitude",
                          scope: Scope = "layer", seed: int = 0, example: torch.Tensor | None = None,
                          groups: Mapping[str, ChannelGroup] | None = None) -> ChannelScoreMasker:
    """Give every group channel a learnable score and gate the forward by the top-k scores (module docstring).

    ``init="magnitude"``: ``s = norm / c`` (`channel_norms`; ``c`` the smallest power of two ≥ the largest
    norm, per group for ``scope="layer"``, over all groups for ``"global"``), so before any step the mask
    is `channel_magnitude_masks`' (HYDRA's init, channel-wise). ``init="random"``: uniform draws in
    [0, 1) from `seed`. Weights are left as they are (the caller freezes what must not train).
    """
    ratio, scope = check_ratio(ratio), check_scope(scope)
    if init not in ("magnitude", "random"):
        raise ValueError(f"init must be 'magnitude' or 'random', got {init!r}")
    example, groups, dense = _prepare(model, example, groups)
    norms = channel_norms(model, groups)
    peak = max(float(n.max()) for n in norms.values()) if scope == "global" else None
    gen = torch.Generator().manual_seed(int(seed))
    for name, norm in norms.items():
        if init == "magnitude":
            top = float(norm.max()) if peak is None else peak
            s = norm / power_of_two_at_least(top) if top > 0 else torch.zeros_like(norm)
        else:
            s = torch.rand(norm.shape, generator=gen).to(norm.device)
        model.get_submodule(name).register_parameter(SCORES, nn.Parameter(s.contiguous()))
    masker = ChannelScoreMasker(model, groups, ratio, scope, example, dense)
    masker._install()
    return masker


def attach_channel_fixed(model: nn.Module, masks: Mapping[str, torch.Tensor], *, example: torch.Tensor | None = None,
                         groups: Mapping[str, ChannelGroup] | None = None) -> ChannelFixedMasker:
    """Gate `model`'s channel groups by fixed bool ``masks`` (``{group root: vector}``, True = kept)."""
    example, groups, dense = _prepare(model, example, groups)
    unknown = sorted(set(masks) - set(groups))
    if unknown:
        raise ValueError(f"masks for {unknown} name no channel group of this model (groups: {', '.join(groups)})")
    chosen = {name: groups[name] for name in groups if name in masks}
    for name, group in chosen.items():
        mask = masks[name]
        if mask.dtype != torch.bool or tuple(mask.shape) != (group.size,):
            raise ValueError(f"the mask of group {name!r} must be a bool vector of {group.size}, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        if not bool(mask.any()):
            raise ValueError(f"the mask of group {name!r} keeps no channel; every group keeps at least one")
        module = model.get_submodule(name)
        module.register_buffer(MASK, mask.detach().to(_device(model)).clone())
    n = sum(g.size for g in chosen.values())
    kept = sum(int(masks[name].sum()) for name in chosen)
    masker = ChannelFixedMasker(model, chosen, 1 - kept / n, "given", example, dense)
    masker._install()
    return masker
