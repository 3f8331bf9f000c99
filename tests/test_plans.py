"""Series plans: one source for what the notebooks run, a demo inside its full plan, what it leaves out said."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from fapkit.config import PRESETS, default_seeds, make_config
from fapkit.frontier import frontier_grid, knob_values
from fapkit.notebook import setup
from fapkit.plans import SCOPES, SeriesPlan, left_out, plan_of
from fapkit.registry import method_names
from fapkit.series import _against_budget, _left, _previous_costs, run_series
from fapkit.training.evaluation import evaluate, inference_copy


def test_plan_of_names_bad_presets_and_scopes() -> None:
    with pytest.raises(ValueError, match=r"unknown preset 'fast'; choose one of smoke, quick, paper"):
        plan_of("fast")
    with pytest.raises(ValueError, match=r"unknown scope 'all'; choose one of demo, full"):
        plan_of("quick", "all")
    with pytest.raises(ValueError, match=r"unknown plan setting\(s\) \['ratio'\]"):
        plan_of("quick").updated(ratio=(0.5,))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_demo_runs_a_part_of_its_full_plan(preset: str) -> None:
    demo, full = plan_of(preset, "demo"), plan_of(preset, "full")
    for f in fields(SeriesPlan):
        mine, theirs = getattr(demo, f.name), getattr(full, f.name)
        if isinstance(mine, tuple) and isinstance(theirs, tuple):
            assert set(mine) <= set(theirs), f.name
    # tables 2–3 keep their paired intervals: at least two seeds, three outside the smoke preset
    assert len(demo.table_seeds) >= (2 if preset == "smoke" else 3)
    assert default_seeds(preset, "main") == list(demo.table_seeds)


@pytest.mark.parametrize("preset", PRESETS)
def test_frontier_values_hold_the_tables_defaults_so_those_points_are_cached(preset: str) -> None:
    cfg = make_config("faprune", preset=preset)
    for scope in SCOPES:
        values = plan_of(preset, scope).knob_values
        assert cfg.adversary.lam in values["lam"] and cfg.ceag.epsilon in values["epsilon"], (preset, scope)


def test_plan_architectures_are_the_presets() -> None:
    for preset in ("smoke", "quick"):
        assert plan_of(preset).archs[0] == make_config(preset=preset).arch


def test_left_out_says_what_the_quick_demo_drops_and_how_to_get_it() -> None:
    demo = plan_of("quick")
    text = left_out(demo, "quick", "ablations")
    assert "seeds [0] (full plan: [0, 1, 2])" in text and "0.7, 0.95 left out" in text
    assert "One seed: no direction is called" in text and "make reproduce" in text
    assert left_out(demo, "quick", "table1").startswith("Not run on this plan")
    assert "fairgrape, ceag left out" in left_out(demo, "quick", "tables")
    assert left_out(plan_of("quick", "full"), "quick", "tables") == "This section runs the quick preset's full plan."
    with pytest.raises(ValueError, match="unknown section 'tables4'"):
        left_out(demo, "quick", "tables4")


def test_notebook_setup_takes_the_plan_and_applies_its_parameters() -> None:
    base = {"PRESET": "smoke", "SCOPE": "demo", "ARCH": None, "SEEDS": None, "RATIOS": None, "METRICS": None}
    nb = setup(base, seeds="ablation")
    assert nb.arch == "small_cnn" and nb.settings["arch"] == "small_cnn"
    assert nb.plan == plan_of("smoke")
    nb = setup({**base, "RATIOS": [0.5], "METRICS": ["DI"], "SEEDS": [7, 8], "ARCH": "resnet18"}, seeds="ablation")
    assert nb.plan.ratios == (0.5,) and nb.plan.metrics == ("DI",) and nb.arch == "resnet18"
    assert nb.plan.table_seeds == nb.plan.k_seeds == nb.plan.table1_seeds == (7, 8) and nb.seeds == [7, 8]
    with pytest.raises(ValueError, match="SCOPE = 'everything'"):
        setup({**base, "SCOPE": "everything"})


def test_committed_notebooks_hold_no_literal_a_preset_must_override() -> None:
    for path in sorted(Path(__file__).resolve().parents[1].glob("notebooks/0*.ipynb")):
        cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
        for name in ("ARCH", "ARCHS", "RATIOS", "SEARCH_RATIOS", "METRICS", "TARGETS", "TABLE1_ARCH", "TABLE1_SIZE",
                     "TABLE1_PRETRAIN_EPOCHS"):
            for line in cell.source.splitlines():
                if line.startswith(f"{name} ="):
                    assert line.split("=", 1)[1].split("#")[0].strip() == "None", f"{path.name}: {line}"


def test_frontier_grid_takes_the_plans_values() -> None:
    specs = frontier_grid(preset="smoke", seeds=[0], methods=["faprune", "lmw"], values={"lam": (0.5, 2.0)})
    assert [s.get("lam") for s in specs] == [0.5, 2.0, None]
    assert knob_values("faprune", "quick") == plan_of("quick").knob_values["lam"]
    assert set(plan_of("quick").table_methods) < set(method_names())


def test_fused_evaluation_measures_what_the_plain_model_does() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 1))
    net.train()
    net(torch.randn(32, 3, 8, 8))  # BN statistics that are not the identity
    batches = [(torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,)), torch.arange(16) % 2) for _ in range(4)]
    plain, fused = evaluate(net, batches), evaluate(net, batches, fused=True)
    assert plain["acc"] == fused["acc"] and plain["deo"] == fused["deo"]
    assert abs(plain["loss"] - fused["loss"]) < 1e-6 and net.training  # the model's own mode is left alone
    copy_ = inference_copy(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy_.modules())  # folded into the convolution


def test_series_estimates_and_budget_lines(tmp_path: Path) -> None:
    record = tmp_path / "series.json"
    assert _previous_costs(record) == {}
    record.write_text(json.dumps({"notebooks": [{"notebook": "01_a", "dense_steps": 600}]}))
    previous = _previous_costs(record)
    assert previous == {"01_a": 600.0}
    assert "about 1 min left" in _left([Path("01_a.ipynb")], previous, 100.0)
    assert "no estimate" in _left([Path("02_b.ipynb")], previous, 100.0)
    assert _against_budget({"budget_dense_steps": 100, "dense_steps": 120}).endswith("OVER")
    assert _against_budget({"budget_dense_steps": None, "dense_steps": 120}) == ""


def test_series_prints_where_it_is_and_records_its_cost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("00_first", "01_second"):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                               "display_name": "Python 3"}})
        params = nbformat.v4.new_code_cell('PRESET = "quick"\nSCOPE = "demo"\nRESULTS_DIR = "results"')
        params.metadata["tags"] = ["parameters"]
        work = nbformat.v4.new_code_cell("import pathlib\nrun = pathlib.Path('runs') / 'x-1'\n"
                                         "run.mkdir(parents=True, exist_ok=True)\n(run / 'record.json').write_text('{}')")
        nb.cells = [params, work]
        nbformat.write(nb, folder / f"{name}.ipynb")
    run_series("smoke", notebooks_dir=folder, build_dir=tmp_path / "build")
    out = capsys.readouterr().out
    assert "[1/2] 00_first: starting, 0 runs in runs/" in out and "[2/2] 01_second: starting, 1 run in runs/" in out
    assert "[1/2] 00_first: done in" in out and "1 run computed" in out and "dense steps of" in out
    cost = json.loads((tmp_path / "results" / "series_smoke_demo.json").read_text())
    assert [c["runs_computed"] for c in cost["notebooks"]] == [1, 0] and cost["scope"] == "demo"
