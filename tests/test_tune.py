"""`fapkit.tune`: the fairest knob value within an accuracy budget, chosen on validation (DESIGN.md §12)."""
import json
import subprocess
import sys
import warnings

import pytest
import torch
from fake_results import fake

import fapkit
from fapkit.data.tabular import TabularConfig, TabularLoader, TabularSplit, mlp, tabular_loaders
from fapkit.tuning import KNOB_GRIDS, _widening, choose, tune

_TINY = dict(preset="smoke", epochs=3, pretrain_epochs=4, ratio=0.5, seeds=[0, 1], values=[1.0, 5.0], widen=0)


def _with_valid(method, seed, val_acc, val_deo, test_deo, lam):
    r = fake(method, seed=seed, deo=test_deo, lam=lam)
    r.valid_metrics = {"acc": val_acc, "deo": val_deo, "di": 0.5}
    return r


def test_choose_takes_the_fairest_admissible_value_on_validation_and_ignores_the_test_split():
    runs = {0.3: [_with_valid("faprune", s, 0.80, 0.30, 0.01, 0.3) for s in (0, 1)],   # fair on test only
            1.0: [_with_valid("faprune", s, 0.795, 0.20, 0.40, 1.0) for s in (0, 1)],
            3.0: [_with_valid("faprune", s, 0.70, 0.05, 0.02, 3.0) for s in (0, 1)]}   # too inaccurate
    assert choose(runs, dense_val_acc=0.80, tolerance=0.01, metric="DEO") == 1.0
    assert choose(runs, dense_val_acc=0.80, tolerance=0.2, metric="DEO") == 3.0
    assert choose(runs, dense_val_acc=0.95, tolerance=0.01, metric="DEO") is None


def test_the_grid_widens_beyond_its_fairer_edge_and_towards_accuracy_when_nothing_is_admissible():
    lam = KNOB_GRIDS["lam"]
    assert _widening(lam, [0.3, 1.0, 3.0, 10.0], 10.0) == 30.0
    assert _widening(lam, [0.3, 1.0, 3.0, 10.0], 3.0) is None
    assert _widening(lam, [0.3, 1.0, 3.0, 10.0], None) == 0.1
    eps = KNOB_GRIDS["epsilon"]
    assert _widening(eps, [0.0, 0.01, 0.05], 0.0) is None  # ε = 0 is as tight as it gets
    assert _widening(eps, [0.01, 0.05], 0.01) == 0.005


def _user_problem(seed=4):
    return tabular_loaders(TabularConfig(n_train=500, n_valid=400, n_test=400, proxy=2.0, dependence=1.5, seed=seed))


def test_tune_on_a_users_mlp_and_loaders_reads_the_validation_split_only(tmp_path):
    train, valid, test = _user_problem()
    other_x, other_y, other_z = test.ds.x, 1 - test.ds.y, test.ds.z  # a test split that would choose otherwise
    flipped = TabularLoader(TabularSplit(other_x, other_y, other_z), 512, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = tune("faprune", tolerance=0.05, model=lambda s: mlp(10, seed=s), train=train, valid=valid, test=test,
                 runs_dir=tmp_path, **_TINY)
        b = tune("faprune", tolerance=0.05, model=lambda s: mlp(10, seed=s), train=train, valid=valid, test=flipped,
                 runs_dir=tmp_path, **_TINY)
    assert list(a.frontier["value"]) == [1.0, 5.0] and list(a.frontier["seeds"]) == [2, 2]
    assert a.value == b.value and a.value is not None
    assert a.frontier["val acc"].tolist() == b.frontier["val acc"].tolist()  # same runs, same validation
    assert a.frontier["acc"].tolist() != b.frontier["acc"].tolist()  # the test numbers did change
    assert len(a.dense) == 2 and all(r.method == "normal" for r in a.dense)
    assert a.chosen and all(r.config.lam == a.value for r in a.chosen)
    assert a.summary()["value"] == a.value and a.json_lines()[-1]["kind"] == "chosen"


def test_tune_shares_the_dense_model_across_knob_values(tmp_path, monkeypatch):
    import fapkit.runner as methods

    calls = []
    original = methods._train_method
    monkeypatch.setattr(methods, "_train_method", lambda m, ctx, d: calls.append(m) or original(m, ctx, d))
    train, valid, test = _user_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tune("faprune", tolerance=0.05, model=lambda s: mlp(10, seed=s), train=train, valid=valid, test=test,
             runs_dir=tmp_path, **{**_TINY, "seeds": [0]})
    assert calls.count("normal") == 1 and calls.count("faprune") == 2


def test_tune_refuses_bad_input_by_name():
    assert fapkit.tune is tune  # the function; the module is fapkit.tuning
    with pytest.raises(ValueError, match="'sgdp' has no knob"):
        tune("sgdp")
    with pytest.raises(ValueError, match="tolerance must be"):
        tune("faprune", tolerance=-0.1)
    with pytest.raises(ValueError, match="'lam' is the knob"):
        tune("faprune", lam=2.0)
    with pytest.raises(ValueError, match="pass seeds="):
        tune("faprune", seed=3)
    with pytest.raises(ValueError, match="metric must be"):
        tune("faprune", metric="EO")


def test_tune_on_the_kits_data_from_the_command_line_prints_the_frontier_and_the_choice(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fapkit", "tune", "--method", "faprune", "--tolerance", "0.05",
                          "--preset", "smoke", "--values", "1", "3", "--seeds", "0", "--widen", "0",
                          "--epochs", "1", "--pretrain-epochs", "2", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["kind"] for line in lines] == ["point", "point", "chosen"]
    assert [line["value"] for line in lines[:2]] == [1.0, 3.0]
    assert lines[-1]["method"] == "faprune" and lines[-1]["tolerance"] == 0.05
    assert lines[-1]["value"] in (1.0, 3.0, None)


def test_a_model_factory_gives_each_seed_its_own_init(tmp_path):
    train, valid, test = _user_problem()
    seen = []

    def factory(seed):
        seen.append(seed)
        return mlp(10, seed=seed)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fapkit.run("normal", preset="smoke", model=factory, train=train, valid=valid, test=test,
                       runs_dir=tmp_path, pretrain_epochs=1, seed=3)
    assert seen == [3] and isinstance(a.model, torch.nn.Module)
