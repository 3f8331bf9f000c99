"""CEAG (Hashemizadeh et al., ICLR 2024): prune, then fine-tune under a bound on each group's excess accuracy loss.

Restated from the authors' public code (merajhashemi/balancing-act,
``src/cmp/uniform_accuracy_gap.py``); DESIGN.md §10 gives the method.

* **constraint** -- for every group g, ``ψ_g = (A_dense,g − A_sparse,g) − (A_dense − A_sparse) ≤ ε``:
  no group may lose more than ε accuracy beyond what the model loses as a whole. The dense
  accuracies are measured once, on the training split, in eval mode (`dense_statistics`);
* **replay buffer** -- the sparse accuracies are those of each group's last ``replay_buffer``
  training predictions (`GroupReplayBuffer`); a group is constrained once its buffer is full, and
  ``A_sparse`` is the mean of the full buffers' accuracies, as in the authors' code;
* **dual step** -- one multiplier λ_g ≥ 0 per group, ``λ_g ← max(0, λ_g + η·v_g)`` with the
  violation ``v_g = ψ_g − ε`` (`violations`, `dual_step`), taken before the primal step;
* **primal step** -- on ``CE + Σ_g λ_g·s_g`` over the groups in the batch, with the differentiable
  surrogate ``s_g = (L_g − L_dense,g) − (L − L_dense)`` (cross-entropies in place of error rates;
  `surrogates`).

Departures from the authors' code, each because the kit compares methods on one footing:
the model is magnitude-pruned once to the target (the kit's LMW mask; they prune gradually with a
cubic schedule and switch the constraints on afterwards), every Conv/Linear layer is pruned as in
the kit's other methods (they keep the first conv and the classifier dense), the weights train with
the kit's Adam and schedule at ``masked_lr`` like LMW's fine-tuning (they use SGD with momentum),
and the reported model is the last step's (they select on test accuracy). CEAG is thus LMW with
the constraints added: a difference between the two rows is the constraints' doing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..masking import attach_fixed, magnitude_masks
from ..registry import FIXED_MASK_FIELDS, MethodSpec, register
from ..training.batches import Batch, as_batch, group_count, one_logit
from ..training.loop import Players, Round, StageInputs, fit, scheduled_stage, trainable


@dataclass(frozen=True)
class DenseStatistics:
    """The dense model's accuracy and mean cross-entropy, overall and per group ([k] float64), on the training split."""

    acc: float
    group_acc: torch.Tensor
    loss: float
    group_loss: torch.Tensor

    def to_record(self) -> dict[str, Any]:
        return {"dense_train_acc": self.acc, "dense_train_group_acc": [round(float(a), 6) for a in self.group_acc]}


def dense_statistics(model: nn.Module, loader: Iterable, *, device: torch.device | str, groups: int) -> DenseStatistics:
    """`DenseStatistics` of ``model`` over one pass of ``loader`` in eval mode (every module's mode restored).

    A group absent from the data gets accuracy and loss NaN: `violations` never constrains it.
    """
    device = torch.device(device)
    modes = [(m, m.training) for m in model.modules()]
    correct = torch.zeros(groups, dtype=torch.float64)
    loss = torch.zeros(groups, dtype=torch.float64)
    count = torch.zeros(groups, dtype=torch.float64)
    model.eval()
    try:
        with torch.no_grad():
            for index, batch in enumerate(loader):
                x, y, z = as_batch(batch, device, index=index)
                logit = one_logit(model(x), y, z)
                each = F.binary_cross_entropy_with_logits(logit, y.float(), reduction="none").double().cpu()
                right = ((logit > 0).long() == y.long()).double().cpu()
                zz = z.long().cpu()
                correct.index_add_(0, zz, right)
                loss.index_add_(0, zz, each)
                count.index_add_(0, zz, torch.ones_like(right))
    finally:
        for m, flag in modes:
            m.training = flag
    if count.sum() == 0:
        raise ValueError("the training loader yielded no samples: CEAG's dense statistics need some")
    return DenseStatistics(float(correct.sum() / count.sum()), correct / count, float(loss.sum() / count.sum()),
                           loss / count)


