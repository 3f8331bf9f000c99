"""The one training loop behind every method.

A *stage* trains some parameters of a model for a number of epochs with one step kind (`STEPS`, a
`StepSpec` each; every step takes the `Players`, the batch and the step's `Round`, and returns its
losses). The loop defines ``ce`` (minimise the classification loss: normal training, fine-tuning, score
learning); the methods register the adversarial kinds (`register_step`; `fapkit.methods.adversarial`:
FAPrune's Algorithm 1 step, Adversarial Debiasing's projected step), which bring a discriminator and its
warm-up before the first step. Every epoch of an adversarial stage records the discriminator's
*advantage* H(z) − loss (``train_adv_di``, ``train_adv_deo_y0``, ``train_adv_deo_y1``; see
`AdversaryMonitor`), so a reader sees whether the game was live.

The sensitive attribute may have k ≥ 2 groups (z ∈ {0, …, k−1}; the target y stays binary): an
adversarial stage's discriminator gets ``groups=group_count(train_loader)`` (`fapkit.training.batches`;
k-way softmax heads for k > 2, the binary heads for k = 2), and its advantages use k-group entropies.

Which parameters train is the caller's choice (see `fapkit.runner`); the loop only steps the
parameters it is given. After every epoch it evaluates on the validation loader, appends the
metrics to the history, and writes a checkpoint atomically, so a killed run resumes from its last
completed epoch. A non-finite loss stops the run with the epoch, step and value.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..fairness.discriminators import AdversaryMonitor, FairnessDiscriminator
from ..records import CHECKPOINT, load_torch, save_torch
from ..settings import AdversaryConfig, StepKind
from . import budget
from .batches import Batch, as_batch, check_groups, check_labels, group_count, one_logit
from .batchnorm import reestimate_batchnorm
from .evaluation import evaluate
from .schedule import LrSchedule, lam_factor, lr_factor


@dataclass(frozen=True)
class Stage:
    """How one stage trains: the step kind, epochs, Adam learning rate, schedule and (adversarial kinds) the game.

    ``adversary`` is carried as `fapkit.settings.AdversaryConfig` holds it; an adversarial kind given
    none plays with its defaults (the paper's settings).
    """

    kind: StepKind
    epochs: int
    lr: float
    weight_decay: float = 0.0
    adversary: AdversaryConfig | None = None
    schedule: LrSchedule = "constant"  # the trained parameters' lr over the stage (`fapkit.training.schedule`)
    lr_warmup: float = 0.0
    bn_reestimate: bool = False        # recompute BN running statistics after the last step (`fapkit.training.batchnorm`)
    patience: int | None = None        # None: exactly `epochs`; else the patience rule decides (`fapkit.training.budget`)
    ceiling: int = budget.DEFAULT_CEILING  # the patience rule's ceiling on the main phase, in multiples of its floor
    epoch_steps: int = 0               # the patience rule's floor counts each epoch as at least this many steps
    tail: float = 0.25                 # the patience rule's cosine tail, a fraction of the main phase

    def __post_init__(self) -> None:
        if self.kind not in STEPS:
            raise ValueError(f"step kind must be one of {', '.join(map(repr, STEPS))}, got {self.kind!r}")
        if self.adversarial and self.adversary is None:
            object.__setattr__(self, "adversary", AdversaryConfig())

    @property
    def adversarial(self) -> bool:
        return STEPS[self.kind].adversarial

    @property
    def game(self) -> AdversaryConfig:
        """The adversary settings of an adversarial stage."""
        if self.adversary is None:
            raise ValueError(f"a {self.kind!r} stage plays no adversarial game")
        return self.adversary


def scheduled_stage(cfg: Any, kind: StepKind, epochs: int, lr: float, *, weight_decay: float | None = None,
                    adversary: AdversaryConfig | None = None, adaptive: bool = True) -> Stage:
    """A stage on the run's schedule (``cfg``: a `fapkit.settings.RunConfig`): every method's stages train alike.

    With ``cfg.budget == "patience"`` the stage's length follows the patience rule (`fapkit.training.budget`,
    floor ``epochs`` and at least ``epochs × cfg.budget_epoch_steps`` optimiser steps, ceiling ``cfg.budget_ceiling`` ×
    the floor) unless `adaptive` is False (a method's inner, fixed-length
    steps, such as FairGRAPE's fine-tuning between pruning iterations).
    """
    rule = cfg.budget == "patience" and adaptive
    return Stage(kind, epochs, lr, cfg.weight_decay if weight_decay is None else weight_decay, adversary=adversary,
                 schedule=cfg.schedule, lr_warmup=cfg.lr_warmup, bn_reestimate=cfg.bn_reestimate,
                 patience=cfg.patience if rule else None, ceiling=cfg.budget_ceiling, epoch_steps=cfg.budget_epoch_steps or 0,
                 tail=cfg.budget_tail)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of `model` a stage trains: those that require gradients (the masks have frozen the rest)."""
    return [p for p in model.parameters() if p.requires_grad]


def start_epoch(loader: Iterable, epoch: int) -> None:
    """Put a kit loader at `epoch` (its shuffle order depends on (seed, epoch) only); other iterables are left alone."""
    if hasattr(loader, "epoch"):
        loader.epoch = epoch


@dataclass
class Players:
    """What a step moves: the model's trained `params` with their optimiser, and in adversarial stages
    the discriminator with its own."""

    model: nn.Module
    params: list[nn.Parameter]
    opt: torch.optim.Optimizer
    disc: FairnessDiscriminator | None = None
    disc_opt: torch.optim.Optimizer | None = None


@dataclass
class StageInputs:
    """What a method's own stage trainer (`fapkit.registry.MethodSpec.trainer`) is given.

    ``model`` is its starting model (its parent stage's trained model, or a seeded init), ``monitor``
    the per-epoch validation loader, ``workdir`` the stage's run folder (checkpoints go there).
    The trainer returns ``(model, masker or None, history)`` as `fapkit.runner` records them.
    """

    model: nn.Module
    cfg: Any                           # fapkit.settings.RunConfig
    train: Iterable
    monitor: Iterable
    workdir: Path
    device: torch.device
    progress: bool = False
    desc: str = "train"


@dataclass
class Round:
    """What one step needs to know besides the players: the game's settings, this step's λ, the epoch's monitor."""

    adversary: AdversaryConfig | None = None
    lam: float = 1.0
    monitor: AdversaryMonitor | None = None


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the last completed epoch's checkpoint is left intact."""


def _finite(value: torch.Tensor, epoch: int, step: int, name: str) -> None:
    if not torch.isfinite(value):
        raise NonFiniteLossError(f"non-finite {name} {value.item()} at epoch {epoch}, step {step}; "
                                 "the checkpoint of the last completed epoch is kept")


def ce_step(players: Players, batch: Batch, turn: Round) -> dict[str, torch.Tensor]:
    """Cross-entropy: normal training, fine-tuning, score learning."""
    x, y, z = batch
    logit = one_logit(players.model(x), y, z)
    loss = F.binary_cross_entropy_with_logits(logit, y.float())
    players.opt.zero_grad(set_to_none=True)
    loss.backward()
    players.opt.step()
    return {"loss": loss.detach()}


StepFn = Callable[[Players, Batch, Round], dict[str, torch.Tensor]]
#: An adversarial kind's warm-up: (starting model, discriminator, its optimiser, training loader, game, device)
#: -> the record the first epoch carries (``warmup_*``).
WarmUp = Callable[[nn.Module, FairnessDiscriminator, torch.optim.Optimizer, Iterable, AdversaryConfig, torch.device],
                  dict[str, Any]]


@dataclass(frozen=True)
class StepSpec:
    """A step kind: its step, and for an adversarial kind (one that plays against a discriminator) how the
    discriminator is prepared before the first step and what the first epoch's record says of it.

    Every step takes the same three arguments and returns its losses (``loss`` first: it is what the
    progress bar shows and the finiteness check reads). ``first_epoch(record, game)`` completes the first
    epoch's record (which already holds the warm-up's) in place.
    """

    step: StepFn
    warm_up: WarmUp | None = None
    first_epoch: Callable[[dict[str, Any], AdversaryConfig], None] | None = None

    @property
    def adversarial(self) -> bool:
        return self.warm_up is not None


#: The step of each kind (`fapkit.settings.StepKind`): cross-entropy here; the adversarial kinds are registered
#: by the methods that define them (`fapkit.methods.adversarial`: FAPrune's and Adversarial Debiasing's).
STEPS: dict[str, StepSpec] = {"ce": StepSpec(ce_step)}


def register_step(kind: str, spec: StepSpec) -> StepSpec:
    """Add a step kind (a `fapkit.settings.StepKind`) that stages can train with."""
    if kind in STEPS:
        raise ValueError(f"step kind {kind!r} is already registered")
    STEPS[kind] = spec
    return spec


def fit(model: nn.Module, params: list[nn.Parameter], train_loader: Iterable, valid_loader: Iterable,
        stage: Stage, *, masker: Any = None, workdir: str | Path | None = None, progress: bool = False,
        device: str | torch.device = "cpu", seed: int = 0, desc: str = "train",
        step: StepFn | None = None, select: Literal["last", "best_val_loss"] = "last") -> list[dict[str, Any]]:
    """Train `params` of `model` for `stage.epochs` epochs; return the per-epoch history.

    `step` replaces the stage kind's step (`STEPS`) with a method's own (a constrained or stateful step);
    a step with ``state_dict()`` / ``load_state_dict()`` (multipliers, buffers) is checkpointed with
    the model. ``select="best_val_loss"`` returns the model of the epoch with the lowest validation
    loss instead of the last (FairGRAPE's retrain does so; every other stage reports its last step),
    and the last record says which (``selected_epoch``).

    The learning rate follows ``stage.schedule`` step by step (`fapkit.training.schedule.lr_factor`) and λ
    its ramp (`fapkit.training.schedule.lam_factor`); each epoch's record ends with the ``lr`` (and, in
    adversarial stages, ``lam``) of its last step. With ``stage.bn_reestimate`` the BatchNorm
    statistics are recomputed on the training data after the last epoch (the last record then
    says ``bn_reestimated``), so the returned model is the one the schedule ended on, with the
    statistics of that very network.

    With `workdir`, a checkpoint is written after every epoch and a later call with the same
    workdir resumes after the last completed epoch (same data order, same optimizer state, the
    same point of the schedule, ``mask_changed`` still measured from the stage's starting mask).

    An adversarial stage's discriminator has ``groups=group_count(train_loader)`` sensitive groups
    (1 + the largest z, at least 2): read from the loader's dataset (``.ds`` / ``.dataset`` with a
    ``z``), else found by one extra pass over `train_loader` before training (and before the
    seed is set, so that pass leaves the run's random numbers alone). Labels y must be 0/1 and z
    group ids below that k (checked on the first batch; plain cross-entropy stages accept any
    non-negative integer ids).
    """
    if not params:
        raise ValueError("nothing to train: the stage was given no parameters (does the model have any?)")
    device = torch.device(device)
    players = _players(model, params, stage, train_loader, device, seed, masker)
    ckpt_path = Path(workdir) / CHECKPOINT if workdir is not None else None
    initial_masks = masker.masks() if masker is not None and masker.learns_mask else None
    start, history, initial_masks = _resume(ckpt_path, stage, players, initial_masks, step)
    best = _load_best(ckpt_path) if select == "best_val_loss" else None
    kind = STEPS[stage.kind]
    warmup: dict[str, Any] = {}
    if kind.warm_up is not None and start == 0:  # the reference and the heads' input, with or without a warm-up
        warmup = kind.warm_up(model, players.disc, players.disc_opt, train_loader, stage.game, device)
    clock = _Clock(stage, _batches_per_epoch(train_loader, stage))
    clock.resume(history)

    epoch = start
    while clock.epochs is None or epoch < clock.epochs:
        bar = f"{desc} {epoch + 1}/{clock.epochs or '?'}" if progress else None
        record = {"epoch": epoch + 1, **train_one_epoch(players, stage, train_loader, epoch, clock=clock,
                                                         check=epoch == start, progress=bar, step=step)}
        if epoch == 0:
            record.update(warmup)
            if warmup and kind.first_epoch is not None:
                kind.first_epoch(record, stage.game)
        record.update(_validation(model, valid_loader, device))
        if initial_masks is not None:
            record["mask_changed"] = _fraction_changed(initial_masks, masker.masks())
        history.append(record)
        clock.decide(history)
        if select == "best_val_loss" and (best is None or record["val_loss"] < best["val_loss"]):
            best = {"epoch": epoch + 1, "val_loss": record["val_loss"], "model": _copy_state(model)}
        if ckpt_path is not None:
            _save_checkpoint(ckpt_path, stage, epoch + 1, history, players, initial_masks, step)
            if best is not None and best["epoch"] == epoch + 1:
                save_torch(ckpt_path.with_name(BEST), best)
        epoch += 1
    _finish(model, history, best, stage, train_loader, device)
    return history


def _players(model: nn.Module, params: list[nn.Parameter], stage: Stage, train_loader: Iterable, device: torch.device,
             seed: int, masker: Any) -> Players:
    """The model on `device` with its optimiser (bound to fixed masks) and, in adversarial stages, the discriminator.

    The sensitive groups are counted before the seed is set (a counting pass leaves the run's random numbers
    alone), and the discriminator is initialised after it.
    """
    model.to(device)
    groups = group_count(train_loader) if stage.adversarial else 2
    torch.manual_seed(seed)
    opt = torch.optim.Adam(params, lr=stage.lr, weight_decay=stage.weight_decay)
    if masker is not None:
        masker.bind(opt)  # fixed masks: pruned weights stay exactly zero through momentum and weight decay
    return Players(model, params, opt, *_discriminator(stage, device, groups))


def _validation(model: nn.Module, valid_loader: Iterable, device: torch.device) -> dict[str, float]:
    """The epoch record's validation metrics (``val_acc``, ``val_di``, ``val_deo``, ``val_loss``)."""
    val = evaluate(model, valid_loader, device=device)
    return {f"val_{k}": val[k] for k in ("acc", "di", "deo", "loss", "n")}


def _finish(model: nn.Module, history: list[dict[str, Any]], best: dict[str, Any] | None, stage: Stage,
            train_loader: Iterable, device: torch.device) -> None:
    """After the last epoch: the selected epoch's model (``select="best_val_loss"``), then fresh BN statistics."""
    if best is not None and history:
        model.load_state_dict(best["model"])
        history[-1]["selected_epoch"] = best["epoch"]
    if stage.bn_reestimate and history:
        # after the last checkpoint and from it: a resumed run recomputes the same statistics
        history[-1]["bn_reestimated"] = reestimate_batchnorm(model, train_loader, device)


@dataclass
class _Clock:
    """Where a step falls in the stage's schedule: its learning rate, its λ, and (patience rule) the stage's length."""

    stage: Stage
    steps_per_epoch: int
    tail_start: int | None = None      # patience rule: the epoch its cosine tail starts (None: undecided)
    tail_length: int = 0

    @property
    def epochs(self) -> int | None:
        """The stage's length in epochs; None while the patience rule has not decided it."""
        if self.stage.patience is None:
            return self.stage.epochs
        return None if self.tail_start is None else self.tail_start + self.tail_length

    @property
    def floor(self) -> int:
        """The patience rule's floor in epochs (`fapkit.training.budget.floor_epochs`); a fixed stage's epochs."""
        if self.stage.patience is None:
            return self.stage.epochs
        return budget.floor_epochs(self.stage.epochs, self.steps_per_epoch, self.stage.epoch_steps)

    def _reference_steps(self) -> int:
        """The steps the lr warm-up and the λ ramp are fractions of: the stage's (fixed, or the patience rule's floor)."""
        return self.floor * self.steps_per_epoch

    def _position(self, epoch: int, step: int) -> tuple[int, int]:
        total = self._reference_steps()
        return min(epoch * self.steps_per_epoch + step, total - 1), total

    def lr(self, epoch: int, step: int) -> float:
        if self.stage.patience is None or self.stage.schedule == "constant":
            t, total = self._position(epoch, step)
            return self.stage.lr * lr_factor(t, total, self.stage.lr_warmup, self.stage.schedule)
        reference = self._reference_steps()
        warmup = min(math.ceil(self.stage.lr_warmup * reference), reference - 1)
        return self.stage.lr * budget.lr_factor(epoch * self.steps_per_epoch + step, self.steps_per_epoch,
                                                warmup_steps=warmup, tail_start=self.tail_start,
                                                tail_length=self.tail_length)

    def lam(self, epoch: int, step: int) -> float:
        if self.stage.adversary is None:
            return 0.0
        t, total = self._position(epoch, step)
        return self.stage.adversary.lam * lam_factor(t, total, self.stage.adversary.lam_ramp)

    def decide(self, history: list[dict[str, Any]]) -> None:
        """After an epoch of the main phase: start the tail if the patience rule ends it (the record says so)."""
        stage = self.stage
        if stage.patience is None or self.tail_start is not None:
            return
        floor = self.floor
        if budget.main_phase_over([h["val_loss"] for h in history], patience=stage.patience,
                                  max_epochs=stage.ceiling * floor, min_epochs=floor,
                                  val_accs=[h["val_acc"] for h in history], n_valid=history[-1].get("val_n", 0)):
            self.tail_start, self.tail_length = len(history), budget.tail_epochs(len(history), stage.tail)
            history[-1].update(budget_main_epochs=self.tail_start, budget_tail_epochs=self.tail_length)

    def resume(self, history: list[dict[str, Any]]) -> None:
        """The patience rule's decision as a resumed stage's records hold it."""
        for record in history:
            if "budget_tail_epochs" in record:
                self.tail_start, self.tail_length = record["budget_main_epochs"], record["budget_tail_epochs"]


def _batches_per_epoch(loader: Iterable, stage: Stage) -> int:
    """len(loader), which a step-wise schedule needs; 1 when nothing is scheduled (any iterable will do)."""
    ramped = stage.adversary is not None and stage.adversary.lam_ramp > 0
    if stage.schedule == "constant" and not ramped:
        return 1
    try:
        n = len(loader)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"the training loader ({type(loader).__name__}) has no len(): the learning-rate schedule "
                         "and the λ ramp need the number of batches per epoch; give it __len__ or pass "
                         "schedule='constant', lam_ramp=0") from None
    if n < 1:
        raise ValueError("the training loader yielded no batches")
    return n


