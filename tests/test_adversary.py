"""The adversary schedule knobs: advantage over the entropy of z, D steps per G step, warm-up, degenerate models."""
import math

import pytest
import torch
from torch import nn
from toys import ZCoder, z_coded_loader

from fapkit.config import make_config
from fapkit.fairness.discriminators import AdversaryMonitor, FairnessDiscriminator, binary_entropy, discriminator_update
from fapkit.fairness.metrics import fairness_report, is_degenerate
from fapkit.methods.adversarial import warm_up_discriminator
from fapkit.settings import AdversaryConfig
from fapkit.training.loop import Stage, fit

LN2 = math.log(2.0)


def test_binary_entropy_in_nats():
    assert binary_entropy(0.5) == pytest.approx(LN2)
    assert binary_entropy(0.75) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))  # 0.5623
    assert binary_entropy(0.0) == binary_entropy(1.0) == 0.0


def test_advantage_of_a_hand_made_batch():
    # Per-sample losses chosen by hand; cells y=0: samples 0, 1 (z = 0, 1), y=1: samples 2, 3 (z = 0, 1).
    di_each = torch.tensor([0.5, 0.7, 0.3, 0.9])
    deo_each = torch.tensor([0.2, 0.4, 1.0, 0.6])
    y, z = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    both = AdversaryMonitor(alpha=0.5)
    both.update(di_each, deo_each, y, z)
    adv = both.advantage()
    assert adv["adv_di"] == pytest.approx(LN2 - 0.6)         # H(z) − mean DI loss
    assert adv["adv_deo_y0"] == pytest.approx(LN2 - 0.3)     # H(z|y=0) − mean DEO loss in cell y=0
    assert adv["adv_deo_y1"] == pytest.approx(LN2 - 0.8)     # negative: worse than the base rate
    # Only the heads that train are reported: α=0 trains the DEO heads, α=1 the DI head.
    deo_only, di_only = AdversaryMonitor(alpha=0.0), AdversaryMonitor(alpha=1.0)
    for m in (deo_only, di_only):
        m.update(di_each, deo_each, y, z)
    assert set(deo_only.advantage()) == {"adv_deo_y0", "adv_deo_y1"}
    assert set(di_only.advantage()) == {"adv_di"}


def test_advantage_accumulates_over_batches_with_the_cells_own_entropy():
    monitor = AdversaryMonitor(alpha=0.0)
    monitor.update(torch.zeros(2), torch.tensor([0.1, 0.3]), torch.tensor([1, 1]), torch.tensor([1, 1]))
    monitor.update(torch.zeros(2), torch.tensor([0.5, 0.7]), torch.tensor([1, 1]), torch.tensor([1, 0]))
    # Cell y=1 over both batches: z = 1, 1, 1, 0 (rate 0.75), mean loss 0.4.
    assert monitor.advantage() == {"adv_deo_y1": pytest.approx(binary_entropy(0.75) - 0.4)}


def test_discriminator_update_takes_the_given_number_of_steps_and_returns_the_losses_before_them():
    torch.manual_seed(0)
    disc = FairnessDiscriminator(alpha=0.5)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    prob, y, z = torch.rand(8), torch.tensor([0, 1] * 4), torch.tensor([0, 0, 1, 1] * 2)
    before = disc.loss(prob, y, z)
    out = discriminator_update(disc, opt, prob, y, z, steps=3)
    assert out["l_d"] == pytest.approx(float(before["l_d"].detach()))
    assert all(int(state["step"]) == 3 for state in opt.state.values())
    assert float(disc.loss(prob, y, z)["l_d"].detach()) < float(before["l_d"].detach())  # three steps downhill on this batch


def test_warm_up_counts_its_steps_learns_the_bias_and_leaves_the_model_untouched():
    torch.manual_seed(0)
    model, loader = ZCoder(), z_coded_loader()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    game = AdversaryConfig(alpha=0.0, disc_lr=5e-2, disc_warmup=25)
    disc = FairnessDiscriminator(game.alpha)
    out = warm_up_discriminator(model, disc, torch.optim.Adam(disc.parameters(), lr=game.disc_lr), loader, game,
                                torch.device("cpu"))
    assert out["warmup_steps"] == 25 * len(loader)  # 25 passes × 4 batches
    assert out["warmup_adv_deo_y0"] > 0.3 and out["warmup_adv_deo_y1"] > 0.3  # H(z|y) = ln 2 ≈ 0.69 at most
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # BN statistics restored
    none = warm_up_discriminator(model, disc, torch.optim.Adam(disc.parameters()), loader, AdversaryConfig(),
                                 torch.device("cpu"))
    assert none["warmup_steps"] == 0 and "warmup_status" not in none  # no warm-up: fit decides after epoch 1
    assert none["warmup_reference_significant"] and none["warmup_reference"] > 0.5  # z is in the prediction


