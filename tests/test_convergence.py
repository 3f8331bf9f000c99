"""Runs that converge: the learning-rate schedule, BN re-estimation, the warm-up's stopping rule, the λ ramp,
and the near-constant flag (DESIGN.md §9)."""
import math

import pytest
import torch
from fake_results import fake
from torch.optim.optimizer import register_optimizer_step_pre_hook
from toy_model import TinyNet, ToyLinear
from toys import CrashingLoader, OneLogit, ZCoder, toy_loader, z_coded_loader

from fapkit.config import make_config
from fapkit.fairness.discriminators import FairnessDiscriminator
from fapkit.fairness.metrics import fairness_report, is_degenerate, is_near_constant
from fapkit.methods.adversarial import plateaued, warm_up_discriminator
from fapkit.presentation.display import readable
from fapkit.presentation.tables import baseline_table
from fapkit.settings import AdversaryConfig
from fapkit.training.batchnorm import reestimate_batchnorm
from fapkit.training.loop import Stage, fit
from fapkit.training.schedule import lam_factor, lr_factor


def test_cosine_schedule_warms_up_linearly_then_ends_near_zero():
    total, warmup = 100, 0.05  # 5 warm-up steps
    assert lr_factor(0, total, warmup) == pytest.approx(1 / 5)
    assert lr_factor(4, total, warmup) == pytest.approx(1.0)
    assert lr_factor(5, total, warmup) == pytest.approx(1.0)  # the cosine starts at its top
    assert lr_factor(99, total, warmup) == pytest.approx(0.5 * (1 + math.cos(math.pi * 94 / 95)))
    assert 0 < lr_factor(99, total, warmup) < 1e-3
    factors = [lr_factor(t, total, warmup) for t in range(5, total)]
    assert all(a > b for a, b in zip(factors, factors[1:]))  # strictly decaying after the warm-up
    assert lr_factor(0, total, 0.0) == 1.0 and lr_factor(7, total, 0.3, "constant") == 1.0
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        lr_factor(0, total, schedule="step")


def test_lambda_ramps_linearly_over_the_given_fraction_then_stays():
    assert [lam_factor(t, 10, 0.5) for t in (0, 1, 5, 9)] == [0.0, 0.2, 1.0, 1.0]
    assert lam_factor(0, 10, 0.0) == 1.0  # the paper's constant λ


def test_fit_sets_the_scheduled_learning_rate_at_the_first_and_the_last_step():
    wrapped, loader = OneLogit(), toy_loader()
    seen: list[float] = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    try:
        stage = Stage("ce", epochs=3, lr=0.01, schedule="cosine", lr_warmup=0.1)
        history = fit(wrapped, list(wrapped.parameters()), loader, loader, stage)
    finally:
        handle.remove()
    total = 3 * len(loader)  # 12 steps, ceil(1.2) = 2 of warm-up
    assert len(seen) == total
    assert seen[0] == pytest.approx(0.01 / 2) and seen[1] == pytest.approx(0.01)
    assert seen[-1] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 9 / 10)))
    assert history[-1]["lr"] == pytest.approx(seen[-1])
    constant: list[float] = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: constant.append(opt.param_groups[0]["lr"]))
    try:
        fit(wrapped, list(wrapped.parameters()), loader, loader, Stage("ce", epochs=1, lr=0.01))
    finally:
        handle.remove()
    assert constant == [0.01] * len(loader)


def test_a_scheduled_stage_refuses_a_loader_without_len():
    model = OneLogit()
    batches = [(torch.zeros(4, 3, 4, 4), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1]))]
    with pytest.raises(ValueError, match=r"has no len\(\).*schedule='constant'"):
        fit(model, list(model.parameters()), (b for b in batches), batches, Stage("ce", 1, 1e-3, schedule="cosine"))


