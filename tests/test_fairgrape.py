"""FairGRAPE: the fast greedy against the plain loop, the share bound, the schedule, nested masks, importance."""
import copy
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fapkit.methods import fairgrape
from fapkit.methods.fairgrape import (
    fairgrape_kept_count,
    fairgrape_masks,
    greedy_keep,
    greedy_keep_reference,
    group_importance,
    group_shares,
    prune_schedule,
)

# Shares are in [0, 1] and come from float64 sums of a few hundred terms: this covers rounding only.
ROUNDING = 1e-12


def _random_layer(gen: torch.Generator, kind: str, k: int, n: int) -> torch.Tensor:
    if kind == "continuous":  # float32 and full float64 values: rounding differences in the sums would show
        return torch.rand(k, n, generator=gen, dtype=torch.float64 if n % 2 else torch.float32) ** 3
    if kind == "ties":  # small integers: many exact ties within and across groups
        return torch.randint(0, 4, (k, n), generator=gen).float()
    if kind == "sparse":  # mostly zeros, plus some all-zero groups
        imp = torch.randint(0, 3, (k, n), generator=gen).double() * (torch.rand(k, n, generator=gen) < 0.2)
        imp[torch.rand(k, generator=gen) < 0.3] = 0
        return imp
    if kind == "decimal":  # tenths: gaps tie in real arithmetic, so decisions hinge on float64 rounding
        return torch.randint(0, 10, (k, n), generator=gen, dtype=torch.float64) / 10
    if kind == "zero":
        return torch.zeros(k, n)
    raise AssertionError(kind)


def _cases(seed: int, count: int):
    gen = torch.Generator().manual_seed(seed)
    kinds = ("continuous", "ties", "decimal", "sparse", "zero")
    for i in range(count):  # every 8th case with ties
        k = int(torch.randint(2, 6, (1,), generator=gen))
        n = int(torch.randint(1, 301, (1,), generator=gen))
        imp = _random_layer(gen, kinds[i % len(kinds)] if i % 8 else "ties", k, n)
        for keep in {0, 1, n - 1, n, int(torch.randint(0, n + 1, (1,), generator=gen))}:
            yield imp, keep


def test_fast_greedy_matches_the_reference_bit_for_bit():
    for imp, keep in _cases(seed=0, count=120):
        expected = greedy_keep_reference(imp, keep)
        got = greedy_keep(imp, keep)
        assert got.dtype == torch.bool and got.shape == (imp.shape[1],)
        assert int(expected.sum()) == max(0, min(keep, imp.shape[1]))
        assert torch.equal(got, expected), (imp.shape, keep)


def test_keep_outside_zero_to_n_is_clipped():
    imp = torch.rand(3, 7)
    assert greedy_keep(imp, 9).all() and greedy_keep_reference(imp, 9).all()
    assert not greedy_keep(imp, -2).any() and not greedy_keep_reference(imp, -2).any()


def test_tie_rules_by_hand():
    # t = (1/2, 1/2). Step 1: equal gaps, group 0 picks its best, weight 0. Then p = (1, 0): group 1
    # picks among its tied weights 1 and 2 the lower index, weight 1.
    imp = torch.tensor([[3.0, 0.0, 1.0], [0.0, 2.0, 2.0]])
    for fn in (greedy_keep, greedy_keep_reference):
        assert fn(imp, 1).tolist() == [True, False, False]
        assert fn(imp, 2).tolist() == [True, True, False]
        # nothing important to anyone: uniform shares and targets, group 0 keeps by index
        assert fn(torch.zeros(2, 5), 3).tolist() == [True, True, True, False, False]
    # first pick goes to the group with the largest target share (group 1 here), its best is weight 2
    assert greedy_keep(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 5.0]]), 1).tolist() == [False, False, True]


@pytest.mark.parametrize("importance, keep, message", [
    (torch.tensor([[1.0, float("nan")]]), 1, "nan"),
    (torch.tensor([[1.0, -0.5], [0.0, 1.0]]), 1, "-0.5 at group 0, weight 1"),
    (torch.tensor([[1.0, float("inf")]]), 1, "inf"),
    (torch.rand(5), 1, r"shape \[groups, weights\]"),
    (torch.ones(2, 3, dtype=torch.int64), 1, "floating-point"),
    (torch.rand(2, 3), 1.5, "1.5"),
    (torch.rand(2, 3), True, "True"),
    ([[1.0, 2.0]], 1, "list"),
])
def test_bad_inputs_are_named(importance, keep, message):
    for fn in (greedy_keep, greedy_keep_reference):
        with pytest.raises(ValueError, match=message):
            fn(importance, keep)


