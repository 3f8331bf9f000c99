"""The command line is generated from the settings dataclasses: every setting reachable, typed, documented."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fapkit.cli import parse
from fapkit.config import make_config
from fapkit.settings import setting_fields, setting_names


def test_run_help_lists_every_setting_with_its_fields_comment() -> None:
    out = subprocess.run([sys.executable, "-m", "fapkit", "run", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for name in setting_names():
        flag = "--dataset" if name == "name" else f"--{name.replace('_', '-')}"
        assert flag in out, flag
    assert "Adam, weights of the fixed-mask stages" in out  # masked_lr's comment in fapkit.settings
    assert setting_fields()["epsilon"][0] is float


def test_settings_parse_to_their_types_and_a_nullable_one_takes_none() -> None:
    _, given = parse(["run", "--epsilon", "0.05", "--masked-lr", "1e-3", "--disc-lr", "0.01", "--bn-reestimate",
                      "false", "--n-train", "none", "--disc-input", "logit", "--importance-images", "200"])
    assert given == {"epsilon": 0.05, "masked_lr": 1e-3, "disc_lr": 0.01, "bn_reestimate": False, "n_train": None,
                     "disc_input": "logit", "importance_images": 200}
    cfg = make_config("ceag", preset="quick", **given)
    assert cfg.ceag.epsilon == 0.05 and cfg.data.n_train is None and cfg.masked_lr == 1e-3 and not cfg.bn_reestimate
    _, axes = parse(["sweep", "--epsilon", "0", "0.01", "--disc-steps", "1", "3"])
    assert axes == {"epsilon": [0.0, 0.01], "disc_steps": [1, 3]}


@pytest.mark.parametrize("argv", [["run", "--scope", "row"], ["run", "--bn-reestimate", "maybe"],
                                  ["run", "--epochs", "two"]])
def test_a_bad_value_is_refused_by_the_parser(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(argv)
    assert argv[1] in capsys.readouterr().err
