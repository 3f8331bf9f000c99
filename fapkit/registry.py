"""The paper's methods as data: one declarative spec per method, read by the stage runner and the reports.

A method is a *stage*: it starts from a model (a seeded random init, or the trained model of its
parent stage), optionally masks it (a fixed random or magnitude mask, or learnable scores), trains
some of its parameters with one of the step kinds of `fapkit.training.loop`, and is cached under a key
over the settings it reads. Adding a method is adding one `MethodSpec` (`register`); `fapkit.run`,
`fapkit.sweep`, the cache keys, the tables' titles and the figures' colours all read it from here.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Iterator

from .settings import EpochBudget, MaskKind, RunConfig, StepKind, allowed, key_omitted_values, key_settings, setting_names

#: Settings every stage that starts from a random init reads (model, data, seed, where it runs): ``key="root"`` fields.
COMMON_FIELDS = key_settings("root")
#: Settings added to keys already in use, left out of a key at one value so that every result cached before
#: they existed keeps its key (``structure="weight"`` is what every stage did before channel pruning).
KEY_DEFAULTS = key_omitted_values()
#: How every stage trains over time (`fapkit.training.schedule`, `fapkit.training.batchnorm`): read by every
#: stage's key (``key="every"`` fields).
SCHEDULE_FIELDS = key_settings("every")


@dataclass(frozen=True)
class MethodSpec:
    """One method: where it starts, what it masks, how it trains, what its cache key reads, how it is shown.

    ``mask``: ``"none"`` (dense: weights, biases and BN train), ``"random"`` / ``"magnitude"`` (a
    fixed mask at ``ratio``; the unpruned weights and BN train, pruned weights stay exactly 0) or
    ``"scores"`` (a learnable top-k score mask over frozen weights; only the scores train, with
    ``score_lr``); the fixed-mask kinds train their weights with ``masked_lr`` (None: ``lr``).
    ``epochs``: which budget of the config it trains for (``pretrain_epochs``, ``epochs``, or
    Scratch's ``scratch_epochs``). ``key_stage``: the cache-key family when the method
    is another one's stage on a different parent (Fair-SGDP is SGDP's stage on the debiased model).
    """

    name: str
    title: str                         # the paper's row name
    color: int                         # index into seaborn's colour-blind palette (one colour per method)
    parent: str | None                 # the method whose trained model it starts from; None: a seeded random init
    key_fields: tuple[str, ...]        # the settings its cache key reads (besides its parent's key)
    mask: MaskKind = "none"
    step: StepKind = "ce"
    epochs: EpochBudget = "method"
    key_stage: str | None = None
    random_init: bool = False          # init="random" allowed: start from the random init instead of the parent
    paper: bool = False                # a row of the paper's tables 2–3 (the built-in eight)
    # A stage trainer of its own (e.g. FairGRAPE's iterative pruning): it takes a `fapkit.training.loop.StageInputs`
    # and returns (model, masker, history), and decides how the stage masks and trains (`step` stays "ce"; `mask`
    # then only names what it prunes by). None: the runner masks as `mask` says and trains with `step`.
    trainer: Callable[[Any], tuple[Any, Any, list[dict[str, Any]]]] | None = None
    # The setting that trades its fairness against accuracy (λ, CEAG's ε): `fapkit.frontier` sweeps it.
    knob: str | None = None

    @property
    def dense(self) -> bool:
        """No pruning: tables put it at a pruning ratio of 0."""
        return self.mask == "none"

    @property
    def stage(self) -> str:
        """The name its cache key is filed under."""
        return self.key_stage or self.name

    @property
    def adversarial(self) -> bool:
        """It plays the discriminator game itself (its history records the adversary's advantage)."""
        return self.step != "ce"


_SPECS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method; its parent must be registered, its kinds known and its key fields `RunConfig` settings."""
    if spec.name in _SPECS:
        raise ValueError(f"method {spec.name!r} is already registered")
    if spec.parent is not None and spec.parent not in _SPECS:
        raise ValueError(f"method {spec.name!r} starts from {spec.parent!r}, which is not registered "
                         f"(registered: {', '.join(_SPECS)})")
    for name, value, kind in (("mask", spec.mask, MaskKind), ("step", spec.step, StepKind),
                              ("epochs", spec.epochs, EpochBudget)):
        if value not in allowed(kind):
            raise ValueError(f"method {spec.name!r}: {name} must be one of {', '.join(map(repr, allowed(kind)))}, "
                             f"got {value!r}")
    _check_trainer(spec)
    if spec.knob is not None and spec.knob not in setting_names():
        raise ValueError(f"method {spec.name!r}: knob {spec.knob!r} is not a setting "
                         f"(allowed: {', '.join(sorted(setting_names()))})")
    settings = {f.name for f in fields(RunConfig)}
    unknown = [name for name in spec.key_fields if name not in settings]
    if unknown:
        raise ValueError(f"method {spec.name!r}: key fields {unknown} are not RunConfig settings "
                         f"(allowed: {', '.join(sorted(settings))})")
    spec = _with_schedule(spec)
    _SPECS[spec.name] = spec
    return spec


def _check_trainer(spec: MethodSpec) -> None:
    """Refuse a spec the runner cannot build: a trainer that is not a function, or one the runner would ignore."""
    if spec.trainer is None:
        if spec.mask == "importance":
            raise ValueError(f"method {spec.name!r}: mask 'importance' has no builder in the runner; it needs a "
                             "trainer of its own (as FairGRAPE's, fapkit.methods.fairgrape.train_stage)")
        return
    if not callable(spec.trainer):
        raise ValueError(f"method {spec.name!r}: trainer must be a function taking a StageInputs, got "
                         f"{spec.trainer!r} ({type(spec.trainer).__name__})")
    if spec.step != "ce" or spec.epochs != "method":
        raise ValueError(f"method {spec.name!r}: a method with its own trainer decides its steps and epochs itself; "
                         f"step must stay 'ce' and epochs 'method', got step={spec.step!r}, epochs={spec.epochs!r}")


def _with_schedule(spec: MethodSpec) -> MethodSpec:
    """The spec with `SCHEDULE_FIELDS` in its key (every stage trains on a schedule)."""
    missing = tuple(f for f in SCHEDULE_FIELDS if f not in spec.key_fields)
    return replace(spec, key_fields=spec.key_fields + missing)


@contextmanager
def registered(spec: MethodSpec) -> Iterator[MethodSpec]:
    """`register` for the duration of a block (experiments, tests), then remove it again."""
    register(spec)
    try:
        yield spec
    finally:
        del _SPECS[spec.name]


def spec_of(method: str) -> MethodSpec:
    """The spec of a registered method, or a ValueError naming the registered ones."""
    try:
        return _SPECS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(_SPECS)}") from None


def method_names() -> tuple[str, ...]:
    """The registered methods in registration order (the paper's eight first), read now."""
    return tuple(_SPECS)


def paper_methods() -> tuple[str, ...]:
    """The rows of the paper's tables 2–3, in its order."""
    return tuple(name for name, spec in _SPECS.items() if spec.paper)


def method_title(method: str) -> str:
    """A method's row name in tables and legends (e.g. "Ours (FAPrune)"), or the name itself if unknown."""
    spec = _SPECS.get(method)
    return spec.title if spec is not None else method


#: What the mark of `row_title` means, for the notes under tables and figures.
NOT_IN_PAPER = "† a method the paper's tables 2–3 do not have (DESIGN.md §10)"


def row_title(method: str) -> str:
    """`method_title`, marked "†" for a method that is not a row of the paper's tables 2–3 (`NOT_IN_PAPER`)."""
    spec = _SPECS.get(method)
    return method_title(method) if spec is None or spec.paper else f"{spec.title} †"


def pruning_baselines() -> tuple[str, ...]:
    """The pruning methods FAPrune is compared with, paired over seeds: SGDP, LMW and every registered
    pruning method outside the paper's eight (FairGRAPE, CEAG, a user's)."""
    others = tuple(name for name, spec in _SPECS.items() if not spec.paper and not spec.dense)
    return ("sgdp", "lmw") + others


def channel_methods() -> tuple[str, ...]:
    """The methods ``structure="channel"`` applies to: those masking by scores or magnitude in the stage runner
    itself (SGDP, LMW, Fair-SGDP, Fair-LMW, FAPrune), read now."""
    return tuple(name for name, spec in _SPECS.items()
                 if spec.mask in ("scores", "magnitude") and spec.trainer is None and "structure" in spec.key_fields)


def parent_of(stage: str, cfg: RunConfig) -> str | None:
    """The stage whose model `stage` starts from, or None for a stage that starts from a random init."""
    spec = spec_of(stage)
    if spec.random_init and cfg.init == "random":
        return None  # random-init search starts from the seeded random init, not a trained model
    return spec.parent


def depends_on_adversary(method: str) -> bool:
    """Whether the method or a stage it starts from plays the adversarial game (its result depends on α, λ)."""
    spec: MethodSpec | None = spec_of(method)
    while spec is not None:
        if spec.adversarial:
            return True
        spec = _SPECS.get(spec.parent) if spec.parent is not None else None
    return False


# The paper's eight (tables 2–3), in its row order. Colours follow its figure 1: SGDP pink, the
# debias-then-prune methods yellow/orange, FAPrune green.
_SCORES = ("ratio", "scope", "structure", "epochs", "score_lr", "init")
#: The settings a fixed-mask stage's key reads (a method with its own trainer adds its section to them).
FIXED_MASK_FIELDS = _FIXED = ("ratio", "scope", "epochs", "lr", "masked_lr", "weight_decay")
for _spec in (
    MethodSpec("normal", "Normal training", 0, None, COMMON_FIELDS + ("pretrain_epochs", "lr", "weight_decay"),
               epochs="pretrain"),
    MethodSpec("adv_debias", "Adversarial Debiasing", 9, "normal", ("epochs", "lr", "weight_decay", "adversary"),
               step="debias", knob="lam"),
    MethodSpec("scratch", "Train from Scratch", 7, None,
               COMMON_FIELDS + ("ratio", "scope", "pretrain_epochs", "epochs", "scratch_epochs", "lr", "masked_lr",
                                "weight_decay"),
               mask="random", epochs="scratch"),
    MethodSpec("sgdp", "SGDP", 6, "normal", _SCORES, mask="scores", random_init=True),
    MethodSpec("lmw", "LMW", 5, "normal", _FIXED + ("structure",), mask="magnitude"),
    MethodSpec("fair_sgdp", "Fair-SGDP", 8, "adv_debias", _SCORES, mask="scores", key_stage="sgdp"),
    MethodSpec("fair_lmw", "Fair-LMW", 1, "adv_debias", _FIXED + ("structure",), mask="magnitude", key_stage="lmw"),
    MethodSpec("faprune", "Ours (FAPrune)", 2, "normal", _SCORES + ("adversary",), mask="scores", step="faprune",
               random_init=True, knob="lam"),
):
    register(replace(_spec, paper=True))

# The fairness-aware pruning methods the paper's tables 2–3 do not have (DESIGN.md §10: FairGRAPE, CEAG) register
# themselves in their own modules of `fapkit.methods`, beside their stage trainers, after these eight.
