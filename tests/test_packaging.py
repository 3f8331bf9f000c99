"""environment.yml and pyproject.toml name the same packages; the README's commands are what CI runs."""
import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_and_pyproject_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_side = {_name(r) for r in pip_section if not r.startswith("-e")}
    assert conda_side == declared, (f"only in environment.yml: {sorted(conda_side - declared)}; "
                                    f"only in pyproject.toml: {sorted(declared - conda_side)}")
    assert any(d.startswith("python=3.11") for d in env["dependencies"] if isinstance(d, str))


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
    assert "make demo" in readme


def test_importing_the_kit_and_its_notebook_helpers_leaves_torchvision_unimported():
    """torchvision's import pulls torch._dynamo (seconds per notebook kernel): only a torchvision model needs it."""
    import subprocess
    import sys

    code = ("import sys, fapkit, fapkit.notebook, fapkit.presentation, fapkit.series; "
            "from fapkit.models import build_model; build_model('small_cnn'); "
            "assert 'torchvision' not in sys.modules, 'torchvision imported'; "
            "build_model('resnet18'); assert 'torchvision' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
