"""The DI and DEO discriminators of FAPrune (paper Eq. 3–5) and the adversarial-debiasing update.

A discriminator reads one score of the classifier per sample and tries to recover the sensitive
attribute z. The paper's score is the predicted probability p = σ(logit) (``disc_input="prob"``);
the short presets read the logit, standardised by the starting model's logits
(``disc_input="logit"``, `FairnessDiscriminator.standardise`): a pruned start whose probabilities
sit in a narrow band (all near 0.5, or saturated near 0 and 1) gives an 8-unit ReLU head an input
that barely varies, and it learns nothing in a warm-up (README "The adversary off the benchmark").

* DI head ``D``: predicts z from p alone. If it cannot, ŷ ⟂ z (demographic parity, DI → 1).
* DEO heads ``D_{z|y=0}``, ``D_{z|y=1}``: one per value of the target y, each predicting z from p
  among the samples of its y. If they cannot, ŷ ⟂ z | y (equalized odds, DEO → 0).

Each head is an MLP with one hidden layer (8 units by default), trained with Adam (the paper's lr
1e-3; the quick presets use more, see `fapkit.config`). `AdversaryMonitor` measures whether a head
knows anything (its advantage over the entropy of z), `discriminator_update` steps the heads.
Losses are binary cross-entropies averaged over the batch, so Eq. 3/4's Σ_cells Σ_i (1/m) log D
is the negative of our mean BCE; the mixed loss is L_D = α·L_DI + (1−α)·L_DEO (Eq. 5).

**k groups** (``groups=k``, z ∈ {0, …, k−1}; DESIGN.md §11). For k = 2 every head has one output
unit (the logit of P(z=1)) and the losses are the BCEs above, exactly as for a binary attribute.
For k > 2 every head has k output units and predicts z with a k-way softmax; each loss is the
k-way cross-entropy −log softmax(D(p))_z averaged over the batch (Eq. 3/4 with Σ_{z ∈ 𝒵} over the
k groups), mixed by the same α. Entropies (`group_entropy`) are those of the k-group empirical
distribution of z, so an uninformed head still has advantage 0.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_alpha

GeneratorForm = Literal["paper", "confusion"]


def _head(hidden: int, out: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, out))


def _check_group_count(groups: int) -> int:
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 2:
        raise ValueError(f"discriminator groups must be an integer >= 2 (the number of sensitive groups), got {groups!r}")
    return int(groups)


def _frequencies(z: torch.Tensor, groups: int, dtype: torch.dtype) -> torch.Tensor:
    """The empirical distribution of the group ids `z` over ``0, …, groups−1``, shape [groups]."""
    counts = torch.bincount(z, minlength=groups)[:groups].to(dtype)
    return counts / counts.sum().clamp_min(1)


def _group_balanced_mean(each: torch.Tensor, z: torch.Tensor, groups: int) -> torch.Tensor:
    """The mean over the groups present in `z` of each group's mean of `each` (every group weighs alike)."""
    zl = z.reshape(-1).long()
    counts = torch.bincount(zl, minlength=groups)[:groups].to(each.dtype)
    sums = torch.zeros(groups, dtype=each.dtype, device=each.device).index_add(0, zl, each)
    present = counts > 0
    return (sums[present] / counts[present]).mean()


