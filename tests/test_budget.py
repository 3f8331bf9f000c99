"""The patience rule for stage budgets (`fapkit.training.budget`, DESIGN.md §12)."""
import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from toys import OneLogit, toy_loader

from fapkit.config import make_config
from fapkit.training import budget
from fapkit.training.loop import Stage, fit, scheduled_stage


def test_the_main_phase_ends_after_patience_epochs_without_improvement_or_at_the_ceiling():
    assert not budget.main_phase_over([0.7, 0.6], patience=2, max_epochs=10)  # too few epochs to judge
    assert not budget.main_phase_over([0.7, 0.6, 0.5], patience=2, max_epochs=10)
    assert budget.main_phase_over([0.7, 0.6, 0.6, 0.6], patience=2, max_epochs=10)
    assert not budget.main_phase_over([0.7, 0.6, 0.61, 0.598], patience=2, max_epochs=10)  # 2e-3 better counts
    assert budget.main_phase_over([0.7, 0.6, 0.61, 0.5995], patience=2, max_epochs=10)  # 5e-4 does not
    assert budget.main_phase_over([0.9, 0.8, 0.7], patience=2, max_epochs=3)  # still improving: the ceiling
    assert not budget.main_phase_over([0.7, 0.6, 0.6, 0.6], patience=2, max_epochs=10, min_epochs=5)  # the floor
    assert budget.tail_epochs(3, 0.25) == 1 and budget.tail_epochs(9, 0.25) == 3 and budget.tail_epochs(4, 0.0) == 1


def test_a_rising_validation_accuracy_keeps_the_main_phase_going_while_the_loss_rises():
    # an over-confident model: the loss rises from epoch 2 while the accuracy still climbs
    losses, accs = [0.69, 0.70, 0.72, 0.75, 0.80], [0.55, 0.58, 0.61, 0.64, 0.645]
    assert budget.main_phase_over(losses[:4], patience=2, max_epochs=20)  # the loss alone would stop here
    # 0.64 beats the best before (0.58) by more than its standard error on 1,000 images (0.0156)
    assert not budget.main_phase_over(losses[:4], patience=2, max_epochs=20, val_accs=accs[:4], n_valid=1000)
    # 0.645 and 0.64 beat 0.61 by 0.035 > 0.0154: still going; a rise within the error does not count
    assert not budget.main_phase_over(losses, patience=2, max_epochs=20, val_accs=accs, n_valid=1000)
    flat = [0.55, 0.60, 0.61, 0.605]
    assert budget.main_phase_over(losses[:4], patience=2, max_epochs=20, val_accs=flat, n_valid=1000)
    assert not budget.main_phase_over(losses[:4], patience=2, max_epochs=20, val_accs=flat)  # n unknown: any rise
    assert budget.main_phase_over(losses[:4], patience=2, max_epochs=4, val_accs=accs[:4], n_valid=1000)  # ceiling


def test_the_floor_keeps_the_home_splits_steps_on_a_smaller_split():
    assert budget.floor_epochs(4, 47, 47) == 4  # the home split: its epochs
    assert budget.floor_epochs(4, 32, 47) == 6  # 2,000 images at batch 64: 188 steps take 6 epochs
    assert budget.floor_epochs(3, 13, 47) == 11 and budget.floor_epochs(3, 200, 47) == 3  # never fewer epochs
    assert budget.floor_epochs(4, 13) == 4  # no step floor
    # in the loop: 1 epoch of 4 batches counted as 8 steps is a floor of 2 epochs, then the tail's 1
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 1))
    history, lrs = _recorded_lrs(model, toy_loader(), Stage("ce", epochs=1, lr=1e-12, schedule="cosine",
                                                          patience=1, epoch_steps=8))
    assert history[1]["budget_main_epochs"] == 2 and len(history) == 3 and len(lrs) == 12
    assert history[0]["val_n"] == 32  # the monitored split's size, which the accuracy's error reads


def test_the_quick_presets_step_floor_is_its_home_splits_steps_per_epoch():
    from fapkit.config import BUDGET_HOME

    cfg = make_config("faprune", arch="mobilenet_v2")  # the patience rule, off the home architecture
    assert cfg.budget_epoch_steps == math.ceil(BUDGET_HOME["quick"]["n_train"] / cfg.batch_size) == 47
    assert scheduled_stage(cfg, "ce", 4, 1e-3).epoch_steps == 47
    assert make_config("faprune", arch="mobilenet_v2", batch_size=128).budget_epoch_steps == 24
    assert make_config("faprune", arch="mobilenet_v2", budget_epoch_steps=0).budget_epoch_steps == 0  # given: kept
    assert make_config("faprune").budget_epoch_steps is None  # at home: the fixed budget, whose key is as before
    assert make_config("faprune", preset="smoke", budget="patience").budget_epoch_steps == 0  # no home split
    with pytest.raises(ValueError, match="budget_epoch_steps must be >= 0 .* got -1"):
        make_config("faprune", budget_epoch_steps=-1)


