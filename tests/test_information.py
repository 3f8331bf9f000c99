"""What the predictions carry about z (`fapkit.fairness.information`), and the warm-up that reads it (DESIGN.md §12)."""
import math
import warnings

import numpy as np
import pytest
import torch

import fapkit
from fapkit.data.tabular import TabularConfig, TabularLoader, TabularSplit, mlp, tabular_loaders
from fapkit.fairness.discriminators import FairnessDiscriminator
from fapkit.fairness.information import binned_information, reference_information
from fapkit.methods.adversarial import adversary_status, warm_up_discriminator
from fapkit.presentation.tables import baseline_table
from fapkit.settings import AdversaryConfig


def _sample(n=4000, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    z, y = rng.integers(0, 2, n), rng.integers(0, 2, n)
    return rng.normal(size=n) + shift * z, y, z


def test_independent_scores_carry_nothing_and_a_shift_carries_its_gaussian_information():
    s, y, z = _sample()
    ref = reference_information(s, y, z, alpha=1.0)
    assert not ref.significant and abs(ref.mixed) < 0.003
    s, y, z = _sample(shift=0.5)
    ref = reference_information(s, y, z, alpha=1.0)
    # two unit Gaussians 0.5 apart, equal weights: I ≈ d²/8 = 0.031 nats (binning loses a little)
    assert ref.significant and 0.022 < ref.di < 0.034


def test_the_estimate_is_invariant_to_a_monotone_map_of_the_score():
    s, y, z = _sample(shift=0.4)
    a = reference_information(s, y, z, alpha=0.3)
    b = reference_information(1 / (1 + np.exp(-3 * s)), y, z, alpha=0.3)  # σ(3s): what a head reading p sees
    assert a.di == pytest.approx(b.di) and a.deo == pytest.approx(b.deo)


def test_a_score_that_follows_y_alone_informs_di_but_not_deo():
    rng = np.random.default_rng(1)
    n = 6000
    z = rng.integers(0, 2, n)
    y = (rng.random(n) < np.where(z == 1, 0.8, 0.2)).astype(int)  # y depends on z
    s = y + 0.3 * rng.normal(size=n)  # the score reads y only: ŷ ⟂ z | y
    assert reference_information(s, y, z, alpha=1.0).significant
    assert not reference_information(s, y, z, alpha=0.0).significant


def test_binned_information_of_a_perfect_code_is_the_entropy():
    z = np.array([0, 1] * 500)
    assert binned_information(z, z, 2) == pytest.approx(math.log(2), abs=2e-3)


def _narrow_band_loader(n=1600, seed=0):
    """Features whose first coordinate carries z, as the logit of a model will, in a narrow band."""
    g = torch.Generator().manual_seed(seed)
    z, y = torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)
    x = (z.float() + 0.6 * torch.randn(n, generator=g)).reshape(n, 1)
    return TabularLoader(TabularSplit(x, y, z), 64, shuffle=True, seed=seed)


class _Narrow(torch.nn.Module):
    """A logit 0.02·x: probabilities all within ≈ 0.5 ± 0.02, as a heavily pruned start gives."""

    def forward(self, x):
        return 0.02 * x


def _warm(game, loader):
    torch.manual_seed(0)
    disc = FairnessDiscriminator(game.alpha)
    return warm_up_discriminator(_Narrow(), disc, torch.optim.Adam(disc.parameters(), lr=game.disc_lr), loader, game,
                                 torch.device("cpu"))


def test_heads_reading_the_standardised_logit_learn_from_a_narrow_band_where_probability_heads_do_not():
    loader = _narrow_band_loader()
    short = dict(alpha=0.0, disc_lr=1e-2, disc_warmup=3, disc_warmup_rule="fixed")
    prob = _warm(AdversaryConfig(disc_input="prob", **short), loader)
    logit = _warm(AdversaryConfig(disc_input="logit", **short), loader)
    assert prob["warmup_reference_significant"] and prob["warmup_reference"] > 0.1  # z is there to learn
    assert prob["warmup_status"] == "uninformed"
    assert logit["warmup_status"] == "informed"


def test_the_informed_rule_does_not_stop_a_trajectory_that_never_rose():
    loader = _narrow_band_loader()
    game = dict(alpha=0.0, disc_lr=1e-3, disc_warmup=60, disc_input="prob")
    plateau = _warm(AdversaryConfig(disc_warmup_rule="plateau", **game), loader)
    informed = _warm(AdversaryConfig(disc_warmup_rule="informed", **game), loader)
    # σ(logit) in a ±0.02 band at lr 1e-3: the heads do not learn; plateau stops early and calls nothing,
    # informed spends its budget and then says so
    assert plateau["warmup_passes"] < 20 and informed["warmup_passes"] == 60
    assert informed["warmup_status"] == "uninformed"


def test_status_says_nothing_to_learn_when_the_reference_is_chance():
    s, y, z = _sample()
    ref = reference_information(s, y, z, alpha=0.0)
    assert adversary_status(-0.01, ref, 0.5) == "nothing to learn"
    s, y, z = _sample(shift=1.0)
    ref = reference_information(s, y, z, alpha=0.0)
    assert adversary_status(-0.01, ref, 0.5) == "uninformed"
    assert adversary_status(0.6 * ref.mixed, ref, 0.5) == "informed"


def test_a_run_against_an_uninformed_adversary_warns_and_is_flagged_in_its_record_and_tables(tmp_path):
    cfg = TabularConfig(n_train=600, n_valid=400, n_test=400, proxy=3.0, dependence=2.0, seed=3)
    train, valid, test = tabular_loaders(cfg)
    crippled = dict(disc_input="prob", disc_warmup=1, disc_warmup_rule="fixed", disc_lr=1e-6)
    with pytest.warns(UserWarning, match="uninformed"):
        res = fapkit.run("faprune", preset="smoke", model=lambda s: mlp(10, seed=s), train=train, valid=valid,
                         test=test, runs_dir=tmp_path, epochs=1, pretrain_epochs=3, **crippled)
    assert res.uninformed and res.metrics["adversary_status"] == "uninformed"
    assert res.to_record()["adversary_status"] == "uninformed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fine = fapkit.run("faprune", preset="smoke", model=lambda s: mlp(10, seed=s), train=train, valid=valid,
                          test=test, runs_dir=tmp_path, epochs=1, pretrain_epochs=3)
    assert not fine.uninformed and fine.history[0]["warmup_status"] in ("informed", "nothing to learn")
    assert int(baseline_table([res], metric="DEO")["uninformed"].sum()) == 1
    assert int(baseline_table([fine], metric="DEO")["uninformed"].sum()) == 0