def test_fit_records_warm_up_once_and_the_advantage_every_epoch(tmp_path):
    torch.manual_seed(0)
    model, loader = ZCoder(), z_coded_loader()
    params = [model.fc.weight, model.fc.bias]
    stage = Stage("faprune", epochs=2, lr=1e-3, adversary=AdversaryConfig(alpha=0.0, disc_lr=1e-2, disc_steps=2,
                                                                          disc_warmup=3))
    history = fit(model, params, loader, z_coded_loader(), stage, workdir=tmp_path)
    assert history[0]["warmup_steps"] == 3 * len(loader)
    assert "warmup_steps" not in history[1]
    for record in history:
        assert {"train_adv_deo_y0", "train_adv_deo_y1"} <= set(record) and "train_adv_di" not in record
    # The debiasing kind records the advantage too (DI head with α = 1).
    debias = fit(ZCoder(), list(ZCoder().parameters()), loader, z_coded_loader(),
                 Stage("debias", epochs=1, lr=1e-3, adversary=AdversaryConfig(alpha=1.0, disc_warmup=1)))
    assert "train_adv_di" in debias[0] and debias[0]["warmup_steps"] == len(loader)


def test_plain_cross_entropy_stages_have_no_adversary_records():
    model = ZCoder()
    history = fit(model, list(model.parameters()), z_coded_loader(), z_coded_loader(), Stage("ce", epochs=1, lr=1e-3))
    assert not any(k.startswith(("train_adv", "warmup")) for k in history[0])


def test_constant_predictors_are_flagged_degenerate():
    y = [0, 1, 0, 1, 0, 1, 0, 1]
    z = [0, 0, 0, 0, 1, 1, 1, 1]
    everyone = fairness_report(y, [1] * 8, sensitive_features=z)
    assert everyone["di"] == 1.0 and everyone["deo"] == 0.0 and everyone["degenerate"]
    one_group = fairness_report(y, [1, 1, 1, 1, 0, 1, 0, 1], sensitive_features=z)  # all selected in group 0 only
    assert one_group["degenerate"]
    assert not fairness_report(y, [0, 1, 0, 1, 0, 1, 1, 1], sensitive_features=z)["degenerate"]
    groups = {"0": {"selection_rate": 0.995}, "1": {"selection_rate": 0.5}}  # JSON keys, nearly constant
    assert is_degenerate(groups) and not is_degenerate(groups, tolerance=0.001)
    assert is_degenerate({0: {"selection_rate": float("nan")}, 1: {"selection_rate": 0.4}})


def test_adversary_settings_are_validated_and_the_paper_preset_keeps_the_paper_values():
    paper = make_config("faprune", preset="paper")
    game = paper.adversary
    assert (game.disc_lr, game.disc_steps, game.disc_warmup, game.disc_hidden) == (1e-3, 1, 0, 8)
    quick = make_config("faprune", preset="quick")
    assert quick.adversary.disc_warmup > 0 and quick.adversary.disc_steps > 1
    old = make_config("faprune", preset="quick", disc_lr=1e-3, disc_steps=1, disc_warmup=0)  # the old behaviour
    assert (old.adversary.disc_lr, old.adversary.disc_steps, old.adversary.disc_warmup) == (1e-3, 1, 0)
    with pytest.raises(ValueError, match="disc_steps must be >= 1"):
        make_config("faprune", disc_steps=0)
    with pytest.raises(ValueError, match="disc_warmup must be >= 0"):
        make_config("faprune", disc_warmup=-1)
    with pytest.raises(ValueError, match="lam must be a finite number, got nan"):
        make_config("faprune", lam=float("nan"))
    with pytest.raises(ValueError, match="scratch_epochs must be >= 1"):
        make_config("scratch", scratch_epochs=0)


def test_a_model_with_two_outputs_or_plus_minus_one_labels_gets_our_message():
    two_outputs = nn.Sequential(nn.Flatten(), nn.Linear(3, 2))
    loader = z_coded_loader()
    with pytest.raises(ValueError, match=r"one logit per sample \(shape \[16\] or \[16, 1\]\), got shape \[16, 2\]"):
        fit(two_outputs, list(two_outputs.parameters()), loader, loader, Stage("ce", epochs=1, lr=1e-3))
    z = torch.tensor([0, 1] * 8)
    pm_one = [(torch.zeros(16, 3, 1, 1), 2 * z - 1, z)]  # any iterable of (x, y, z) batches is a loader
    model = ZCoder()
    with pytest.raises(ValueError, match=r"labels y must be binary 0/1, found \[-1\] \(they look like ±1 labels"):
        fit(model, list(model.parameters()), pm_one, pm_one, Stage("ce", epochs=1, lr=1e-3))
