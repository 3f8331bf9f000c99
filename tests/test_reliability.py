"""Determinism across processes, resume after a kill, non-finite losses, bad data and checkpoints."""
import json
import math
import subprocess
import sys
import textwrap
import types

import pytest
import torch
import torch.nn as nn
from killing import kill_after_first_checkpoint

import fapkit
from fapkit.data import FaceTensors, make_loader
from fapkit.records import load_torch
from fapkit.runner import _require_both_groups
from fapkit.training.loop import NonFiniteLossError

TINY = dict(preset="smoke", size=16, n_train=192, n_valid=96, n_test=96, pretrain_epochs=1, epochs=1)

_SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import torch
    import fapkit
    kw = json.loads(sys.argv[2])
    res = fapkit.run(sys.argv[1], runs_dir=sys.argv[3], **kw)
    zeros = b"".join((m.weight == 0).numpy().tobytes() for m in res.model.modules()
                     if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    print(json.dumps({"metrics": res.metrics, "mask": hashlib.sha256(zeros).hexdigest(),
                      "history": res.history}))
""")


def _run_in_process(method, settings, runs_dir):
    out = subprocess.run([sys.executable, "-c", _SCRIPT, method, json.dumps(settings), str(runs_dir)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["faprune", "lmw"])
def test_same_config_and_seed_give_identical_metrics_and_mask_in_two_processes(method, tmp_path):
    a = _run_in_process(method, TINY, tmp_path / "a")
    b = _run_in_process(method, TINY, tmp_path / "b")  # separate runs dir: nothing cached is shared
    assert a == b
    c = _run_in_process(method, {**TINY, "seed": 1}, tmp_path / "c")
    assert c["mask"] != a["mask"] or c["metrics"] != a["metrics"]  # the seed matters


def test_a_killed_run_resumes_from_its_last_epoch_and_ends_the_same(tmp_path):
    settings = {**TINY, "pretrain_epochs": 8, "n_train": 512}
    reference = _run_in_process("normal", settings, tmp_path / "reference")

    runs = tmp_path / "killed"
    ckpt, completed = kill_after_first_checkpoint([sys.executable, "-c", _SCRIPT, "normal", json.dumps(settings),
                                                   str(runs)], runs, epochs=8)

    resumed = _run_in_process("normal", settings, runs)
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["history"] == reference["history"]


class _NaNAfter(nn.Module):
    """A small model that starts returning NaN after `good` training forwards."""

    def __init__(self, good: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.fc = nn.Linear(4, 1)
        self.good, self.calls = good, 0

    def forward(self, x):
        out = self.fc(self.conv(x).mean(dim=(2, 3)))
        if self.training:
            self.calls += 1
            if self.calls > self.good:
                out = out * float("nan")
        return out


def test_non_finite_loss_stops_with_epoch_step_and_value_and_keeps_the_checkpoint(tmp_path):
    steps_per_epoch = 192 // 64
    model = _NaNAfter(good=steps_per_epoch + 1)  # epoch 1 completes, epoch 2 fails at its second step
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss nan at epoch 1, step 1"):
        fapkit.run("normal", model=model, runs_dir=tmp_path, **{**TINY, "pretrain_epochs": 3})
    (ckpt,) = tmp_path.glob("normal-*/checkpoint.pt")
    state = load_torch(ckpt)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def _loaders(y, z):
    n = len(y)
    ds = FaceTensors(torch.zeros(n, 3, 16, 16, dtype=torch.uint8), torch.tensor(y), torch.tensor(z),
                     target="t", sensitive="s", name="user")
    return make_loader(ds, 4, shuffle=False)


def test_non_binary_labels_are_refused(tmp_path):
    ok = _loaders([0, 1] * 4, [0, 0, 1, 1] * 2)
    bad = [(torch.zeros(4, 3, 16, 16), torch.tensor([0, 2, 1, 0]), torch.tensor([0, 1, 0, 1]))]
    with pytest.raises(ValueError, match=r"labels y must be binary 0/1, found \[2\]"):
        fapkit.run("normal", model=nn.Sequential(nn.Flatten(), nn.Linear(768, 1)), train=bad, valid=ok, test=ok,
                   runs_dir=tmp_path, preset="smoke", pretrain_epochs=1)
    # z may hold k group ids (issue 19), but not a fraction or a negative number
    bad_z = [(torch.zeros(4, 3, 16, 16), torch.tensor([0, 1, 1, 0]), torch.tensor([0, 0.5, 0, 1]))]
    with pytest.raises(ValueError, match=r"sensitive values z must hold only 0/1 or other non-negative integer group ids"):
        fapkit.run("normal", model=nn.Sequential(nn.Flatten(), nn.Linear(768, 1)), train=bad_z, valid=ok, test=ok,
                   runs_dir=tmp_path, preset="smoke", pretrain_epochs=1)


def test_an_evaluation_split_with_one_sensitive_group_is_measured_with_di_and_deo_undefined(tmp_path):
    train = _loaders([0, 1] * 4, [0, 0, 1, 1] * 2)
    one_group = _loaders([0, 1] * 4, [1] * 8)
    with pytest.warns(UserWarning, match=r"undefined on the test split \(.*z has only group 1"):
        res = fapkit.run("normal", model=nn.Sequential(nn.Flatten(), nn.Linear(768, 1)), train=train,
                         valid=one_group, test=one_group, runs_dir=tmp_path, preset="smoke", pretrain_epochs=1)
    assert math.isnan(res.di) and math.isnan(res.deo) and 0.0 <= res.acc <= 1.0
    assert set(res.metrics["undefined"]) >= {"di", "deo"}
    # The training split is still checked before any training: the game needs two groups.
    with pytest.raises(ValueError, match="the train split has samples of only one sensitive group"):
        _require_both_groups(types.SimpleNamespace(z=torch.ones(4)), "train")


def test_corrupt_run_record_and_checkpoint_give_clear_errors(tmp_path):
    res = fapkit.run("normal", runs_dir=tmp_path, **TINY)
    record = tmp_path / res.run_dir.split("/")[-1] / "record.json"
    record.write_text("{not json")
    with pytest.raises(ValueError, match=r"run record .*record.json is corrupt"):
        fapkit.run("normal", runs_dir=tmp_path, **TINY)
    record.unlink()
    run_dir = record.parent
    (run_dir / "model.pt").unlink()
    (run_dir / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"checkpoint .*checkpoint.pt is corrupt or unreadable"):
        fapkit.run("normal", runs_dir=tmp_path, **TINY)


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    from fapkit.models import build_model
    path = tmp_path / "w.pt"
    torch.save(build_model("small_cnn").state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit architecture resnet18"):
        fapkit.run("normal", runs_dir=tmp_path, weights=str(path), **{**TINY, "preset": "smoke"}, arch="resnet18")


def test_a_missing_dataset_folder_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        fapkit.run("normal", dataset="celeba", root=str(tmp_path / "nowhere"), runs_dir=tmp_path, preset="smoke")
