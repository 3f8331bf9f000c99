"""Every method of the paper runs end to end on a tiny SynthFaces, through Python and the CLI."""
import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import fapkit
from fapkit.cli import main
from fapkit.data import SynthFaces, make_loader
from fapkit.registry import paper_methods

TINY = dict(preset="smoke", size=16, n_train=192, n_valid=96, n_test=96, pretrain_epochs=1, epochs=1)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.mark.parametrize("method", paper_methods())
def test_each_method_runs_and_reports(method, runs_dir):
    res = fapkit.run(method, runs_dir=runs_dir, **TINY)
    for key in ("acc", "di", "deo", "deo_max", "deo_mean", "deo_tpr"):
        assert key in res.metrics
    assert 0.0 <= res.acc <= 1.0
    assert set(res.metrics["groups"]) == {0, 1}
    dense = method in ("normal", "adv_debias")
    assert res.ratio == (0.0 if dense else pytest.approx(0.8, abs=0.01))
    assert len(res.history) >= 1 and "val_deo" in res.history[-1]
    # the returned model is plain (no masking machinery) and has the achieved sparsity
    weights = [m.weight for m in res.model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(res.ratio, abs=0.01)
    assert not any("score" in name or "mask" in name for name, _ in res.model.named_parameters())


def test_cached_runs_are_reused_and_give_the_same_result(runs_dir):
    first = fapkit.run("faprune", runs_dir=runs_dir, **TINY)
    again = fapkit.run("faprune", runs_dir=runs_dir, **TINY)
    assert again.run_dir == first.run_dir and again.summary()["acc"] == first.summary()["acc"]
    pretrained = [p for p in runs_dir.iterdir() if p.is_dir() and p.name.startswith("normal-")]  # not the .lock files
    assert len(pretrained) == 1  # sgdp, lmw and faprune shared one pretraining


def test_seconds_are_the_stage_own_compute_time_and_survive_the_cache(tmp_path, monkeypatch):
    import time as real_time

    import fapkit.runner as methods

    clock = {"now": 0.0}
    cost = {"normal": 100.0, "lmw": 7.0}  # fake seconds each stage's training takes
    real_fit = methods.fit

    def timed_fit(*args, desc, **kwargs):
        clock["now"] += cost[desc]
        return real_fit(*args, desc=desc, **kwargs)

    class FakeTime:
        perf_counter = staticmethod(lambda: clock["now"])
        strftime = staticmethod(real_time.strftime)

    monkeypatch.setattr(methods, "fit", timed_fit)
    monkeypatch.setattr(methods, "time", FakeTime)
    lmw = fapkit.run("lmw", runs_dir=tmp_path, **TINY)  # computes the pretraining on the way
    normal = fapkit.run("normal", runs_dir=tmp_path, **TINY)  # cached now
    assert (lmw.seconds, normal.seconds) == (7.0, 100.0)  # the parent's time is not lmw's
    record = json.loads((tmp_path / lmw.run_dir.split("/")[-1] / "record.json").read_text())
    assert record["seconds"] == 7.0
    assert fapkit.run("lmw", runs_dir=tmp_path, **TINY).seconds == 7.0  # not the cache lookup's time


def test_random_init_search(runs_dir):
    res = fapkit.run("faprune", init="random", runs_dir=runs_dir, **TINY)
    assert res.ratio == pytest.approx(0.8, abs=0.01)
    assert res.config.init == "random"


def test_user_model_and_loaders(tmp_path):
    common = dict(target="Smiling", sensitive="Male", size=16, cache_dir=tmp_path / "cache")
    loaders = [make_loader(SynthFaces(split=s, n=n, **common), 32, shuffle=s == "train")
               for s, n in (("train", 128), ("valid", 64), ("test", 64))]
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1))
    res = fapkit.run("faprune", preset="smoke", model=model, train=loaders[0], valid=loaders[1], test=loaders[2],
                     epochs=1, pretrain_epochs=1, ratio=0.5, runs_dir=tmp_path / "runs")
    assert res.ratio == pytest.approx(0.5, abs=0.02)
    assert isinstance(res.model, nn.Sequential)
    assert torch.equal(model[0].weight, model[0].weight)  # the caller's model object is not pruned in place
    assert (model[0].weight == 0).sum() == 0


def test_a_user_model_trains_on_the_same_schedule_and_gets_its_bn_reestimated(tmp_path):
    common = dict(target="Smiling", sensitive="Male", size=16, cache_dir=tmp_path / "cache")
    loaders = [make_loader(SynthFaces(split=s, n=n, **common), 32, shuffle=s == "train")
               for s, n in (("train", 128), ("valid", 64), ("test", 64))]
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 1))
    res = fapkit.run("sgdp", preset="smoke", model=model, train=loaders[0], valid=loaders[1], test=loaders[2],
                     epochs=2, pretrain_epochs=1, ratio=0.5, runs_dir=tmp_path / "runs")
    assert res.config.schedule == "cosine"
    steps = 2 * len(loaders[0])
    last = res.config.score_lr * 0.5 * (1 + math.cos(math.pi * (steps - 1 - 1) / (steps - 1)))  # 1 warm-up step
    assert res.history[-1]["lr"] == pytest.approx(last) and res.history[-1]["lr"] < 0.2 * res.config.score_lr
    assert res.history[-1]["bn_reestimated"] is True