def test_share_bound_with_disjoint_supports():
    """Each weight matters to one group at most. With S the retained total and c_g = max_{w kept} I_g(w) / S:
    upper  p_g − t_g ≤ c_g: when R_g last grew, the picking group was the most deficient (g itself, or an
           exhausted group, which only happens with every gap 0), so R_g ≤ t_g·S_then ≤ t_g·S before adding
           one weight of g;
    lower  p_g − t_g ≥ −Σ_{h≠g} c_h: the gaps sum to 0. For two groups both are one weight."""
    gen = torch.Generator().manual_seed(1)
    checked = 0
    for _ in range(300):
        k = int(torch.randint(2, 6, (1,), generator=gen))
        n = int(torch.randint(1, 301, (1,), generator=gen))
        owner = torch.randint(0, k, (n,), generator=gen)
        imp = (torch.rand(k, n, generator=gen, dtype=torch.float64) ** 4) * (torch.arange(k)[:, None] == owner)
        keep = int(torch.randint(1, n + 1, (1,), generator=gen))
        mask = greedy_keep_reference(imp, keep)
        shares, targets = group_shares(imp, mask)
        total = imp[:, mask].sum()
        if total == 0:
            continue
        one_weight = imp[:, mask].max(dim=1).values / total
        gap = shares - targets
        assert (gap <= one_weight + ROUNDING).all(), (gap, one_weight)
        assert (gap >= -(one_weight.sum() - one_weight) - ROUNDING).all(), (gap, one_weight)
        if keep == n:
            assert torch.allclose(shares, targets, rtol=0, atol=ROUNDING)
        checked += 1
    assert checked > 250


def test_no_share_bound_when_weights_matter_to_several_groups():
    # Group 0's best weights (1, 1) are as important to group 1, so keeping them never lifts p_0 above 1/2,
    # while its target is 1.99/2.99 ≈ 0.666 (the (0.99, 0) weights would have helped): the greedy
    # ends ≈ 0.166 below target, more than three times any single kept weight's share (1/20).
    m = 10
    imp = torch.tensor([[1.0] * m + [0.99] * m, [1.0] * m + [0.0] * m], dtype=torch.float64)
    mask = greedy_keep_reference(imp, m)
    assert mask.tolist() == [True] * m + [False] * m
    shares, targets = group_shares(imp, mask)
    one_weight = imp[:, mask].max(dim=1).values / imp[:, mask].sum()
    assert shares.tolist() == [0.5, 0.5]
    assert targets[0] - shares[0] > 3 * one_weight.max()


def test_group_shares_by_hand():
    imp = torch.tensor([[[1.0, 3.0]], [[2.0, 2.0]]])  # [2 groups, weight shape 1×2]
    shares, targets = group_shares(imp, torch.tensor([[True, False]]))
    assert shares.tolist() == [1 / 3, 2 / 3] and targets.tolist() == [0.5, 0.5]
    shares, targets = group_shares(imp, torch.tensor([[False, False]]), candidates=torch.tensor([[False, True]]))
    assert shares.tolist() == [0.5, 0.5] and targets.tolist() == [0.6, 0.4]
    with pytest.raises(ValueError, match="mask has shape"):
        group_shares(imp, torch.ones(2, dtype=torch.bool))


def test_schedule():
    s = prune_schedule(0.8)
    assert len(s) == 16 and s[-1] == 0.8
    assert s[:-1] == [1 - 0.9**t for t in range(1, 16)]
    assert all(a < b for a, b in zip(s, s[1:]))
    assert prune_schedule(0.5, 0.5) == [0.5]
    assert len(prune_schedule(1 - 0.81)) == 2  # reached exactly at t = 2: no extra step from rounding
    for target in (0, 1, -0.1, 1.5, True, "0.8", float("nan")):
        with pytest.raises(ValueError, match="target sparsity"):
            prune_schedule(target)
    for keep in (0, 1, 1.2):
        with pytest.raises(ValueError, match="keep_per_iteration"):
            prune_schedule(0.8, keep)


