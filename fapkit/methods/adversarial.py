"""The adversarial game of FAPrune and of Adversarial Debiasing: their steps and the discriminator's warm-up.

Both kinds play against a `fapkit.fairness.discriminators.FairnessDiscriminator` (DI and DEO heads):

* ``faprune`` (the paper's Algorithm 1): `disc_steps` discriminator steps on L_D = α·L_DI + (1−α)·L_DEO,
  then a step of the trainable parameters (the mask scores) on L_G = CE − λ·L_D (or the "confusion" form);
* ``debias`` (Adversarial Debiasing, Zhang et al. 2018): `disc_steps` adversary steps, then a predictor
  step along ∇L_P − proj_{∇L_A}∇L_P − λ·∇L_A, per parameter tensor.

Before the first step the heads can be warmed up alone on the starting model's predictions
(`warm_up_discriminator`), until their held-out advantage reaches a share of what the predictions carry
about z (`fapkit.fairness.information`); `adversary_status` says whether the game's adversary was
informed, and the record, the tables and `fapkit.run` flag a game played against one that was not.
Importing this module registers both kinds with the loop (`fapkit.training.loop.register_step`).
"""
from __future__ import annotations

from typing import Any, Iterable, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..fairness.discriminators import (
    AdversaryMonitor,
    FairnessDiscriminator,
    discriminator_update,
    generator_fairness_term,
    project_out,
)
from ..fairness.information import Reference, reference_information
from ..settings import AdversaryConfig
from ..training.batches import Batch, as_batch, one_logit
from ..training.loop import Players, Round, StepSpec, register_step, start_epoch


def faprune_step(players: Players, batch: Batch, turn: Round) -> dict[str, torch.Tensor]:
    """Algorithm 1, one iteration: update D on the current predictions, then the mask on L_G (λ: ``turn.lam``)."""
    x, y, z = batch
    game, disc = turn.adversary, players.disc
    logit = one_logit(players.model(x), y, z)
    prob = adversary_input(logit, game)  # σ(logit) in the paper; the heads standardise a logit themselves
    d_losses = discriminator_update(disc, players.disc_opt, prob, y, z, game.disc_steps, turn.monitor)  # lines 4–7
    ce = F.binary_cross_entropy_with_logits(logit, y.float())   # lines 8–13: L_G = L_prune − λ·L_D
    fair = generator_fairness_term(disc, prob, y, z, game.generator_form)
    loss = ce + turn.lam * fair
    players.opt.zero_grad(set_to_none=True)
    loss.backward()
    players.opt.step()
    return {"loss": loss.detach(), "ce": ce.detach(), **d_losses}


def debias_step(players: Players, batch: Batch, turn: Round) -> dict[str, torch.Tensor]:
    """Adversarial Debiasing: adversary step(s), then the projected predictor step, per parameter tensor."""
    x, y, z = batch
    game, disc = turn.adversary, players.disc
    logit = one_logit(players.model(x), y, z)
    prob = adversary_input(logit, game)
    a_losses = discriminator_update(disc, players.disc_opt, prob, y, z, game.disc_steps, turn.monitor)
    l_pred = F.binary_cross_entropy_with_logits(logit, y.float())
    l_adv = disc.loss(prob, y, z)["l_d"]
    g_pred = torch.autograd.grad(l_pred, players.params, retain_graph=True, allow_unused=True)
    g_adv = torch.autograd.grad(l_adv, players.params, allow_unused=True)
    for p, g, h in zip(players.params, g_pred, g_adv):
        if g is None:
            p.grad = None
        else:
            p.grad = g if h is None else project_out(g, h, turn.lam)
    players.opt.step()
    return {"loss": l_pred.detach(), "ce": l_pred.detach(), **a_losses}


def adversary_input(logit: torch.Tensor, game: AdversaryConfig) -> torch.Tensor:
    """What the discriminator heads read of a logit: σ(logit) (``disc_input="prob"``, the paper) or the logit."""
    return torch.sigmoid(logit) if game.disc_input == "prob" else logit


AdversaryStatus = Literal["informed", "uninformed", "nothing to learn"]


def adversary_status(advantage: float, reference: Reference, share: float) -> AdversaryStatus:
    """Whether heads of this held-out `advantage` know what the predictions carry about z (`reference`).

    ``"nothing to learn"`` when the predictions carry no more about z than chance gives
    (`fapkit.fairness.information.Reference.significant`), ``"informed"`` when the advantage reaches `share`
    of the reference, else ``"uninformed"``: the game was played against an adversary that knew nothing
    it could pass to the generator, which the record, the tables and `fapkit.run` flag.
    """
    if not reference.significant:
        return "nothing to learn"
    return "informed" if advantage >= share * reference.mixed and advantage > 0 else "uninformed"


