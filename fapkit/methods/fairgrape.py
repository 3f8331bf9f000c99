"""FairGRAPE (Lin, Kim, Joo, ECCV 2022): prune so that every group keeps its share of importance.

Restated from the authors' public code (Bernardo1998/FairGRAPE, ``prune.py`` and
``main_test.py``); see DESIGN.md §10 for the method and the quirks we do not copy.

* **group importance** -- ``I_g(w)``, the sum over a pass of the data of ``(|w|·|∂L_g/∂w|)²``,
  ``L_g`` the loss on the batch's samples of group ``g`` (`group_importance`);
* **target share** -- per layer, ``t_g = T_g / Σ_h T_h`` with ``T_g = Σ_w I_g(w)`` over the
  candidate (currently kept) weights;
* **retained share** -- ``p_g = R_g / Σ_h R_h``, ``R_g`` the sum of ``I_g`` over the weights
  kept so far (`group_shares`);
* **greedy** -- repeatedly let the group furthest below its target (``argmin_g p_g − t_g``)
  keep its most important weight not kept yet, until the layer keeps its quota
  (`greedy_keep`, checked bit for bit against the plain loop `greedy_keep_reference`);
* **schedule** -- keep 0.9 of the remaining weights per iteration until the target sparsity
  (`prune_schedule`); importance is recomputed and `fairgrape_masks` applied at each step,
  so masks are nested and every layer has the same sparsity.

What the greedy guarantees: with disjoint supports (each weight matters to one group at most)
a group ends at most one of its own kept weights above its target, ``p_g − t_g ≤ c_g`` with
``c_g = max_{w kept} I_g(w) / Σ_h R_h``, and at most ``Σ_{h≠g} c_h`` below it (the shares sum
to 1). Without that assumption there is no such bound: a group whose best weights matter as
much to another group cannot lift its share by keeping them, and may end far below its target
(tests/test_fairgrape.py shows both).

The greedy runs in a `numba`-compiled loop, compiled on first use (about a second).
"""

from __future__ import annotations

import functools
import math
import operator
import shutil
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..masking import attach_fixed, prunable_layers
from ..records import load_torch, save_torch
from ..registry import FIXED_MASK_FIELDS, MethodSpec, register
from ..training.batches import as_batch, group_count, one_logit
from ..training.loop import StageInputs, fit, scheduled_stage, start_epoch, trainable


def _check_importance(importance: Any, keep: Any) -> tuple[torch.Tensor, int]:
    """``importance`` as a float64 CPU tensor [k, n] and ``keep`` clipped to [0, n], or a ValueError."""
    if not isinstance(importance, torch.Tensor):
        raise ValueError(f"importance must be a torch.Tensor [groups, weights], got {type(importance).__name__}")
    if importance.ndim != 2 or importance.shape[0] < 1:
        raise ValueError(f"importance must have shape [groups, weights] with at least one group, got {list(importance.shape)}")
    if not importance.is_floating_point():
        raise ValueError(f"importance must be a floating-point tensor, got {importance.dtype}")
    if isinstance(keep, bool):
        raise ValueError(f"keep must be an integer count of weights, got {keep!r}")
    try:
        keep = operator.index(keep)
    except TypeError:
        raise ValueError(f"keep must be an integer count of weights, got {keep!r}") from None
    imp = importance.detach().to("cpu", torch.float64)
    bad = ~torch.isfinite(imp) | (imp < 0)
    if bad.any():
        g, w = (int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"importance must be finite and >= 0; found {imp[g, w].item()!r} at group {g}, weight {w}")
    return imp, min(max(keep, 0), imp.shape[1])


def _target_shares(imp: torch.Tensor) -> torch.Tensor:
    """``t_g = T_g / Σ_h T_h`` of a float64 [k, n] tensor; uniform when all importance is 0.

    Both greedy implementations take their targets from here, so their decisions are compared
    on the very same floats. The authors divide 0 by 0 (NaN) for an all-zero layer.
    """
    totals = imp.sum(dim=1)
    total = totals.sum()
    if total == 0:
        return torch.full_like(totals, 1.0 / imp.shape[0])
    return totals / total


