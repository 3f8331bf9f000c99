"""What the notebook series runs on each preset, beyond one run's settings (DESIGN.md §14).

A run's settings come from its preset's `RunConfig` (`fapkit.config`). Which runs a notebook makes
(the seeds of each section, table 4's ratios, table 5's architectures, table 1's model, the
frontier's knob values, the k-group section's methods) come from here: one `SeriesPlan` per preset
and scope, so that no notebook holds a literal a preset would have to override.

Two scopes. ``"demo"`` is what ``make demo`` runs: on the quick preset, tables 2–3 over three seeds
and every other section as small as still shows it, within the budget of dense steps the README's
Speed section states. ``"full"`` is the reproduction (``make reproduce``): every table over three
seeds. Each notebook prints, where a section is shown, what its scope leaves out of the full plan
and how to get it (`left_out`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Mapping

from .registry import method_names, paper_methods

Scope = Literal["demo", "full"]
SCOPES: tuple[str, ...] = ("demo", "full")
Section = Literal["tables", "ablations", "search", "table1", "frontier", "k_groups"]

_THREE = (0, 1, 2)


@dataclass(frozen=True)
class SeriesPlan:
    """The runs of the notebook series: seeds per section and each section's grid.

    ``None`` in ``table_methods``, ``frontier_methods``: every registered method (a method
    registered later is in it).
    """

    table_seeds: tuple[int, ...] = _THREE            # tables 2–3, figure 1 and their paired intervals (03)
    table_methods: tuple[str, ...] | None = None      # the rows of tables 2–3
    targets: tuple[str, ...] = ("Attractive",)        # tables 2–3 and 6 (the paper: four and two targets)
    ablation_seeds: tuple[int, ...] = _THREE          # tables 4–5 (04)
    ratios: tuple[float, ...] = (0.7, 0.8, 0.9, 0.95)  # table 4
    archs: tuple[str, ...] = ("resnet18", "shufflenet_v2_x1_0", "mobilenet_v2")  # table 5
    search_seeds: tuple[int, ...] = _THREE            # table 6, figure 3 (05)
    search_ratios: tuple[float, ...] = (0.8, 0.9)     # the random-init search's ratios
    metrics: tuple[str, ...] = ("DEO", "DI")          # which halves the ablations and frontiers draw
    table1_seeds: tuple[int, ...] = _THREE            # table 1 (06)
    table1_arch: str = "mobilenet_v2"
    table1_size: int = 64                             # MobileNet v2 at 32 px barely learns (README "Table 1")
    table1_pretrain_epochs: int = 10
    frontier_seeds: tuple[int, ...] = _THREE
    frontier_methods: tuple[str, ...] | None = None   # None: `fapkit.frontier.default_methods`
    knob_values: Mapping[str, tuple[float, ...]] = field(
        default_factory=lambda: {"lam": (0.3, 1.0, 3.0), "epsilon": (0.0, 0.01, 0.05)})
    k_seeds: tuple[int, ...] = _THREE                 # the k-group section (06)
    k_methods: tuple[str, ...] = ("normal", "sgdp", "lmw", "fairgrape", "ceag", "faprune")
    # What the series may cost, in dense steps (wall time / the bench's dense-step time); None: no budget.
    budget_dense_steps: int | None = None

    def updated(self, **changes: Any) -> SeriesPlan:
        """The plan with `changes` (a notebook's parameters), lists as tuples; unknown names are refused."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown plan setting(s) {unknown}; a plan has {sorted(names)}")
        return replace(self, **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()})

    def with_seeds(self, seeds: list[int] | tuple[int, ...]) -> SeriesPlan:
        """Every section on `seeds` (a notebook's SEEDS parameter)."""
        return replace(self, **{name: tuple(seeds) for name in _SEED_FIELDS})


_SEED_FIELDS = tuple(f.name for f in fields(SeriesPlan) if f.name.endswith("_seeds"))

