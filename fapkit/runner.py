"""The paper's eight methods (tables 2–3) and FairGRAPE and CEAG, each one call: ``fapkit.run(method, ...)``.

=============  ==================================================================  =====================
method         what happens                                                        what trains
=============  ==================================================================  =====================
normal         dense model from random init, cross-entropy, `pretrain_epochs`      weights, biases, BN
adv_debias     the normal model, then `epochs` of Adversarial Debiasing            weights, biases, BN
               (Zhang et al. 2018; adversary = the DI/DEO discriminator, α mix)
scratch        random init + random fixed mask at `ratio`, cross-entropy for        unpruned weights, BN
               ``pretrain_epochs + epochs`` (the same budget as pretrain + prune)
sgdp           the normal model, learnable score mask (edge-popup, HYDRA init),     mask scores only
               cross-entropy, `epochs`
lmw            the normal model, layer-wise magnitude mask (Han 2015), fine-tune   unpruned weights, BN
fair_sgdp      sgdp started from the adv_debias model                              mask scores only
fair_lmw       lmw started from the adv_debias model                               unpruned weights, BN
faprune        the normal model, score mask trained adversarially against the      mask scores only
               DI/DEO discriminator (Algorithm 1), `epochs`
fairgrape †    the normal model, pruned iteratively keeping each group's share of  unpruned weights, BN
               weight importance, fine-tuned between iterations, then retrained
               (Lin et al. 2022; `fapkit.methods.fairgrape`)
ceag †         the normal model, LMW's magnitude mask, fine-tuned with one         unpruned weights, BN
               Lagrange multiplier per group bounding its excess accuracy loss
               (Hashemizadeh et al. 2024; `fapkit.methods.ceag`)
=============  ==================================================================  =====================

† not in the paper's tables 2–3 (DESIGN.md §10); each is one spec with a stage trainer of its own.

Each row is one `fapkit.registry.MethodSpec` (parent, mask, step kind, epoch budget, the settings its
cache key reads); `_train_method` is the one stage runner that reads it, so a new method is one
``registry.register(MethodSpec(...))``.

In the score modes the weights, biases and BN affine parameters stay frozen; BN running statistics
keep updating in train mode so they follow the masked network, and (``bn_reestimate``, the
default) are recomputed on the training split once the mask is final. Every stage, a user's model
included, trains on the same schedule (``schedule="cosine"``: linear warm-up, then cosine to ≈ 0;
`fapkit.training.schedule`) and reports the model of its last step: no checkpoint is picked afterwards.
With ``init="random"`` (random-init fair subnetwork search, sgdp/faprune only) the frozen weights are the
architecture's default random init and BN's affine parameters stay at 1/0, i.e. non-affine BN as in edge-popup.

Every stage is cached under ``runs/`` by a key over the settings that stage reads (see
`stage_key`) and the kit's version, so e.g. SGDP, LMW and FAPrune reuse one pretrained dense model.
A stage depends on nothing but its parent stage (`stage_chain`), which is what lets `fapkit.sweep`
run a grid as a Dask task graph. Processes sharing ``runs/`` take a file lock per stage
(``runs/<stage>-<key>.lock``): one of them trains, the others wait and load its record.
"""
from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn as nn

from .cache import RunResult, is_cached, load_result, save_result, stage_dir, stage_key, stage_lock, stage_settings
from .config import RunConfig, make_config, resolve_budget, updated
from .data import make_loader
from .fairness.metrics import accuracy_change, at_chance, majority_rate
from .masking import attach_fixed, attach_scores, magnitude_masks, random_masks
from .masking.channels import attach_channel_fixed, attach_channel_scores, channel_magnitude_masks
from .masking.layers import is_prunable
from .models import build_model
from .registry import MethodSpec, method_names, parent_of, spec_of
from .splits import load_splits
from .training.batches import group_count, group_names
from .training.evaluation import evaluate
from .training.loop import StageInputs, fit, scheduled_stage, trainable
from .training.runtime import keep_freed_memory

#: A user's model: a module, or a function of the seed that returns one (each seed its own init).
UserModel = nn.Module | Callable[[int], nn.Module]
_EVAL_BATCH = 256  # evaluation only: larger batches run faster on a CPU (same metrics up to float rounding)


