"""fapkit.sweeps: grids, the in-process and Dask paths, the per-stage lock, resuming a killed run, the CLI."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from killing import kill_after_first_checkpoint

import fapkit
from fapkit.cli import main
from fapkit.notebook import check_parameters
from fapkit.series import run_series

sweep_module = importlib.import_module("fapkit.sweeps")
ROOT = Path(__file__).resolve().parents[1]
TINY = dict(preset="smoke", size=16, n_train=192, n_valid=96, n_test=96, pretrain_epochs=1, epochs=1)


def _comparable(result: fapkit.RunResult) -> dict:
    """A result's summary as JSON, without what two trainings of the same run may differ in (time, folder)."""
    summary = json.loads(json.dumps(result.summary(), default=str))
    summary.pop("seconds"), summary.pop("run_dir")
    return summary


@contextmanager
def _one_thread():
    """torch on one thread, as in a Dask task (results can differ across thread counts), then as before."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    with sweep_module.local_cluster(2) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture
def submitted(client, monkeypatch) -> list[str]:
    """The task keys the sweep submits to `client`, in order."""
    keys: list[str] = []
    real = client.submit

    def recording(*args, key=None, **kwargs):
        keys.append(key)
        return real(*args, key=key, **kwargs)

    monkeypatch.setattr(client, "submit", recording)
    return keys


# ----------------------------------------------------------------------------- grid and refusals


def test_grid_is_the_product_of_the_list_axes_in_input_order_with_scalars_broadcast():
    specs = fapkit.grid(method=["faprune", "sgdp"], seed=[0, 1, 2], ratio=[0.8], preset="smoke")
    assert [(s["method"], s["seed"]) for s in specs] == [("faprune", 0), ("faprune", 1), ("faprune", 2),
                                                         ("sgdp", 0), ("sgdp", 1), ("sgdp", 2)]
    assert all(s["ratio"] == 0.8 and s["preset"] == "smoke" for s in specs)
    assert fapkit.grid(method="normal", seed=(3, 4)) == [{"method": "normal", "seed": 3}, {"method": "normal", "seed": 4}]
    assert fapkit.grid() == [{}]
    with pytest.raises(ValueError, match="grid axis seed is empty"):
        fapkit.grid(method="sgdp", seed=[])


@pytest.mark.parametrize("kwargs, specs, error, message", [
    (dict(workers=2, client=object()), [], ValueError, "not several"),
    (dict(workers=2, scheduler="tcp://h:1"), [], ValueError, "not several"),
    (dict(workers=0), [], ValueError, "workers must be a positive int or None, got 0"),
    ({}, [{"seed": 0}], ValueError, r"spec 0 \{'seed': 0\} has no 'method'"),
    ({}, [{"method": "sgdp", "runs_dir": "x"}], ValueError, "pass runs_dir= to sweep"),
    ({}, [{"method": "sgdp", "model": None}], ValueError, "cached stages only"),
    ({}, ["sgdp"], TypeError, "spec 0 must be a dict"),
    ({}, [{"method": "sgdp"}, {"method": "sgdp", "ratio": 1.5}], ValueError,
     r"spec 1 \{'method': 'sgdp', 'ratio': 1.5\}: pruning ratio must be in \[0, 1\)"),
])
def test_bad_sweeps_are_refused_before_anything_runs(kwargs, specs, error, message, tmp_path):
    with pytest.raises(error, match=message):
        fapkit.sweep(specs, runs_dir=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- the Dask path


def test_a_grid_on_two_workers_equals_the_serial_path_one_task_per_stage(client, submitted, tmp_path):
    specs = fapkit.grid(method=["sgdp", "faprune"], seed=[0, 1], **TINY)
    with _one_thread():
        serial = fapkit.sweep(specs, runs_dir=tmp_path / "serial")
    on_cluster = fapkit.sweep(specs, client=client, runs_dir=tmp_path / "dask")

    assert [(r.method, r.config.seed) for r in on_cluster] == [("sgdp", 0), ("sgdp", 1), ("faprune", 0), ("faprune", 1)]
    assert [_comparable(r) for r in on_cluster] == [_comparable(r) for r in serial]
    assert [Path(r.run_dir).name for r in on_cluster] == [Path(r.run_dir).name for r in serial]
    assert all(r.model is None for r in [*serial, *on_cluster])
    # Each seed's dense model is one task, shared by its SGDP and FAPrune runs.
    assert len(set(submitted)) == len(submitted) == 6
    assert sorted(key.split("-")[0] for key in submitted) == ["faprune"] * 2 + ["normal"] * 2 + ["sgdp"] * 2


def test_a_cached_parent_submits_no_task_and_equal_keys_run_once(client, submitted, tmp_path):
    fapkit.sweep([{"method": "normal", **TINY}], client=client, runs_dir=tmp_path)
    submitted.clear()
    # SGDP and LMW do not read α: the two α values of each are one stage key, so one task.
    specs = fapkit.grid(method=["sgdp", "lmw"], alpha=[0.0, 1.0], **TINY)
    results = fapkit.sweep(specs, client=client, runs_dir=tmp_path, models=True)
    assert [key.split("-")[0] for key in submitted] == ["sgdp", "lmw"]
    assert [(r.method, r.config.alpha) for r in results] == [("sgdp", 0.0), ("sgdp", 1.0), ("lmw", 0.0), ("lmw", 1.0)]
    assert results[0].acc == results[1].acc and results[0].run_dir == results[1].run_dir
    for r in results:  # models=True: the pruned model, loaded from runs_dir
        weights = [m.weight for m in r.model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
        assert zeros == pytest.approx(r.ratio, abs=0.01)

    submitted.clear()
    again = fapkit.sweep(specs, client=client, runs_dir=tmp_path)
    assert submitted == []  # everything cached: nothing to schedule
    assert [_comparable(r) for r in again] == [_comparable(r) for r in results]


def test_the_same_stage_in_two_runs_folders_is_two_tasks(client, submitted, tmp_path):
    # Dask deduplicates equal task keys; a key without the runs folder would hand the second sweep the
    # first one's finished task, whose record lives in the other folder.
    spec = [{"method": "normal", **TINY}]
    first = fapkit.sweep(spec, client=client, runs_dir=tmp_path / "a")
    second = fapkit.sweep(spec, client=client, runs_dir=tmp_path / "b")
    assert len(set(submitted)) == 2
    assert Path(first[0].run_dir).parent.name == "a" and Path(second[0].run_dir).parent.name == "b"
    assert (tmp_path / "b" / Path(second[0].run_dir).name / "record.json").is_file()


def test_named_grids_run_as_one_sweep_and_come_back_under_their_names(client, submitted, tmp_path):
    grids = {"dense": [{"method": "normal", **TINY}], ("pruned", 0.8): fapkit.grid(method=["sgdp", "lmw"], **TINY)}
    by_name = fapkit.sweep(grids, scheduler=client.scheduler.address, runs_dir=tmp_path)
    assert list(by_name) == ["dense", ("pruned", 0.8)]
    assert [r.method for r in by_name["dense"]] == ["normal"]
    assert [r.method for r in by_name["pruned", 0.8]] == ["sgdp", "lmw"]
    assert submitted == []  # the address opened a client of its own, not this fixture's
    serial = fapkit.sweep(grids, runs_dir=tmp_path)  # now cached: the same records, in the same places
    assert [_comparable(r) for r in serial["pruned", 0.8]] == [_comparable(r) for r in by_name["pruned", 0.8]]


def test_an_error_in_a_task_is_raised_on_the_client_naming_the_spec(client, tmp_path):
    spec = {"method": "sgdp", "dataset": "celeba", "root": str(tmp_path / "nowhere"), "preset": "smoke"}
    with pytest.raises(FileNotFoundError, match=r"spec 1 \{'method': 'sgdp', 'dataset': 'celeba'.*nowhere"):
        fapkit.sweep([{"method": "normal", **TINY}, spec], client=client, runs_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"spec 0 \{'method': 'sgdp', 'dataset': 'celeba'.*nowhere"):
        fapkit.sweep([spec], runs_dir=tmp_path)  # the in-process path names it alike


# ----------------------------------------------------------------------------- concurrency and crashes

_RACE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import fapkit
    import fapkit.runner as methods

    marks, runs, me, settings = Path(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    real_fit = methods.fit

    def counting_fit(*args, **kwargs):
        with open(marks / "trained", "a") as f:
            f.write(me + "\\n")
        time.sleep(2.0)  # hold the stage while the other process arrives
        return real_fit(*args, **kwargs)

    methods.fit = counting_fit
    (marks / f"ready-{me}").touch()
    while len(list(marks.glob("ready-*"))) < 2:  # both call fapkit.run at the same moment
        time.sleep(0.01)
    print(json.dumps(fapkit.run("normal", runs_dir=runs, **settings).summary(), default=str))
""")


