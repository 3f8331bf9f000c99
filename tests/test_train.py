"""The step functions of `fapkit.training.loop` on the one-layer toy model, against values worked out by hand."""
import math

import pytest
import torch
import torch.nn.functional as F
from toy_model import ToyLinear

from fapkit.fairness.discriminators import FairnessDiscriminator
from fapkit.methods.adversarial import debias_step, faprune_step
from fapkit.settings import AdversaryConfig
from fapkit.training.loop import Players, Round, Stage, ce_step, train_one_epoch

X = torch.ones(2, 4)           # the toy's dense output on an all-ones input is 1 − 2 + 3 − 4 = −2
Y = torch.tensor([1, 0])
Z = torch.tensor([0, 1])


def _sgd(model, lr=0.1):
    return torch.optim.SGD(model.parameters(), lr=lr)


def test_ce_step_is_one_gradient_step_on_the_mean_cross_entropy():
    model = ToyLinear()
    out = ce_step(Players(model, list(model.parameters()), _sgd(model)), (X, Y, Z), Round())
    # loss = mean(BCE(−2, 1), BCE(−2, 0)) = (softplus(2) + softplus(−2)) / 2
    assert float(out["loss"]) == pytest.approx((math.log1p(math.exp(2)) + math.log1p(math.exp(-2))) / 2)
    # d loss / d w = mean over the batch of (σ(−2) − y) · x = (σ(−2) − 1 + σ(−2)) / 2 per input weight
    grad = (2 * torch.sigmoid(torch.tensor(-2.0)) - 1) / 2
    assert torch.allclose(model.fc.weight, torch.tensor([[1.0, -2.0, 3.0, -4.0]]) - 0.1 * grad)


def _disc(alpha):
    torch.manual_seed(0)
    return FairnessDiscriminator(alpha)


def test_faprune_step_updates_the_discriminator_first_then_the_generator_on_ce_minus_lambda_l_d():
    game = AdversaryConfig(alpha=0.0, lam=2.0, disc_steps=2)
    model, disc = ToyLinear(), _disc(0.0)
    disc_opt = torch.optim.SGD(disc.parameters(), lr=0.5)
    # What the step should do, computed separately on copies: two D steps on detached p, then L_G.
    ref_model, ref_disc = ToyLinear(), _disc(0.0)
    ref_disc_opt = torch.optim.SGD(ref_disc.parameters(), lr=0.5)
    p = torch.sigmoid(ref_model(X).reshape(-1)).detach()
    before = ref_disc.loss(p, Y, Z)["l_d"].item()
    for _ in range(2):
        ref_disc_opt.zero_grad()
        ref_disc.loss(p, Y, Z)["l_d"].backward()
        ref_disc_opt.step()
    logit = ref_model(X).reshape(-1)
    ce = F.binary_cross_entropy_with_logits(logit, Y.float())
    l_g = ce - 2.0 * ref_disc.loss(torch.sigmoid(logit), Y, Z)["l_d"]
    l_g.backward()
    expected_weight = ref_model.fc.weight.detach() - 0.1 * ref_model.fc.weight.grad

    out = faprune_step(Players(model, list(model.parameters()), _sgd(model), disc, disc_opt), (X, Y, Z),
                       Round(game, lam=game.lam))
    assert float(out["l_d"]) == pytest.approx(before)          # the loss D had before its steps
    assert float(out["ce"]) == pytest.approx(ce.item())
    assert float(out["loss"]) == pytest.approx(l_g.item())
    assert torch.allclose(model.fc.weight, expected_weight)
    assert all(torch.equal(a, b) for a, b in zip(disc.parameters(), ref_disc.parameters()))


def test_debias_step_moves_the_predictor_along_the_projected_gradient():
    game = AdversaryConfig(alpha=1.0, lam=0.5)
    model, disc = ToyLinear(), _disc(1.0)
    disc_opt = torch.optim.SGD(disc.parameters(), lr=0.5)
    ref_model, ref_disc = ToyLinear(), _disc(1.0)
    ref_disc_opt = torch.optim.SGD(ref_disc.parameters(), lr=0.5)
    p = torch.sigmoid(ref_model(X).reshape(-1)).detach()
    ref_disc_opt.zero_grad()
    ref_disc.loss(p, Y, Z)["l_d"].backward()
    ref_disc_opt.step()
    logit = ref_model(X).reshape(-1)
    w = ref_model.fc.weight
    g = torch.autograd.grad(F.binary_cross_entropy_with_logits(logit, Y.float()), w, retain_graph=True)[0]
    h = torch.autograd.grad(ref_disc.loss(torch.sigmoid(logit), Y, Z)["l_d"], w)[0]
    direction = g - (g * h).sum() / (h * h).sum() * h - 0.5 * h   # Zhang et al.: g − proj_h g − α·h
    expected = w.detach() - 0.1 * direction

    debias_step(Players(model, [model.fc.weight], _sgd(model), disc, disc_opt), (X, Y, Z), Round(game, lam=game.lam))
    assert torch.allclose(model.fc.weight, expected)
    # The update has no component along the predictor-gradient's projection onto h beyond −α·h:
    assert float(((direction + 0.5 * h) * h).sum()) == pytest.approx(0.0, abs=1e-6)


def test_train_one_epoch_averages_the_step_losses_over_the_batches():
    model = ToyLinear()
    batches = [(X, Y, Z), (2 * X, Y, Z)]
    record = train_one_epoch(Players(model, list(model.parameters()), _sgd(model, lr=0.0)),
                             Stage("ce", epochs=1, lr=0.0), batches, epoch=0)
    first = (math.log1p(math.exp(2)) + math.log1p(math.exp(-2))) / 2      # logits −2
    second = (math.log1p(math.exp(4)) + math.log1p(math.exp(-4))) / 2     # logits −4 (lr 0: nothing moves)
    assert record == {"train_loss": pytest.approx((first + second) / 2), "lr": 0.0}  # the lr of its last step