@dataclass
class _Context:
    """Per-call state: config, loaders, where runs live, and whether the cache may be used."""

    cfg: RunConfig
    train: Iterable
    valid: Iterable                    # the whole validation split: evaluated once, at the end of a stage
    test: Iterable
    monitor: Iterable                  # per-epoch validation (the first `n_monitor` validation images)
    runs_dir: Path
    progress: bool
    user_model: nn.Module | None
    cache: bool
    device: torch.device
    computed_seconds: float = 0.0      # time spent computing stages so far (to exclude parents)
    results: dict[str, RunResult] = field(default_factory=dict)  # the stages this call ran or loaded


def run(method: str = "faprune", *, preset: str = "quick", model: UserModel | None = None,
        train: Iterable | None = None, valid: Iterable | None = None, test: Iterable | None = None,
        progress: bool = False, runs_dir: str | Path = "runs", **settings: Any) -> RunResult:
    """Run one method of the paper and return its test-split result.

    Settings (see `fapkit.config.RunConfig`): dataset, target, sensitive, size, arch, ratio, alpha,
    lam, epochs, pretrain_epochs, seed, init, scope, ... on top of a preset ("smoke", "quick",
    "paper"). Pass ``model=`` (any nn.Module with one logit, randomly initialised, or a function of the
    seed returning one) and/or ``train=``/``valid=``/``test=`` loaders of (x, y, z) batches to use your
    own; such runs are not cached.
    """
    ctx = _context(method, preset, model, train, valid, test, progress, runs_dir, settings)
    return _run_stage(method, ctx)


def run_variants(method: str, variants: Sequence[dict[str, Any]], *, preset: str = "quick",
                 model: UserModel | None = None, train: Iterable | None = None, valid: Iterable | None = None,
                 test: Iterable | None = None, progress: bool = False, runs_dir: str | Path = "runs",
                 shared: dict[str, RunResult] | None = None,
                 **settings: Any) -> tuple[dict[str, RunResult], list[RunResult]]:
    """`fapkit.run` of `method` once per dict of `variants` (settings on top of `settings`), in one call.

    Stages that read none of a variant's settings (the dense model every knob value starts from)
    are trained once and shared, also for a user's ``model=`` and loaders, which are not cached
    (a knob sweep on them would otherwise pretrain once per value). Returns the stages every
    variant shares, by name, and the variants' results in order. `shared`: such stages from an earlier
    call with the same settings (updated in place), so a later call trains only the new variants.
    """
    base = _context(method, preset, model, train, valid, test, progress, runs_dir, settings)
    shared = {} if shared is None else shared
    results = []
    for variant in variants:
        cfg = updated(base.cfg, **variant)
        ctx = replace(base, cfg=cfg, results={stage: r for stage, r in shared.items()
                                              if stage_settings(stage, cfg) == stage_settings(stage, base.cfg)})
        results.append(_run_stage(method, ctx))
        shared.update({stage: r for stage, r in ctx.results.items()
                       if stage != method and stage_settings(stage, cfg) == stage_settings(stage, base.cfg)})
    return shared, results


def _context(method: str, preset: str, model: UserModel | None, train: Iterable | None, valid: Iterable | None,
             test: Iterable | None, progress: bool, runs_dir: str | Path, settings: dict[str, Any]) -> _Context:
    """Config and loaders of one `fapkit.run` call, checked before anything trains."""
    user = model is not None or train is not None
    # a preset's epoch counts were not chosen for the user's model or data
    cfg = resolve_budget(make_config(method, preset=preset, **settings), user=user, given="budget" in settings)
    if (train is None) != (valid is None) or (train is None) != (test is None):
        raise ValueError("pass all three of train=, valid=, test= loaders, or none of them")
    if model is not None and not isinstance(model, nn.Module) and callable(model):
        model = model(cfg.seed)  # a factory of the seed: each seed starts from its own init
    if model is not None:
        check_model(model, method)
    keep_freed_memory()  # process-wide: reuse freed tensor memory instead of page-faulting it in again
    user_data = train is not None
    monitor = valid
    if not user_data:
        train, valid, test, monitor = _dataset_loaders(cfg)
    return _Context(cfg, train, valid, test, monitor, Path(runs_dir), progress, model,
                    cache=model is None and not user_data, device=_device(cfg.device))