def test_bn_reestimation_equals_the_statistics_of_a_fresh_pass_over_the_data():
    model = TinyNet()
    data = toy_loader(n=32, batch=32)  # one batch: the cumulative average is the whole data's statistics
    with torch.no_grad():
        model.bn.running_mean.fill_(5.0)
        model.bn.running_var.fill_(7.0)
        x = next(iter(data))[0].float()
        h = model.conv1(x)
    model.eval()
    assert reestimate_batchnorm(model, data)
    assert not model.training  # mode restored
    assert torch.allclose(model.bn.running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(model.bn.running_var, h.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4)
    assert model.bn.momentum == 0.1  # momentum restored
    # Four batches: the running statistics are the average of the four batch statistics.
    batches = toy_loader(n=32, batch=8)
    reestimate_batchnorm(model, batches)
    batches.epoch = 0
    means = [model.conv1(b[0].float()).mean(dim=(0, 2, 3)) for b in batches]
    assert torch.allclose(model.bn.running_mean, torch.stack(means).mean(0).detach(), atol=1e-5)
    assert not reestimate_batchnorm(ToyLinear(), batches)  # no BN: nothing to do


def test_fit_reestimates_bn_after_the_last_epoch_and_a_resumed_run_ends_alike(tmp_path):
    stage = Stage("ce", epochs=2, lr=1e-2, schedule="cosine", lr_warmup=0.1, bn_reestimate=True)
    torch.manual_seed(0)
    model = OneLogit()
    history = fit(model, list(model.parameters()), toy_loader(), toy_loader(), stage, workdir=tmp_path / "a")
    assert history[-1]["bn_reestimated"] is True and "bn_reestimated" not in history[0]
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    reestimate_batchnorm(model, toy_loader())
    assert all(torch.allclose(v, fresh[k]) for k, v in model.state_dict().items())  # already re-estimated
    # An interrupted run (killed in its second epoch, then resumed) ends on the same weights and statistics.
    crashing = CrashingLoader(toy_loader(), crash_epoch=1)
    torch.manual_seed(0)
    other = OneLogit()
    with pytest.raises(RuntimeError, match="killed"):
        fit(other, list(other.parameters()), crashing, toy_loader(), stage, workdir=tmp_path / "b")
    torch.manual_seed(0)
    resumed = OneLogit()
    history_b = fit(resumed, list(resumed.parameters()), toy_loader(), toy_loader(), stage, workdir=tmp_path / "b")
    assert [h["epoch"] for h in history_b] == [1, 2] and history_b[-1]["lr"] == history[-1]["lr"]
    for k, v in resumed.state_dict().items():
        assert torch.allclose(v, fresh[k], atol=1e-6), k


def test_the_plateau_rule_stops_once_the_advantage_stops_rising():
    assert not plateaued([0.1, 0.2, 0.3])  # not enough passes to judge
    assert not plateaued([0.1, 0.2, 0.3, 0.31])  # still rising by more than the tolerance
    assert plateaued([0.1, 0.3, 0.3, 0.29, 0.30005])  # three passes within 1e-4 of the best before them
    assert not plateaued([0.1, 0.3, 0.3, 0.29, 0.3002])
    assert plateaued([0.0, -0.01, -0.02, -0.03], patience=3)


def test_the_plateau_warm_up_learns_until_the_held_out_advantage_stops_rising():
    torch.manual_seed(0)
    model, loader = ZCoder(), z_coded_loader(n=320, batch_size=16)  # 20 batches, 4 held out
    game = AdversaryConfig(alpha=0.0, disc_lr=5e-2, disc_warmup=200, disc_warmup_rule="plateau")
    disc = FairnessDiscriminator(game.alpha)
    out = warm_up_discriminator(model, disc, torch.optim.Adam(disc.parameters(), lr=game.disc_lr), loader, game,
                                torch.device("cpu"))
    trajectory = out["warmup_heldout_adv"]
    assert out["warmup_passes"] == len(trajectory) < 200  # stopped by the rule, not the cap
    assert out["warmup_steps"] == len(trajectory) * 16  # 16 of the 20 batches train
    assert plateaued(trajectory) and not plateaued(trajectory[:-1])  # stopped at the first plateau
    assert trajectory[-1] > 0.5  # z is in the prediction: the heads learnt most of H(z|y) = ln 2
    # A model whose prediction carries nothing about z: the advantage cannot rise above 0.
    const = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        const[1].weight.zero_()
    disc = FairnessDiscriminator(0.0)
    out = warm_up_discriminator(const, disc, torch.optim.Adam(disc.parameters(), lr=5e-2), loader, game,
                                torch.device("cpu"))
    assert out["warmup_passes"] < 200 and max(out["warmup_heldout_adv"]) <= 1e-3


def test_near_constant_is_a_second_level_beside_degenerate():
    rates = lambda a, b: {0: {"selection_rate": a}, 1: {"selection_rate": b}}  # noqa: E731
    assert is_near_constant(rates(0.98, 0.80)) and not is_degenerate(rates(0.98, 0.80))
    assert is_degenerate(rates(0.995, 0.5)) and not is_near_constant(rates(0.995, 0.5))  # one level only
    assert not is_near_constant(rates(0.9, 0.5)) and not is_near_constant(rates(0.06, 0.5))
    assert is_near_constant(rates(0.5, 0.04))
    y, z = [0, 1] * 50, [0] * 50 + [1] * 50
    report = fairness_report(y, [1] * 49 + [0] + [0, 1] * 25, sensitive_features=z)  # selection rate 0.98 in group 0
    assert report["near_constant"] and not report["degenerate"]


def test_tables_and_notes_flag_near_constant_runs():
    runs = [fake("faprune", seed=0, sel0=0.98, sel1=0.80), fake("faprune", seed=1),
            fake("sgdp", seed=0), fake("sgdp", seed=1)]
    assert runs[0].near_constant and not runs[0].degenerate and not runs[1].near_constant
    table = baseline_table(runs, metric="DEO")
    shown = readable(table)
    assert shown.loc["Ours (FAPrune)", "near-constant"] == "⚠ 1/2"
    assert shown.loc["SGDP", "near-constant"] == ""
    assert "Near-constant runs in Ours (FAPrune) (1 of 2)" in table.attrs["note"]


def test_every_preset_trains_on_the_schedule_and_the_paper_constant_lr_stays_reachable():
    for preset in ("smoke", "quick", "paper"):
        cfg = make_config("faprune", preset=preset)
        assert (cfg.schedule, cfg.bn_reestimate) == ("cosine", True)
    quick = make_config("faprune", preset="quick")
    assert quick.adversary.disc_warmup_rule == "informed" and quick.adversary.disc_warmup >= 10
    assert quick.adversary.disc_input == "logit"
    assert make_config("faprune", preset="paper").adversary.disc_input == "prob"  # the paper's heads read σ(logit)
    literal = make_config("faprune", preset="paper", schedule="constant", bn_reestimate=False)
    game = literal.adversary
    assert (literal.lr, game.disc_lr, game.disc_warmup, game.lam_ramp) == (1e-4, 1e-3, 0, 0.0)
    with pytest.raises(ValueError, match="schedule must be one of 'constant', 'cosine', got 'linear'"):
        make_config("sgdp", schedule="linear")
    with pytest.raises(ValueError, match=r"lam_ramp must be a fraction of the stage's steps in \[0, 1\), got 1.5"):
        make_config("faprune", lam_ramp=1.5)
    with pytest.raises(ValueError, match="disc_warmup_rule must be 'fixed'"):
        make_config("faprune", disc_warmup_rule="auto")
    with pytest.raises(TypeError, match="bn_reestimate must be bool"):
        make_config("lmw", bn_reestimate="yes")


def test_figure_direction_and_explorer_flag_near_constant_runs(tmp_path):
    from fapkit.presentation import direction, figures
    from fapkit.widgets import metrics_html

    runs = [fake(m, seed=s, acc=0.8, deo=0.2 + 0.01 * s + (0.1 if m == "sgdp" else 0.0))
            for m in ("faprune", "sgdp", "lmw") for s in (0, 1, 2)]
    runs[4] = fake("sgdp", seed=1, deo=0.31, sel0=0.98, sel1=0.80)  # near-constant, not degenerate
    fig = figures.figure1(runs, metric="DEO", with_paper=False, path=tmp_path / "f1.png")
    ours = fig.axes[0]
    dashed = [c for c in ours.collections if len(c.get_offsets()) == 1 and c.get_linestyle()[0][1] is not None]
    assert len(dashed) == 1 and not any(c.get_hatch() for c in ours.collections)  # SGDP only, not hatched
    assert any("near-constant" in t.get_text() for t in fig.legends[0].get_texts())
    table = direction.direction_table({("Attractive", "DEO"): runs})
    sgdp = table[table["baseline"] == "SGDP"].iloc[0]
    assert sgdp["near_constant"] == 1 and sgdp["degenerate"] == 0
    assert "1 of the 6 paired runs are near-constant" in direction.direction_text(table)
    html = metrics_html(runs[4], ratio=0.8, alpha=0.0, lam=1.0)
    assert "fap-near-constant" in html and "fap-degenerate" not in html
    assert "fap-near-constant" not in metrics_html(runs[0], ratio=0.8, alpha=0.0, lam=1.0)


def test_the_mixed_advantage_weighs_the_heads_like_l_d():
    from fapkit.fairness.discriminators import AdversaryMonitor, binary_entropy

    monitor = AdversaryMonitor(0.25)
    y, z = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 0, 1])  # cell y=0: 3 samples, y=1: 1 (H = 0)
    monitor.update(torch.full((4,), 0.5), torch.full((4,), 0.4), y, z)
    adv = monitor.advantage()
    assert adv["adv_di"] == pytest.approx(math.log(2) - 0.5)
    expected_deo = (3 * (binary_entropy(1 / 3) - 0.4) + 1 * (0.0 - 0.4)) / 4
    assert monitor.mixed_advantage() == pytest.approx(0.25 * adv["adv_di"] + 0.75 * expected_deo)


