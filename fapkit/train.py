"""The one training loop behind every method.

A *stage* trains some parameters of a model for a number of epochs with one of three steps:

* ``ce``      — minimise the classification loss (normal training, fine-tuning, score learning);
* ``faprune`` — Algorithm 1: `disc_steps` discriminator steps on L_D = α·L_DI + (1−α)·L_DEO, then
  a step of the trainable parameters (the mask scores) on L_G = CE − λ·L_D (or the "confusion" form);
* ``debias``  — Adversarial Debiasing (Zhang et al. 2018): `disc_steps` adversary steps, then a
  predictor step along ∇L_P − proj_{∇L_A}∇L_P − λ·∇L_A, per parameter tensor.

In both adversarial kinds the discriminator can first be warmed up alone on the starting model's
predictions (`disc_warmup` passes), and every epoch's history records its *advantage* H(z) − loss
(``train_adv_di``, ``train_adv_deo_y0``, ``train_adv_deo_y1``; see `AdversaryMonitor`), so a reader
sees whether the game was live: an adversary that knows nothing gives the generator no signal.

Which parameters train is the caller's choice (see `fapkit.methods`); the loop only steps the
parameters it is given. After every epoch it evaluates on the validation loader, appends the
metrics to the history, and writes a checkpoint atomically, so a killed run resumes from its last
completed epoch. A non-finite loss stops the run with the epoch, step and value.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .batchnorm import reestimate_batchnorm
from .discriminators import (
    AdversaryMonitor,
    FairnessDiscriminator,
    discriminator_update,
    generator_fairness_term,
    project_out,
)
from .metrics import evaluate
from .records import load_torch, save_torch
from .runtime import keep_freed_memory
from .schedule import LrSchedule, lam_factor, lr_factor

StepKind = Literal["ce", "faprune", "debias"]
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class Stage:
    """How one stage trains: the step kind, epochs, Adam learning rate and adversary settings."""

    kind: StepKind
    epochs: int
    lr: float
    weight_decay: float = 0.0
    alpha: float = 0.0
    lam: float = 1.0
    disc_lr: float = 1e-3
    disc_hidden: int = 8
    generator_form: Literal["paper", "confusion"] = "paper"
    disc_steps: int = 1                # discriminator steps per generator step (paper: 1)
    disc_warmup: int = 0               # passes of discriminator-only training before the first generator step
    disc_warmup_rule: Literal["fixed", "plateau"] = "fixed"  # see `warm_up_discriminator`
    lam_ramp: float = 0.0              # λ rises linearly from 0 over this fraction of the steps (0: constant)
    schedule: LrSchedule = "constant"  # the trained parameters' lr over the stage (`fapkit.schedule`)
    lr_warmup: float = 0.0
    bn_reestimate: bool = False        # recompute BN running statistics after the last step (`fapkit.batchnorm`)

    @property
    def adversarial(self) -> bool:
        return self.kind in ("faprune", "debias")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the last completed epoch's checkpoint is left intact."""


def _check_batch(y: torch.Tensor, z: torch.Tensor) -> None:
    for name, t in (("labels y", y), ("sensitive values z", z)):
        bad = t[(t != 0) & (t != 1)]
        if bad.numel():
            values = sorted(set(bad.unique().tolist()))
            hint = " (they look like ±1 labels: map them with (v + 1) // 2)" if set(t.unique().tolist()) <= {-1, 1} else ""
            raise ValueError(f"{name} must be binary 0/1, found {values[:5]}{hint}")


def _one_logit(out: torch.Tensor, batch: int) -> torch.Tensor:
    """The model's output as one logit per sample, or an error saying what shape was expected."""
    if out.ndim == 1 and len(out) == batch or out.ndim == 2 and out.shape == (batch, 1):
        return out.reshape(-1)
    raise ValueError(f"the model must output one logit per sample (shape [{batch}] or [{batch}, 1]), got shape "
                     f"{list(out.shape)}; for a two-class head use one output unit (binary cross-entropy on logits)")


