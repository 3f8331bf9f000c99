"""Masks on any model: exact numbers on toy models, exactness of the fast path, plumbing.

Toy numbers (see tests/toy_model.py): ToyLinear has w = [1, -2, 3, -4] and no bias, so with
an all-ones input every masked output is the sum of the kept weights.
"""

from __future__ import annotations

import copy
import io
import math
import re

import pytest
import torch
import torchvision
from toy_model import TinyNet, ToyLinear

from fapkit.masking import (
    attach_fixed,
    attach_scores,
    kept_count,
    magnitude_masks,
    prunable_layers,
    random_masks,
)
from fapkit.masking._fast import engine as engine_module
from fapkit.masking.layers import mask_state
from fapkit.masking.static import masks_from_values

ONES = torch.ones(1, 4)


def kept(mask: torch.Tensor) -> list[int]:
    return torch.nonzero(mask.reshape(-1)).squeeze(1).tolist()


def reference_masks(masker) -> dict[str, torch.Tensor]:
    """Masks recomputed from scratch from the current scores (canonical top-k)."""
    values = {name: layer.scores.detach().abs() for name, layer in masker.layers.items()}
    return masks_from_values(values, masker.ratio, masker.scope)


# ---------------------------------------------------------------- vocabulary & selection
def test_prunable_layers_resnet18_and_switches():
    model = torchvision.models.resnet18(num_classes=1)
    names = list(prunable_layers(model))
    assert len(names) == 21 and names[0] == "conv1" and names[-1] == "fc"
    assert "layer1.0.bn1" not in names
    inner = list(prunable_layers(model, include_first=False, include_last=False))
    assert inner == names[1:-1]


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan"), "80%"])
def test_bad_ratio_raises_and_names_value(ratio):
    model = ToyLinear()
    for call in (
        lambda: magnitude_masks(model, ratio),
        lambda: random_masks(model, ratio, seed=0),
        lambda: attach_scores(model, ratio),
    ):
        with pytest.raises(ValueError, match=re.escape(repr(ratio))):
            call()
    assert "scores" not in dict(model.named_parameters(recurse=True)).keys()


def test_kept_count_rounding():
    assert kept_count(10, 0.8) == 2  # 0.8 means 80 % removed
    assert kept_count(4, 0.5) == 2
    assert kept_count(3, 0.9) == 1  # never zero
    assert kept_count(7, 0.0) == 7
    assert kept_count(2359296, 0.8) == round(0.2 * 2359296)


def test_magnitude_masks_toy_and_ties():
    assert kept(magnitude_masks(ToyLinear(), 0.5)["fc"]) == [2, 3]  # |3|, |-4|
    assert kept(magnitude_masks(ToyLinear(), 0.75)["fc"]) == [3]
    model = ToyLinear()
    with torch.no_grad():
        model.fc.weight.fill_(-0.5)  # all tied: the first k positions win
    assert kept(magnitude_masks(model, 0.5)["fc"]) == [0, 1]


