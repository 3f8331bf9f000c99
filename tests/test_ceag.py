"""CEAG: the replay buffer, the violations and one dual step by hand, the surrogate's gradient, a resumable stage."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from toys import CrashingLoader, OneLogit, toy_loader

from fapkit.methods.ceag import (
    CeagStep,
    DenseStatistics,
    GroupReplayBuffer,
    dense_statistics,
    dual_step,
    surrogates,
    violations,
)
from fapkit.training.loop import Players, Round, Stage, fit


def _dense(group_acc, acc, group_loss=(0.5, 0.5), loss=0.5) -> DenseStatistics:
    return DenseStatistics(acc, torch.tensor(group_acc, dtype=torch.float64), loss,
                           torch.tensor(group_loss, dtype=torch.float64))


def test_the_buffer_keeps_each_group_s_last_values_first_in_first_out():
    buffer = GroupReplayBuffer(groups=3, length=3)
    buffer.push(torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 0]))
    full, acc, mean = buffer.query()
    assert full.tolist() == [True, False, False] and acc[0].item() == pytest.approx(2 / 3)
    assert torch.isnan(acc[1:]).all() and mean == pytest.approx(2 / 3)
    buffer.push(torch.tensor([0, 0, 0, 0, 0]), torch.tensor([0, 1, 1, 1, 1]))  # group 1 overflows: keeps its last 3
    full, acc, mean = buffer.query()
    assert full.tolist() == [True, True, False]
    assert acc[0].item() == pytest.approx(1 / 3)  # [1, 0, 1] then 0 pushes the first 1 out: [0, 1, 0]
    assert acc[1].item() == 0.0 and mean == pytest.approx(1 / 6)
    restored = GroupReplayBuffer(groups=3, length=3)
    restored.load_state_dict(buffer.state_dict())
    for a, b in zip(restored.query()[:2], buffer.query()[:2]):
        assert torch.equal(a, b) or torch.allclose(a, b, equal_nan=True)


def test_violations_and_one_dual_step_by_hand():
    dense = _dense(group_acc=(0.9, 0.7), acc=0.8)
    buffer = GroupReplayBuffer(groups=2, length=4)
    buffer.push(torch.tensor([1, 1, 0, 0, 1, 1, 1, 0]), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))  # 0.5 and 0.75
    v, measured = violations(dense, buffer, epsilon=0.01)
    # ψ_0 = (0.9 − 0.5) − (0.8 − 0.625) = 0.225, ψ_1 = (0.7 − 0.75) − 0.175 = −0.225; v = ψ − ε
    assert measured.tolist() == [True, True]
    assert v.tolist() == pytest.approx([0.215, -0.235])
    stepped = dual_step(torch.tensor([0.01, 0.01], dtype=torch.float64), v, measured, dual_lr=0.1)
    assert stepped.tolist() == pytest.approx([0.0315, 0.0])  # the second projected back to 0
    # a group whose buffer is not full yet keeps its multiplier
    partial = GroupReplayBuffer(groups=2, length=4)
    partial.push(torch.tensor([0, 0, 0, 0, 1]), torch.tensor([0, 0, 0, 0, 1]))
    v, measured = violations(dense, partial, epsilon=0.01)
    assert measured.tolist() == [True, False] and v[1].item() == 0.0
    assert dual_step(torch.tensor([0.3, 0.3], dtype=torch.float64), v, measured, 1.0)[1].item() == 0.3


class _Fixed(nn.Module):
    """Outputs the logits it is given as its input's first column, times a learnable scale."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x[:, 0]


def test_one_ceag_step_on_a_hand_made_batch_sets_the_multipliers_and_steps_on_the_lagrangian():
    # group 0: 2 of 4 right, group 1: 3 of 4 right (logit > 0 predicts 1)
    logits = torch.tensor([2.0, -1.0, 1.0, -3.0, 1.5, -2.0, 0.5, 1.0])
    y = torch.tensor([1, 0, 0, 1, 1, 0, 1, 0])
    z = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    dense = _dense(group_acc=(0.9, 0.7), acc=0.8, group_loss=(0.3, 0.4), loss=0.35)
    step = CeagStep(dense, 2, epsilon=0.01, dual_lr=0.1, replay_buffer=4)
    model = _Fixed()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    out = step(Players(model, list(model.parameters()), opt), (logits[:, None], y, z), Round())
    assert step.multipliers.tolist() == pytest.approx([0.0215, 0.0])  # λ from 0: max(0, 0.1·v)
    assert out["multiplier_0"].item() == pytest.approx(0.0215) and out["max_violation"].item() == pytest.approx(0.215)
    # the primal step went along the gradient of CE + λ_0·s_0 (s_g's constants carry no gradient)
    scale = torch.ones((), requires_grad=True)
    each = F.binary_cross_entropy_with_logits(scale * logits, y.float(), reduction="none")
    lagrangian = each.mean() + 0.0215 * (each[z == 0].mean() - each.mean())
    (grad,) = torch.autograd.grad(lagrangian, scale)
    assert model.scale.item() == pytest.approx(1.0 - 0.5 * grad.item(), abs=1e-6)
    assert out["loss"].item() == pytest.approx(lagrangian.item() + 0.0215 * (-(0.3 - 0.35)), abs=1e-6)