def check_model(model: nn.Module, method: str) -> None:
    """Refuse, before any training, a user's model that `method` cannot train, saying why.

    Every method trains some parameters of the model (a model without any cannot learn), and every
    pruning method needs a prunable (Conv/Linear) layer of its stages; the model's output shape is
    checked at its first batch (one logit per sample).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(True for _ in model.parameters()):
        raise ValueError(f"the model ({type(model).__name__}) has no parameters: {method!r} has nothing to train; "
                         "pass a model with at least one Conv/Linear layer and one output logit per sample")
    chain = [method]
    while (parent := spec_of(chain[-1]).parent) is not None:
        chain.append(parent)
    pruning = [stage for stage in chain if not spec_of(stage).dense]
    if pruning and not any(is_prunable(m) for m in model.modules()):
        raise ValueError(f"the model ({type(model).__name__}) has no prunable Conv/Linear layer, which {pruning[0]!r} "
                         f"masks; methods that do not prune: "
                         f"{', '.join(m for m in method_names() if spec_of(m).dense)}")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here; use device='cpu'")
    return torch.device(name)


def _dataset_loaders(cfg: RunConfig) -> tuple[Iterable, Iterable, Iterable, Iterable]:
    """train, valid, test and the per-epoch monitoring loader (a prefix of valid); evaluation batches are larger."""
    splits = load_splits(cfg.data)
    # Before any training: the game needs two groups in the training data. An evaluation split that cannot
    # define a metric is measured anyway, that metric nan and flagged (`fapkit.training.evaluation.evaluate`).
    _require_both_groups(splits["train"], "train")
    n_monitor = cfg.data.n_monitor
    monitor_ds = splits["valid"].subset(n_monitor) if n_monitor and n_monitor < len(splits["valid"]) else splits["valid"]
    train = make_loader(splits["train"], cfg.batch_size, shuffle=True, seed=cfg.seed)
    valid, test, monitor = (make_loader(ds, max(cfg.batch_size, _EVAL_BATCH), shuffle=False, seed=cfg.seed)
                            for ds in (splits["valid"], splits["test"], monitor_ds))
    return train, valid, test, monitor


def _require_both_groups(ds: Any, split: str) -> None:
    """A ValueError naming the split and the groups found unless `ds` has samples of at least two sensitive groups.

    DI and DEO compare groups, so a split needs two of them; with k > 2 groups a split may miss
    some (their rates are then nan, and DI/DEO are taken over the groups present).
    """
    z = getattr(ds, "z", None)
    if z is None or not len(z):
        return
    found = sorted(int(g) for g in torch.unique(torch.as_tensor(z)).tolist())
    if len(found) < 2:
        raise ValueError(f"the {split} split has samples of only one sensitive group (groups found: {found}); "
                         "DI and DEO need samples from at least two groups")


# ----------------------------------------------------------------------------- stages


def _run_stage(method: str, ctx: _Context) -> RunResult:
    """The result of `method`: already in this call (`ctx.results`), cached, or computed now (with its parents)."""
    if method not in ctx.results:
        ctx.results[method] = _cached_or_computed(method, ctx)
    return ctx.results[method]


def _cached_or_computed(method: str, ctx: _Context) -> RunResult:
    cfg = ctx.cfg
    if not ctx.cache:  # the user's model or loaders: a fresh folder no one else can reach, so no lock
        return _compute_stage(method, ctx, ctx.runs_dir / f"{method}-uncached-"
                              f"{time.strftime('%Y%m%d-%H%M%S')}-{id(ctx):x}")
    run_dir = stage_dir(ctx.runs_dir, method, stage_key(method, cfg))
    if is_cached(run_dir):
        return load_result(method, cfg, run_dir)
    # Another process (a Dask worker, a second notebook) may reach the same key now: the lock lets
    # one of them train while the others wait, then load its record. A killed holder's lock is
    # released by the OS, and the next holder resumes from the per-epoch checkpoint.
    with stage_lock(run_dir):
        if is_cached(run_dir):  # finished while we waited
            return load_result(method, cfg, run_dir)
        return _compute_stage(method, ctx, run_dir)


def _compute_stage(method: str, ctx: _Context, run_dir: Path) -> RunResult:
    """Train `method` (its parents on the way) into `run_dir`, evaluate it and write its record."""
    cfg = ctx.cfg
    run_dir.mkdir(parents=True, exist_ok=True)
    start, parents_before = time.perf_counter(), ctx.computed_seconds
    model, masker, history = _train_method(method, ctx, run_dir)
    groups = group_count(ctx.train)  # the training data's k: a split missing a group still reports all k
    plain = masker.export() if masker is not None else model  # what is cached and shipped is what is measured
    metrics = evaluate(plain, ctx.test, device=ctx.device, groups=groups, fused=True)
    valid_metrics = evaluate(plain, ctx.valid, device=ctx.device, groups=groups, fused=True)  # for choosing settings
    names = group_names(ctx.train)
    if names is not None:  # tables and figures label the groups by name
        metrics["group_names"] = valid_metrics["group_names"] = names
    for split, measured in (("test", metrics), ("validation", valid_metrics)):
        _warn_undefined(method, split, measured.get("undefined", {}))
    _flag_at_chance(method, metrics, valid_metrics)
    status = _adversary_status(method, history, ctx)
    if status is not None:
        metrics["adversary_status"] = valid_metrics["adversary_status"] = status
    if status == "uninformed":
        warnings.warn(f"{method}: the adversary ended its warm-up uninformed (held-out advantage "
                      f"{_last_advantage(history):.4f} nats, below {cfg.adversary.warmup_share:g} × the "
                      f"{history[0].get('warmup_reference', float('nan')):.4f} nats the starting predictions carry "
                      "about z): its fairness term gave no signal; raise disc_warmup or disc_lr, or try "
                      "disc_input='logit' (the result is flagged `uninformed`)", UserWarning, stacklevel=2)
    dense = _dense_ancestor(method, ctx)
    if dense is not None:  # each group's accuracy change against the dense model it was pruned from
        metrics.update(accuracy_change(metrics["groups"], dense.metrics["groups"], metrics["acc"], dense.acc))
        valid_metrics.update(accuracy_change(valid_metrics["groups"], dense.valid_metrics["groups"],
                                             valid_metrics["acc"], dense.valid_metrics["acc"]))
    if masker is not None:
        summary, totals = masker.summary(), masker.totals()
        layers = [asdict(record) if is_dataclass(record) else record for record in masker.report()]
    else:
        summary, totals, layers = {"ratio_prunable": 0.0, "ratio_all": 0.0}, {}, []
    plain = plain.cpu().eval()
    result = RunResult(method, cfg, metrics, float(summary["ratio_prunable"]), float(summary["ratio_all"]), history,
                       plain, str(run_dir), layers=[{k: _plain(v) for k, v in row.items()} for row in layers],
                       valid_metrics=valid_metrics, mask_totals=totals)
    elapsed = time.perf_counter() - start
    result.seconds = elapsed - (ctx.computed_seconds - parents_before)  # parents computed on the way excluded
    ctx.computed_seconds = parents_before + elapsed
    save_result(result, run_dir)
    return result


def _flag_at_chance(method: str, metrics: dict[str, Any], valid_metrics: dict[str, Any]) -> None:
    """Flag (record and warn) a model whose validation accuracy is not above the majority-class rate."""
    flag = at_chance(valid_metrics["acc"], valid_metrics["groups"])
    metrics["at_chance"] = valid_metrics["at_chance"] = flag
    if flag:
        majority, n = majority_rate(valid_metrics["groups"])
        warnings.warn(f"{method}: validation accuracy {valid_metrics['acc']:.3f} is not above always predicting the "
                      f"commoner label ({majority:.3f} on {n} samples, + 2 standard errors): the model has not learnt "
                      "the target, and its DI / DEO describe a near-chance predictor; train longer (pretrain_epochs, "
                      "epochs, patience, budget_ceiling) or on more data (the result is flagged `at_chance`)",
                      UserWarning, stacklevel=3)


def _warn_undefined(method: str, split: str, undefined: dict[str, str]) -> None:
    """One warning per split naming the metrics it could not define (the DEO kinds share their reason)."""
    if undefined:
        metrics = ", ".join(metric.upper() for metric in undefined)
        reasons = "; ".join(sorted(set(undefined.values())))
        warnings.warn(f"{method}: {metrics} undefined on the {split} split ({reasons}); nan in the result and the "
                      "tables, the other metrics kept", UserWarning, stacklevel=3)


def _adversary_status(method: str, history: list[dict[str, Any]], ctx: _Context) -> str | None:
    """The game's `fapkit.methods.adversarial.adversary_status`: this stage's own, else that of the parent it starts from."""
    if history and "warmup_status" in history[0]:
        return str(history[0]["warmup_status"])
    parent = parent_of(method, ctx.cfg)
    result = ctx.results.get(parent) if parent is not None else None
    return result.metrics.get("adversary_status") if result is not None else None


def _last_advantage(history: list[dict[str, Any]]) -> float:
    trajectory = history[0].get("warmup_heldout_adv") or [history[0].get("train_adv_mixed", float("nan"))]
    return float(trajectory[-1])


def _dense_ancestor(method: str, ctx: _Context) -> RunResult | None:
    """The nearest dense stage a pruned method starts from (its record, from the cache), or None."""
    if spec_of(method).dense:
        return None
    stage = parent_of(method, ctx.cfg)
    while stage is not None and not spec_of(stage).dense:
        stage = parent_of(stage, ctx.cfg)
    result = ctx.results.get(stage) if stage is not None else None  # run on the way to `method`
    return result if result is not None and result.valid_metrics else None


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [v if isinstance(v, str) else int(v) for v in value]  # shapes; a channel group's layer names
    return value.item() if hasattr(value, "item") else value


def _fresh_model(ctx: _Context) -> nn.Module:
    """A seeded random init: the user's model (copied, so repeated runs start alike) or `arch`."""
    if ctx.user_model is not None:
        return copy.deepcopy(ctx.user_model)
    return build_model(ctx.cfg.arch, seed=ctx.cfg.seed)