def greedy_keep_reference(importance: torch.Tensor, keep: int) -> torch.Tensor:
    """The FairGRAPE greedy one weight at a time, in plain Python: a bool mask [n] with ``keep`` True.

    ``importance`` is [k, n]: k groups, n candidate weights of one layer, finite and >= 0.
    Each group ranks the candidates by its own importance, descending, ties to the lower index.
    Each step picks the group with the smallest ``p_g − t_g`` (ties to the lower group index)
    and keeps that group's highest-ranked weight that no group has kept yet, adding the weight's
    importance for every group to the retained totals ``R`` (float64, summed in group order).
    While ``Σ_h R_h`` is 0 (at the start, and after keeping weights nobody finds important) the
    retained shares are all ``1/k``, as the authors start; the first pick is therefore the group
    with the largest target share. The authors' 0/0 after a zero weight would give NaN and
    always group 0. ``keep >= n`` keeps everything, ``keep <= 0`` nothing. Slow (``O(keep·n)``
    Python steps): use `greedy_keep` for real layers, this one is what the tests trust.
    """
    imp, keep = _check_importance(importance, keep)
    k, n = imp.shape
    if keep == n:
        return torch.ones(n, dtype=torch.bool)
    targets = _target_shares(imp).tolist()
    rows = imp.tolist()
    # sorted() is stable, so equal importances stay in index order
    ranks = [sorted(range(n), key=lambda w, row=row: -row[w]) for row in rows]
    kept = [False] * n
    retained = [0.0] * k
    for _ in range(keep):
        total = 0.0
        for r in retained:
            total += r
        best, best_gap = 0, math.inf
        for g in range(k):
            share = retained[g] / total if total > 0.0 else 1.0 / k
            gap = share - targets[g]
            if gap < best_gap:
                best, best_gap = g, gap
        w = next(w for w in ranks[best] if not kept[w])
        kept[w] = True
        for g in range(k):
            retained[g] += rows[g][w]
    return torch.tensor(kept, dtype=torch.bool)


def _greedy_loop(imp_t: np.ndarray, order: np.ndarray, targets: np.ndarray, keep: int) -> np.ndarray:
    """The loop of `greedy_keep_reference` on arrays (compiled by `numba`).

    ``imp_t`` is [n, k] so one weight's importances are adjacent in memory; ``order`` [k, n]
    holds each group's ranking. Each group walks its ranking with a pointer that never moves
    back: a weight kept by another group is skipped once and never looked at again by this
    group, so the whole selection costs ``O(k·n)``. Every float operation is the reference's,
    in the same order, so the decisions are identical.
    """
    n, k = imp_t.shape
    kept = np.zeros(n, np.bool_)
    pointer = np.zeros(k, np.int64)
    retained = np.zeros(k, np.float64)
    uniform = 1.0 / k
    for _ in range(keep):
        total = 0.0
        for g in range(k):
            total += retained[g]
        best = 0
        best_gap = np.inf
        for g in range(k):
            share = retained[g] / total if total > 0.0 else uniform
            gap = share - targets[g]
            if gap < best_gap:
                best = g
                best_gap = gap
        j = pointer[best]
        while kept[order[best, j]]:
            j += 1
        w = order[best, j]
        pointer[best] = j + 1
        kept[w] = True
        for g in range(k):
            retained[g] += imp_t[w, g]
    return kept


@functools.cache
def _compiled_loop() -> Any:
    """`_greedy_loop` compiled by `numba` on first call, or None when numba is not installed."""
    try:
        import numba
    except ImportError as err:
        warnings.warn(f"greedy_keep needs numba for speed ({err}); falling back to greedy_keep_reference, which "
                      "gives the same masks but takes minutes on a ResNet18 (pip install numba)", stacklevel=3)
        return None
    # no fastmath: reassociating the sums would change decisions against the reference
    return numba.njit(cache=False, nogil=True)(_greedy_loop)


def greedy_keep(importance: torch.Tensor, keep: int) -> torch.Tensor:
    """The same mask as `greedy_keep_reference`, bit for bit, in ``O(k·n)`` compiled steps.

    The rankings come from one stable descending sort per group; the loop itself is sequential
    (which group picks next depends on the running totals) and runs in `numba`: 0.75 s for the
    largest ResNet18 layer (2.4M weights, two groups, 90 % kept; 2 s with seven groups) on two
    CPU cores, after a one-off compilation of about a second. Without numba it warns and runs
    the reference.
    """
    imp, keep = _check_importance(importance, keep)
    k, n = imp.shape
    if keep == n:
        return torch.ones(n, dtype=torch.bool)
    if keep == 0:
        return torch.zeros(n, dtype=torch.bool)
    loop = _compiled_loop()
    if loop is None:
        return greedy_keep_reference(importance, keep)
    # sorting in the input dtype ranks exactly as in float64 (the conversion keeps order), faster
    source = importance.detach().cpu()
    order = torch.sort(source, dim=1, descending=True, stable=True).indices.numpy()
    kept = loop(imp.T.contiguous().numpy(), order, _target_shares(imp).numpy(), keep)
    return torch.from_numpy(kept)