#: Per preset, the full plan and the demo's departures from it.
_FULL: dict[str, SeriesPlan] = {
    # The smallest model and grids: the whole series in seconds, every section exercised.
    # Two seeds where a paired interval is shown (tables 1–3), one elsewhere.
    "smoke": SeriesPlan(table_seeds=(0, 1), ablation_seeds=(0,), ratios=(0.8, 0.9), archs=("small_cnn",),
                        search_seeds=(0,), table1_seeds=(0, 1), table1_arch="small_cnn", table1_size=32,
                        table1_pretrain_epochs=4, frontier_seeds=(0,),
                        knob_values={"lam": (1.0, 3.0), "epsilon": (0.01, 0.05)}, k_seeds=(0,),
                        k_methods=("normal", "sgdp", "faprune")),
    "quick": SeriesPlan(),
    "paper": SeriesPlan(targets=("Attractive", "Blond_Hair", "Wavy_Hair", "Young"),
                        search_ratios=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95),
                        knob_values={"lam": (0.1, 0.3, 1.0, 3.0, 10.0), "epsilon": (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)}),
}
# The quick demo (DESIGN.md §14): tables 2–3 over three seeds are the result and take most of the
# budget; each other section runs once, on seed 0, with the grid that still shows its point (the
# ratio next to the tables', FAPrune's λ frontier, the k-group comparison with SGDP and LMW). No
# direction is called from one seed. Table 1 (MobileNet v2 at 64 px) and table 5's other
# architectures cost more than the rest of the demo together and are the reproduction's.
_DEMO_CHANGES: dict[str, dict[str, Any]] = {
    "smoke": {},
    "quick": dict(table_methods=paper_methods(), ablation_seeds=(0,), ratios=(0.8, 0.9), archs=("resnet18",),
                  search_seeds=(0,), search_ratios=(0.8,), metrics=("DEO",), table1_seeds=(),
                  frontier_seeds=(0,), frontier_methods=("normal", "sgdp", "lmw", "faprune"),
                  k_seeds=(0,), k_methods=("normal", "sgdp", "lmw", "faprune"),
                  budget_dense_steps=11_500),  # 15 min at the 78 ms dense step of the issue that set it
    "paper": {},
}


def plan_of(preset: str, scope: str = "demo") -> SeriesPlan:
    """The series plan of `preset` and `scope` ("demo": ``make demo``; "full": ``make reproduce``)."""
    if preset not in _FULL:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(_FULL)}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    full = _FULL[preset]
    return full if scope == "full" else replace(full, **_DEMO_CHANGES[preset])


#: The plan fields each section reads, for `left_out`.
_SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "tables": ("table_seeds", "table_methods", "targets"),
    "ablations": ("ablation_seeds", "ratios", "archs", "metrics"),
    "search": ("search_seeds", "search_ratios", "targets", "metrics"),
    "table1": ("table1_seeds", "table1_arch", "table1_size", "table1_pretrain_epochs", "metrics"),
    "frontier": ("frontier_seeds", "frontier_methods", "knob_values", "metrics"),
    "k_groups": ("k_seeds", "k_methods"),
}


#: How `left_out` names a plan field.
_LABELS = {"table_methods": "methods", "targets": "targets", "ratios": "table 4's ratios", "archs": "table 5's architectures",
           "search_ratios": "ratios", "metrics": "metrics", "table1_arch": "architecture", "table1_size": "image size",
           "table1_pretrain_epochs": "dense epochs", "frontier_methods": "methods", "knob_values": "knob values",
           "k_methods": "methods"}


def left_out(plan: SeriesPlan, preset: str, section: str) -> str:
    """One sentence: what `plan` runs of `section` less than the preset's full plan, and how to get the rest."""
    if section not in _SECTION_FIELDS:
        raise ValueError(f"unknown section {section!r}; choose one of {', '.join(_SECTION_FIELDS)}")
    full = plan_of(preset, "full")
    seeds_field, *others = _SECTION_FIELDS[section]
    seeds, full_seeds = getattr(plan, seeds_field), getattr(full, seeds_field)
    if not seeds:
        return (f"Not run on this plan (the {preset} preset's full plan runs it on seeds {list(full_seeds)}): "
                f"{_how(preset)}.")
    parts = [] if seeds == full_seeds else [f"seeds {list(seeds)} (full plan: {list(full_seeds)})"]
    for name in others:
        mine, theirs = getattr(plan, name), getattr(full, name)
        if mine != theirs:
            parts.append(_difference(_LABELS[name], _methods(name, mine), _methods(name, theirs)))
    if not parts:
        return f"This section runs the {preset} preset's full plan."
    one_seed = " One seed: no direction is called from it." if len(seeds) == 1 else ""
    return f"Left out here: {'; '.join(parts)}.{one_seed} The full plan: {_how(preset)}."


def _methods(name: str, value: Any) -> Any:
    """A plan value with None in a method field made the methods it stands for (read now: a later registration counts)."""
    if value is not None or not name.endswith("_methods"):
        return value
    from .frontier import default_methods  # imported here: `fapkit.frontier` reads its knob values from this module

    return default_methods() if name == "frontier_methods" else method_names()


def _how(preset: str) -> str:
    return f"`make reproduce` (`python -m fapkit.series --preset {preset} --scope full`), or `-p SCOPE full`"


def _difference(label: str, mine: Any, theirs: Any) -> str:
    """``label`` as this plan has it against the full plan: the values left out of a list, else both."""
    if isinstance(mine, tuple) and isinstance(theirs, tuple) and set(mine) <= set(theirs):
        return f"{label} {', '.join(map(str, (v for v in theirs if v not in mine)))} left out"
    if mine is None or theirs is None:
        return f"{label}: {_shown(mine)} (full plan: {_shown(theirs)})"
    return f"{label} {_shown(mine)} (full plan: {_shown(theirs)})"


def _shown(value: Any) -> str:
    if value is None:
        return "every registered method"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {list(v)}" for k, v in value.items())
    if isinstance(value, tuple):
        return str(list(value)) if value else "none"
    return str(value)