def _batch_to(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 3:
        raise ValueError("a training loader must yield (x, y, z) batches")
    x, y, z = (torch.as_tensor(t).to(device) for t in batch)
    return x, y.reshape(-1), z.reshape(-1)


def _finite(value: torch.Tensor, epoch: int, step: int, name: str) -> None:
    if not torch.isfinite(value):
        raise NonFiniteLossError(f"non-finite {name} {value.item()} at epoch {epoch}, step {step}; "
                                 "the checkpoint of the last completed epoch is kept")


def ce_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    logit = _one_logit(model(x), len(x))
    loss = F.binary_cross_entropy_with_logits(logit, y.float())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.detach()}


def faprune_step(model: nn.Module, opt: torch.optim.Optimizer, disc: FairnessDiscriminator,
                 disc_opt: torch.optim.Optimizer, stage: Stage,
                 x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                 monitor: AdversaryMonitor | None = None, lam: float | None = None) -> dict[str, torch.Tensor]:
    """Algorithm 1, one iteration: update D on the current predictions, then the mask on L_G.

    ``lam`` is this step's λ (the ramp's value); None: ``stage.lam``.
    """
    lam = stage.lam if lam is None else lam
    logit = _one_logit(model(x), len(x))
    prob = torch.sigmoid(logit)
    d_losses = discriminator_update(disc, disc_opt, prob, y, z, stage.disc_steps, monitor)  # lines 4–7
    ce = F.binary_cross_entropy_with_logits(logit, y.float())   # lines 8–13: L_G = L_prune − λ·L_D
    fair = generator_fairness_term(disc, prob, y, z, stage.generator_form)
    loss = ce + lam * fair
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.detach(), "ce": ce.detach(), **d_losses}


def debias_step(model: nn.Module, params: list[nn.Parameter], opt: torch.optim.Optimizer,
                disc: FairnessDiscriminator, disc_opt: torch.optim.Optimizer, stage: Stage,
                x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                monitor: AdversaryMonitor | None = None, lam: float | None = None) -> dict[str, torch.Tensor]:
    """Adversarial Debiasing: adversary step(s), then the projected predictor step (``lam``: this step's λ)."""
    lam = stage.lam if lam is None else lam
    logit = _one_logit(model(x), len(x))
    prob = torch.sigmoid(logit)
    a_losses = discriminator_update(disc, disc_opt, prob, y, z, stage.disc_steps, monitor)
    l_pred = F.binary_cross_entropy_with_logits(logit, y.float())
    l_adv = disc.loss(prob, y, z)["l_d"]
    g_pred = torch.autograd.grad(l_pred, params, retain_graph=True, allow_unused=True)
    g_adv = torch.autograd.grad(l_adv, params, allow_unused=True)
    for p, g, h in zip(params, g_pred, g_adv):
        if g is None:
            p.grad = None
        else:
            p.grad = g if h is None else project_out(g, h, lam)
    opt.step()
    return {"loss": l_pred.detach(), "ce": l_pred.detach(), **a_losses}