def test_global_scope_counts_over_all_layers():
    model = TinyNet()
    masks = magnitude_masks(model, 0.9, scope="global")
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == kept_count(total, 0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    masks = magnitude_masks(model, 0.9, scope="global")  # ties across layers: layer order
    flat = torch.cat([m.reshape(-1) for m in masks.values()])
    assert kept(flat) == list(range(kept_count(total, 0.9)))


def test_random_masks_exact_and_seeded():
    model = TinyNet()
    a = random_masks(model, 0.7, seed=1)
    b = random_masks(model, 0.7, seed=1)
    c = random_masks(model, 0.7, seed=2)
    for name, layer in prunable_layers(model).items():
        assert int(a[name].sum()) == kept_count(layer.weight.numel(), 0.7)
        assert torch.equal(a[name], b[name])
    assert any(not torch.equal(a[n], c[n]) for n in a)


# ---------------------------------------------------------------- score masks, toy numbers
def test_scores_forward_exact_and_hydra_init():
    model = ToyLinear()
    masker = attach_scores(model, 0.5)
    assert torch.equal(model.fc.scores.detach(), torch.tensor([[0.25, -0.5, 0.75, -1.0]]))
    assert kept(masker.masks()["fc"]) == [2, 3]
    assert model(ONES).item() == 3.0 - 4.0
    assert model.fc.weight.requires_grad is False


def test_scores_gradient_is_straight_through():
    model = ToyLinear()
    attach_scores(model, 0.5)
    x = torch.tensor([[1.0, 0.0, 2.0, 0.0]])
    model(x).sum().backward()
    # grad_Weff = x; grad_s = grad_Weff * W * sign(s), pruned entries included
    assert torch.equal(model.fc.scores.grad, torch.tensor([[1.0, 0.0, 6.0, 0.0]]))
    assert model.fc.weight.grad is None


def test_unfrozen_weights_get_masked_gradient():
    model = ToyLinear()
    attach_scores(model, 0.5)
    model.fc.weight.requires_grad_(True)
    model(ONES).sum().backward()
    assert torch.equal(model.fc.weight.grad, torch.tensor([[0.0, 0.0, 1.0, 1.0]]))


def test_one_sgd_step_changes_exactly_the_expected_scores():
    model = ToyLinear()
    masker = attach_scores(model, 0.5)
    opt = torch.optim.SGD(masker.score_parameters(), lr=0.1)
    before = model.fc.scores.detach().clone()
    model(torch.tensor([[1.0, 0.0, 1.0, 0.0]])).sum().backward()
    opt.step()
    # only positions 0 and 2 had a gradient (|W| there: 1 and 3)
    expected = before - 0.1 * torch.tensor([[1.0, 0.0, 3.0, 0.0]])
    assert torch.equal(model.fc.scores.detach(), expected)
    assert kept(masker.masks()["fc"]) == [1, 3]  # |s| = [.15, .5, .45, 1]
    assert model(ONES).item() == -2.0 - 4.0


def test_one_adam_step_moves_every_score_by_lr():
    model = ToyLinear()
    masker = attach_scores(model, 0.5)
    opt = torch.optim.Adam(masker.score_parameters(), lr=0.3)
    model(ONES).sum().backward()  # grad_s = |W| > 0 everywhere
    opt.step()
    expected = torch.tensor([[0.25, -0.5, 0.75, -1.0]]) - 0.3
    assert torch.allclose(model.fc.scores.detach(), expected, atol=1e-6)
    assert kept(masker.masks()["fc"]) == [1, 3]  # |s| = [.05, .8, .45, 1.3]
    assert model(ONES).item() == -6.0


def test_constant_scores_keep_exactly_k_first_positions():
    for scope in ("layer", "global"):
        model = TinyNet()
        masker = attach_scores(model, 0.75, scope=scope)
        with torch.no_grad():
            for p in masker.score_parameters():
                p.fill_(0.5)
        masks = masker.masks()
        if scope == "layer":
            for name, m in masks.items():
                assert kept(m) == list(range(kept_count(m.numel(), 0.75)))
        else:
            flat = torch.cat([m.reshape(-1) for m in masks.values()])
            assert kept(flat) == list(range(kept_count(flat.numel(), 0.75)))
        assert {n: kept(m) for n, m in masks.items()} == {
            n: kept(m) for n, m in reference_masks(masker).items()
        }


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_hydra_init_equals_magnitude_pruning_resnet18(scope):
    model = torchvision.models.resnet18(num_classes=1)
    expected = magnitude_masks(model, 0.8, scope=scope)
    masks = attach_scores(model, 0.8, scope=scope).masks()
    assert all(torch.equal(masks[n], expected[n]) for n in expected)


def test_random_init_is_seeded():
    a = attach_scores(TinyNet(), 0.5, init="random", seed=3)
    b = attach_scores(TinyNet(), 0.5, init="random", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.score_parameters(), b.score_parameters()))
    with pytest.raises(ValueError, match="init"):
        attach_scores(TinyNet(), 0.5, init="signed")