def test_the_surrogate_is_group_loss_minus_mean_loss_and_absent_groups_carry_nothing():
    gen = torch.Generator().manual_seed(0)
    logit = torch.randn(10, generator=gen, requires_grad=True)
    y, z = torch.randint(0, 2, (10,), generator=gen), torch.tensor([0, 1] * 5)
    dense = _dense(group_acc=(0.9, 0.8, 0.7), acc=0.8, group_loss=(0.2, 0.3, float("nan")), loss=0.25)
    ce, s, present = surrogates(logit, y, z, dense, groups=3)
    assert present.tolist() == [True, True, False] and s[2].item() == 0.0
    each = F.binary_cross_entropy_with_logits(logit, y.float(), reduction="none")
    assert ce.item() == pytest.approx(each.mean().item())
    assert s[0].item() == pytest.approx((each[z == 0].mean() - 0.2 - (each.mean() - 0.25)).item())
    g_s = torch.autograd.grad(s[1], logit, retain_graph=True)[0]
    g_ref = torch.autograd.grad(each[z == 1].mean() - each.mean(), logit)[0]
    assert torch.allclose(g_s, g_ref)


def test_dense_statistics_by_hand_in_eval_mode():
    model = nn.Sequential(_Fixed(), nn.Dropout(0.9))
    model.train()
    logits = torch.tensor([[1.0], [-1.0], [2.0], [-2.0]])
    y, z = torch.tensor([1, 1, 0, 0]), torch.tensor([0, 0, 1, 2])
    stats = dense_statistics(model, [(logits, y, z)], device="cpu", groups=4)
    assert stats.acc == 0.5 and stats.group_acc[:3].tolist() == [0.5, 0.0, 1.0] and torch.isnan(stats.group_acc[3])
    assert stats.group_loss[1].item() == pytest.approx(F.softplus(torch.tensor(2.0)).item())
    assert model.training and model[1].training  # the modes are restored


def test_a_killed_ceag_stage_resumes_to_the_same_multipliers_and_weights(tmp_path: Path):
    stage = Stage("ce", epochs=2, lr=1e-2, schedule="cosine", lr_warmup=0.1)

    def run(loader, workdir):
        torch.manual_seed(0)
        model = OneLogit()
        dense = dense_statistics(model, toy_loader(), device="cpu", groups=2)
        step = CeagStep(dense, 2, epsilon=0.0, dual_lr=1.0, replay_buffer=4)
        history = fit(model, list(model.parameters()), loader, toy_loader(), stage, workdir=workdir, step=step)
        return model, step, history

    model_a, step_a, history_a = run(toy_loader(), tmp_path / "a")
    assert {"train_multiplier_0", "train_multiplier_1", "train_max_violation"} <= set(history_a[-1])
    assert (step_a.multipliers >= 0).all() and step_a.multipliers.sum() > 0  # the constraints were active
    with pytest.raises(RuntimeError, match="killed"):
        run(CrashingLoader(toy_loader(), crash_epoch=1), tmp_path / "b")
    model_b, step_b, history_b = run(toy_loader(), tmp_path / "b")
    assert torch.equal(step_a.multipliers, step_b.multipliers)
    assert history_b[-1]["train_multiplier_0"] == history_a[-1]["train_multiplier_0"]
    for k, v in model_b.state_dict().items():
        assert torch.allclose(v, model_a.state_dict()[k], atol=1e-6), k


def test_ceag_runs_as_a_registered_method_on_lmw_s_mask(tmp_path: Path):
    import fapkit
    from fapkit.registry import spec_of

    tiny = dict(preset="smoke", size=16, n_train=192, n_valid=96, n_test=96, pretrain_epochs=1, epochs=2)
    ceag = fapkit.run("ceag", runs_dir=tmp_path, **tiny)
    lmw = fapkit.run("lmw", runs_dir=tmp_path, **tiny)
    assert not spec_of("ceag").paper and spec_of("ceag").parent == "normal"
    assert ceag.mask_totals == lmw.mask_totals  # the same magnitude mask: CEAG is LMW plus the constraints
    assert abs(ceag.ratio - 0.8) < 0.01
    assert ceag.history[0]["dense_train_acc"] > 0 and len(ceag.history[0]["dense_train_group_acc"]) == 2
    assert ceag.config.ceag.dual_lr == 1e-2  # the short presets' dual lr (fapkit.config)
    assert {"group_acc_change", "acc_change_std", "max_excess_gap"} <= set(ceag.metrics)
    assert sorted(p.name for p in Path(ceag.run_dir).iterdir()) == ["model.pt", "record.json"]