def test_the_patience_lr_warms_up_holds_then_decays_over_the_tail():
    f = lambda step, start: budget.lr_factor(step, 10, warmup_steps=4, tail_start=start, tail_length=2)  # noqa: E731
    assert [f(s, None) for s in (0, 3, 4, 55)] == [0.25, 1.0, 1.0, 1.0]
    assert f(49, 5) == 1.0 and f(50, 5) == 1.0  # the tail starts at its top
    assert f(69, 5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 19 / 20))) and f(69, 5) < 0.01


def _recorded_lrs(model, loader, stage):
    seen: list[float] = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    try:
        history = fit(model, list(model.parameters()), loader, loader, stage)
    finally:
        handle.remove()
    return history, seen


def test_a_patience_stage_stops_once_the_validation_loss_stops_improving_then_runs_its_tail():
    torch.manual_seed(0)
    model, loader = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 1)), toy_loader()  # 4 batches/epoch
    # no BatchNorm, lr 1e-12: nothing improves, so the main phase ends at its floor (epochs = 3); tail ceil(0.25·3) = 1
    stage = Stage("ce", epochs=3, lr=1e-12, schedule="cosine", lr_warmup=0.1, patience=2, ceiling=7)
    history, lrs = _recorded_lrs(model, loader, stage)
    assert len(history) == 4 and len(lrs) == 16
    assert history[2]["budget_main_epochs"] == 3 and history[2]["budget_tail_epochs"] == 1
    assert lrs[0] == pytest.approx(1e-12 / 2) and lrs[11] == pytest.approx(1e-12)  # warm-up: ceil(0.1·12) = 2 steps
    assert lrs[-1] < 0.2e-12  # the tail decays
    # the ceiling ends a phase that still improves
    stage = Stage("ce", epochs=1, lr=1e-2, schedule="cosine", patience=2, ceiling=2)
    history, _ = _recorded_lrs(OneLogit(), toy_loader(), stage)
    assert history[1]["budget_main_epochs"] == 2 and len(history) == 3


def test_a_resumed_patience_stage_keeps_its_decision(tmp_path):
    stage = Stage("ce", epochs=5, lr=1e-12, schedule="cosine", patience=2, ceiling=4)
    model = OneLogit()
    first = fit(model, list(model.parameters()), toy_loader(), toy_loader(), stage, workdir=tmp_path)
    assert any("budget_tail_epochs" in h for h in first)
    again = OneLogit()
    second = fit(again, list(again.parameters()), toy_loader(), toy_loader(), stage, workdir=tmp_path)
    assert second == first  # resumed after its last epoch: nothing more to train


def test_the_run_setting_reaches_every_stage_but_fairgrapes_inner_fine_tuning():
    cfg = make_config("sgdp", preset="smoke", budget="patience", patience=3, budget_ceiling=5)
    stage = scheduled_stage(cfg, "ce", 4, 1e-3)
    assert (stage.patience, stage.ceiling, stage.tail, stage.epoch_steps) == (3, 5, 0.25, 0)
    assert scheduled_stage(cfg, "ce", 4, 1e-3, adaptive=False).patience is None
    assert scheduled_stage(make_config("sgdp", preset="smoke"), "ce", 4, 1e-3).patience is None
    with pytest.raises(ValueError, match="budget must be one of 'fixed', 'patience', 'auto', got 'epochs'"):
        make_config("sgdp", budget="epochs")
    with pytest.raises(ValueError, match="patience must be >= 1, got 0"):
        make_config("sgdp", patience=0)


def test_the_quick_presets_auto_budget_keeps_its_epochs_at_home_and_the_rule_elsewhere():
    from fapkit.config import resolve_budget

    assert make_config("faprune").budget == "fixed"  # ResNet18 on SynthFaces: where the epochs were searched
    assert make_config("faprune", arch="mobilenet_v2").budget == "patience"
    assert make_config("faprune", dataset="celeba").budget == "patience"
    assert make_config("faprune", target="Smiling").budget == "patience"  # another learning problem
    assert make_config("faprune", n_train=2000).budget == "patience"
    assert make_config("faprune", sensitive="Age_Group").budget == "fixed"  # the same problem, measured otherwise
    assert resolve_budget(make_config("faprune"), user=True).budget == "patience"  # a user's model or data
    assert resolve_budget(make_config("faprune", budget="fixed"), user=True, given=True).budget == "fixed"
    assert resolve_budget(make_config("faprune", preset="smoke"), user=True).budget == "fixed"  # seconds
    assert make_config("faprune", preset="paper").budget == "fixed"  # the paper's 30 + 10 epochs