def test_masks_nested_and_exact_over_the_schedule():
    gen = torch.Generator().manual_seed(2)
    shapes = {"conv": (4, 3, 3, 3), "fc": (5, 10), "tiny": (3,)}
    masks = {name: torch.ones(shape, dtype=torch.bool) for name, shape in shapes.items()}
    for sparsity in prune_schedule(0.8):
        # importance of pruned weights is 0, as group_importance gives on fixed-mask layers
        importance = {name: torch.randint(0, 5, (3, *shape), generator=gen).float() * masks[name]
                      for name, shape in shapes.items()}
        new = fairgrape_masks(importance, masks, sparsity)
        for name, mask in new.items():
            n = mask.numel()
            assert mask.dtype == torch.bool and mask.shape == shapes[name]
            assert not (mask & ~masks[name]).any(), "not nested"
            assert int(mask.sum()) == min(math.floor(round(n * (1 - sparsity), 6)), int(masks[name].sum()))
            # the layer's choice is the greedy on its candidates, in flat-index order
            flat = masks[name].reshape(-1)
            expected = greedy_keep_reference(importance[name].reshape(3, -1)[:, flat], int(mask.sum()))
            assert torch.equal(mask.reshape(-1)[flat], expected)
        masks = new
    assert int(masks["conv"].sum()) == math.floor(108 * 0.2) and int(masks["fc"].sum()) == 10


def test_masks_quota_capped_and_inputs_checked():
    imp = {"w": torch.rand(2, 10)}
    few = {"w": torch.tensor([True] * 3 + [False] * 7)}
    assert torch.equal(fairgrape_masks(imp, few, 0.5)["w"], few["w"])  # 5 > 3 candidates: keeps the 3
    assert fairgrape_kept_count(10, 0.5) == 5
    # n·(1 − s) an integer in decimal arithmetic but just below it in floats: the decimal count
    assert [fairgrape_kept_count(n, 0.8) for n in (10, 50, 108, 2_359_296)] == [2, 10, 21, 471_859]
    assert fairgrape_kept_count(10, 0.85) == 1 and fairgrape_kept_count(7, 0.0) == 7
    with pytest.raises(ValueError, match="sparsity"):
        fairgrape_masks(imp, few, 1.0)
    with pytest.raises(ValueError, match="only in importance"):
        fairgrape_masks({"w": imp["w"], "v": imp["w"]}, few, 0.5)
    with pytest.raises(ValueError, match="bool mask"):
        fairgrape_masks(imp, {"w": few["w"].float()}, 0.5)


def _batches():
    gen = torch.Generator().manual_seed(3)
    x1, x2 = torch.randn(6, 4, generator=gen, dtype=torch.float64), torch.randn(5, 4, generator=gen, dtype=torch.float64)
    # batch 2 has no sample of group 1
    return [(x1, torch.tensor([1, 0, 1, 1, 0, 0]), torch.tensor([0, 1, 2, 1, 0, 2])),
            (x2, torch.tensor([0, 1, 1, 0, 1]), torch.tensor([2, 0, 2, 0, 0]))]


def test_group_importance_of_logistic_regression_by_hand():
    model = nn.Linear(4, 1).double()
    batches = _batches()
    before = copy.deepcopy(model.state_dict())
    got = group_importance(model, {"w": model.weight}, batches, device="cpu", groups=3)["w"]
    w, b = model.weight.detach()[0], model.bias.detach()[0]
    expected = torch.zeros(3, 1, 4, dtype=torch.float64)
    for x, y, z in batches:
        for g in range(3):
            sel = z == g
            if sel.any():  # dL/dw of the mean BCE on logits: mean of (sigmoid(w·x + b) − y)·x
                grad = ((torch.sigmoid(x[sel] @ w + b) - y[sel]) [:, None] * x[sel]).mean(dim=0)
                expected[g, 0] += (w.abs() * grad.abs()) ** 2
    assert torch.allclose(got, expected, rtol=1e-12, atol=0)
    assert (got > 0).all()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.weight.grad is None and model.bias.grad is None and model.training


class _ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))))  # [B, 1]


