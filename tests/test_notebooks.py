"""The notebook series: committed notebooks are clean, parameters are checked, and (slow) all seven run."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from fapkit.config import default_seeds
from fapkit.notebook import PLAN_PARAMETERS, RUN_SETTINGS, check_injected, check_parameters, setup
from fapkit.series import notebook_paths, run_series

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = ["00_data", "01_pretraining", "02_fair_pruning", "03_baselines", "04_ablations", "05_random_init_search",
            "06_fairness_aware_pruning"]


def test_series_is_the_seven_notebooks() -> None:
    assert [p.stem for p in notebook_paths(NOTEBOOKS)] == EXPECTED
    assert [p.stem for p in notebook_paths(NOTEBOOKS, only=["03", "05_random"])] == [EXPECTED[3], EXPECTED[5]]


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_clean_and_parametrised(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    assert "NB = setup(globals()" in code[1].source, "the cell after the parameters must check them"
    for c in code:
        assert c.outputs == [], f"{name}: a code cell has outputs"
        assert c.execution_count is None, f"{name}: a code cell has an execution count"
    assert "widgets" not in nb.metadata, f"{name}: widget state is saved in the notebook"
    for line in code[0].source.splitlines():
        assert line.split("#")[0].strip() == "" or "=" in line, f"{name}: non-assignment in parameters: {line}"


@pytest.mark.parametrize("name", EXPECTED)
def test_every_declared_parameter_is_used_by_its_notebook(name: str) -> None:
    # A declared but unused parameter would be accepted from papermill and silently ignored.
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    declared = [line.split("=")[0].strip() for line in code[0].source.splitlines() if "=" in line.split("#")[0]]
    rest = "\n".join(c.source for c in code[1:])
    # What fapkit.notebook.setup consumes for the notebook: the run settings it does not exclude, SEEDS, FIGURES_DIR.
    excluded = re.search(r"exclude=\(([^)]*)\)", code[1].source)
    excluded = set(re.findall(r'"(\w+)"', excluded.group(1))) if excluded else set()
    consumed = {name for name, key in RUN_SETTINGS.items() if key not in excluded} if "NB.settings" in rest else set()
    consumed |= {"SEEDS"} if "NB.seeds" in rest else set()
    # The plan parameters (and SEEDS, SCOPE) reach the notebook's runs through NB.plan (`fapkit.plans`).
    consumed |= {*PLAN_PARAMETERS, "SEEDS", "SCOPE"} if "NB.plan" in rest else set()
    consumed |= {"ARCH"} if "NB.arch" in rest else set()
    consumed |= {"FIGURES_DIR"} if "NB.figures" in rest else set()
    unused = [p for p in declared if p not in consumed and not re.search(rf"\b{p}\b", rest.replace("NB = setup", ""))]
    assert not unused, f"{name} declares parameters it never uses: {unused}"


def test_check_parameters_names_parameter_value_and_type() -> None:
    ok = check_parameters({"PRESET": "smoke", "RATIO": 1, "RATIOS": [0.8, 1], "INTERACTIVE": False, "OTHER": object()})
    assert ok["RATIO"] == 1.0 and isinstance(ok["RATIO"], float) and ok["RATIOS"] == [0.8, 1.0]
    with pytest.raises(TypeError, match=r"RATIO = '0.8' has type str; expected float"):
        check_parameters({"RATIO": "0.8"})
    with pytest.raises(TypeError, match=r"INTERACTIVE = 1 has type int; expected bool"):
        check_parameters({"INTERACTIVE": 1})
    with pytest.raises(TypeError, match=r"SEED = True has type bool; expected int"):
        check_parameters({"SEED": True})
    with pytest.raises(TypeError, match=r"ARCHS = \['resnet18', 3\] holds 3 of type int; expected a list of str"):
        check_parameters({"ARCHS": ["resnet18", 3]})
    with pytest.raises(ValueError, match="PRESET = 'fast'"):
        check_parameters({"PRESET": "fast"})
    with pytest.raises(ValueError, match="empty list"):
        check_parameters({"TARGETS": []})


def test_run_series_refuses_bad_calls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="build_dir must differ"):
        run_series("smoke", notebooks_dir=NOTEBOOKS, build_dir=NOTEBOOKS)
    with pytest.raises(ValueError, match="no notebook declares"):
        run_series("smoke", notebooks_dir=NOTEBOOKS, build_dir=tmp_path, parameters={"COLOUR": "red"})
    with pytest.raises(TypeError, match="RATIOS"):
        run_series("smoke", notebooks_dir=NOTEBOOKS, build_dir=tmp_path, parameters={"RATIOS": "0.8"})
    with pytest.raises(ValueError, match="threads"):
        run_series("smoke", notebooks_dir=NOTEBOOKS, build_dir=tmp_path, threads=0)


def test_thread_cap_is_set_for_kernels_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    from fapkit.series import _thread_env

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    with _thread_env(1):
        assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "4"


TABLES = ["data_rates", "pretraining_metrics", "pretraining_groups", "pretraining_history",
          "fair_pruning_metrics", "fair_pruning_layers", "fair_pruning_history",
          "table2_Attractive", "table3_Attractive", "direction",
          "table4_DI", "table4_DEO", "table5_DI", "table5_DEO", "table6_Attractive_DI", "table6_Attractive_DEO",
          "table1_DEO", "table1_DI", "table1_direction", "group_accuracy_change", "frontier_DI", "frontier_DEO",
          "matched_accuracy_DI", "matched_accuracy_DEO", "k_groups_DEO", "k_groups_direction"]
FIGURES = ["data_samples", "pretraining_group_rates", "pretraining_curves", "fair_pruning_group_rates",
           "fair_pruning_layers", "fair_pruning_curves", "figure1_DEO", "figure1_DI", "ratios_DI", "ratios_DEO",
           "figure3_DI", "figure3_DEO", "frontier_DI", "frontier_DEO", "k_groups_rates"]


@pytest.mark.slow
def test_series_runs_on_the_smoke_preset(tmp_path: Path) -> None:
    results, figures = tmp_path / "results", tmp_path / "figures"
    # Nothing but where files go: every setting the notebooks run comes from the smoke preset (`fapkit.plans`).
    params = {"RESULTS_DIR": str(results), "FIGURES_DIR": str(figures), "RUNS_DIR": str(tmp_path / "runs"),
              "DATA_ROOT": str(tmp_path / "data")}
    built = run_series("smoke", notebooks_dir=NOTEBOOKS, build_dir=tmp_path / "build", parameters=params)
    assert [p.stem for p in built] == EXPECTED
    cost = json.loads((results / "series_smoke_demo.json").read_text())
    assert [c["notebook"] for c in cost["notebooks"]] == EXPECTED and cost["dense_step_ms"] > 0
    assert sum(c["runs_computed"] for c in cost["notebooks"]) > 10
    for name in TABLES:
        assert (results / f"{name}.csv").is_file(), name
        assert (results / f"{name}.md").read_text().strip(), name
    for name in FIGURES:
        assert (figures / f"{name}.png").stat().st_size > 1000, name
    # Figures are displayed inline (not only saved), and the headless explorer path shows its table.
    nb02 = nbformat.read(tmp_path / "build" / "02_fair_pruning.ipynb", as_version=4)
    outputs = [o for c in nb02.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any('class="fap-acc"' in o.get("data", {}).get("text/html", "") for o in outputs)
    nb03 = nbformat.read(tmp_path / "build" / "03_baselines.ipynb", as_version=4)
    conclusion = [c for c in nb03.cells if "conclusion" in c.metadata.get("tags", [])][0]
    assert "FAPrune was fairer in" in "".join(o.get("text", "") for o in conclusion.outputs)
    nb06 = nbformat.read(tmp_path / "build" / "06_fairness_aware_pruning.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb06.cells if c.cell_type == "code" for o in c.outputs)
    assert "multipliers after each dual step" in text and "largest |retained − target| share" in text


def test_setup_refuses_injected_parameters_the_notebook_does_not_declare() -> None:
    declared = 'PRESET = "quick"\nSEED = 0  # a comment\n'
    check_injected(["import os", declared, '# Parameters\nPRESET = "smoke"\n', "setup(globals())"])
    with pytest.raises(ValueError, match=r"\['RATIO'\] are not used by this notebook and would be ignored; "
                                         r"it declares \['PRESET', 'SEED'\]"):
        check_injected([declared, "# Parameters\nRATIO = 0.5\n"])
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['RATO'\]"):
        check_injected([declared, "# Parameters\nRATO = 0.5\n"])
    check_injected([declared, "setup(globals())"])  # run by hand: nothing injected, nothing to check


def test_setup_derives_settings_and_seeds() -> None:
    params = {"PRESET": "smoke", "TARGET": "Young", "SENSITIVE": "Male", "ARCH": "small_cnn", "DATASET": "synth",
              "DATA_ROOT": None, "PROGRESS": False, "RUNS_DIR": "r", "FIGURES_DIR": "f", "SEEDS": None, "LAM": 1}
    nb = setup(params, seeds="main", exclude=("target", "progress", "runs_dir"))
    assert nb.settings == {"preset": "smoke", "dataset": "synth", "root": None, "sensitive": "Male", "arch": "small_cnn"}
    assert nb.seeds == list(default_seeds("smoke", "main")) and nb.figures == Path("f")
    assert setup({**params, "SEEDS": [4, 5]}, seeds="ablation").seeds == [4, 5]
    with pytest.raises(TypeError, match="LAM = 'x'"):
        setup({**params, "LAM": "x"})
    with pytest.raises(ValueError, match=r"exclude holds \['ratio'\]"):
        setup(params, exclude=("ratio",))


def test_papermill_run_with_an_undeclared_parameter_fails_in_the_setup_cell(tmp_path: Path) -> None:
    import papermill

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
                                            "language_info": {"name": "python"}})
    params = nbformat.v4.new_code_cell('PRESET = "quick"\nFIGURES_DIR = "figures"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("from fapkit.notebook import setup\nNB = setup(globals())\n"
                                                  "assert NB.settings == {'preset': PRESET}, NB")]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    papermill.execute_notebook(str(path), str(tmp_path / "ok.ipynb"), parameters={"PRESET": "smoke"}, progress_bar=False)
    with pytest.raises(papermill.PapermillExecutionError, match="not used by this notebook"):
        papermill.execute_notebook(str(path), str(tmp_path / "bad.ipynb"), parameters={"ALPHA": 0.5}, progress_bar=False)
