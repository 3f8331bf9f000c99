"""Tests for fapkit.fairness.metrics: hand-computed values, fairlearn cross-checks, input handling, errors."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from fapkit.fairness.metrics import (
    accuracy_change,
    degenerate_groups,
    disparate_impact,
    equalized_odds,
    fairness_report,
    group_ids,
    group_rates,
    is_degenerate,
    is_near_constant,
    near_constant_groups,
)
from fapkit.training.evaluation import evaluate

# A hand-built example, worked out by hand:
#   group 0 (4 samples): y = 1 1 0 0, ŷ = 1 0 1 0
#       sel = 2/4, TPR = 1/2, FPR = 1/2, acc = 2/4
#   group 1 (6 samples): y = 1 1 1 0 0 0, ŷ = 1 1 1 1 0 0
#       sel = 4/6, TPR = 3/3, FPR = 1/3, acc = 5/6
#   DI = (1/2) / (2/3) = 3/4
#   ΔTPR = 1/2, ΔFPR = 1/6 -> sum 2/3, max 1/2, mean 1/3, tpr 1/2
#   overall acc = 7/10, selection rate = 6/10
Y = [1, 1, 0, 0, 1, 1, 1, 0, 0, 0]
Z = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
P = [1, 0, 1, 0, 1, 1, 1, 1, 0, 0]


# ---------------------------------------------------------------- hand-computed values


def test_group_rates_hand_computed():
    r = group_rates(Y, P, sensitive_features=Z)
    assert set(r) == {0, 1}
    assert r[0] == pytest.approx(
        {"count": 4, "selection_rate": 0.5, "tpr": 0.5, "fpr": 0.5, "accuracy": 0.5,
         "n_pos": 2, "n_neg": 2}
    )
    assert r[1] == pytest.approx(
        {"count": 6, "selection_rate": 4 / 6, "tpr": 1.0, "fpr": 1 / 3, "accuracy": 5 / 6,
         "n_pos": 3, "n_neg": 3}
    )


def test_group_rates_undefined_rate_is_nan_not_error():
    # group 0 has no y=1 samples and group 1 none at all: descriptive rates are nan
    r = group_rates([0, 0], [1, 0], sensitive_features=[0, 0])
    assert math.isnan(r[0]["tpr"]) and r[0]["fpr"] == 0.5 and r[0]["n_pos"] == 0
    assert r[1]["count"] == 0 and math.isnan(r[1]["selection_rate"])
    assert math.isnan(r[1]["accuracy"])


def test_disparate_impact_hand_computed():
    assert disparate_impact(None, P, sensitive_features=Z) == pytest.approx(0.75, abs=1e-12)
    # symmetric in the group labels: min/max, never above 1
    assert disparate_impact(None, P, sensitive_features=[1 - v for v in Z]) == pytest.approx(0.75, abs=1e-12)
    assert disparate_impact(None, [1, 1, 1, 1], sensitive_features=[0, 0, 1, 1]) == 1.0
    assert disparate_impact(None, [0, 0, 1, 0], sensitive_features=[0, 0, 1, 1]) == 0.0


@pytest.mark.parametrize(
    "kind, expected", [("sum", 2 / 3), ("max", 0.5), ("mean", 1 / 3), ("tpr", 0.5)]
)
def test_equalized_odds_hand_computed(kind, expected):
    assert equalized_odds(Y, P, sensitive_features=Z, kind=kind) == pytest.approx(expected, abs=1e-12)


def test_equalized_odds_default_is_sum_and_perfect_classifier_is_zero():
    assert equalized_odds(Y, P, sensitive_features=Z) == pytest.approx(2 / 3, abs=1e-12)
    for kind in ("sum", "max", "mean", "tpr"):
        assert equalized_odds(Y, Y, sensitive_features=Z, kind=kind) == 0.0
    # maximal unfairness: group 0 always positive, group 1 always negative
    y = [1, 0, 1, 0]
    z = [0, 0, 1, 1]
    p = [1, 1, 0, 0]
    assert equalized_odds(y, p, sensitive_features=z) == 2.0
    assert equalized_odds(y, p, sensitive_features=z, kind="max") == 1.0


def test_fairness_report_hand_computed_and_json_safe():
    rep = fairness_report(Y, P, sensitive_features=Z)
    assert rep["n"] == 10
    assert rep["acc"] == pytest.approx(0.7)
    assert rep["selection_rate"] == pytest.approx(0.6)
    assert rep["di"] == pytest.approx(0.75)
    assert rep["deo"] == pytest.approx(2 / 3)
    assert rep["deo_max"] == pytest.approx(0.5)
    assert rep["deo_mean"] == pytest.approx(1 / 3)
    assert rep["deo_tpr"] == pytest.approx(0.5)
    assert rep["groups"] == group_rates(Y, P, sensitive_features=Z)
    # plain Python types only, so json works and nothing is a numpy scalar
    assert type(rep["n"]) is int
    for k in ("acc", "di", "deo", "deo_max", "deo_mean", "deo_tpr", "selection_rate"):
        assert type(rep[k]) is float, k
    for g in (0, 1):
        for k, v in rep["groups"][g].items():
            assert type(v) is (int if k in ("count", "n_pos", "n_neg") else float), (g, k)
    back = json.loads(json.dumps(rep))
    assert back["deo"] == rep["deo"] and back["groups"]["1"]["tpr"] == 1.0


# ---------------------------------------------------------------- DI edge case (0/0)


def test_di_nan_with_warning_when_nobody_selected_matches_fairlearn():
    fl = pytest.importorskip("fairlearn.metrics")
    y, p, z = [0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 1, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(fl.demographic_parity_ratio(y, p, sensitive_features=z))
    with pytest.warns(RuntimeWarning, match="max selection rate is 0"):
        assert math.isnan(disparate_impact(None, p, sensitive_features=z))
    with pytest.warns(RuntimeWarning):
        assert math.isnan(fairness_report(y, p, sensitive_features=z)["di"])


# ---------------------------------------------------------------- fairlearn cross-check


def _random_cases(n_cases: int = 240):
    """Seeded random (y, ŷ, z) cases, many with very unbalanced groups and extreme rates."""
    rng = np.random.default_rng(20240611)
    sizes = [(3, 500), (500, 3), (1, 80), (2, 2), (20, 20), (50, 300), (200, 200), (7, 40)]
    rates = [0.0, 0.005, 0.05, 0.3, 0.5, 0.7, 0.95, 0.995, 1.0]
    moderate = [0.2, 0.35, 0.5, 0.65, 0.8]
    for i in range(n_cases):
        n0, n1 = sizes[i % len(sizes)]
        z = np.r_[np.zeros(n0, int), np.ones(n1, int)]
        rng.shuffle(z)
        # base rates: extreme in every third case, else moderate (so most DEOs are defined)
        yr = rates if i % 3 == 0 else moderate
        py = np.where(z == 0, rng.choice(yr), rng.choice(yr))
        y = (rng.random(z.size) < py).astype(int)
        # predictions: agree with y with a random accuracy, or ignore y entirely
        if rng.random() < 0.5:
            flip = rng.random(z.size) < rng.choice([0.0, 0.1, 0.4])
            p = np.where(flip, 1 - y, y)
        else:
            pp = np.where(z == 0, rng.choice(rates), rng.choice(rates))
            p = (rng.random(z.size) < pp).astype(int)
        yield y, p, z


def test_cross_check_with_fairlearn_on_random_cases():
    fl = pytest.importorskip("fairlearn.metrics")
    n_di = n_di_nan = n_eo = n_eo_undefined = 0
    for y, p, z in _random_cases():
        # ---- DI, defined whenever both groups are present and someone is selected
        if p.sum() == 0:
            with pytest.warns(RuntimeWarning):
                assert math.isnan(disparate_impact(None, p, sensitive_features=z))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert math.isnan(fl.demographic_parity_ratio(y, p, sensitive_features=z))
            n_di_nan += 1
        else:
            expected = fl.demographic_parity_ratio(y, p, sensitive_features=z)
            assert disparate_impact(None, p, sensitive_features=z) == pytest.approx(expected, abs=1e-9)
            n_di += 1
        # ---- DEO, defined only if all four (y, z) cells have samples
        cells = [(yv, g) for yv in (1, 0) for g in (0, 1)]
        empty = [(yv, g) for yv, g in cells if not np.any((y == yv) & (z == g))]
        if empty:
            yv, g = empty[0]
            rate = "TPR" if yv == 1 else "FPR"
            with pytest.raises(ValueError, match=rf"no samples with y={yv}, z={g}: {rate} of group {g}"):
                equalized_odds(y, p, sensitive_features=z, kind="max")
            n_eo_undefined += 1
            continue
        got_max = equalized_odds(y, p, sensitive_features=z, kind="max")
        got_mean = equalized_odds(y, p, sensitive_features=z, kind="mean")
        assert got_max == pytest.approx(
            fl.equalized_odds_difference(y, p, sensitive_features=z), abs=1e-9
        )
        assert got_mean == pytest.approx(
            fl.equalized_odds_difference(y, p, sensitive_features=z, agg="mean"), abs=1e-9
        )
        assert equalized_odds(y, p, sensitive_features=z, kind="sum") == pytest.approx(2 * got_mean, abs=1e-12)
        assert equalized_odds(y, p, sensitive_features=z, kind="tpr") <= got_max + 1e-12
        n_eo += 1
    # the generator must really exercise every branch, and compare ≥100 cases
    assert n_di >= 100 and n_eo >= 100, (n_di, n_eo)
    assert n_di_nan >= 1 and n_eo_undefined >= 5, (n_di_nan, n_eo_undefined)


# ---------------------------------------------------------------- input types


def _variants(a):
    """The same 0/1 data as list, bool list, numpy (int/float/bool) and torch (long/float/bool, [N,1])."""
    arr = np.asarray(a)
    return {
        "list": list(a),
        "bool_list": [bool(v) for v in a],
        "np_int": arr.astype(np.int64),
        "np_float": arr.astype(np.float32),
        "np_bool": arr.astype(bool),
        "np_col": arr.reshape(-1, 1),
        "torch_long": torch.tensor(arr, dtype=torch.long),
        "torch_float": torch.tensor(arr, dtype=torch.float64),
        "torch_half": torch.tensor(arr, dtype=torch.bfloat16),
        "torch_bool": torch.tensor(arr, dtype=torch.bool),
        "torch_col": torch.tensor(arr, dtype=torch.float32).reshape(-1, 1),
    }


def test_list_numpy_torch_bool_inputs_agree():
    expected = fairness_report(Y, P, sensitive_features=Z)
    vy, vp, vz = _variants(Y), _variants(P), _variants(Z)
    for name in vy:
        assert fairness_report(vy[name], vp[name], sensitive_features=vz[name]) == expected, name
        assert disparate_impact(None, vp[name], sensitive_features=vz[name]) == expected["di"], name
    # mixed types in one call
    assert fairness_report(vy["torch_bool"], vp["np_float"], sensitive_features=vz["list"]) == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_accepted():
    t = lambda a: torch.tensor(a, device="cuda")  # noqa: E731
    assert fairness_report(t(Y), t(P), sensitive_features=t(Z)) == fairness_report(Y, P, sensitive_features=Z)


# ---------------------------------------------------------------- bad inputs


def test_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"len\(y_true\)=10, len\(y_pred\)=9"):
        equalized_odds(Y, P[:-1], sensitive_features=Z)
    with pytest.raises(ValueError, match=r"len\(y_true\)=10, len\(z\)=11"):
        group_rates(Y, P, sensitive_features=Z + [1])
    with pytest.raises(ValueError, match=r"len\(y_pred\)=10, len\(z\)=3"):
        disparate_impact(None, P, sensitive_features=[0, 1, 0])


def test_non_binary_values_listed():
    with pytest.raises(ValueError, match=r"y_pred must hold only 0/1.*2 other distinct value\(s\): 2, -1$"):
        disparate_impact(None, [0, 1, 2, -1, 2], sensitive_features=[0, 0, 1, 1, 1])
    # more than five offenders: five shown, then an ellipsis (groups=2: ids 2.. are offenders too)
    with pytest.raises(ValueError, match=r"z must hold only 0/1.*6 other.*: 2\.0, 3\.0, 4\.0, 5\.0, 0\.5, \.\.\.$"):
        disparate_impact(None, [0, 1, 1, 0, 1, 1, 0], sensitive_features=[0, 2, 3, 4, 5, 0.5, 7], groups=2)
    # with k inferred, integer ids are group ids: only the non-integer, negative and nan z values offend
    with pytest.raises(ValueError, match=r"z must hold only 0/1 or other non-negative integer group ids.*"
                                         r"6 other.*: 0\.5, -1\.0, nan, 2\.5, inf, \.\.\.$"):
        disparate_impact(None, [0, 1, 1, 0, 1, 1, 0, 1],
                         sensitive_features=[0, 0.5, -1, float("nan"), 2.5, float("inf"), -3, 7])
    with pytest.raises(ValueError, match=r"z must hold only integer group ids 0\.\.2 \(groups=3\).*: 3, 5$"):
        group_rates([0, 1, 1, 0], [0, 1, 1, 0], sensitive_features=[0, 3, 1, 5], groups=3)
    with pytest.raises(ValueError, match=r"y_true must hold only 0/1.*nan"):
        equalized_odds([0, 1, float("nan"), 1], [0, 1, 0, 1], sensitive_features=[0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"y_true must hold only 0/1.*'a'"):
        group_rates(["a", "1"], [0, 1], sensitive_features=[0, 1])
    with pytest.raises(ValueError, match=r"z must hold only 0/1.*None"):
        group_rates([0, 1], [0, 1], sensitive_features=[0, None])
    with pytest.raises(ValueError, match=r"y_pred must hold only 0/1.*0\.7"):
        fairness_report(Y, torch.full((10,), 0.7), sensitive_features=Z)  # probabilities, not hard labels


def test_empty_and_bad_shape():
    with pytest.raises(ValueError, match="y_true is empty"):
        equalized_odds([], [], sensitive_features=[])
    with pytest.raises(ValueError, match="y_pred is empty"):
        disparate_impact(None, np.array([]), sensitive_features=[0, 1])
    with pytest.raises(ValueError, match=r"z must be 1-D .*shape \(2, 2\)"):
        disparate_impact(None, [0, 1], sensitive_features=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"y_pred must be 1-D"):
        disparate_impact(None, 1, sensitive_features=[0])


def test_single_sensitive_group():
    with pytest.raises(ValueError, match="z has only group 1; DI needs both groups 0 and 1"):
        disparate_impact(None, [0, 1, 1], sensitive_features=[1, 1, 1])
    with pytest.raises(ValueError, match="z has only group 0; equalized odds needs both groups 0 and 1"):
        equalized_odds([0, 1, 1], [0, 1, 0], sensitive_features=[0, 0, 0])
    with pytest.raises(ValueError, match="z has only group 1"):
        fairness_report([0, 1, 1], [0, 1, 0], sensitive_features=[1, 1, 1])


def test_missing_y_z_cell():
    # group 0 has no positives
    y, p, z = [0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"no samples with y=1, z=0: TPR of group 0 is undefined"):
        equalized_odds(y, p, sensitive_features=z)
    # group 1 has no negatives: only kinds that use FPR fail; "tpr" still works
    y, p, z = [1, 0, 1, 1], [1, 0, 0, 1], [0, 0, 1, 1]
    for kind in ("sum", "max", "mean"):
        with pytest.raises(ValueError, match=r"no samples with y=0, z=1: FPR of group 1 is undefined"):
            equalized_odds(y, p, sensitive_features=z, kind=kind)
    assert equalized_odds(y, p, sensitive_features=z, kind="tpr") == 0.5
    with pytest.raises(ValueError, match="FPR of group 1"):
        fairness_report(y, p, sensitive_features=z)


def test_bad_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        equalized_odds(Y, P, sensitive_features=Z, kind="min")  # type: ignore[arg-type]


# ---------------------------------------------------------------- evaluate


class _Net(nn.Module):
    """Linear(2 -> 1) with logit = x0 - x1, plus a dropout to check mode handling."""

    def __init__(self, out_2d: bool = True):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.drop = nn.Dropout(p=0.9)
        self.out_2d = out_2d
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, -1.0]]))
            self.lin.bias.zero_()

    def forward(self, x):
        out = self.lin(self.drop(x))  # [B, 1]
        return out if self.out_2d else out[:, 0]


# logits chosen so that ŷ = (logit > 0) equals P; one logit is exactly 0 -> ŷ = 0
LOGITS = [2.0, -1.0, 0.5, 0.0, 3.0, 1.0, 0.25, 4.0, -2.0, -0.5]


def _batches(sizes=(3, 4, 3)):
    out, i = [], 0
    for k, b in enumerate(sizes):
        sl = slice(i, i + b)
        lg = torch.tensor(LOGITS[sl])
        x = torch.stack([lg + 1.0, torch.ones(b)], dim=1)  # x0 - x1 = logit
        y = torch.tensor(Y[sl], dtype=torch.float32)
        z = torch.tensor(Z[sl])
        if k == 1:  # vary batch shapes/dtypes: [B,1] labels, bool z
            y, z = y.reshape(-1, 1), z.bool()
        out.append((x, y, z))
        i += b
    return out


def _expected_bce():
    # mean of softplus(l) - t * l, computed without torch
    return sum(math.log1p(math.exp(v)) - t * v for v, t in zip(LOGITS, Y)) / len(Y)


@pytest.mark.parametrize("out_2d", [True, False])
def test_evaluate_known_outputs(out_2d):
    assert [int(v > 0) for v in LOGITS] == P
    model = _Net(out_2d=out_2d)
    model.train()
    rep = evaluate(model, _batches())
    expected = fairness_report(Y, P, sensitive_features=Z)
    assert rep["loss"] == pytest.approx(_expected_bce(), rel=1e-6)
    assert {k: v for k, v in rep.items() if k != "loss"} == expected
    assert rep["di"] == pytest.approx(0.75) and rep["deo"] == pytest.approx(2 / 3)
    # the Dropout(p=0.9) would have scrambled outputs had train mode been used
    assert model.training and model.drop.training and model.lin.training
    assert model.lin.weight.grad is None
    json.dumps(rep)


def test_evaluate_restores_eval_and_mixed_modes():
    model = _Net()
    model.eval()
    evaluate(model, _batches(), device="cpu")
    assert not model.training and not model.drop.training
    model.train()
    model.lin.eval()  # mixed modes survive too
    evaluate(model, _batches(sizes=(10,)))
    assert model.training and model.drop.training and not model.lin.training


def test_evaluate_restores_mode_on_error_and_rejects_bad_loaders():
    model = _Net()
    model.train()
    with pytest.raises(ValueError, match="loader yielded no samples"):
        evaluate(model, [])
    assert model.training
    with pytest.raises(ValueError, match=r"\(x, y, z\) batches; batch 0"):
        evaluate(model, [(torch.zeros(2, 2), torch.zeros(2))])
    with pytest.raises(ValueError, match=r"mismatched sizes: 2 logits, len\(y\)=3"):
        evaluate(model, [(torch.zeros(2, 2), torch.zeros(3), torch.zeros(2))])
    with pytest.raises(ValueError, match="one logit per sample"):
        evaluate(nn.Linear(2, 3), [(torch.zeros(2, 2), torch.zeros(2), torch.tensor([0, 1]))])
    with pytest.raises(ValueError, match=r"y must hold only 0/1.*0\.5"):
        evaluate(model, [(torch.zeros(2, 2), torch.tensor([0.5, 1.0]), torch.tensor([0, 1]))])
    # A split that cannot define DI/DEO (one group) is still measured: those metrics nan, the reason kept.
    one_group = evaluate(model, [(torch.zeros(2, 2), torch.tensor([0, 1]), torch.tensor([0, 0]))])
    assert math.isnan(one_group["di"]) and math.isnan(one_group["deo"]) and one_group["acc"] in (0.0, 0.5, 1.0)
    assert "z has only group 0" in one_group["undefined"]["deo"] and "di" in one_group["undefined"]
    assert model.training and model.drop.training
    with pytest.raises(ValueError, match="undefined must be 'raise' or 'nan'"):
        fairness_report([0, 1], [0, 1], sensitive_features=[0, 1], undefined="zero")


def test_accuracy_change_matches_fairlearn_metric_frames_on_random_cases():
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score

    from fapkit.fairness.metrics import accuracy_change

    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(20, 200))
        y, z = rng.integers(0, 2, n), np.r_[0, 1, rng.integers(0, 2, n - 2)]
        dense_pred, sparse_pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
        frames = [fl.MetricFrame(metrics=accuracy_score, y_true=y, y_pred=p, sensitive_features=z)
                  for p in (dense_pred, sparse_pred)]
        dense, sparse = (fairness_report(y, p, sensitive_features=z) for p in (dense_pred, sparse_pred))
        got = accuracy_change(sparse["groups"], dense["groups"], sparse["acc"], dense["acc"])
        change = frames[1].by_group - frames[0].by_group
        assert got["group_acc_change"] == pytest.approx({int(g): v for g, v in change.items()}, abs=1e-12)
        assert got["acc_change_std"] == pytest.approx(float(np.std(change.to_numpy())), abs=1e-12)
        overall = frames[1].overall - frames[0].overall
        assert got["max_excess_gap"] == pytest.approx(float((overall - change).max()), abs=1e-12)
    with pytest.raises(ValueError, match="different groups"):
        accuracy_change({0: {"accuracy": 1.0}}, {0: {"accuracy": 1.0}, 1: {"accuracy": 0.5}}, 1.0, 0.9)


# ---------------------------------------------------------------- k groups

# A hand-built 3-group example: groups 0 and 1 are those of Y/Z/P above, group 2 is new:
#   group 2 (5 samples): y = 1 1 0 0 0, ŷ = 0 0 1 0 0
#       sel = 1/5, TPR = 0, FPR = 1/3, acc = 2/5
#   DI = min(1/2, 2/3, 1/5) / max(...) = (1/5) / (2/3) = 3/10
#   ΔTPR = max(1/2, 1, 0) - min(...) = 1, ΔFPR = max(1/2, 1/3, 1/3) - min(...) = 1/6
#   -> sum 7/6, max 1, mean 7/12, tpr 1
Y3 = Y + [1, 1, 0, 0, 0]
Z3 = Z + [2, 2, 2, 2, 2]
P3 = P + [0, 0, 1, 0, 0]


def test_three_groups_hand_computed():
    r = group_rates(Y3, P3, sensitive_features=Z3)
    assert list(r) == [0, 1, 2]
    assert r[0] == group_rates(Y, P, sensitive_features=Z)[0]
    assert r[1] == group_rates(Y, P, sensitive_features=Z)[1]
    assert r[2] == pytest.approx(
        {"count": 5, "selection_rate": 0.2, "tpr": 0.0, "fpr": 1 / 3, "accuracy": 0.4, "n_pos": 2, "n_neg": 3}
    )
    assert disparate_impact(None, P3, sensitive_features=Z3) == pytest.approx(0.3, abs=1e-12)
    expected = {"sum": 7 / 6, "max": 1.0, "mean": 7 / 12, "tpr": 1.0}
    for kind, value in expected.items():
        assert equalized_odds(Y3, P3, sensitive_features=Z3, kind=kind) == pytest.approx(value, abs=1e-12), kind
    # Σ_y (max_g - min_g) P(ŷ=1 | y, g), spelt out
    by_y = {yv: [np.mean([p for y, p, z in zip(Y3, P3, Z3) if y == yv and z == g]) for g in range(3)] for yv in (0, 1)}
    assert equalized_odds(Y3, P3, sensitive_features=Z3) == pytest.approx(
        sum(max(v) - min(v) for v in by_y.values()), abs=1e-12)
    rep = fairness_report(Y3, P3, sensitive_features=Z3)
    assert rep["groups"] == r and rep["di"] == pytest.approx(0.3) and rep["deo"] == pytest.approx(7 / 6)
    assert rep["n"] == 15 and rep["acc"] == pytest.approx(9 / 15)
    back = json.loads(json.dumps(rep))
    assert back["groups"]["2"]["fpr"] == pytest.approx(1 / 3)
    # the explicit k agrees with the inferred one, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fairness_report(Y3, P3, sensitive_features=Z3, groups=3) == rep
    # group ids may come as floats or torch tensors
    assert fairness_report(Y3, P3, sensitive_features=np.asarray(Z3, float)) == rep
    assert fairness_report(torch.tensor(Y3), torch.tensor(P3), sensitive_features=torch.tensor(Z3)) == rep


def test_sum_deo_is_the_papers_binary_formula_on_binary_cases():
    cases = [(Y, P, Z), ([1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1])] + list(_random_cases())
    n = 0
    for y, p, z in cases:
        r = group_rates(y, p, sensitive_features=z)
        if any(r[g][key] == 0 for g in (0, 1) for key in ("n_pos", "n_neg")):
            continue
        paper = abs(r[1]["tpr"] - r[0]["tpr"]) + abs(r[1]["fpr"] - r[0]["fpr"])
        assert equalized_odds(y, p, sensitive_features=z) == paper  # bit for bit
        assert equalized_odds(y, p, sensitive_features=z, groups=2) == paper
        assert equalized_odds(y, p, sensitive_features=z, kind="max") == max(
            abs(r[1]["tpr"] - r[0]["tpr"]), abs(r[1]["fpr"] - r[0]["fpr"]))
        assert equalized_odds(y, p, sensitive_features=z, kind="tpr") == abs(r[1]["tpr"] - r[0]["tpr"])
        n += 1
    assert n >= 100


def _k_group_cases(k: int, n_cases: int = 60):
    """Seeded random (y, ŷ, z) cases with k groups (every group present), unequal sizes and rates."""
    rng = np.random.default_rng(1000 + k)
    for i in range(n_cases):
        sizes = rng.integers(2, 120, k) if i % 4 else rng.choice([3, 8, 400], k)
        z = np.repeat(np.arange(k), sizes)
        rng.shuffle(z)
        base = rng.choice([0.05, 0.3, 0.5, 0.7, 0.95], k)
        y = (rng.random(z.size) < base[z]).astype(int)
        if i % 2:
            flip = rng.random(z.size) < rng.choice([0.0, 0.1, 0.4])
            p = np.where(flip, 1 - y, y)
        else:
            p = (rng.random(z.size) < rng.choice([0.0, 0.01, 0.2, 0.5, 0.9, 1.0], k)[z]).astype(int)
        yield y, p, z


@pytest.mark.parametrize("k", [3, 4, 5])
def test_k_groups_cross_check_with_fairlearn(k):
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score

    n_eo = n_di = n_undefined = 0
    for y, p, z in _k_group_cases(k):
        rates = group_rates(y, p, sensitive_features=z)
        assert list(rates) == list(range(k))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fairlearn warns on empty TPR/FPR cells and on 0/0
            frame = fl.MetricFrame(
                metrics={"count": fl.count, "selection_rate": fl.selection_rate, "tpr": fl.true_positive_rate,
                         "fpr": fl.false_positive_rate, "accuracy": accuracy_score},
                y_true=y, y_pred=p, sensitive_features=z)
            dpr = fl.demographic_parity_ratio(y, p, sensitive_features=z)
            eod = fl.equalized_odds_difference(y, p, sensitive_features=z)
            eod_mean = fl.equalized_odds_difference(y, p, sensitive_features=z, agg="mean")
        by_group = frame.by_group
        for g in range(k):
            for key in ("count", "selection_rate", "accuracy"):
                assert rates[g][key] == pytest.approx(float(by_group.loc[g, key]), abs=1e-12), (g, key)
            for key, n_key in (("tpr", "n_pos"), ("fpr", "n_neg")):
                if rates[g][n_key]:
                    assert rates[g][key] == pytest.approx(float(by_group.loc[g, key]), abs=1e-12), (g, key)
                else:
                    assert math.isnan(rates[g][key])
        if p.sum() == 0:
            with pytest.warns(RuntimeWarning, match="no sample in any group"):
                assert math.isnan(disparate_impact(None, p, sensitive_features=z))
            assert math.isnan(dpr)
        else:
            assert disparate_impact(y, p, sensitive_features=z) == pytest.approx(dpr, abs=1e-12)
            n_di += 1
        if any(rates[g][key] == 0 for g in range(k) for key in ("n_pos", "n_neg")):
            with pytest.raises(ValueError, match=r"no samples with y=\d, z=\d: (TPR|FPR) of group \d is undefined"):
                equalized_odds(y, p, sensitive_features=z)
            n_undefined += 1
            continue
        got = {kind: equalized_odds(y, p, sensitive_features=z, kind=kind) for kind in ("sum", "max", "mean", "tpr")}
        assert got["max"] == pytest.approx(eod, abs=1e-12)
        assert got["mean"] == pytest.approx(eod_mean, abs=1e-12)
        tprs, fprs = [rates[g]["tpr"] for g in range(k)], [rates[g]["fpr"] for g in range(k)]
        assert got["sum"] == pytest.approx(max(tprs) - min(tprs) + max(fprs) - min(fprs), abs=1e-12)
        assert got["tpr"] == pytest.approx(max(tprs) - min(tprs), abs=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # DI = 0/0 when nobody is selected, checked above
            rep = fairness_report(y, p, sensitive_features=z)
        assert (rep["deo"], rep["deo_max"], rep["deo_mean"], rep["deo_tpr"]) == (
            got["sum"], got["max"], got["mean"], got["tpr"])
        n_eo += 1
    assert n_di >= 40 and n_eo >= 35 and n_undefined >= 10, (n_di, n_eo, n_undefined)


def test_absent_group_with_inferred_k_is_listed_nan_and_ignored_silently():
    fl = pytest.importorskip("fairlearn.metrics")
    # ids 0, 2 and 3 present, id 1 absent: k = 4 inferred
    y = [1, 0, 1, 0, 1, 1, 0, 0, 1, 0]
    p = [1, 0, 0, 1, 1, 0, 0, 0, 1, 1]
    z = [0, 0, 0, 0, 2, 2, 2, 3, 3, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = group_rates(y, p, sensitive_features=z)
        di = disparate_impact(None, p, sensitive_features=z)
        deo = equalized_odds(y, p, sensitive_features=z, kind="max")
        rep = fairness_report(y, p, sensitive_features=z)
    assert list(r) == [0, 1, 2, 3]
    assert r[1]["count"] == r[1]["n_pos"] == r[1]["n_neg"] == 0
    assert all(math.isnan(r[1][key]) for key in ("selection_rate", "tpr", "fpr", "accuracy"))
    # DI and DEO over the groups present: fairlearn's (which sees only those)
    assert di == pytest.approx(fl.demographic_parity_ratio(y, p, sensitive_features=z), abs=1e-12)
    assert deo == pytest.approx(fl.equalized_odds_difference(y, p, sensitive_features=z), abs=1e-12)
    assert rep["di"] == di and rep["deo_max"] == deo
    # an absent group is not a constant predictor
    assert not rep["degenerate"] and 1 not in degenerate_groups(r)
    # remapping the present ids to 0, 1, 2 changes nothing but the listing
    dense_z = [{0: 0, 2: 1, 3: 2}[v] for v in z]
    dense = fairness_report(y, p, sensitive_features=dense_z)
    assert {k: v for k, v in dense.items() if k != "groups"} == {k: v for k, v in rep.items() if k != "groups"}


def test_absent_group_with_explicit_groups_warns_and_gives_nan_rates():
    y, p, z = Y3, P3, Z3  # groups 0, 1, 2 present; groups=5 declares 3 and 4 too
    with pytest.warns(RuntimeWarning, match=r"no samples of group\(s\) \[3, 4\] of groups=5"):
        r = group_rates(y, p, sensitive_features=z, groups=5)
    assert list(r) == [0, 1, 2, 3, 4] and r[3]["count"] == 0 and math.isnan(r[4]["tpr"])
    with pytest.warns(RuntimeWarning, match=r"group\(s\) \[3, 4\]"):
        assert disparate_impact(None, p, sensitive_features=z, groups=5) == disparate_impact(
            None, p, sensitive_features=z)
    with pytest.warns(RuntimeWarning, match=r"group\(s\) \[3, 4\]"):
        assert equalized_odds(y, p, sensitive_features=z, groups=5) == equalized_odds(y, p, sensitive_features=z)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = fairness_report(y, p, sensitive_features=z, groups=5)
    assert len(caught) == 1 and "[3, 4]" in str(caught[0].message)  # one warning, not one per metric
    assert caught[0].filename == __file__  # it points at the caller
    assert rep["groups"] == r and not rep["degenerate"]
    # binary data declared binary: the same as inferred, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fairness_report(Y, P, sensitive_features=Z, groups=2) == fairness_report(Y, P, sensitive_features=Z)
    # one group present of several declared: warned, then refused
    with pytest.warns(RuntimeWarning, match=r"\[1, 2\] of groups=3"):
        with pytest.raises(ValueError, match=r"z has only group 0; DI needs at least two of the groups 0\.\.2"):
            disparate_impact(None, [0, 1], sensitive_features=[0, 0], groups=3)
    with pytest.warns(RuntimeWarning, match=r"\[1\] of groups=2"):
        with pytest.raises(ValueError, match="z has only group 0; DI needs both groups 0 and 1"):
            disparate_impact(None, [0, 1], sensitive_features=[0, 0], groups=2)


def test_one_group_present_with_inferred_k():
    with pytest.raises(ValueError, match=r"z has only group 3; DI needs at least two of the groups 0\.\.3"):
        disparate_impact(None, [0, 1, 1], sensitive_features=[3, 3, 3])
    with pytest.raises(ValueError, match=r"z has only group 2; equalized odds needs at least two of the groups 0\.\.2"):
        equalized_odds([0, 1, 1], [0, 1, 0], sensitive_features=[2, 2, 2])
    r = group_rates([0, 1, 1], [0, 1, 0], sensitive_features=[2, 2, 2])
    assert list(r) == [0, 1, 2] and r[2]["count"] == 3 and r[0]["count"] == 0


def test_k_groups_empty_cell_names_the_group():
    # group 2 has no negatives
    y, p, z = [1, 0, 1, 0, 1, 1], [1, 0, 0, 0, 1, 0], [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match=r"no samples with y=0, z=2: FPR of group 2 is undefined"):
        equalized_odds(y, p, sensitive_features=z)
    assert equalized_odds(y, p, sensitive_features=z, kind="tpr") == 1.0


def test_groups_argument_and_group_ids_checked():
    for bad in (1, 0, -2, 2.5, True, "3"):
        with pytest.raises(ValueError, match=r"groups must be an integer ≥ 2"):
            group_rates(Y, P, sensitive_features=Z, groups=bad)  # type: ignore[arg-type]
    assert group_ids(np.int32(3) * np.ones(2), groups=np.int64(4)).tolist() == [3, 3]
    assert group_ids(torch.tensor([[2], [0]], dtype=torch.bfloat16)).tolist() == [2, 0]
    assert group_ids([True, False]).tolist() == [1, 0] and group_ids([0, 4.0]).dtype == np.int64
    with pytest.raises(ValueError, match=r"z must hold only 0/1 or other.*: -1$"):
        group_ids([1, -1, 1])
    with pytest.raises(ValueError, match=r"group must hold only 0/1 or other.*'a', None$"):
        group_ids(["a", 1, None], "group")
    with pytest.raises(ValueError, match=r"z is empty"):
        group_ids([])


def test_degenerate_and_near_constant_groups_named():
    rates = lambda *sel: {str(g): {"selection_rate": s, "count": 10} for g, s in enumerate(sel)}  # noqa: E731
    groups = rates(0.5, 0.995, 0.97, 0.004, 0.5)
    assert degenerate_groups(groups) == [1, 3] and near_constant_groups(groups) == [2]
    assert is_degenerate(groups) and not is_near_constant(groups)
    groups = rates(0.5, 0.96, 0.3)
    assert degenerate_groups(groups) == [] and near_constant_groups(groups) == [1]
    assert is_near_constant(groups) and not is_degenerate(groups)
    # nan with samples is degenerate; an absent group (count 0) is ignored; no count: nan is degenerate
    assert degenerate_groups({0: {"selection_rate": math.nan, "count": 4}, 1: {"selection_rate": 0.5}}) == [0]
    assert degenerate_groups({0: {"selection_rate": math.nan, "count": 0}, 1: {"selection_rate": 0.5}}) == []
    assert degenerate_groups({0: {"selection_rate": math.nan}, 1: {"selection_rate": 0.5}}) == [0]


@pytest.mark.parametrize("k", [3, 4, 5])
def test_accuracy_change_k_groups_matches_fairlearn_metric_frames(k):
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(30 + k)
    for _ in range(20):
        n = int(rng.integers(40, 300))
        y, z = rng.integers(0, 2, n), np.r_[np.arange(k), rng.integers(0, k, n - k)]
        dense_pred, sparse_pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
        frames = [fl.MetricFrame(metrics=accuracy_score, y_true=y, y_pred=p, sensitive_features=z)
                  for p in (dense_pred, sparse_pred)]
        dense, sparse = (fairness_report(y, p, sensitive_features=z) for p in (dense_pred, sparse_pred))
        got = accuracy_change(sparse["groups"], dense["groups"], sparse["acc"], dense["acc"])
        change = frames[1].by_group - frames[0].by_group
        assert got["group_acc_change"] == pytest.approx({int(g): v for g, v in change.items()}, abs=1e-12)
        assert got["acc_change_std"] == pytest.approx(float(np.std(change.to_numpy())), abs=1e-12)
        overall = frames[1].overall - frames[0].overall
        assert got["max_excess_gap"] == pytest.approx(float((overall - change).max()), abs=1e-12)
        # a JSON round trip (str keys) gives the same
        back = json.loads(json.dumps([sparse["groups"], dense["groups"]]))
        assert accuracy_change(*back, sparse["acc"], dense["acc"]) == got


def test_accuracy_change_ignores_absent_groups():
    y = [1, 0, 1, 0, 1, 1, 0, 0]
    z = [0, 0, 0, 2, 2, 2, 2, 0]  # group 1 absent
    dense, sparse = (fairness_report(y, p, sensitive_features=z)
                     for p in ([1, 0, 1, 0, 1, 1, 0, 0], [1, 1, 1, 0, 0, 1, 0, 0]))
    got = accuracy_change(sparse["groups"], dense["groups"], sparse["acc"], dense["acc"])
    assert list(got["group_acc_change"]) == [0, 1, 2] and math.isnan(got["group_acc_change"][1])
    assert got["group_acc_change"][0] == pytest.approx(-0.25) and got["group_acc_change"][2] == pytest.approx(-0.25)
    assert got["acc_change_std"] == pytest.approx(0.0) and got["max_excess_gap"] == pytest.approx(0.0)
    nan_only = {0: {"accuracy": math.nan}}
    with pytest.raises(ValueError, match="every group is absent"):
        accuracy_change(nan_only, nan_only, 1.0, 1.0)


def test_evaluate_k_groups():
    batches = _batches()
    extra = torch.tensor([[2.0, 3.0], [1.5, 1.0], [0.0, 1.0], [0.5, 1.0], [1.0, 1.0]])  # logits -1, .5, -1, -.5, 0
    y3 = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0])
    batches.append((extra, y3, torch.full((5,), 2)))
    # ŷ = logit > 0 = 0 1 0 0 0
    preds = P + [0, 1, 0, 0, 0]
    rep = evaluate(_Net(), batches)
    expected = fairness_report(Y3, preds, sensitive_features=Z3)
    assert {k: v for k, v in rep.items() if k != "loss"} == expected and list(rep["groups"]) == [0, 1, 2]
    with pytest.warns(RuntimeWarning, match=r"\[3\] of groups=4"):
        rep4 = evaluate(_Net(), batches, groups=4)
    assert list(rep4["groups"]) == [0, 1, 2, 3] and rep4["di"] == rep["di"]
    with pytest.raises(ValueError, match=r"z must hold only 0/1 values"):
        evaluate(_Net(), batches, groups=2)


def test_majority_rate_and_at_chance_hand_computed():
    from fapkit.fairness.metrics import at_chance, majority_rate

    y = np.array([1] * 60 + [0] * 40)
    z = np.array([0, 1] * 50)
    rates = group_rates(y, np.zeros(100, dtype=int), sensitive_features=z)
    assert majority_rate(rates) == (0.6, 100)
    # 2 standard errors of a 0.6 rate on 100 samples: 2·√(0.24 / 100) = 0.098, so the line is at 0.698
    assert at_chance(0.69, rates) and not at_chance(0.70, rates)
    assert at_chance(0.4, rates)  # below the majority rate is at chance too