class FairnessDiscriminator(nn.Module):
    """DI head plus one DEO head per target value, mixed by α (α=1: DI only, α=0: DEO only).

    ``groups`` is the number k of sensitive groups (z ∈ {0, …, k−1}). With k = 2 (the default) the
    heads are binary, one logit each, and everything is as for a binary attribute (the same
    parameters, created in the same order: a seeded run gives the same numbers whatever the k-group
    code). With k > 2 each head ends in k units, a k-way softmax over z.

    ``balance``: L_DI and L_DEO weigh every sensitive group alike (the mean over the groups of each group's
    mean loss; for DEO within each y cell, the cells then weighted by their size) instead of every sample
    alike, so that a minority's few samples are not a small share of the loss the heads fit and the
    generator pushes against. With balanced groups the two agree.
    """

    def __init__(self, alpha: float, hidden: int = 8, groups: int = 2, balance: bool = False) -> None:
        super().__init__()
        self.balance = bool(balance)
        alpha = check_alpha(alpha)
        if hidden < 1:
            raise ValueError(f"discriminator hidden units must be >= 1, got {hidden}")
        self.alpha = float(alpha)
        self.groups = _check_group_count(groups)
        width = 1 if self.groups == 2 else self.groups
        self.di = _head(hidden, width)
        self.deo = nn.ModuleList([_head(hidden, width), _head(hidden, width)])  # D_{z|y=0}, D_{z|y=1}
        # the heads read (score − shift) / scale: 0 and 1 (the paper) unless `standardise` set them
        self.register_buffer("input_shift", torch.zeros(()))
        self.register_buffer("input_scale", torch.ones(()))

    def standardise(self, scores: torch.Tensor) -> None:
        """Make the heads read `scores` standardised: shift by their mean, divide by their std (kept as buffers)."""
        scores = scores.detach().reshape(-1).float()
        std = float(scores.std()) if scores.numel() > 1 else 0.0
        self.input_shift.fill_(float(scores.mean()) if scores.numel() else 0.0)
        self.input_scale.fill_(std if std > 1e-6 else 1.0)  # a constant score: nothing to scale

    def logits(self, prob: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z-logits of the DI head and of the DEO head matching each sample's y.

        Shapes [B] for k = 2 (the logit of P(z=1)), [B, k] for k > 2 (softmax logits over the groups).
        """
        p = (prob.reshape(-1, 1) - self.input_shift) / self.input_scale
        if self.groups == 2:
            di = self.di(p).squeeze(1)
            deo = torch.where(y.reshape(-1).bool(), self.deo[1](p).squeeze(1), self.deo[0](p).squeeze(1))
            return di, deo
        return self.di(p), torch.where(y.reshape(-1, 1).bool(), self.deo[1](p), self.deo[0](p))

    def per_sample_losses(self, prob: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of the DI head and of each sample's DEO head for predicting z, per sample; shapes [B].

        BCE with logits for k = 2, the k-way cross-entropy −log softmax(logits)_z for k > 2 (nats).
        """
        di_logit, deo_logit = self.logits(prob, y)
        if self.groups > 2:
            zl = z.reshape(-1).long()
            return (F.cross_entropy(di_logit, zl, reduction="none"),
                    F.cross_entropy(deo_logit, zl, reduction="none"))
        zf = z.reshape(-1).float()
        return (F.binary_cross_entropy_with_logits(di_logit, zf, reduction="none"),
                F.binary_cross_entropy_with_logits(deo_logit, zf, reduction="none"))

    def loss(self, prob: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_DI, L_DEO (mean cross-entropy for predicting z) and the mixture L_D = α·L_DI + (1−α)·L_DEO."""
        di_each, deo_each = self.per_sample_losses(prob, y, z)
        if self.balance:
            l_di, l_deo = _group_balanced_mean(di_each, z, self.groups), self._cell_balanced_mean(deo_each, y, z)
        else:
            l_di, l_deo = di_each.mean(), deo_each.mean()
        return {"l_di": l_di, "l_deo": l_deo, "l_d": self.alpha * l_di + (1.0 - self.alpha) * l_deo,
                "di_each": di_each, "deo_each": deo_each}

    def _cell_balanced_mean(self, each: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        yb, zl = y.reshape(-1).bool(), z.reshape(-1).long()
        parts = [(int(cell.sum()), _group_balanced_mean(each[cell], zl[cell], self.groups)) for cell in (~yb, yb)
                 if cell.any()]
        return sum(n * loss for n, loss in parts) / sum(n for n, _ in parts)

    def confusion_loss(self, prob: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the heads against the base rate of z (per y cell for DEO).

        Minimising it pushes D towards being uninformed (predicting the prior) instead of
        confidently wrong, which is what maximising L_D (the paper's form) can also achieve.

        For k > 2 the base rate is the batch's empirical distribution q of z over the k groups
        (for a DEO head: that of its y cell), and the loss is the soft-target cross-entropy
        −Σ_g q_g log softmax(D(p))_g averaged over the batch (then α-mixed). It is smallest, H(q),
        where the head predicts q itself; for k = 2 it is exactly the binary form (q = (1 − rate, rate)).
        """
        di_logit, deo_logit = self.logits(prob, y)
        if self.groups > 2:
            zl, yb = z.reshape(-1).long(), y.reshape(-1, 1).bool()
            base = _frequencies(zl, self.groups, di_logit.dtype)
            cell = [_frequencies(zl[mask], self.groups, di_logit.dtype) if mask.any() else base
                    for mask in (~yb[:, 0], yb[:, 0])]
            l_di = F.cross_entropy(di_logit, base.expand_as(di_logit))
            l_deo = F.cross_entropy(deo_logit, torch.where(yb, cell[1], cell[0]))
            return self.alpha * l_di + (1.0 - self.alpha) * l_deo
        zf, yb = z.reshape(-1).float(), y.reshape(-1).bool()
        base = zf.mean().expand_as(zf)
        cell_rate = torch.where(yb, zf[yb].mean() if yb.any() else zf.mean(),
                                zf[~yb].mean() if (~yb).any() else zf.mean())
        l_di = F.binary_cross_entropy_with_logits(di_logit, base)
        l_deo = F.binary_cross_entropy_with_logits(deo_logit, cell_rate)
        return self.alpha * l_di + (1.0 - self.alpha) * l_deo


def binary_entropy(rate: float) -> float:
    """H(z) in nats of a Bernoulli(rate) variable: the loss of a discriminator that only knows the base rate."""
    if rate <= 0.0 or rate >= 1.0:
        return 0.0
    return -(rate * math.log(rate) + (1.0 - rate) * math.log(1.0 - rate))


def group_entropy(counts: Sequence[int]) -> float:
    """H(z) in nats of the empirical distribution with these per-group counts (0 for no samples).

    The loss of a discriminator that only knows the groups' frequencies; for two groups it is
    ``binary_entropy(counts[1] / n)``, computed exactly so.
    """
    n = sum(counts)
    if n <= 0:
        return 0.0
    if len(counts) == 2:
        return binary_entropy(counts[1] / n)
    return -sum(c / n * math.log(c / n) for c in counts if c > 0)


def _add_counts(counts: list[int], z: torch.Tensor) -> None:
    """Add the group counts of the ids `z` to `counts` in place (growing it for an id beyond its length)."""
    if z.numel() == 0:
        return
    seen = torch.bincount(z, minlength=len(counts)).tolist()
    counts.extend([0] * (len(seen) - len(counts)))
    for g, c in enumerate(seen):
        counts[g] += c


class AdversaryMonitor:
    """How much the discriminators know: their *advantage* H(z) − loss, in nats, over an epoch.

    A head that has learnt nothing predicts the base rate of z and its cross-entropy equals H(z)
    (for a DEO head: H(z | y=c) within its cell), so an advantage ≤ 0 means the generator's
    fairness term carried no signal. Feed it the per-sample losses a head had *before* its update
    on each batch (an honest, not-yet-fitted estimate); `advantage` reports only the heads that
    train (DI when α > 0, DEO when α < 1), with entropies from the z counts seen.

    ``groups`` is the number k of sensitive groups (the discriminator's ``groups``): the entropies
    are those of the k-group empirical distributions of z (`group_entropy`, natural log), over
    the whole epoch and per y cell. Counts grow if an id ≥ k turns up.
    """

    def __init__(self, alpha: float, groups: int = 2) -> None:
        self.alpha = float(alpha)
        self.groups = _check_group_count(groups)
        self.di_loss, self.n = 0.0, 0
        self.z_counts = [0] * self.groups                         # samples per group z = g
        self.deo_loss = [0.0, 0.0]   # summed per-sample DEO-head loss in cells y=0, y=1
        self.cell_n = [0, 0]
        self.cell_z_counts = [[0] * self.groups, [0] * self.groups]  # per cell y=c, samples per group

    def update(self, di_each: torch.Tensor, deo_each: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> None:
        yb, zl = y.reshape(-1).bool(), z.reshape(-1).long()
        self.di_loss += float(di_each.detach().sum())
        self.n += int(zl.numel())
        _add_counts(self.z_counts, zl)
        for c, in_cell in ((0, ~yb), (1, yb)):
            self.deo_loss[c] += float(deo_each.detach()[in_cell].sum())
            self.cell_n[c] += int(in_cell.sum())
            _add_counts(self.cell_z_counts[c], zl[in_cell])

    def advantage(self) -> dict[str, float]:
        """``adv_di`` = H(z) − L_DI and ``adv_deo_y0`` / ``adv_deo_y1`` = H(z|y=c) − L_DEO on cell c."""
        out: dict[str, float] = {}
        if self.alpha > 0 and self.n:
            out["adv_di"] = group_entropy(self.z_counts) - self.di_loss / self.n
        if self.alpha < 1:
            for c in (0, 1):
                if self.cell_n[c]:
                    out[f"adv_deo_y{c}"] = group_entropy(self.cell_z_counts[c]) - self.deo_loss[c] / self.cell_n[c]
        return out

    def mixed_advantage(self) -> float:
        """One number for the game, mixed like L_D: α·(DI advantage) + (1 − α)·(DEO advantage, cells weighted by size)."""
        adv = self.advantage()
        total = self.alpha * adv.get("adv_di", 0.0) if self.alpha > 0 else 0.0
        if self.alpha < 1:
            deo = sum(self.cell_n[c] * adv.get(f"adv_deo_y{c}", 0.0) for c in (0, 1)) / max(sum(self.cell_n), 1)
            total += (1.0 - self.alpha) * deo
        return total


def discriminator_update(disc: FairnessDiscriminator, opt: torch.optim.Optimizer, prob: torch.Tensor,
                         y: torch.Tensor, z: torch.Tensor, steps: int = 1,
                         monitor: AdversaryMonitor | None = None) -> dict[str, torch.Tensor]:
    """`steps` Adam steps of the discriminator on L_D for fixed predictions; the losses *before* the first step.

    Several steps per generator step let a short schedule keep its adversary informed (the
    predictions move a little with every mask step; the 8-unit heads are cheap to update).
    """
    prob = prob.detach()
    first: dict[str, torch.Tensor] = {}
    for i in range(steps):
        losses = disc.loss(prob, y, z)
        if i == 0:
            first = {k: v.detach() for k, v in losses.items()}
            if monitor is not None:
                monitor.update(first["di_each"], first["deo_each"], y, z)
        opt.zero_grad(set_to_none=True)
        losses["l_d"].backward()
        opt.step()
    return {k: first[k] for k in ("l_d", "l_di", "l_deo")}


def generator_fairness_term(disc: FairnessDiscriminator, prob: torch.Tensor, y: torch.Tensor,
                            z: torch.Tensor, form: GeneratorForm = "paper") -> torch.Tensor:
    """The fairness part of the generator loss, to be *added* to the classification loss with weight λ.

    ``paper``: −L_D (Eq. 6: the generator maximises the discriminator's loss).
    ``confusion``: the discriminator's cross-entropy against the base rate of z
    (`FairnessDiscriminator.confusion_loss`; for k > 2 groups, against the batch's empirical
    k-group distribution of z, per y cell for the DEO heads).
    Both read the discriminator's own losses, so they hold for any number of groups.
    """
    if form == "paper":
        return -disc.loss(prob, y, z)["l_d"]
    if form == "confusion":
        return disc.confusion_loss(prob, y, z)
    raise ValueError(f"unknown generator form {form!r}; choose 'paper' or 'confusion'")


def project_out(grad: torch.Tensor, adv_grad: torch.Tensor, adv_weight: float, eps: float = 1e-12) -> torch.Tensor:
    """Zhang, Lemoine & Mitchell (2018) predictor update direction for one parameter tensor.

    g − proj_h(g) − a·h with proj_h(g) = (⟨g, h⟩ / ⟨h, h⟩)·h, where g is the predictor's gradient,
    h the gradient of the adversary's loss w.r.t. the same parameter and a the adversary weight.
    The inner products run over the *whole* tensor (element-wise product, summed), so a conv
    kernel [out, in, kh, kw] is treated as one vector; a known library bug used ``torch.inner``,
    which contracts only the last axis for such tensors. h comes from the adversary's L_D, the
    k-way cross-entropy for k > 2 groups, so the projection is the same for any number of groups.
    """
    h_norm2 = (adv_grad * adv_grad).sum()
    if h_norm2 <= eps:
        return grad.clone()
    proj = (grad * adv_grad).sum() / h_norm2 * adv_grad
    return grad - proj - adv_weight * adv_grad