def test_group_importance_leaves_the_model_alone_and_matches_per_group_backward():
    torch.manual_seed(4)
    model = _ConvNet().double()
    model.bn.running_mean += 0.3  # non-default buffers, so eval mode matters
    model.train()
    model.fc.eval()  # mixed modes come back as they were
    with torch.no_grad():
        model.conv.weight[0, 0] = 0.0  # a pruned filter slice scores exactly 0
    sentinel = torch.full_like(model.fc.weight, 7.0)
    model.fc.weight.grad = sentinel.clone()
    gen = torch.Generator().manual_seed(5)
    batches = [(torch.randn(8, 2, 5, 5, generator=gen, dtype=torch.float64), torch.randint(0, 2, (8,), generator=gen),
                torch.randint(0, 2, (8,), generator=gen)) for _ in range(3)]
    state = copy.deepcopy(model.state_dict())
    weights = {"conv": model.conv.weight, "fc": model.fc.weight}
    masks = {"fc": torch.tensor([[True, False, True]])}
    got = group_importance(model, weights, batches, device="cpu", groups=2, masks=masks)

    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items()), "parameters or BN buffers changed"
    assert torch.equal(model.fc.weight.grad, sentinel) and model.conv.weight.grad is None
    assert model.training and model.bn.training and not model.fc.training

    twin = copy.deepcopy(model).eval()
    expected = {name: torch.zeros(2, *w.shape, dtype=torch.float64) for name, w in weights.items()}
    for x, y, z in batches:
        for g in range(2):
            if not (z == g).any():
                continue
            twin.zero_grad()
            F.binary_cross_entropy_with_logits(twin(x)[z == g, 0], y[z == g].double()).backward()
            for name, layer in (("conv", twin.conv), ("fc", twin.fc)):
                expected[name][g] += (layer.weight.detach() * layer.weight.grad) ** 2
    expected["fc"] *= masks["fc"]
    for name in weights:
        assert got[name].shape == (2, *weights[name].shape)
        assert torch.allclose(got[name], expected[name], rtol=1e-10, atol=0), name
    assert (got["conv"][:, 0, 0] == 0).all() and (got["conv"][:, 1:] > 0).all()
    assert (got["fc"][:, 0, 1] == 0).all() and (got["fc"][:, 0, 0] > 0).all()


def test_group_importance_checks_its_inputs():
    model = nn.Linear(4, 1).double()
    weights = {"w": model.weight}
    x, y, z = _batches()[0]
    with pytest.raises(ValueError, match=r"group ids z must be integers in 0\.\.1; batch 0 has \[2\]"):
        group_importance(model, weights, [(x, y, z)], device="cpu", groups=2)
    with pytest.raises(ValueError, match="labels y must be 0/1"):
        group_importance(model, weights, [(x, y * 2, z)], device="cpu", groups=3)
    with pytest.raises(ValueError, match="3-tuple"):
        group_importance(model, weights, [(x, y)], device="cpu", groups=3)
    with pytest.raises(ValueError, match="not a parameter of the model"):
        group_importance(model, {"w": nn.Parameter(torch.ones(1, 4))}, [(x, y, z)], device="cpu", groups=3)
    two = nn.Linear(4, 2).double()
    with pytest.raises(ValueError, match="one logit per sample"):
        group_importance(two, {"w": two.weight}, [(x, y, z)], device="cpu", groups=3)
    assert model.training


def test_without_numba_it_warns_and_gives_the_reference_mask(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # makes "import numba" raise ImportError
    with pytest.warns(UserWarning, match="pip install numba"):
        assert fairgrape._compiled_loop.__wrapped__() is None
    monkeypatch.setattr(fairgrape, "_compiled_loop", lambda: None)
    imp = torch.randint(0, 3, (3, 40), generator=torch.Generator().manual_seed(6)).float()
    assert torch.equal(greedy_keep(imp, 25), greedy_keep_reference(imp, 25))


def test_importing_compiles_nothing():
    code = "import sys, fapkit.methods.fairgrape; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fairgrape_runs_as_a_registered_method_with_exact_layer_sparsity(tmp_path):
    import fapkit
    from fapkit.registry import spec_of

    tiny = dict(preset="smoke", size=16, n_train=192, n_valid=96, n_test=96, pretrain_epochs=1, epochs=2)
    result = fapkit.run("fairgrape", runs_dir=tmp_path, **tiny)
    assert not spec_of("fairgrape").dense and not spec_of("fairgrape").paper
    iterations = [h["iteration"] for h in result.history]
    assert iterations == [1, 2, 3, 4, 0, 0]  # keep 0.6 per iteration: 4 iterations to 80 %, then the retrain
    assert [round(h["sparsity"], 3) for h in result.history[:4]] == [0.4, 0.64, 0.784, 0.8]
    assert result.history[-1]["selected_epoch"] in (1, 2)
    for layer in result.layers:  # every layer at the target, to the weight
        assert layer["kept"] == fairgrape_kept_count(layer["n"], 0.8)
    assert {"group_acc_change", "acc_change_std", "max_excess_gap"} <= set(result.metrics)
    assert sorted(p.name for p in Path(result.run_dir).iterdir()) == ["model.pt", "record.json"]  # nothing left over