def _epochs(spec: MethodSpec, cfg: RunConfig) -> int:
    if spec.epochs == "pretrain":
        return cfg.pretrain_epochs
    if spec.epochs == "scratch":
        return cfg.scratch_epochs if cfg.scratch_epochs is not None else cfg.pretrain_epochs + cfg.epochs
    return cfg.epochs


def _starting_model(spec: MethodSpec, ctx: _Context) -> nn.Module:
    """A seeded random init (or the `weights` file for a root stage), or the parent stage's trained model."""
    cfg = ctx.cfg
    parent = parent_of(spec.name, cfg)
    if parent is not None:  # a copy: the parent's model may start several stages of one call (`run_variants`)
        return copy.deepcopy(_run_stage(parent, ctx).model)  # type: ignore[return-value]
    if cfg.weights is not None and ctx.user_model is None and spec.mask == "none":
        return build_model(cfg.arch, weights=cfg.weights)
    return _fresh_model(ctx)


def _example_input(ctx: _Context) -> torch.Tensor:
    """A batch of two inputs to trace channel dependencies on: random images of the configured size for a cached
    run, else the first two of the training data's first batch (the user's model or loaders may want other inputs)."""
    if ctx.cache:
        size = ctx.cfg.data.size
        return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = next(iter(ctx.train))[0]
    return x[:2].detach().cpu().float()