def train_one_epoch(players: Players, stage: Stage, loader: Iterable, epoch: int, *, clock: _Clock | None = None,
                    check: bool = False, progress: str | None = None, step: StepFn | None = None) -> dict[str, float]:
    """One pass over `loader` with the stage's step; epoch means of its losses (``train_*``) and advantages.

    With a `clock` (as `fit` passes) each step first sets its scheduled learning rate and λ; `check`
    validates the first batch's labels (y binary 0/1, z group ids below the discriminator's
    ``groups``, any non-negative integers without one); `progress` is the description of a progress
    bar (None: no bar); `step` replaces the kind's step.
    """
    start_epoch(loader, epoch)  # resumable: the order depends on the epoch only
    players.model.train()
    step_fn, game = step or STEPS[stage.kind].step, stage.adversary
    groups = players.disc.groups if players.disc is not None else None
    turn = Round(game, game.lam if game is not None else 0.0,
                 AdversaryMonitor(game.alpha, groups or 2) if game is not None else None)
    device = players.params[0].device
    sums: dict[str, float] = {}
    steps, lr = 0, stage.lr
    bar = tqdm(loader, desc=progress, disable=progress is None, leave=False)
    for step, batch in enumerate(bar):
        x, y, z = as_batch(batch, device)
        if check and step == 0:
            check_labels(y)
            check_groups(z, groups)
        if clock is not None:
            lr, turn.lam = clock.lr(epoch, step), clock.lam(epoch, step)
            for group in players.opt.param_groups:
                group["lr"] = lr
        out = step_fn(players, (x, y, z), turn)
        _finite(out["loss"], epoch, step, "loss")
        for key, value in out.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        steps += 1
        if progress is not None:
            bar.set_postfix(loss=f"{float(out['loss']):.3f}")
    if steps == 0:
        raise ValueError("the training loader yielded no batches")
    record: dict[str, float] = {f"train_{k}": v / steps for k, v in sums.items()}
    if turn.monitor is not None:
        record.update({f"train_{k}": v for k, v in turn.monitor.advantage().items()})
        record["train_adv_mixed"] = turn.monitor.mixed_advantage()
    record["lr"] = lr
    if stage.adversarial:
        record["lam"] = turn.lam
    return record