# ---------------------------------------------------------------- the reference, and the fast engine against it
def test_reference_engine_forward_and_straight_through_gradient():
    """w = [1, -2, 3, -4], s = [0.5, -0.1, 0.2, -0.9], keep 2: m = [1, 0, 0, 1]."""
    model = ToyLinear()
    masker = attach_scores(model, 0.5, engine="reference")
    with torch.no_grad():
        model.fc.scores.copy_(torch.tensor([[0.5, -0.1, 0.2, -0.9]]))
    out = model(ONES)
    assert out.item() == 1.0 - 4.0
    out.backward()
    # straight-through: dL/ds = dL/dW_eff * W * sign(s) = 1 * [1, -2, 3, -4] * [1, -1, 1, -1]
    assert model.fc.scores.grad.tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert kept(masker.masks()["fc"]) == [0, 3]


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_fast_engine_equals_reference_engine_while_training(scope):
    """Same scores, same Adam steps: masks, outputs and score gradients bit for bit."""
    x = torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    runs = {}
    for engine in ("fast", "reference"):
        model = TinyNet()
        masker = attach_scores(model, 0.7, scope=scope, engine=engine)
        opt = torch.optim.Adam(masker.score_parameters(), lr=0.05)
        trace = []
        for _ in range(6):
            opt.zero_grad()
            out = model(x)
            out.square().mean().backward()
            trace.append((out.detach().clone(), [p.grad.clone() for p in masker.score_parameters()], masker.masks()))
            opt.step()
        runs[engine] = trace
    for (out_f, grads_f, masks_f), (out_r, grads_r, masks_r) in zip(runs["fast"], runs["reference"]):
        assert torch.equal(out_f, out_r)
        assert all(torch.equal(a, b) for a, b in zip(grads_f, grads_r))
        assert all(torch.equal(masks_f[name], masks_r[name]) for name in masks_f)
    assert any(not torch.equal(runs["fast"][0][2][n], runs["fast"][-1][2][n]) for n in runs["fast"][0][2])  # masks moved


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of"):
        attach_scores(TinyNet(), 0.5, engine="gpu")


# ---------------------------------------------------------------- the fast path stays exact
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_incremental_masks_match_reference_under_edits(scope, monkeypatch):
    """Adam steps, big jumps, sign flips, ties, reloads: always the canonical mask."""
    monkeypatch.setattr(engine_module, "CHUNK", 256)  # several chunks per layer
    torch.manual_seed(0)
    model = TinyNet()
    masker = attach_scores(model, 0.8, scope=scope)
    opt = torch.optim.Adam(masker.score_parameters(), lr=0.05)
    x = torch.randn(4, 3, 6, 6)
    gen = torch.Generator().manual_seed(0)
    for step in range(12):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()
        with torch.no_grad():
            s = model.conv2.scores
            if step == 3:  # one far jump up, one to zero, sign flips
                s.view(-1)[:5] = torch.tensor([50.0, 0.0, -0.0, -3.0, 3.0])
            if step == 6:  # ties at the threshold
                s.view(-1)[::7] = s.view(-1)[0]
            if step == 9:  # shift everything: the threshold jumps ...
                s.add_(torch.randn(s.shape, generator=gen))
                for group in masker.engine.groups:  # ... and the band search gives up
                    group.search.max_retries = 0
        masks = masker.masks()
        ref = reference_masks(masker)
        for name, layer in masker.layers.items():
            assert torch.equal(masks[name], ref[name]), (step, name)
            w_eff = layer.weight * ref[name]
            slot = mask_state(layer)
            assert torch.equal(slot.effective_weight(), w_eff)
            sign = torch.where(layer.scores.detach() < 0, -1.0, 1.0)
            assert torch.equal(slot.gradient_factor().view_as(sign), layer.weight * sign)
        for group in masker.engine.groups:
            group.search.max_retries = 8
    stats = [group.search.stats for group in masker.engine.groups]
    assert sum(st.band_retries for st in stats) > 0 and sum(st.fallbacks for st in stats) > 0


def test_masks_follow_load_state_dict_and_invalidate():
    model = ToyLinear()
    masker = attach_scores(model, 0.5)
    sd = model.state_dict()
    sd["fc.scores"] = torch.tensor([[1.0, 0.1, 0.2, 0.9]])
    model.load_state_dict(sd)
    assert kept(masker.masks()["fc"]) == [0, 3]
    model.fc.scores.data[0, 1] = 5.0  # invisible to version counters ...
    masker.invalidate()  # ... until told
    assert kept(masker.masks()["fc"]) == [0, 1]