class GroupReplayBuffer:
    """Each group's last ``length`` per-sample correctness values (0/1), first in first out.

    `push` appends a batch's values group by group in batch order; `query` gives, per group, whether
    its buffer is full and its accuracy (NaN until full), and the mean accuracy over the full buffers.
    """

    def __init__(self, groups: int, length: int) -> None:
        if groups < 1 or length < 1:
            raise ValueError(f"need groups >= 1 and length >= 1, got groups={groups}, length={length}")
        self.values = torch.zeros(groups, length, dtype=torch.float64)
        self.count = torch.zeros(groups, dtype=torch.long)   # values pushed so far (capped at length)
        self.next = torch.zeros(groups, dtype=torch.long)    # the slot the next value of each group goes to

    @property
    def length(self) -> int:
        return self.values.shape[1]

    def push(self, correct: torch.Tensor, z: torch.Tensor) -> None:
        correct, z = correct.detach().double().cpu().reshape(-1), z.detach().long().cpu().reshape(-1)
        for g in torch.unique(z).tolist():
            new = correct[z == g][-self.length:]  # only the last `length` can survive anyway
            slots = (self.next[g] + torch.arange(len(new))) % self.length
            self.values[g, slots] = new
            self.next[g] = (self.next[g] + len(new)) % self.length
            self.count[g] = min(self.length, int(self.count[g]) + len(new))

    def query(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(full [k] bool, accuracy [k] float64 with NaN where not full, mean accuracy of the full buffers or NaN)."""
        full = self.count == self.length
        acc = torch.where(full, self.values.mean(dim=1), torch.full_like(self.values[:, 0], float("nan")))
        mean = float(acc[full].mean()) if full.any() else float("nan")
        return full, acc, mean

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"values": self.values.clone(), "count": self.count.clone(), "next": self.next.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.values, self.count, self.next = state["values"].clone(), state["count"].clone(), state["next"].clone()


def violations(dense: DenseStatistics, buffer: GroupReplayBuffer, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(``v_g = (A_dense,g − A_g) − (A_dense − A) − ε`` [k] float64, the bool [k] of groups it is measured for).

    ``A_g`` is group g's buffer accuracy and ``A`` the mean over full buffers (`GroupReplayBuffer.query`);
    groups without a full buffer, or absent from the dense statistics, get 0 and are not measured.
    """
    full, acc, mean = buffer.query()
    measured = full & ~torch.isnan(dense.group_acc)
    psi = (dense.group_acc - acc) - (dense.acc - mean)
    return torch.where(measured, psi - epsilon, torch.zeros_like(psi)), measured


def dual_step(multipliers: torch.Tensor, violation: torch.Tensor, measured: torch.Tensor, dual_lr: float) -> torch.Tensor:
    """Projected gradient ascent on the multipliers: ``max(0, λ_g + dual_lr·v_g)`` for measured groups, others unchanged."""
    stepped = torch.clamp(multipliers + dual_lr * violation, min=0.0)
    return torch.where(measured, stepped, multipliers)


def surrogates(logit: torch.Tensor, y: torch.Tensor, z: torch.Tensor, dense: DenseStatistics,
               groups: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean CE of the batch, ``s_g = (L_g − L_dense,g) − (L − L_dense)`` [k], the bool [k] of groups in the batch).

    ``L_g`` is the batch's mean cross-entropy over group g (0 for a group not in the batch, whose
    ``s_g`` is then 0 and carries no gradient).
    """
    each = F.binary_cross_entropy_with_logits(logit, y.float(), reduction="none")
    loss = each.mean()
    zz = z.long()
    sums = torch.zeros(groups, dtype=each.dtype, device=each.device).index_add(0, zz, each)
    counts = torch.zeros(groups, dtype=each.dtype, device=each.device).index_add(0, zz, torch.ones_like(each))
    present = counts > 0
    group_loss = sums / counts.clamp(min=1.0)
    dense_group = torch.nan_to_num(dense.group_loss, nan=0.0).to(each.device, each.dtype)
    s = (group_loss - dense_group) - (loss - dense.loss)
    return loss, torch.where(present, s, torch.zeros_like(s)), present


class CeagStep:
    """One CEAG step for `fapkit.training.loop.fit` (``step=``): buffer, dual step, then the primal step.

    Its multipliers and buffer are the step's state (`state_dict`), checkpointed with the model so
    a resumed run goes on where it stopped. The losses it returns: ``loss`` (the Lagrangian), ``ce``,
    ``multiplier_g`` per group and ``max_violation`` (over the measured groups; 0 while none is).
    """

    def __init__(self, dense: DenseStatistics, groups: int, *, epsilon: float, dual_lr: float, replay_buffer: int) -> None:
        self.dense, self.groups, self.epsilon, self.dual_lr = dense, groups, epsilon, dual_lr
        self.multipliers = torch.zeros(groups, dtype=torch.float64)
        self.buffer = GroupReplayBuffer(groups, replay_buffer)

    def __call__(self, players: Players, batch: Batch, turn: Round) -> dict[str, torch.Tensor]:
        x, y, z = batch
        logit = one_logit(players.model(x), y, z)
        self.buffer.push((logit.detach() > 0).long() == y.long(), z)
        violation, measured = violations(self.dense, self.buffer, self.epsilon)
        self.multipliers = dual_step(self.multipliers, violation, measured, self.dual_lr)  # dual first
        ce, s, _ = surrogates(logit, y, z, self.dense, self.groups)
        loss = ce + (self.multipliers.to(s.device, s.dtype) * s).sum()
        players.opt.zero_grad(set_to_none=True)
        loss.backward()
        players.opt.step()
        worst = violation[measured].max() if measured.any() else torch.zeros((), dtype=torch.float64)
        return {"loss": loss.detach(), "ce": ce.detach(), "max_violation": worst,
                **{f"multiplier_{g}": self.multipliers[g] for g in range(self.groups)}}

    def state_dict(self) -> dict[str, Any]:
        return {"multipliers": self.multipliers.clone(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.multipliers = state["multipliers"].clone()
        self.buffer.load_state_dict(state["buffer"])


def train_stage(inputs: StageInputs) -> tuple[nn.Module, Any, list[dict[str, Any]]]:
    """CEAG as one stage of the kit: the dense model's statistics, the magnitude mask, then constrained fine-tuning.

    The fine-tuning trains the unpruned weights and BN for the run's ``epochs`` at ``masked_lr``
    (None: ``lr``) on the kit's schedule, exactly as LMW's does, with `CeagStep` in place of plain
    cross-entropy. The first history record carries the dense statistics.
    """
    cfg, options, device = inputs.cfg, inputs.cfg.ceag, inputs.device
    model = inputs.model.to(device)
    groups = group_count(inputs.train)
    dense = dense_statistics(model, inputs.train, device=device, groups=groups)
    masker = attach_fixed(model, magnitude_masks(model, cfg.ratio, scope=cfg.scope))
    step = CeagStep(dense, groups, epsilon=options.epsilon, dual_lr=options.dual_lr,
                    replay_buffer=options.replay_buffer)
    lr, params = cfg.finetune_lr, trainable(model)
    history = fit(model, params, inputs.train, inputs.monitor, scheduled_stage(cfg, "ce", cfg.epochs, lr),
                  masker=masker, workdir=inputs.workdir, progress=inputs.progress, device=device, seed=cfg.seed,
                  desc=inputs.desc, step=step)
    if history:
        history[0].update(dense.to_record())
    return model, masker, history


# Not a row of the paper's tables 2–3 (DESIGN.md §10): registered after the paper's eight, with its trainer.
register(MethodSpec("ceag", "CEAG", 4, "normal", FIXED_MASK_FIELDS + ("ceag",), mask="magnitude",
                    trainer=train_stage, knob="epsilon"))