def test_command_line_prints_one_json_object(tmp_path):
    cmd = [sys.executable, "-m", "fapkit", "run", "--method", "lmw", "--dataset", "synth", "--target", "Attractive",
           "--sensitive", "Male", "--arch", "small_cnn", "--ratio", "0.7", "--alpha", "0", "--preset", "smoke",
           "--size", "16", "--epochs", "1", "--pretrain-epochs", "1", "--seed", "0", "--runs-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert {"acc", "di", "deo", "ratio"} <= set(result) and result["ratio"] == pytest.approx(0.7, abs=0.01)
    assert any(p.name.startswith("lmw-") for p in tmp_path.iterdir())


@pytest.mark.parametrize("args, message", [
    (["--ratio", "1.2"], "pruning ratio must be in [0, 1)"),
    (["--alpha", "-0.5"], "alpha must be in [0, 1]"),
    (["--lam", "-1"], "lam (λ) must be >= 0"),
    (["--method", "magic"], "unknown method 'magic'"),
    (["--arch", "vgg"], "unknown architecture 'vgg'"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--target", "Male"], "target and sensitive attribute must differ"),
    (["--target", "Sparkly"], "Sparkly"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--batch-size", "0"], "batch_size must be >= 1"),
    (["--dataset", "celeba", "--root", "/nonexistent/celeba"], "/nonexistent/celeba"),
])
def test_command_line_errors_exit_nonzero_with_the_message_on_stderr(args, message, tmp_path, capsys):
    code = main(["run", "--preset", "smoke", "--runs-dir", str(tmp_path), *args])
    out = capsys.readouterr()
    assert code != 0
    assert message in out.err
    assert out.out == ""


def test_command_line_error_exit_status_in_a_real_process(tmp_path):
    cmd = [sys.executable, "-m", "fapkit", "run", "--ratio", "1.5", "--runs-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("fapkit: error: pruning ratio must be in [0, 1)")
    assert "Traceback" not in out.stderr and out.stdout == ""


@pytest.mark.parametrize("method", paper_methods())
def test_a_model_without_parameters_is_refused_by_name_before_any_training(method, tmp_path):
    batches = [(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1]))]
    with pytest.raises(ValueError, match=rf"the model \(Sequential\) has no parameters: '{method}' has nothing to train"):
        fapkit.run(method, preset="smoke", model=nn.Sequential(nn.Flatten()), train=batches, valid=batches,
                   test=batches, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before any stage folder was made


def test_a_pruning_method_refuses_a_model_with_nothing_to_prune(tmp_path):
    class Scale(nn.Module):  # one parameter, no Conv/Linear layer
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).sum(1) * self.w

    batches = [(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1]))]
    with pytest.raises(ValueError, match=r"no prunable Conv/Linear layer, which 'fair_lmw' masks; methods that do not "
                                         r"prune: normal, adv_debias"):
        fapkit.run("fair_lmw", preset="smoke", model=Scale(), train=batches, valid=batches, test=batches,
                   runs_dir=tmp_path)


def test_a_model_that_learnt_nothing_is_flagged_at_chance_and_warned_and_a_trained_one_is_not(tmp_path):
    import warnings

    from fapkit.data.tabular import TabularConfig, mlp, tabular_loaders

    train, valid, test = tabular_loaders(TabularConfig(n_train=600, n_valid=400, n_test=400, seed=3))

    class Mute(torch.nn.Module):  # a logit of exactly 0 whatever it learns: always predicts y = 0
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(10, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) * 0.0

    with pytest.warns(UserWarning, match=r"normal: validation accuracy 0\.\d+ is not above always predicting"):
        res = fapkit.run("normal", preset="smoke", model=lambda s: Mute(), train=train, valid=valid, test=test,
                         runs_dir=tmp_path / "a", pretrain_epochs=1)
    assert res.at_chance and res.metrics["at_chance"] and res.valid_metrics["at_chance"]
    assert fapkit.RunResult.from_record(res.to_record(), res.config).at_chance  # what the cache reads back
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fine = fapkit.run("normal", preset="smoke", model=lambda s: mlp(10, seed=s), train=train, valid=valid,
                          test=test, runs_dir=tmp_path / "b", pretrain_epochs=3)
    assert not fine.at_chance and fine.acc > 0.6
