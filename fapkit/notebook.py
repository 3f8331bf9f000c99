"""The first step of every notebook: check its parameters and derive what its runs share.

Each notebook's ``parameters`` cell declares, as plain literals, only the parameters that
notebook uses; papermill injects overrides in a cell right after it. The next cell calls
`setup` with the notebook's globals, which, before any training starts:

* refuses a parameter passed to papermill that the notebook does not declare (it would be
  silently ignored otherwise) or that no notebook knows (a typo), naming what is declared;
* checks every parameter's type and value (`check_parameters`), naming the parameter,
  the value and what is allowed;
* returns a `NotebookSetup`: the run settings the notebook's runs share, the seeds, the
  figures folder.

A notebook opened in JupyterLab has no injected cell; editing the parameters cell is then the
way to change a parameter, and the type checks still apply.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import plans
from .config import DATASETS, PRESETS, default_seeds, make_config
from .plans import SCOPES, SeriesPlan, plan_of

# The parameters the notebooks may declare, with the type each must have. A float parameter
# also takes an int (papermill's `-p LAM 1` arrives as int); bools are never numbers here.
# None, where allowed, is "the preset's": its architecture (ARCH), its series plan (`PLAN_PARAMETERS`), its seeds.
_NONE = type(None)
PARAMETER_TYPES: dict[str, type | tuple[type, ...]] = {
    "PRESET": str, "SCOPE": str, "SEED": int, "DATASET": str, "DATA_ROOT": (str, _NONE), "TARGET": str,
    "SENSITIVE": (str, list),  # one attribute, or a list of several: their intersection
    "ARCH": (str, _NONE), "RATIO": float, "ALPHA": float, "LAM": float, "INTERACTIVE": bool, "PROGRESS": bool,
    "RESULTS_DIR": str, "FIGURES_DIR": str, "RUNS_DIR": str, "SCHEDULER": (str, _NONE),
    "TARGETS": (list, _NONE), "RATIOS": (list, _NONE), "ARCHS": (list, _NONE), "METRICS": (list, _NONE),
    "SEARCH_RATIOS": (list, _NONE), "SEEDS": (list, _NONE), "TABLE1_ARCH": (str, _NONE), "TABLE1_SIZE": (int, _NONE),
    "TABLE1_PRETRAIN_EPOCHS": (int, _NONE), "K_SENSITIVE": (str, list),
}
# Element types of the list parameters.
LIST_ITEM_TYPES: dict[str, type] = {"TARGETS": str, "RATIOS": float, "ARCHS": str, "METRICS": str, "SEEDS": int,
                                    "SENSITIVE": str, "K_SENSITIVE": str, "SEARCH_RATIOS": float}
# Notebook parameter -> the `fapkit.plans.SeriesPlan` field it overrides when it is not None.
PLAN_PARAMETERS = {"TARGETS": "targets", "RATIOS": "ratios", "ARCHS": "archs", "SEARCH_RATIOS": "search_ratios",
                   "METRICS": "metrics", "TABLE1_ARCH": "table1_arch", "TABLE1_SIZE": "table1_size",
                   "TABLE1_PRETRAIN_EPOCHS": "table1_pretrain_epochs"}
# Notebook parameter -> keyword of `fapkit.run` / a sweep spec, for the settings runs share.
# (RATIO, ALPHA, LAM stay explicit in the notebooks' calls: they are what the paper varies.)
RUN_SETTINGS = {"PRESET": "preset", "DATASET": "dataset", "DATA_ROOT": "root", "TARGET": "target",
                "SENSITIVE": "sensitive", "ARCH": "arch", "SEED": "seed", "PROGRESS": "progress", "RUNS_DIR": "runs_dir"}
# The header papermill writes at the top of the cell it injects.
_INJECTED_HEADER = "# Parameters"


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("None" if k is type(None) else k.__name__ for k in kinds)


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def check_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate notebook parameters; return them with ints in float slots turned into floats.

    Names not in `PARAMETER_TYPES` are passed through unchecked. Raises TypeError for a
    wrong type (naming parameter, value and expected type) and ValueError for an unknown preset
    or dataset, a metric other than DI/DEO, or an empty list.
    """
    out = dict(params)
    for name, value in params.items():
        kind = PARAMETER_TYPES.get(name)
        if kind is None:
            continue
        if not _is(value, kind):
            raise TypeError(f"parameter {name} = {value!r} has type {type(value).__name__}; "
                            f"expected {_type_name(kind)}")
        if name in LIST_ITEM_TYPES and isinstance(value, list):  # SENSITIVE may also be one name
            item_kind = LIST_ITEM_TYPES[name]
            if not value:
                raise ValueError(f"parameter {name} is an empty list; give at least one {item_kind.__name__}")
            for item in value:
                if not _is(item, item_kind):
                    raise TypeError(f"parameter {name} = {value!r} holds {item!r} of type {type(item).__name__}; "
                                    f"expected a list of {item_kind.__name__}")
            if item_kind is float:
                out[name] = [float(v) for v in value]
        elif kind is float:
            out[name] = float(value)
    if "PRESET" in out and out["PRESET"] not in PRESETS:
        raise ValueError(f"parameter PRESET = {out['PRESET']!r}; choose one of {', '.join(PRESETS)}")
    if "SCOPE" in out and out["SCOPE"] not in SCOPES:
        raise ValueError(f"parameter SCOPE = {out['SCOPE']!r}; choose one of {', '.join(SCOPES)}")
    if "DATASET" in out and out["DATASET"] not in DATASETS:
        raise ValueError(f"parameter DATASET = {out['DATASET']!r}; choose one of {', '.join(DATASETS)}")
    for metric in out.get("METRICS") or []:
        if metric not in ("DI", "DEO"):
            raise ValueError(f"parameter METRICS holds {metric!r}; use 'DI' and/or 'DEO'")
    return out


def assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a cell's source, in order (``X = 1`` -> ``["X"]``)."""
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def check_injected(history: Iterable[str]) -> None:
    """Refuse parameters papermill injected that the notebook's parameters cell does not declare.

    ``history`` is the sources of the cells run so far in order (IPython's ``In``); papermill's
    injected cell starts with ``# Parameters`` and runs right after the ``parameters`` cell.
    Nothing is checked when no cell was injected (a notebook run by hand).
    """
    cells = [cell for cell in history if cell.strip()]
    for i, cell in enumerate(cells[1:], start=1):
        if not cell.lstrip().startswith(_INJECTED_HEADER):
            continue
        declared, passed = assigned_names(cells[i - 1]), assigned_names(cell)
        unknown = [name for name in passed if name not in PARAMETER_TYPES]
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; this notebook declares {declared}")
        undeclared = [name for name in passed if name not in declared]
        if undeclared:
            raise ValueError(f"parameter(s) {undeclared} are not used by this notebook and would be ignored; "
                             f"it declares {declared}")


@dataclass(frozen=True)
class NotebookSetup:
    """What a notebook's runs share, derived from its checked parameters.

    ``settings`` holds the keywords of ``fapkit.run`` that the notebook declares (preset,
    dataset, root, target, sensitive, arch, seed, progress, runs_dir), less those it sets itself;
    ``seeds`` is ``SEEDS`` or the preset's default; ``figures`` the figures folder; ``plan`` the
    preset's series plan for ``SCOPE`` (`fapkit.plans`) with the notebook's plan parameters and
    ``SEEDS`` applied; ``arch`` is ``ARCH``, or the preset's architecture when it is None.
    """

    settings: dict[str, Any]
    seeds: list[int] | None
    figures: Path | None
    plan: SeriesPlan | None = None
    arch: str | None = None
    preset: str | None = None

    def left_out(self, section: str) -> str:
        """What this notebook's plan leaves out of `section`'s full plan, and how to get it (`fapkit.plans.left_out`)."""
        return plans.left_out(self.plan, self.preset, section)


def setup(namespace: Mapping[str, Any], *, seeds: Literal["main", "ablation"] | None = None,
          exclude: Iterable[str] = ()) -> NotebookSetup:
    """Check a notebook's parameters (its globals) and derive its shared settings.

    ``seeds`` names which default applies when ``SEEDS`` is None (``"main"`` for tables 2–3,
    ``"ablation"`` for the ablations); ``exclude`` lists the run keywords the notebook sets
    itself, left out of ``settings``: those it loops over (e.g. ``"target"``), and
    ``"progress"``/``"runs_dir"`` where a sweep takes them instead of each spec.
    """
    history = namespace.get("In")
    if isinstance(history, list):
        check_injected(history)
    params = check_parameters({name: namespace[name] for name in PARAMETER_TYPES if name in namespace})
    exclude = set(exclude)
    unknown = exclude - set(RUN_SETTINGS.values())
    if unknown:
        raise ValueError(f"exclude holds {sorted(unknown)}; run settings are {sorted(RUN_SETTINGS.values())}")
    preset = params.get("PRESET", "quick")
    arch = None
    if "ARCH" in params:  # declared: None is the preset's architecture
        arch = params["ARCH"] = params["ARCH"] or make_config(preset=preset).arch
    settings = {key: params[name] for name, key in RUN_SETTINGS.items() if name in params and key not in exclude}
    chosen = None
    if seeds is not None:
        chosen = list(params.get("SEEDS") or default_seeds(preset, seeds))
    plan = plan_of(preset, params.get("SCOPE", "demo")).updated(
        **{field: params[name] for name, field in PLAN_PARAMETERS.items() if params.get(name) is not None})
    if params.get("SEEDS"):
        plan = plan.with_seeds(params["SEEDS"])
    figures = Path(params["FIGURES_DIR"]) if "FIGURES_DIR" in params else None
    return NotebookSetup(settings, chosen, figures, plan, arch, preset)