def _discriminator(stage: Stage, device: torch.device,
                   groups: int = 2) -> tuple[FairnessDiscriminator | None, torch.optim.Optimizer | None]:
    """The discriminator (of `groups` sensitive groups) and its optimizer of an adversarial stage (none for cross-entropy)."""
    if not stage.adversarial:
        return None, None
    game = stage.game
    disc = FairnessDiscriminator(game.alpha, game.disc_hidden, groups=groups, balance=game.disc_balance).to(device)
    return disc, torch.optim.Adam(disc.parameters(), lr=game.disc_lr)


def _resume(ckpt_path: Path | None, stage: Stage, players: Players, initial_masks: dict[str, torch.Tensor] | None,
            step: Any = None) -> tuple[int, list[dict[str, Any]], dict[str, torch.Tensor] | None]:
    """Load the last completed epoch's checkpoint if there is one: (epochs done, history so far, starting masks)."""
    if ckpt_path is None or not ckpt_path.exists():
        return 0, [], initial_masks
    state = load_torch(ckpt_path)
    if state.get("stage") != asdict(stage):
        raise ValueError(f"checkpoint {ckpt_path} belongs to another stage {state.get('stage')}; delete it to restart")
    try:
        players.model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {ckpt_path} does not fit this model: {str(err).splitlines()[0]}") from err
    players.opt.load_state_dict(state["opt"])
    if players.disc is not None:
        try:
            players.disc.load_state_dict(state["disc"])
        except RuntimeError as err:
            raise ValueError(f"checkpoint {ckpt_path} holds a discriminator of another shape (another number of "
                             f"sensitive groups than this data's {players.disc.groups}?): "
                             f"{str(err).splitlines()[0]}") from err
        players.disc_opt.load_state_dict(state["disc_opt"])
    if hasattr(step, "load_state_dict") and state.get("step") is not None:
        step.load_state_dict(state["step"])
    torch.set_rng_state(state["rng"])
    return state["epoch"], state["history"], state.get("initial_masks", initial_masks)


