"""Sensitive attributes with k > 2 groups in the adversarial methods (DESIGN.md §11).

k-way softmax discriminator heads, their cross-entropies and k-group entropies; k = 2 exactly as the
binary code was (checked against the module as it stood before k groups, from git); every
registered method on a user's model and loaders whose z has three groups.
"""
import importlib.util
import math
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import fapkit
import fapkit.methods.adversarial as game_module
import fapkit.training.loop as train_module
from fapkit.data import SynthFaces, TensorLoader, make_loader
from fapkit.data.base import FaceTensors
from fapkit.fairness.discriminators import (
    AdversaryMonitor,
    FairnessDiscriminator,
    discriminator_update,
    generator_fairness_term,
    group_entropy,
)
from fapkit.methods.adversarial import debias_step
from fapkit.registry import method_names, spec_of
from fapkit.runner import _require_both_groups
from fapkit.settings import AdversaryConfig
from fapkit.training.batches import check_groups, check_labels, group_count
from fapkit.training.loop import Players, Round, Stage, fit

ROOT = Path(__file__).resolve().parents[1]
#: The last commit whose `fapkit/discriminators.py` knew binary attributes only: the k = 2 reference.
BINARY_COMMIT = "002e5b5f1caec0483940b82eb6f4d4afa49a3343"


# ----------------------------------------------------------------------------- k-way heads


def _set_head(head: nn.Sequential, out_bias: list[float]) -> None:
    """hidden = relu([p, −p]) = [p, 0]; logits = [p, 0, −p] + out_bias (three groups), by hand."""
    with torch.no_grad():
        head[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        head[0].bias.zero_()
        head[2].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]]))
        head[2].bias.copy_(torch.tensor(out_bias))


def _ce(logits: list[float], z: int) -> float:
    return -(logits[z] - math.log(sum(math.exp(v) for v in logits)))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_k_way_heads_give_the_hand_computed_cross_entropy(alpha):
    d = FairnessDiscriminator(alpha=alpha, hidden=2, groups=3)
    assert d.di[-1].out_features == 3 and all(h[-1].out_features == 3 for h in d.deo)
    biases = {"di": [0.0, 0.5, -0.5], "deo0": [1.0, 0.0, 0.0], "deo1": [0.0, 0.0, 2.0]}
    _set_head(d.di, biases["di"])
    _set_head(d.deo[0], biases["deo0"])
    _set_head(d.deo[1], biases["deo1"])
    prob = torch.tensor([0.5, 0.25, 1.0, 0.0])
    y, z = torch.tensor([0, 1, 1, 0]), torch.tensor([2, 0, 1, 1])

    def logits(p, bias):
        return [p + bias[0], bias[1], -p + bias[2]]

    di_each = [_ce(logits(p, biases["di"]), g) for p, g in zip(prob.tolist(), z.tolist())]
    deo_each = [_ce(logits(p, biases[f"deo{c}"]), g) for p, c, g in zip(prob.tolist(), y.tolist(), z.tolist())]
    di_logit, deo_logit = d.logits(prob, y)
    assert di_logit.shape == deo_logit.shape == (4, 3)
    out = {k: v.detach() for k, v in d.loss(prob, y, z).items()}
    assert out["di_each"].tolist() == pytest.approx(di_each, abs=1e-6)
    assert out["deo_each"].tolist() == pytest.approx(deo_each, abs=1e-6)
    l_di, l_deo = sum(di_each) / 4, sum(deo_each) / 4
    assert float(out["l_di"]) == pytest.approx(l_di, abs=1e-6)
    assert float(out["l_deo"]) == pytest.approx(l_deo, abs=1e-6)
    assert float(out["l_d"]) == pytest.approx(alpha * l_di + (1 - alpha) * l_deo, abs=1e-6)
    assert float(generator_fairness_term(d, prob, y, z, "paper")) == pytest.approx(-float(out["l_d"]))


def test_groups_are_validated():
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="groups must be an integer >= 2"):
            FairnessDiscriminator(alpha=0.5, groups=bad)
    with pytest.raises(ValueError, match="groups must be an integer >= 2"):
        AdversaryMonitor(0.5, groups=1)


def test_group_entropy_in_nats():
    assert group_entropy([2, 1, 1]) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert group_entropy([3, 3, 3]) == pytest.approx(math.log(3))
    assert group_entropy([0, 5, 0]) == 0.0 and group_entropy([0, 0, 0]) == 0.0