def test_the_explorer_precomputes_its_grid_on_the_cluster_and_fills_in_running_points(client, submitted, tmp_path):
    from fapkit.widgets import precompute, pruning_explorer

    settings = TINY
    compute = precompute(client, ratios=[0.6, 0.8], alphas=[0.0], lams=[1.0], start=(0.8, 0.0, 1.0),
                         runs_dir=tmp_path, **settings)
    # one dense parent, then the grid's points nearest the start first
    assert [key.split("-")[0] for key in submitted] == ["normal", "faprune", "faprune"]
    assert compute.progress()[1] == 2
    box = pruning_explorer(compute, ratio=0.8, alpha=0.0, lam=1.0, compute_now=False, plot=lambda r: None)
    box.ratio_slider.value = 0.6
    if "fap-running" in box.table.value:  # still running: the table fills in when the run finishes
        deadline = time.monotonic() + 120
        while box.refreshing is None and time.monotonic() < deadline:
            time.sleep(0.1)
        box.refreshing.join(timeout=60)
    assert box.last_result is not None and box.last_result.config.ratio == 0.6
    with _one_thread():
        serial = fapkit.run("faprune", ratio=0.6, alpha=0.0, lam=1.0, runs_dir=tmp_path / "serial", **settings)
    assert _comparable(box.last_result) == _comparable(serial)
    assert compute(ratio=0.8, alpha=0.0, lam=1.0).config.ratio == 0.8  # calling it waits for that point
    assert compute.progress() == (2, 2)