def warm_up_discriminator(model: nn.Module, disc: FairnessDiscriminator, disc_opt: torch.optim.Optimizer,
                          train_loader: Iterable, game: AdversaryConfig, device: torch.device) -> dict[str, Any]:
    """Prepare the discriminator on the starting model's predictions before the first generator step.

    The predictions of one pass over the training loader (train mode, as the game sees them; BN
    running statistics restored afterwards, so the model is untouched) are computed once. With
    ``disc_input="logit"`` the heads are set to read them standardised (`FairnessDiscriminator.standardise`).
    `fapkit.fairness.information.reference_information` measures on all of them what the predictions carry
    about z: the ``warmup_reference`` (nats, mixed like L_D) an informed head's advantage approaches.
    Every fifth batch (the last one of a loader with fewer than five) is held out from the heads.

    The heads then take one Adam step per batch per pass over the other batches, for at most
    ``game.disc_warmup`` passes (none: the paper). ``game.disc_warmup_rule``: ``"fixed"`` runs exactly
    that many passes over all batches; ``"plateau"`` stops once the held-out advantage
    (`heldout_monitor`, `AdversaryMonitor.mixed_advantage`) has `plateaued`; ``"informed"`` stops once it
    has plateaued *and* reached ``game.warmup_share`` of the reference (or plateaued with nothing to
    learn), so a trajectory that never rose does not end the warm-up.

    Returns ``warmup_steps``, ``warmup_passes``, the heads' advantage (``warmup_adv_*``: over the
    last pass for "fixed", on the held-out batches otherwise), ``warmup_heldout_adv`` (the per-pass
    trajectory; "plateau" and "informed"), the reference (``warmup_reference``,
    ``warmup_reference_null95``, ``warmup_reference_significant``) and ``warmup_status``
    (`adversary_status` of the last held-out advantage; with no warm-up, `fit` decides it after the
    first epoch).
    """
    batches = starting_predictions(model, train_loader, device, game)
    if game.disc_input == "logit":
        disc.standardise(torch.cat([prob for prob, _, _ in batches]))
    held_out: set[int] = set()
    if len(batches) >= 2 and game.disc_warmup > 0 and game.disc_warmup_rule != "fixed":
        held_out = {i for i in range(len(batches)) if i % 5 == 4} or {len(batches) - 1}
    held = [b for i, b in enumerate(batches) if i in held_out]
    fit_on = [b for i, b in enumerate(batches) if i not in held_out]
    # the reference fits nothing, so it reads every batch (five times the held-out samples: a tighter estimate)
    reference = reference_information(*(torch.cat(parts).cpu().numpy() for parts in zip(*batches)),
                                      alpha=game.alpha, groups=disc.groups)
    out: dict[str, Any] = {"warmup_steps": 0, **reference.as_record("warmup_reference_")}
    out["warmup_reference"] = out.pop("warmup_reference_mixed")
    if game.disc_warmup < 1:
        return out
    steps, trajectory, heldout = 0, [], bool(held_out)
    target = game.warmup_share * reference.mixed
    for _ in range(game.disc_warmup):
        monitor = AdversaryMonitor(game.alpha, disc.groups)  # the last pass's is reported ("fixed")
        for i in torch.randperm(len(fit_on)).tolist():
            discriminator_update(disc, disc_opt, *fit_on[i], steps=1, monitor=monitor)
            steps += 1
        if heldout:
            monitor = heldout_monitor(disc, held, game.alpha)
            trajectory.append(round(monitor.mixed_advantage(), 6))
            informed = not reference.significant or trajectory[-1] >= target
            if plateaued(trajectory) and (game.disc_warmup_rule == "plateau" or informed):
                break
    out.update({"warmup_steps": steps, "warmup_passes": steps // max(len(fit_on), 1),
                **{f"warmup_{k}": v for k, v in monitor.advantage().items()}})
    if heldout:
        out["warmup_heldout_adv"] = trajectory
    out["warmup_status"] = adversary_status(monitor.mixed_advantage(), reference, game.warmup_share)
    return out


#: The plateau rule's patience (passes without a rise) and the rise that counts, in nats.
PLATEAU_PATIENCE = 3
PLATEAU_TOLERANCE = 1e-4


def plateaued(trajectory: list[float], patience: int = PLATEAU_PATIENCE, tolerance: float = PLATEAU_TOLERANCE) -> bool:
    """Whether the last `patience` values all stayed within `tolerance` of the best value before them."""
    if len(trajectory) <= patience:
        return False
    return max(trajectory[-patience:]) <= max(trajectory[:-patience]) + tolerance


def starting_predictions(model: nn.Module, train_loader: Iterable, device: torch.device,
                          game: AdversaryConfig) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(the heads' input, y, z) per training batch of the model as it is, in train mode; BN buffers left unchanged."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    start_epoch(train_loader, 0)
    batches = []
    model.train()
    with torch.no_grad():
        for batch in train_loader:
            x, y, z = as_batch(batch, device)
            batches.append((adversary_input(one_logit(model(x), y, z), game), y, z))
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return batches


def heldout_monitor(disc: FairnessDiscriminator, batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                    alpha: float) -> AdversaryMonitor:
    """The heads' losses on `batches` without training on them, gathered in an `AdversaryMonitor` (of the heads' k groups)."""
    monitor = AdversaryMonitor(alpha, disc.groups)
    with torch.no_grad():
        for prob, y, z in batches:
            di_each, deo_each = disc.per_sample_losses(prob, y, z)
            monitor.update(di_each, deo_each, y, z)
    return monitor


def record_first_epoch(record: dict[str, Any], game: AdversaryConfig) -> None:
    """Give a game with no warm-up its ``warmup_status``: `adversary_status` of the first epoch's training
    advantage (losses before each update)."""
    if "warmup_status" in record:
        return
    reference = Reference(**{k: record[f"warmup_reference_{k}"] for k in ("di", "deo", "null95", "samples", "bins")},
                          mixed=record["warmup_reference"])
    record["warmup_status"] = adversary_status(record.get("train_adv_mixed", 0.0), reference, game.warmup_share)


register_step("faprune", StepSpec(faprune_step, warm_up=warm_up_discriminator, first_epoch=record_first_epoch))
register_step("debias", StepSpec(debias_step, warm_up=warm_up_discriminator, first_epoch=record_first_epoch))