def _uninformed(d: FairnessDiscriminator, di_prior: list[float], deo_priors: list[list[float]]) -> None:
    """Heads that ignore p and predict the given group distribution (weights 0, output bias log q)."""
    for head, prior in ((d.di, di_prior), (d.deo[0], deo_priors[0]), (d.deo[1], deo_priors[1])):
        with torch.no_grad():
            for m in head:
                if isinstance(m, nn.Linear):
                    m.weight.zero_()
                    m.bias.zero_()
            head[-1].bias.copy_(torch.tensor(prior).log())


def test_an_uninformed_head_has_advantage_zero():
    # Balanced z overall and in both y cells: a uniform softmax is the base rate, loss ln 3 = H(z).
    prob = torch.rand(6, generator=torch.Generator().manual_seed(0))
    y, z = torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([0, 1, 2, 2, 1, 0])
    d = FairnessDiscriminator(alpha=0.5, groups=3)
    _uninformed(d, [1 / 3] * 3, [[1 / 3] * 3] * 2)
    monitor = AdversaryMonitor(0.5, groups=3)
    monitor.update(*d.per_sample_losses(prob, y, z), y, z)
    adv = monitor.advantage()
    assert set(adv) == {"adv_di", "adv_deo_y0", "adv_deo_y1"}
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in adv.values())
    assert monitor.mixed_advantage() == pytest.approx(0.0, abs=1e-6)
    # Unbalanced z: a head predicting the batch's empirical distribution (per cell for DEO) is uninformed too.
    y, z = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), torch.tensor([0, 0, 0, 1, 2, 2, 0, 0])
    d = FairnessDiscriminator(alpha=0.5, groups=3)
    _uninformed(d, [5 / 8, 1 / 8, 2 / 8], [[3 / 4, 1 / 4, 1e-30], [2 / 4, 1e-30, 2 / 4]])
    monitor = AdversaryMonitor(0.5, groups=3)
    monitor.update(*d.per_sample_losses(torch.rand(8), y, z), y, z)
    assert all(v == pytest.approx(0.0, abs=1e-5) for v in monitor.advantage().values())
    # the k-group counts behind those entropies
    assert monitor.z_counts == [5, 1, 2] and monitor.cell_z_counts == [[3, 1, 0], [2, 0, 2]]


def test_advantage_of_a_hand_made_three_group_batch():
    di_each, deo_each = torch.tensor([0.5, 0.7, 0.3, 0.9]), torch.tensor([0.2, 0.4, 1.0, 0.6])
    y, z = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 2, 1, 2])
    monitor = AdversaryMonitor(alpha=0.5, groups=3)
    monitor.update(di_each, deo_each, y, z)
    adv = monitor.advantage()
    h_z = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))  # z counts 1, 1, 2
    assert adv["adv_di"] == pytest.approx(h_z - 0.6)
    assert adv["adv_deo_y0"] == pytest.approx(math.log(2) - 0.3)  # cell y=0: z = 0, 2
    assert adv["adv_deo_y1"] == pytest.approx(math.log(2) - 0.8)  # cell y=1: z = 1, 2


def test_confusion_form_is_smallest_at_the_empirical_distribution():
    prob = torch.rand(8, generator=torch.Generator().manual_seed(1))
    y, z = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), torch.tensor([0, 0, 1, 2, 2, 2, 2, 0])
    d = FairnessDiscriminator(alpha=0.4, groups=3)
    q, q0, q1 = [3 / 8, 1 / 8, 4 / 8], [2 / 4, 1 / 4, 1 / 4], [1 / 4, 1e-30, 3 / 4]
    _uninformed(d, q, [q0, q1])
    h = group_entropy
    best = float(generator_fairness_term(d, prob, y, z, "confusion"))
    assert best == pytest.approx(0.4 * h([3, 1, 4]) + 0.6 * (h([2, 1, 1]) + h([1, 0, 3])) / 2, abs=1e-5)
    with torch.no_grad():
        d.di[-1].bias.copy_(torch.tensor([3.0, 0.0, 0.0]))  # confidently "group 0" is worse than the prior
    assert float(generator_fairness_term(d, prob, y, z, "confusion")) > best + 1e-3
    # it is differentiable in the prediction, as the generator needs
    p = prob.clone().requires_grad_(True)
    generator_fairness_term(FairnessDiscriminator(alpha=0.4, groups=3), p, y, z, "confusion").backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()