# ---------------------------------------------------------------- fixed masks
OPTIMIZERS = {
    "sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
    "adam_wd": lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.1),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fixed_masks_keep_pruned_weights_exactly_zero(name):
    torch.manual_seed(0)
    model = TinyNet()
    masks = magnitude_masks(model, 0.7)
    masker = attach_fixed(model, masks)
    before = {n: layer.weight.detach().clone() for n, layer in masker.layers.items()}
    opt = OPTIMIZERS[name](model.parameters())
    # stale momentum from a previous dense phase must not move pruned weights either
    for p in model.parameters():
        opt.state[p]["momentum_buffer"] = torch.ones_like(p) if "sgd" in name else None
        if "sgd" not in name:
            opt.state.pop(p)
    masker.bind(opt)
    x = torch.randn(4, 3, 6, 6)
    for _ in range(5):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()
        for n, layer in masker.layers.items():
            assert torch.all(layer.weight[~masks[n]] == 0), n
    for n, layer in masker.layers.items():  # and the kept weights did train
        assert not torch.equal(layer.weight[masks[n]], before[n][masks[n]])


def test_fixed_masks_unbound_optimizer_rezeroed_at_forward():
    model = ToyLinear()
    masker = attach_fixed(model, {"fc": torch.tensor([[False, True, False, True]])})
    assert model.fc.weight.tolist() == [[0.0, -2.0, 0.0, -4.0]]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.5, momentum=0.9)
    opt.state[model.fc.weight]["momentum_buffer"] = torch.ones(1, 4)
    model(ONES).sum().backward()
    opt.step()  # not bound: pruned entries moved by the stale momentum ...
    out = model(ONES)  # ... and are zero again before the next forward
    assert model.fc.weight[0, 0].item() == 0.0 and model.fc.weight[0, 2].item() == 0.0
    assert out.item() == model.fc.weight.sum().item()
    assert masker.kind == "fixed" and masker.score_parameters() == []


def test_freeze_turns_scores_into_fixed_masks():
    model = ToyLinear()
    scores = attach_scores(model, 0.5)
    fixed = scores.freeze()
    assert fixed.kind == "fixed" and fixed.ratio == 0.5
    assert "scores" not in dict(model.fc.named_parameters())
    assert model.fc.weight.requires_grad
    assert model.fc.weight.tolist() == [[0.0, 0.0, 3.0, -4.0]]
    with pytest.raises(RuntimeError):
        scores.masks()


# ---------------------------------------------------------------- report, export, checkpoints
def test_report_ratios():
    model = torchvision.models.resnet18(num_classes=1)
    masker = attach_scores(model, 0.8)
    layers = masker.report()
    assert len(layers) == 21
    assert all(row.kept == kept_count(row.n, 0.8) for row in layers)
    summary = masker.summary()
    n = summary["prunable_weights"]
    assert n == sum(p.weight.numel() for p in masker.layers.values())
    assert abs(summary["ratio_prunable"] - 0.8) <= len(layers) / n  # per-layer rounding
    assert summary["parameters"] == sum(p.numel() for p in torchvision.models.resnet18(num_classes=1).parameters())
    assert 0.79 < summary["ratio_all"] < summary["ratio_prunable"]
    assert summary["kept_weights"] == sum(row.kept for row in layers)


ARCHS = ["resnet18", "mobilenet_v2", "shufflenet_v2_x1_0"]


@pytest.mark.parametrize("arch", ARCHS)
def test_export_loads_into_plain_torchvision_model(arch):
    build = getattr(torchvision.models, arch)
    torch.manual_seed(0)
    model = build(weights=None, num_classes=1)
    masker = attach_scores(model, 0.8)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    plain = masker.export()
    assert not any(name.endswith("scores") for name, _ in plain.named_parameters())
    fresh = build(weights=None, num_classes=1)
    fresh.load_state_dict(plain.state_dict(), strict=True)
    fresh.eval()
    with torch.no_grad():
        assert torch.allclose(fresh(x), expected, rtol=1e-5, atol=1e-6)
    masks = masker.masks()
    for name in masks:
        assert torch.all(fresh.get_submodule(name).weight[~masks[name]] == 0)
    assert any(name.endswith("scores") for name, _ in model.named_parameters())


def test_export_of_fixed_masks_is_plain():
    model = TinyNet()
    masker = attach_fixed(model, magnitude_masks(model, 0.5))
    plain = masker.export()
    assert set(plain.state_dict()) == set(TinyNet().state_dict())
    assert all(not m._forward_pre_hooks for m in plain.modules())


def _roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer)