def test_mask_changed_after_a_resume_is_measured_from_the_stage_s_starting_mask(tmp_path):
    from fapkit.masking import attach_scores

    stage = Stage("ce", epochs=2, lr=0.5, schedule="cosine")

    def scored() -> tuple[torch.nn.Module, object]:
        torch.manual_seed(0)
        model = OneLogit()
        for p in model.parameters():
            p.requires_grad_(False)
        return model, attach_scores(model, 0.5, init="magnitude")

    model, masker = scored()
    straight = fit(model, masker.score_parameters(), toy_loader(), toy_loader(), stage, masker=masker, workdir=tmp_path / "a")
    other, other_masker = scored()
    with pytest.raises(RuntimeError, match="killed"):
        fit(other, other_masker.score_parameters(), CrashingLoader(toy_loader(), crash_epoch=1), toy_loader(), stage,
            masker=other_masker, workdir=tmp_path / "b")
    resumed, resumed_masker = scored()  # a new process: the mask it attaches is the stage's start again
    history = fit(resumed, resumed_masker.score_parameters(), toy_loader(), toy_loader(), stage, masker=resumed_masker,
                  workdir=tmp_path / "b")
    assert straight[-1]["mask_changed"] > straight[0]["mask_changed"] > 0  # the mask moved in both epochs
    assert [h["mask_changed"] for h in history] == [h["mask_changed"] for h in straight]