def test_k_way_discriminator_update_learns_and_debias_projection_runs():
    torch.manual_seed(0)
    z = torch.tensor([0, 1, 2] * 16)
    prob = z.float() / 2 * 0.8 + 0.1  # the prediction reveals z
    y = torch.tensor([0, 1] * 24)
    disc = FairnessDiscriminator(alpha=0.5, groups=3)
    opt = torch.optim.Adam(disc.parameters(), lr=5e-2)
    first = float(disc.loss(prob, y, z)["l_d"].detach())
    for _ in range(200):
        discriminator_update(disc, opt, prob, y, z)
    assert float(disc.loss(prob, y, z)["l_d"].detach()) < 0.5 * first
    # Adversarial Debiasing's step on three groups: the projected gradient is finite
    model = nn.Linear(1, 1)
    x = z.float().reshape(-1, 1)
    players = Players(model, list(model.parameters()), torch.optim.SGD(model.parameters(), lr=0.1), disc,
                      torch.optim.Adam(disc.parameters(), lr=1e-3))
    out = debias_step(players, (x, y, z), Round(AdversaryConfig(alpha=0.5), lam=1.0))
    assert math.isfinite(float(out["loss"])) and all(torch.isfinite(p.grad).all() for p in model.parameters())


# ----------------------------------------------------------------------------- k = 2 is today's binary code