def test_scores_state_dict_roundtrip_resnet18():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1)
    masker = attach_scores(model, 0.8, scope="global")
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    model(x)
    with torch.no_grad():  # scores moved by "training"
        for p in masker.score_parameters():
            p.add_(torch.randn_like(p), alpha=1e-4)
    with torch.no_grad():
        expected = model(x)
    state = _roundtrip(model.state_dict())
    rebuilt = torchvision.models.resnet18(num_classes=1)
    rebuilt_masker = attach_scores(rebuilt, 0.8, scope="global", init="random")
    rebuilt.load_state_dict(state, strict=True)
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(x), expected)
    assert all(torch.equal(a, b) for a, b in zip(masker.masks().values(), rebuilt_masker.masks().values()))


def test_fixed_state_dict_roundtrip_and_deepcopy():
    model = TinyNet()
    masks = random_masks(model, 0.6, seed=0)
    attach_fixed(model, masks)
    state = _roundtrip(model.state_dict())
    rebuilt = TinyNet(seed=1)
    rebuilt_masker = attach_fixed(rebuilt, random_masks(rebuilt, 0.6, seed=9))
    rebuilt.load_state_dict(state, strict=True)
    assert all(torch.equal(rebuilt_masker.masks()[n], masks[n]) for n in masks)
    twin = copy.deepcopy(rebuilt)
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(twin(x), rebuilt(x))


def test_deepcopy_of_score_masked_model_is_independent():
    model = TinyNet()
    masker = attach_scores(model, 0.5)
    twin = copy.deepcopy(model)
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(twin(x), model(x))
    with torch.no_grad():
        twin.conv2.scores.neg_().add_(torch.randn_like(twin.conv2.scores))
    twin(x)
    assert torch.equal(masker.masks()["conv2"], reference_masks(masker)["conv2"])
    assert torch.equal(model(x), model(x))


def test_detach_applies_mask_in_place():
    model = ToyLinear()
    masker = attach_scores(model, 0.5)
    out = model(ONES)
    assert masker.detach() is model
    assert model.fc.weight.tolist() == [[0.0, 0.0, 3.0, -4.0]]
    assert "scores" not in dict(model.named_parameters())
    assert "forward" not in model.fc.__dict__
    assert torch.equal(model(ONES), out)


def test_cannot_mask_twice_and_layers_argument():
    model = TinyNet()
    inner = prunable_layers(model, include_first=False, include_last=False)
    masker = attach_scores(model, 0.5, layers=inner)
    assert list(masker.layers) == ["conv2"]
    with pytest.raises(ValueError, match="already"):
        attach_scores(model, 0.5, layers=["conv2"])
    with pytest.raises(KeyError):
        magnitude_masks(model, 0.5, layers=["nope"])
    with pytest.raises(TypeError):
        magnitude_masks(model, 0.5, layers=["bn"])


def test_masks_are_copies_and_eval_is_cached():
    model = TinyNet()
    masker = attach_scores(model, 0.5)
    m = masker.masks()
    m["conv2"].zero_()
    assert masker.masks()["conv2"].any()
    with torch.no_grad():
        model(torch.randn(1, 3, 6, 6))
    calls = masker.engine.groups[0].search.stats.calls
    with torch.no_grad():
        model(torch.randn(1, 3, 6, 6))
    assert masker.engine.groups[0].search.stats.calls == calls  # scores unchanged: no work
    records = masker.report()
    assert math.isclose(masker.summary()["ratio_prunable"], 1 - sum(r.kept for r in records) / sum(r.n for r in records))


def test_torch_internals_are_used_in_one_module_only():
    """Attaching masks in place needs a few private torch attributes; they live in masking/_torch.py."""
    from pathlib import Path

    import fapkit

    private = re.compile(r"\._version\b|\._parameters\b|\._buffers\b|_forward_pre_hooks|\._conv_forward\b")
    package = Path(fapkit.__file__).parent
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if private.search(p.read_text()))
    assert users == ["masking/_torch.py"]


def test_exact_topk_keeps_exactly_k_of_float64_scores_that_collide_in_float32():
    from fapkit.masking.topk import exact_topk_masks

    scores = 1.0 + torch.arange(10, dtype=torch.float64) * 1e-12  # all equal as float32
    (keep,) = exact_topk_masks([scores], 3)
    assert int(keep.sum()) == 3 and keep[-3:].all()  # the three largest, not the first three ties