def group_shares(importance: torch.Tensor, mask: torch.Tensor,
                 candidates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per group, the retained share of a layer's importance and its target share (float64 [k] each).

    ``importance`` is [k, *shape] (one layer's `group_importance`), ``mask`` a bool tensor
    shaped like the weight (the kept weights), ``candidates`` the weights the targets are
    taken over (every weight by default; `fairgrape_masks` uses the previous mask). Shares
    follow the greedy's conventions: all ``1/k`` where the total is 0.
    """
    k = importance.shape[0]
    if mask.shape != importance.shape[1:]:
        raise ValueError(f"mask has shape {list(mask.shape)}, importance is {list(importance.shape)} ([groups, *weight shape])")
    imp = importance.detach().to("cpu", torch.float64).reshape(k, -1)
    mask = mask.detach().cpu().reshape(-1).bool()
    pool = imp if candidates is None else imp[:, candidates.detach().cpu().reshape(-1).bool()]
    retained = imp[:, mask].sum(dim=1)
    total = retained.sum()
    shares = retained / total if total > 0 else torch.full_like(retained, 1.0 / k)
    return shares, _target_shares(pool)


def fairgrape_kept_count(n: int, sparsity: float) -> int:
    """Weights a layer of ``n`` keeps at ``sparsity``: ``floor(n·(1 − sparsity))``, as the authors count.

    The product is taken up to 1e-6 below an integer, which is rounding: in floats
    ``50 * (1 - 0.8)`` is ``9.999999999999998``, and the authors' ``int()`` keeps 9 of 50 at 80 %.
    """
    return math.floor(n * (1.0 - sparsity) + 1e-6)


def fairgrape_masks(importance: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor],
                    sparsity: float) -> dict[str, torch.Tensor]:
    """One FairGRAPE step: new bool masks, per layer a subset of ``masks`` keeping `fairgrape_kept_count`.

    ``importance[name]`` is [k, *shape] (`group_importance`), ``masks[name]`` the current bool
    mask shaped like the weight. The candidates are the currently kept weights, and the targets
    are taken over them; a layer never keeps more than it has (the quota is capped at the
    current count). Layer-wise, so every layer ends at the same sparsity.
    """
    if not (isinstance(sparsity, (int, float)) and not isinstance(sparsity, bool) and 0.0 <= sparsity < 1.0):
        raise ValueError(f"sparsity must be a number in [0, 1) (fraction of weights removed), got {sparsity!r}")
    if set(importance) != set(masks):
        raise ValueError(f"importance and masks name different layers: only in importance "
                         f"{sorted(set(importance) - set(masks))}, only in masks {sorted(set(masks) - set(importance))}")
    new: dict[str, torch.Tensor] = {}
    for name, mask in masks.items():
        scores = importance[name]
        if mask.dtype != torch.bool or scores.shape[1:] != mask.shape:
            raise ValueError(f"layer {name!r}: need a bool mask and importance [groups, *mask shape]; got a "
                             f"{mask.dtype} mask {list(mask.shape)} and importance {list(scores.shape)}")
        flat = mask.detach().cpu().reshape(-1)
        candidates = torch.nonzero(flat).squeeze(1)
        keep = min(fairgrape_kept_count(flat.numel(), sparsity), candidates.numel())
        chosen = greedy_keep(scores.detach().cpu().reshape(scores.shape[0], -1)[:, candidates], keep)
        out = torch.zeros_like(flat)
        out[candidates[chosen]] = True
        new[name] = out.reshape(mask.shape).to(mask.device)
    return new


def prune_schedule(target: float, keep_per_iteration: float = 0.9) -> list[float]:
    """The sparsities of FairGRAPE's iterations: ``s_t = min(1 − keep^t, target)``, ``t = 1..T``.

    ``T = ceil(log(1 − target) / log keep)`` (16 at ``target=0.8``, ``keep=0.9``), the last
    entry is ``target`` itself. A target that ``1 − keep^t`` reaches exactly in real arithmetic
    (e.g. ``0.19`` at 0.9) gets no extra step from the rounding of the logarithms.
    """
    for label, value in (("target sparsity", target), ("keep_per_iteration", keep_per_iteration)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise ValueError(f"{label} must be a number in (0, 1), got {value!r}")
    steps = max(1, math.ceil(math.log(1.0 - target) / math.log(keep_per_iteration) - 1e-9))
    return [min(1.0 - keep_per_iteration**t, target) for t in range(1, steps)] + [float(target)]


def group_importance(model: nn.Module, weights: Mapping[str, nn.Parameter], loader: Iterable, *,
                     device: torch.device | str, groups: int,
                     masks: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """FairGRAPE's importance: ``{name: [groups, *weight shape]}``, the sum over ``loader`` of ``(|w|·|∂L_g/∂w|)²``.

    ``loader`` yields ``(x, y, z)``: y binary 0/1, z group ids in ``0..groups-1``; the model
    gives one logit per sample ([B] or [B, 1]). ``L_g`` is the mean binary cross-entropy over
    the batch's samples of group g; groups absent from a batch add nothing. One forward per
    batch, then one ``torch.autograd.grad`` per group, so ``.grad`` is never touched and no
    parameter moves. The batches go to ``device``; the model is expected there already.
    Pruned weights of fixed-mask layers are 0, so their importance is 0; ``masks`` (bool,
    shaped like the weights) zeroes more if given.

    The pass runs in eval mode, so scoring leaves BatchNorm's running statistics alone and
    drops dropout; every module's mode is restored afterwards. Departures from the authors'
    ``importance_by_class0``: they score in train mode (batch statistics, running statistics
    updated), accumulate ``.grad`` across groups and batches without zeroing, take an Adam step
    on the scored copy after every group, recompute the forward per group, use their task's
    cross-entropy, and divide only the last group's total by the batch count. Summing instead of
    averaging changes no mask (shares and rankings do not depend on a common scale).
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    if not weights:
        raise ValueError("weights is empty: pass {name: parameter} of the layers to score")
    owned = {id(p) for p in model.parameters()}
    for name, w in weights.items():
        if not isinstance(w, nn.Parameter) or id(w) not in owned:
            raise ValueError(f"weights[{name!r}] is not a parameter of the model")
    if masks is not None:
        for name, m in masks.items():
            if name not in weights or m.shape != weights[name].shape:
                raise ValueError(f"masks[{name!r}] names no weight or has the wrong shape {list(m.shape)}")
    device = torch.device(device)
    names = list(weights)
    params = [weights[name] for name in names]
    totals = {name: torch.zeros((groups, *w.shape), dtype=w.dtype, device=w.device) for name, w in weights.items()}
    modes = [(m, m.training) for m in model.modules()]
    needs_grad = [p.requires_grad for p in params]
    model.eval()
    try:
        for p in params:
            p.requires_grad_(True)  # a frozen layer can still be scored
        with torch.enable_grad():
            for index, batch in enumerate(loader):
                x, y, z = as_batch(batch, device, index=index)
                _check_groups(y, z, groups, index)
                out = one_logit(model(x), y, z)
                y, z = y.float(), z.long()
                present = [g for g in range(groups) if (z == g).any()]
                for i, g in enumerate(present):
                    sel = z == g
                    loss = F.binary_cross_entropy_with_logits(out[sel], y[sel])
                    grads = torch.autograd.grad(loss, params, retain_graph=i < len(present) - 1, allow_unused=True)
                    for name, w, grad in zip(names, params, grads):
                        if grad is not None:  # a weight the output does not depend on scores 0
                            totals[name][g] += (w.detach().abs() * grad.abs()).square()
    finally:
        for p, flag in zip(params, needs_grad):
            p.requires_grad_(flag)
        for m, flag in modes:
            m.training = flag
    if masks is not None:
        for name, m in masks.items():
            totals[name] *= m.to(totals[name].device, totals[name].dtype)
    return totals


def _check_groups(y: torch.Tensor, z: torch.Tensor, groups: int, index: int) -> None:
    if ((y != 0) & (y != 1)).any():
        raise ValueError(f"labels y must be 0/1; batch {index} has {sorted(set(y.unique().tolist()))[:5]}")
    bad = (z != z.round()) | (z < 0) | (z >= groups)
    if bad.any():
        raise ValueError(f"group ids z must be integers in 0..{groups - 1}; batch {index} has "
                         f"{sorted(set(z[bad].unique().tolist()))[:5]}")


# ----------------------------------------------------------------------------- the stage

#: The state after each completed iteration (model, masks), so a killed run resumes at the next one.
_STATE = "fairgrape_state.pt"
#: The iterations' fine-tuning runs at this fraction of the stage's lr: the authors fine-tune at
#: Adam 1e-5 between iterations and retrain at 1e-4 (CelebA).
FINETUNE_LR_FACTOR = 0.1


def train_stage(inputs: StageInputs) -> tuple[nn.Module, Any, list[dict[str, Any]]]:
    """FairGRAPE as one stage of the kit: iterative fair pruning of the trained dense model, then a retrain.

    Iteration t (of `prune_schedule`): the groups' importance on the current model (the first
    ``importance_images`` training images), `fairgrape_masks` to sparsity s_t in every prunable
    layer (first conv and classifier included, as the authors prune them), then
    ``finetune_epochs`` of fine-tuning at ``FINETUNE_LR_FACTOR`` × the stage's lr. Last, the retrain:
    the run's ``epochs`` at ``masked_lr`` (None: ``lr``) on the kit's schedule, returning the epoch
    with the best validation loss as the authors do (every other method reports its last step).
    History records carry ``iteration`` (0: the retrain) and ``sparsity``.
    """
    cfg, options, device = inputs.cfg, inputs.cfg.fairgrape, inputs.device
    model = inputs.model.to(device)
    layers = prunable_layers(model)
    masks = {name: torch.ones_like(layer.weight, dtype=torch.bool) for name, layer in layers.items()}
    groups = group_count(inputs.train)
    lr = cfg.finetune_lr
    schedule = prune_schedule(cfg.ratio, options.keep_per_iteration)
    history: list[dict[str, Any]] = []
    done, state_path = 0, inputs.workdir / _STATE
    if state_path.exists():  # a killed run: continue after its last completed iteration
        state = load_torch(state_path)
        model.load_state_dict(state["model"])
        masks, history, done = state["masks"], state["history"], state["iteration"]
    for t, sparsity in enumerate(schedule, start=1):
        if t <= done:
            continue
        weights = {name: layer.weight for name, layer in layers.items()}
        importance = group_importance(model, weights, _first_images(inputs.train, options.importance_images),
                                      device=device, groups=groups, masks=masks)
        masks = fairgrape_masks(importance, masks, sparsity)
        record = {"iteration": t, "sparsity": sparsity}
        if options.finetune_epochs > 0:
            masker = attach_fixed(model, masks)
            workdir = inputs.workdir / f"iteration-{t:02d}"
            # the authors' fixed fine-tuning between iterations; the final retrain follows the run's budget
            stage = scheduled_stage(cfg, "ce", options.finetune_epochs, lr * FINETUNE_LR_FACTOR, adaptive=False)
            fine = fit(model, trainable(model), inputs.train, inputs.monitor, stage, masker=masker, workdir=workdir,
                       progress=inputs.progress, device=device, seed=cfg.seed + t, desc=f"{inputs.desc} it {t}")
            masker.detach()  # the weights are now W ⊙ m; the next iteration masks them further
            shutil.rmtree(workdir, ignore_errors=True)
            record.update(fine[-1])
        else:
            with torch.no_grad():
                for name, layer in layers.items():
                    layer.weight.mul_(masks[name].to(layer.weight.dtype))
        history.append(record)
        save_torch(state_path, {"iteration": t, "model": model.state_dict(), "masks": masks, "history": history})
    masker = attach_fixed(model, masks)
    retrain = fit(model, trainable(model), inputs.train, inputs.monitor, scheduled_stage(cfg, "ce", cfg.epochs, lr),
                  masker=masker, workdir=inputs.workdir / "retrain", progress=inputs.progress, device=device, seed=cfg.seed,
                  desc=f"{inputs.desc} retrain", select="best_val_loss")
    shutil.rmtree(inputs.workdir / "retrain", ignore_errors=True)
    state_path.unlink(missing_ok=True)
    return model, masker, history + [{"iteration": 0, "sparsity": cfg.ratio, **h} for h in retrain]


def _first_images(loader: Iterable, n: int | None) -> Iterable:
    """The loader's batches up to about `n` images (None: all of them)."""
    if n is None:
        return loader
    start_epoch(loader, 0)  # the same images every time: a deterministic importance pass

    def batches() -> Iterable:
        seen = 0
        for batch in loader:
            if seen >= n:
                return
            yield batch
            seen += len(batch[1])
    return batches()


# Not a row of the paper's tables 2–3 (DESIGN.md §10): registered after the paper's eight, with its trainer.
register(MethodSpec("fairgrape", "FairGRAPE", 3, "normal", FIXED_MASK_FIELDS + ("fairgrape",), mask="importance",
                    trainer=train_stage))