def test_two_processes_reaching_one_stage_train_it_once_and_both_get_its_result(tmp_path):
    runs, marks = tmp_path / "runs", tmp_path / "marks"
    marks.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(marks), str(runs), me, json.dumps(TINY)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for me in ("a", "b")]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    assert len((marks / "trained").read_text().split()) == 1, "both processes trained the stage"
    a, b = (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert a == b  # the waiting one loaded the other's record (its seconds included)
    (run_dir,) = runs.glob("normal-*/record.json")
    assert (runs / f"{run_dir.parent.name}.lock").exists()  # the lock is a sibling of the run folder


_ONE_THREAD_RUN = textwrap.dedent("""
    import json, sys
    import torch
    import fapkit
    torch.set_num_threads(1)  # as a Dask task runs
    fapkit.run(sys.argv[1], runs_dir=sys.argv[3], **json.loads(sys.argv[2]))
""")


def test_a_run_killed_mid_stage_resumes_through_sweep_and_ends_as_an_uninterrupted_one(client, tmp_path):
    spec = {"method": "normal", **TINY, "pretrain_epochs": 8, "n_train": 512}
    settings = {k: v for k, v in spec.items() if k != "method"}
    (reference,) = fapkit.sweep([spec], client=client, runs_dir=tmp_path / "reference")

    runs = tmp_path / "killed"
    ckpt, _ = kill_after_first_checkpoint([sys.executable, "-c", _ONE_THREAD_RUN, "normal", json.dumps(settings),
                                           str(runs)], runs, epochs=8)

    (resumed,) = fapkit.sweep([spec], client=client, runs_dir=runs)  # the killed holder's lock is free again
    assert _comparable(resumed) == _comparable(reference)
    assert not (ckpt.parent / "checkpoint.pt").exists()  # superseded by the record


# ----------------------------------------------------------------------------- command line and series


def test_command_line_sweep_prints_one_json_line_per_run(tmp_path, capsys):
    args = ["sweep", "--method", "sgdp", "lmw", "--seed", "0", "1", "--ratio", "0.7", "--preset", "smoke",
            "--size", "16", "--epochs", "1", "--pretrain-epochs", "1", "--workers", "2", "--runs-dir", str(tmp_path)]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(r["method"], r["config"]["seed"]) for r in rows] == [("sgdp", 0), ("sgdp", 1), ("lmw", 0), ("lmw", 1)]
    assert all("history" not in r and "layers" not in r and r["ratio"] == pytest.approx(0.7, abs=0.01) for r in rows)
    assert len(list(tmp_path.glob("normal-*/record.json"))) == 2