def warm_up_discriminator(model: nn.Module, disc: FairnessDiscriminator, disc_opt: torch.optim.Optimizer,
                          train_loader: Iterable, stage: Stage, device: torch.device) -> dict[str, Any]:
    """Train the discriminator alone on the starting model's predictions before the first generator step.

    The predictions of one pass over the training loader (train mode, as the game sees them; BN
    running statistics restored afterwards, so the model is untouched) are computed once; the
    heads then take one Adam step per batch per pass over them.

    ``stage.disc_warmup_rule``: ``"fixed"`` runs exactly ``stage.disc_warmup`` passes over all
    batches. ``"plateau"`` holds every fifth batch out, and after each pass over the others
    measures the heads' advantage on the held-out ones (`heldout_monitor`, `AdversaryMonitor.mixed_advantage`); it
    stops once that has `plateaued`, or after ``stage.disc_warmup`` passes: the adversary has then
    learnt what the starting model's predictions tell it, however many passes that takes on a
    given dataset.

    Returns ``warmup_steps``, ``warmup_passes``, the heads' advantage (``warmup_adv_*``: over the
    last pass for "fixed", on the held-out batches for "plateau") and, for "plateau",
    ``warmup_heldout_adv`` (the per-pass trajectory of the held-out advantage).
    """
    if stage.disc_warmup < 1:
        return {"warmup_steps": 0}
    batches = _starting_predictions(model, train_loader, device)
    plateau = stage.disc_warmup_rule == "plateau" and len(batches) >= 2
    held_out: set[int] = set()
    if plateau:  # every fifth batch, or the last one of a loader with fewer than five
        held_out = {i for i in range(len(batches)) if i % 5 == 4} or {len(batches) - 1}
    held = [b for i, b in enumerate(batches) if i in held_out]
    fit_on = [b for i, b in enumerate(batches) if i not in held_out]
    steps, trajectory = 0, []
    for _ in range(stage.disc_warmup):
        monitor = AdversaryMonitor(stage.alpha)  # the last pass's is reported ("fixed")
        for i in torch.randperm(len(fit_on)).tolist():
            discriminator_update(disc, disc_opt, *fit_on[i], steps=1, monitor=monitor)
            steps += 1
        if plateau:
            monitor = heldout_monitor(disc, held, stage.alpha)
            trajectory.append(round(monitor.mixed_advantage(), 6))
            if plateaued(trajectory):
                break
    out: dict[str, Any] = {"warmup_steps": steps, "warmup_passes": steps // max(len(fit_on), 1),
                           **{f"warmup_{k}": v for k, v in monitor.advantage().items()}}
    if plateau:
        out["warmup_heldout_adv"] = trajectory
    return out


#: The plateau rule's patience (passes without a rise) and the rise that counts, in nats.
PLATEAU_PATIENCE = 3
PLATEAU_TOLERANCE = 1e-4


def plateaued(trajectory: list[float], patience: int = PLATEAU_PATIENCE, tolerance: float = PLATEAU_TOLERANCE) -> bool:
    """Whether the last `patience` values all stayed within `tolerance` of the best value before them."""
    if len(trajectory) <= patience:
        return False
    return max(trajectory[-patience:]) <= max(trajectory[:-patience]) + tolerance