def _binary_reference() -> types.ModuleType:
    """`fapkit/discriminators.py` as of `BINARY_COMMIT`, imported inside the package (its relative imports work)."""
    try:
        source = subprocess.run(["git", "show", f"{BINARY_COMMIT}:fapkit/discriminators.py"], cwd=ROOT,
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("the binary reference needs git and the repository's history")
    spec = importlib.util.spec_from_loader("fapkit._binary_discriminators", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "fapkit"
    sys.modules[spec.name] = module
    exec(compile(source, f"{BINARY_COMMIT[:8]}:fapkit/discriminators.py", "exec"), module.__dict__)
    return module


def _binary_batch(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, generator=g), torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)


@pytest.mark.parametrize("alpha", [0.0, 0.35, 1.0])
def test_two_groups_are_bit_identical_to_the_binary_code(alpha):
    old = _binary_reference()
    torch.manual_seed(7)
    new_d = FairnessDiscriminator(alpha, hidden=8, groups=2)
    rng_new = torch.get_rng_state()
    torch.manual_seed(7)
    old_d = old.FairnessDiscriminator(alpha, hidden=8)
    assert torch.equal(rng_new, torch.get_rng_state())  # the same random numbers drawn
    new_state, old_state = new_d.state_dict(), old_d.state_dict()
    # the new input standardisation buffers start at the identity (shift 0, scale 1): the paper's input
    assert float(new_state.pop("input_shift")) == 0.0 and float(new_state.pop("input_scale")) == 1.0
    assert list(new_state) == list(old_state) and all(torch.equal(new_state[k], old_state[k]) for k in new_state)
    prob, y, z = _binary_batch()
    for a, b in zip(new_d.logits(prob, y), old_d.logits(prob, y)):
        assert torch.equal(a, b)
    for a, b in zip(new_d.per_sample_losses(prob, y, z), old_d.per_sample_losses(prob, y, z)):
        assert torch.equal(a, b)
    for form in ("paper", "confusion"):
        assert torch.equal(generator_fairness_term(new_d, prob, y, z, form),
                           old.generator_fairness_term(old_d, prob, y, z, form))
    # several Adam steps of both, on several batches, with their monitors
    new_opt, old_opt = torch.optim.Adam(new_d.parameters(), lr=1e-2), torch.optim.Adam(old_d.parameters(), lr=1e-2)
    new_mon, old_mon = AdversaryMonitor(alpha, groups=2), old.AdversaryMonitor(alpha)
    for seed in range(4):
        prob, y, z = _binary_batch(seed=seed + 1)
        a = discriminator_update(new_d, new_opt, prob, y, z, steps=3, monitor=new_mon)
        b = old.discriminator_update(old_d, old_opt, prob, y, z, steps=3, monitor=old_mon)
        assert all(torch.equal(a[k], b[k]) for k in b)
    assert all(torch.equal(p, q) for p, q in zip(new_d.parameters(), old_d.parameters()))
    assert new_mon.advantage() == old_mon.advantage() and new_mon.mixed_advantage() == old_mon.mixed_advantage()


def _z_coded(n=48, groups=2, seed=0, batch_size=16):
    g = torch.Generator().manual_seed(seed)
    z, y = torch.randint(0, groups, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)
    level = (z.float() / (groups - 1) * 0.6 + 0.4 * torch.rand(n, generator=g)) * 255
    images = level.to(torch.uint8).reshape(n, 1, 1, 1).expand(n, 3, 1, 1).contiguous()
    return TensorLoader(FaceTensors(images, y, z, target="t", sensitive="s", name="toy"), batch_size,
                        shuffle=True, seed=0)


class _Probe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(1, affine=False)
        self.fc = nn.Linear(1, 1)

    def forward(self, x):
        return self.fc(self.bn(x.reshape(len(x), -1)[:, :1]))


@pytest.mark.parametrize("kind, alpha, form, rule", [("faprune", 0.5, "paper", "plateau"),
                                                     ("faprune", 0.2, "confusion", "fixed"),
                                                     ("debias", 1.0, "paper", "fixed")])
def test_a_seeded_binary_fit_is_bit_identical_with_the_binary_discriminator(monkeypatch, kind, alpha, form, rule):
    """The whole loop (group count, checks, warm-up, monitors) gives the binary code's numbers for k = 2."""
    def run():
        torch.manual_seed(0)
        model = _Probe()
        stage = Stage(kind, epochs=2, lr=1e-2, adversary=AdversaryConfig(
            alpha=alpha, disc_lr=1e-2, disc_steps=2, disc_warmup=3, disc_warmup_rule=rule, generator_form=form))
        history = fit(model, list(model.parameters()), _z_coded(), _z_coded(seed=1), stage, seed=3)
        return history, [p.detach().clone() for p in model.parameters()]

    new_history, new_params = run()
    old = _binary_reference()

    class BinaryDisc(old.FairnessDiscriminator):
        def __init__(self, alpha, hidden=8, groups=2, balance=False):
            assert groups == 2 and not balance  # the binary code had no group balancing: the default
            super().__init__(alpha, hidden)
            self.groups = 2

    monkeypatch.setattr(train_module, "FairnessDiscriminator", BinaryDisc)
    for module in (train_module, game_module):  # the loop's epoch monitor, the warm-up's held-out one
        monkeypatch.setattr(module, "AdversaryMonitor", lambda alpha, groups=2: old.AdversaryMonitor(alpha))
    for name in ("discriminator_update", "generator_fairness_term", "project_out"):
        monkeypatch.setattr(game_module, name, getattr(old, name))
    old_history, old_params = run()
    assert repr(new_history) == repr(old_history)  # exact floats, nan included
    assert all(torch.equal(p, q) for p, q in zip(new_params, old_params))


# ----------------------------------------------------------------------------- the training loop


def test_fit_plays_a_three_group_game_and_its_warm_up_learns_z():
    torch.manual_seed(0)
    loader = _z_coded(n=96, groups=3)
    assert group_count(loader) == 3
    model = _Probe()
    with torch.no_grad():
        model.fc.weight.fill_(8.0)
    stage = Stage("faprune", epochs=2, lr=1e-3, adversary=AdversaryConfig(alpha=0.5, disc_lr=5e-2, disc_steps=2,
                                                                          disc_warmup=30))
    history = fit(model, list(model.parameters()), loader, _z_coded(n=48, groups=3, seed=1), stage)
    assert history[0]["warmup_adv_di"] > 0.3  # H(z) ≈ ln 3 ≈ 1.10 at most
    for record in history:
        assert {"train_adv_di", "train_adv_deo_y0", "train_adv_deo_y1"} <= set(record)
        assert all(math.isfinite(record[k]) for k in record if k.startswith(("train_", "val_")))


def test_a_loader_without_a_dataset_is_scanned_for_its_groups():
    batches = list(_z_coded(groups=3))
    assert group_count(batches) == 3
    model = _Probe()
    history = fit(model, list(model.parameters()), batches, batches,
                  Stage("debias", epochs=1, lr=1e-3, adversary=AdversaryConfig(alpha=0.0)))
    assert "train_adv_deo_y0" in history[0]


def test_labels_stay_binary_and_group_ids_are_checked():
    with pytest.raises(ValueError, match=r"labels y must be binary 0/1, found \[2\]"):
        check_labels(torch.tensor([0, 2, 1]))
    check_groups(torch.tensor([0, 1, 2]))
    check_groups(torch.tensor([0, 1, 2]), groups=3)
    with pytest.raises(ValueError, match=r"sensitive values z must hold only integer group ids 0..2 \(groups=3\); "
                                         r"found 1 other distinct value\(s\): 3"):
        check_groups(torch.tensor([0, 3, 1]), groups=3)
    with pytest.raises(ValueError, match=r"sensitive values z .*-1.*they look like ±1 labels"):
        check_groups(torch.tensor([-1, 1, 1]))
    model = _Probe()
    bad = [(torch.zeros(4, 3, 1, 1), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 2, -1]))]
    with pytest.raises(ValueError, match=r"sensitive values z must hold only 0/1 or other non-negative integer"):
        fit(model, list(model.parameters()), bad, bad, Stage("ce", epochs=1, lr=1e-3))