def _train_method(method: str, ctx: _Context, run_dir: Path) -> tuple[nn.Module, Any, list[dict[str, Any]]]:
    """The one stage runner: start, mask and train as the method's spec says (`fapkit.registry`)."""
    spec, cfg = spec_of(method), ctx.cfg
    model = _starting_model(spec, ctx)
    if spec.trainer is not None:  # a method with a stage trainer of its own (FairGRAPE)
        return spec.trainer(StageInputs(model, cfg, ctx.train, ctx.monitor, run_dir, ctx.device, ctx.progress, method))
    masker: Any = None
    channel = cfg.structure == "channel"  # whole output channels (`fapkit.masking.channels`); config refuses the rest
    if spec.mask == "scores":
        for p in model.parameters():
            p.requires_grad_(False)  # score modes: only the mask scores learn
        init = "random" if parent_of(method, cfg) is None else "magnitude"
        if channel:
            masker = attach_channel_scores(model, cfg.ratio, init=init, scope=cfg.scope, seed=cfg.seed,
                                           example=_example_input(ctx))
        else:
            masker = attach_scores(model, cfg.ratio, init=init, scope=cfg.scope, seed=cfg.seed)
        params, lr, weight_decay = masker.score_parameters(), cfg.score_lr, 0.0
    else:
        if spec.mask != "none" and channel:
            example = _example_input(ctx)
            masker = attach_channel_fixed(model, channel_magnitude_masks(model, cfg.ratio, scope=cfg.scope,
                                                                         example=example), example=example)
        elif spec.mask != "none":
            masks = (random_masks(model, cfg.ratio, seed=cfg.seed, scope=cfg.scope) if spec.mask == "random"
                     else magnitude_masks(model, cfg.ratio, scope=cfg.scope))
            masker = attach_fixed(model, masks)
        lr = cfg.finetune_lr if spec.mask != "none" else cfg.lr
        params, weight_decay = trainable(model), cfg.weight_decay
    stage = scheduled_stage(cfg, spec.step, _epochs(spec, cfg), lr, weight_decay=weight_decay,
                            adversary=cfg.adversary if spec.adversarial else None)
    history = fit(model, params, ctx.train, ctx.monitor, stage, masker=masker, workdir=run_dir, progress=ctx.progress,
                  device=ctx.device, seed=cfg.seed, desc=method)
    return model, masker, history