def _starting_predictions(model: nn.Module, train_loader: Iterable,
                          device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(σ(logit), y, z) per training batch of the model as it is, in train mode; BN buffers left unchanged."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    if hasattr(train_loader, "epoch"):
        train_loader.epoch = 0
    batches = []
    model.train()
    with torch.no_grad():
        for batch in train_loader:
            x, y, z = _batch_to(batch, device)
            batches.append((torch.sigmoid(_one_logit(model(x), len(x))), y, z))
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return batches


def heldout_monitor(disc: FairnessDiscriminator, batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                    alpha: float) -> AdversaryMonitor:
    """The heads' losses on `batches` without training on them, gathered in an `AdversaryMonitor`."""
    monitor = AdversaryMonitor(alpha)
    with torch.no_grad():
        for prob, y, z in batches:
            di_each, deo_each = disc.per_sample_losses(prob, y, z)
            monitor.update(di_each, deo_each, y, z)
    return monitor


def fit(model: nn.Module, params: list[nn.Parameter], train_loader: Iterable, valid_loader: Iterable,
        stage: Stage, *, masker: Any = None, workdir: str | Path | None = None, progress: bool = False,
        device: str | torch.device = "cpu", seed: int = 0, desc: str = "train") -> list[dict[str, Any]]:
    """Train `params` of `model` for `stage.epochs` epochs; return the per-epoch history.

    The learning rate follows ``stage.schedule`` step by step (`fapkit.schedule.lr_factor`) and λ
    its ramp (`fapkit.schedule.lam_factor`); each epoch's record ends with the ``lr`` (and, in
    adversarial stages, ``lam``) of its last step. With ``stage.bn_reestimate`` the BatchNorm
    statistics are recomputed on the training data after the last epoch (the last record then
    says ``bn_reestimated``), so the returned model is the one the schedule ended on, with the
    statistics of that very network.

    With `workdir`, a checkpoint is written after every epoch and a later call with the same
    workdir resumes after the last completed epoch (same data order, same optimizer state, the
    same point of the schedule).
    """
    device = torch.device(device)
    model.to(device)
    keep_freed_memory()  # reuse freed tensor memory instead of page-faulting it in again
    torch.manual_seed(seed)
    opt = torch.optim.Adam(params, lr=stage.lr, weight_decay=stage.weight_decay)
    if masker is not None:
        masker.bind(opt)  # fixed masks: pruned weights stay exactly zero through momentum and weight decay
    disc, disc_opt = _discriminator(stage, device)
    ckpt_path = Path(workdir) / CHECKPOINT if workdir is not None else None
    start, history = _resume(ckpt_path, stage, model, opt, disc, disc_opt)
    initial_masks = masker.masks() if masker is not None and masker.learns_mask else None
    warmup: dict[str, Any] = {}
    if disc is not None and start == 0 and stage.disc_warmup > 0:
        warmup = warm_up_discriminator(model, disc, disc_opt, train_loader, stage, device)
    clock = _Clock(stage, _batches_per_epoch(train_loader, stage))

    for epoch in range(start, stage.epochs):
        record = {"epoch": epoch + 1, **train_one_epoch(model, params, opt, disc, disc_opt, stage, train_loader, epoch,
                                                         check=epoch == start, device=device, progress=progress,
                                                         desc=desc, clock=clock)}
        if epoch == 0:
            record.update(warmup)
        val = evaluate(model, valid_loader, device=device)
        record.update({f"val_{k}": val[k] for k in ("acc", "di", "deo", "loss")})
        if initial_masks is not None:
            record["mask_changed"] = _fraction_changed(initial_masks, masker.masks())
        history.append(record)
        if ckpt_path is not None:
            _save_checkpoint(ckpt_path, stage, epoch + 1, history, model, opt, disc, disc_opt)
    if stage.bn_reestimate and history:
        # after the last checkpoint and from it: a resumed run recomputes the same statistics
        history[-1]["bn_reestimated"] = reestimate_batchnorm(model, train_loader, device)
    return history


@dataclass(frozen=True)
class _Clock:
    """Where a step falls in the stage's schedule: its learning rate and its λ."""

    stage: Stage
    steps_per_epoch: int

    def _position(self, epoch: int, step: int) -> tuple[int, int]:
        total = self.stage.epochs * self.steps_per_epoch
        return min(epoch * self.steps_per_epoch + step, total - 1), total

    def lr(self, epoch: int, step: int) -> float:
        t, total = self._position(epoch, step)
        return self.stage.lr * lr_factor(t, total, self.stage.lr_warmup, self.stage.schedule)

    def lam(self, epoch: int, step: int) -> float:
        t, total = self._position(epoch, step)
        return self.stage.lam * lam_factor(t, total, self.stage.lam_ramp)


def _batches_per_epoch(loader: Iterable, stage: Stage) -> int:
    """len(loader), which a step-wise schedule needs; 1 when nothing is scheduled (any iterable will do)."""
    if stage.schedule == "constant" and stage.lam_ramp == 0:
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


def train_one_epoch(model: nn.Module, params: list[nn.Parameter], opt: torch.optim.Optimizer,
                    disc: FairnessDiscriminator | None, disc_opt: torch.optim.Optimizer | None, stage: Stage,
                    loader: Iterable, epoch: int, *, check: bool = False, device: torch.device = torch.device("cpu"),
                    progress: bool = False, desc: str = "train", clock: _Clock | None = None) -> dict[str, float]:
    """One pass over `loader` with the stage's step; epoch means of its losses (``train_*``) and advantages.

    With a `clock` (as `fit` passes) each step first sets its scheduled learning rate and λ.
    """
    if hasattr(loader, "epoch"):
        loader.epoch = epoch  # the shuffle order depends on (seed, epoch) only: resumable
    model.train()
    monitor = AdversaryMonitor(stage.alpha) if disc is not None else None
    sums: dict[str, float] = {}
    steps, lr, lam = 0, stage.lr, stage.lam
    bar = tqdm(loader, desc=f"{desc} {epoch + 1}/{stage.epochs}", disable=not progress, leave=False)
    for step, batch in enumerate(bar):
        x, y, z = _batch_to(batch, device)
        if check and step == 0:
            _check_batch(y, z)
        if clock is not None:
            lr, lam = clock.lr(epoch, step), clock.lam(epoch, step)
            for group in opt.param_groups:
                group["lr"] = lr
        if stage.kind == "ce":
            out = ce_step(model, opt, x, y)
        elif stage.kind == "faprune":
            out = faprune_step(model, opt, disc, disc_opt, stage, x, y, z, monitor, lam=lam)
        else:
            out = debias_step(model, params, opt, disc, disc_opt, stage, x, y, z, monitor, lam=lam)
        _finite(out["loss"], epoch, step, "loss")
        for key, value in out.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        steps += 1
        if progress:
            bar.set_postfix(loss=f"{float(out['loss']):.3f}")
    if steps == 0:
        raise ValueError("the training loader yielded no batches")
    record: dict[str, float] = {f"train_{k}": v / steps for k, v in sums.items()}
    if monitor is not None:
        record.update({f"train_{k}": v for k, v in monitor.advantage().items()})
    record["lr"] = lr
    if stage.adversarial:
        record["lam"] = lam
    return record


def _discriminator(stage: Stage, device: torch.device) -> tuple[FairnessDiscriminator | None, torch.optim.Optimizer | None]:
    """The discriminator and its optimizer of an adversarial stage (none for plain cross-entropy)."""
    if not stage.adversarial:
        return None, None
    disc = FairnessDiscriminator(stage.alpha, stage.disc_hidden).to(device)
    return disc, torch.optim.Adam(disc.parameters(), lr=stage.disc_lr)


def _resume(ckpt_path: Path | None, stage: Stage, model: nn.Module, opt: torch.optim.Optimizer,
            disc: nn.Module | None, disc_opt: torch.optim.Optimizer | None) -> tuple[int, list[dict[str, Any]]]:
    """Load the last completed epoch's checkpoint if there is one: (epochs done, history so far)."""
    if ckpt_path is None or not ckpt_path.exists():
        return 0, []
    state = load_torch(ckpt_path)
    if state.get("stage") != asdict(stage):
        raise ValueError(f"checkpoint {ckpt_path} belongs to another stage {state.get('stage')}; delete it to restart")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {ckpt_path} does not fit this model: {str(err).splitlines()[0]}") from err
    opt.load_state_dict(state["opt"])
    if disc is not None:
        disc.load_state_dict(state["disc"])
        disc_opt.load_state_dict(state["disc_opt"])
    torch.set_rng_state(state["rng"])
    return state["epoch"], state["history"]


def _save_checkpoint(path: Path, stage: Stage, epochs_done: int, history: list[dict[str, Any]], model: nn.Module,
                     opt: torch.optim.Optimizer, disc: nn.Module | None, disc_opt: torch.optim.Optimizer | None) -> None:
    """Everything `_resume` needs, written atomically: a crash mid-write keeps the previous checkpoint."""
    save_torch(path, {
        "stage": asdict(stage), "epoch": epochs_done, "history": history, "rng": torch.get_rng_state(),
        "model": model.state_dict(), "opt": opt.state_dict(),
        "disc": disc.state_dict() if disc is not None else None,
        "disc_opt": disc_opt.state_dict() if disc_opt is not None else None,
    })


def _fraction_changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    """Share of kept weights at the start that are no longer kept (how far the mask moved)."""
    kept = sum(int(m.sum()) for m in before.values())
    moved = sum(int((before[k] & ~after[k]).sum()) for k in before)
    return moved / max(kept, 1)