def test_a_split_needs_two_groups_and_the_message_names_them():
    _require_both_groups(types.SimpleNamespace(z=torch.tensor([0, 2, 2])), "valid")
    with pytest.raises(ValueError, match=r"the test split has samples of only one sensitive group "
                                         r"\(groups found: \[2\]\); DI and DEO need samples from at least two groups"):
        _require_both_groups(types.SimpleNamespace(z=torch.tensor([2, 2, 2])), "test")


# ----------------------------------------------------------------------------- every method, three groups

_COMMON = dict(target="Smiling", sensitive="Male", size=16)


def _three_groups(split: str, n: int, seed: int, cache_dir: Path, drop: int | None = None) -> FaceTensors:
    """SynthFaces images and targets with a three-group z (balanced, seeded); `drop` removes that group."""
    ds = SynthFaces(split=split, n=n, cache_dir=cache_dir, **_COMMON)
    z = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) % 3
    keep = torch.ones(n, dtype=torch.bool) if drop is None else z != drop
    return FaceTensors(ds.images[keep], ds.y[keep], z[keep], target="Smiling", sensitive="three", name="user")


@pytest.fixture(scope="module")
def three_group_sets(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    sets = [_three_groups(s, n, i, cache) for i, (s, n) in enumerate((("train", 96), ("valid", 48), ("test", 48)))]
    for ds in sets[1:]:  # every (y, z) cell has samples: DEO is defined over the three groups
        assert (torch.bincount(ds.y * 3 + ds.z, minlength=6) > 0).all()
    return sets


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))


@pytest.mark.parametrize("method", method_names())
def test_every_method_runs_with_three_sensitive_groups(method, three_group_sets, tmp_path, monkeypatch):
    built = []

    class Recording(FairnessDiscriminator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self.groups)

    monkeypatch.setattr(train_module, "FairnessDiscriminator", Recording)
    loaders = [make_loader(ds, 32, shuffle=i == 0) for i, ds in enumerate(three_group_sets)]
    res = fapkit.run(method, preset="smoke", model=_tiny_model(), train=loaders[0], valid=loaders[1],
                     test=loaders[2], epochs=1, pretrain_epochs=1, ratio=0.5, runs_dir=tmp_path / "runs")
    assert math.isfinite(res.acc) and 0.0 <= res.acc <= 1.0
    for metrics in (res.metrics, res.valid_metrics):
        assert sorted(metrics["groups"]) == [0, 1, 2]
        for stats in metrics["groups"].values():
            assert stats["count"] > 0
            assert all(math.isfinite(stats[k]) for k in ("selection_rate", "tpr", "fpr", "accuracy"))
    assert all(k == 3 for k in built)  # every adversary of the run (a parent's included) played three groups
    chain = [method]
    while spec_of(chain[-1]).parent is not None:
        chain.append(spec_of(chain[-1]).parent)
    assert len(built) == sum(spec_of(stage).adversarial for stage in chain)


def test_a_split_missing_a_group_still_reports_the_training_data_s_groups(three_group_sets, tmp_path):
    train, valid, _ = three_group_sets
    test = _three_groups("test", 48, 2, tmp_path / "cache", drop=2)  # groups 0 and 1 only
    loaders = [make_loader(ds, 32, shuffle=i == 0) for i, ds in enumerate((train, valid, test))]
    with pytest.warns(RuntimeWarning, match=r"no samples of group\(s\) \[2\] of groups=3"):
        res = fapkit.run("normal", preset="smoke", model=_tiny_model(), train=loaders[0], valid=loaders[1],
                         test=loaders[2], pretrain_epochs=1, runs_dir=tmp_path / "runs")
    assert sorted(res.metrics["groups"]) == [0, 1, 2] and res.metrics["groups"][2]["count"] == 0
    assert sorted(res.valid_metrics["groups"]) == [0, 1, 2] and res.valid_metrics["groups"][2]["count"] > 0