def test_command_line_sweep_errors_exit_2_with_one_line_on_stderr(tmp_path, capsys):
    assert main(["sweep", "--ratio", "0.8", "1.5", "--preset", "smoke", "--runs-dir", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.strip().splitlines()) == 1
    assert out.err.startswith("fapkit: error: spec 1 ") and "pruning ratio must be in [0, 1)" in out.err


def test_series_passes_the_scheduler_address_to_the_notebooks_that_declare_it(tmp_path, monkeypatch):
    import papermill

    seen: dict[str, dict] = {}
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda src, dst, parameters, **kw: seen.__setitem__(Path(src).stem, parameters))

    @contextmanager
    def fake_cluster(workers):
        yield SimpleNamespace(scheduler_address=f"tcp://127.0.0.1:{workers}")

    monkeypatch.setattr(sweep_module, "local_cluster", fake_cluster)
    only = ["00", "03", "04", "05"]
    run_series("smoke", notebooks_dir=ROOT / "notebooks", build_dir=tmp_path, only=only, workers=3)
    assert "SCHEDULER" not in seen["00_data"]
    assert {seen[n]["SCHEDULER"] for n in ("03_baselines", "04_ablations", "05_random_init_search")} == {"tcp://127.0.0.1:3"}
    run_series("smoke", notebooks_dir=ROOT / "notebooks", build_dir=tmp_path, only=["03"], scheduler="tcp://h:8786")
    assert seen["03_baselines"]["SCHEDULER"] == "tcp://h:8786"
    seen.clear()
    run_series("smoke", notebooks_dir=ROOT / "notebooks", build_dir=tmp_path, only=["03"])
    assert "SCHEDULER" not in seen["03_baselines"]  # the notebook's own None
    with pytest.raises(ValueError, match="not both"):
        run_series("smoke", notebooks_dir=ROOT / "notebooks", build_dir=tmp_path, workers=2, scheduler="tcp://h:1")
    assert check_parameters({"SCHEDULER": None}) == {"SCHEDULER": None}
    with pytest.raises(TypeError, match="SCHEDULER = 8786 has type int; expected str or None"):
        check_parameters({"SCHEDULER": 8786})


def test_a_local_cluster_leaves_this_process_thread_settings_as_they_were(monkeypatch):
    # Kernels the series starts after the cluster inherit this environment: they must keep their threads.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    with sweep_module.local_cluster(1):
        assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "2"