def _save_checkpoint(path: Path, stage: Stage, epochs_done: int, history: list[dict[str, Any]], players: Players,
                     initial_masks: dict[str, torch.Tensor] | None, step: Any = None) -> None:
    """Everything `_resume` needs, written atomically: a crash mid-write keeps the previous checkpoint."""
    disc, disc_opt = players.disc, players.disc_opt
    save_torch(path, {
        "stage": asdict(stage), "epoch": epochs_done, "history": history, "rng": torch.get_rng_state(),
        "model": players.model.state_dict(), "opt": players.opt.state_dict(),
        "disc": disc.state_dict() if disc is not None else None,
        "disc_opt": disc_opt.state_dict() if disc_opt is not None else None,
        "initial_masks": initial_masks,  # the stage's starting mask: `mask_changed` after a resume measures from it
        "step": step.state_dict() if hasattr(step, "state_dict") else None,
    })


#: The model of the best epoch so far, beside the checkpoint, for ``select="best_val_loss"``.
BEST = "best.pt"


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _load_best(ckpt_path: Path | None) -> dict[str, Any] | None:
    if ckpt_path is None or not ckpt_path.with_name(BEST).exists():
        return None
    return load_torch(ckpt_path.with_name(BEST))


def _fraction_changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    """Share of kept weights at the start that are no longer kept (how far the mask moved)."""
    kept = sum(int(m.sum()) for m in before.values())
    moved = sum(int((before[k] & ~after[k]).sum()) for k in before)
    return moved / max(kept, 1)
