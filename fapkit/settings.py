"""What a run is, as typed data: the run, its data and its adversary, each one frozen dataclass.

This module imports nothing else of the kit but `fapkit.training.schedule`'s and `fapkit.checks`' leaves, so
that the registry (which checks a method's cache-key fields against `RunConfig`), the training
loop (which carries `AdversaryConfig` as it is) and the configuration layer (presets, validation)
all read the one definition here. Every `Literal` kind of setting is defined here once; the allowed
values a validation message lists are read from it (`allowed`).
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .checks import check_finite, check_type
from .training.schedule import LrSchedule

StepKind = Literal["ce", "faprune", "debias"]        # the training step a stage takes (`fapkit.training.loop.STEPS`)
MaskKind = Literal["none", "random", "magnitude", "scores", "importance"]  # importance: FairGRAPE's own
EpochBudget = Literal["pretrain", "method", "scratch"]
Init = Literal["pretrained", "random"]
Scope = Literal["layer", "global"]
Structure = Literal["weight", "channel"]             # what a mask removes: single weights, or whole output channels
GeneratorForm = Literal["paper", "confusion"]        # L_G = CE − λ·L_D, or CE + λ·(confusion of the heads)
WarmupRule = Literal["fixed", "plateau", "informed"]
Budget = Literal["fixed", "patience", "auto"]        # a stage's length: its epoch count, `fapkit.training.budget`'s rule,
# or "auto": fixed on the preset's own architecture and dataset, patience elsewhere (`fapkit.config.resolve_budget`)
DiscInput = Literal["prob", "logit"]                 # what the heads read: σ(logit) (the paper) or the standardised logit


def allowed(kind: Any) -> tuple[str, ...]:
    """The values of a `Literal` kind, e.g. ``allowed(Scope) == ("layer", "global")``."""
    return get_args(kind)


_UNSET = object()


@dataclass(frozen=True)
class Rule:
    """What a setting's field declares besides its type and default: its bounds and which cache keys read it.

    One field is one setting (``patience: int = setting(2, low=1)``): `check_settings` checks a value
    against the field's annotation (its type; ``X | None``: None allowed; a `Literal`: its values) and
    these bounds, `nullable_settings` reads None's meaning from the annotation, `key_settings` the keys,
    and the command line (`fapkit.cli`) the annotation and `help` (or the comment on the field's line).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False             # `low` itself is refused
    high_open: bool = False
    symbol: str = ""                   # the paper's name, shown beside the field's in the message ("λ")
    what: str = ""                     # what the value is, in the message ("a fraction of the stage's steps")
    why: str = ""                      # a note after the bounds, in parentheses
    none_means: str = ""               # a nullable setting: what None stands for, in the message
    key: Literal["every", "root"] | None = None  # read by every stage's cache key, or by every root stage's
    key_omits: Any = _UNSET            # left out of keys at this value (added to keys in use: older keys stay valid)
    help: str = ""                     # what the setting does (the command line's help); else the field's comment


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **rule: Any) -> Any:
    """A settings field whose check and cache-key membership are its `Rule` (keyword arguments)."""
    return field(default=default, default_factory=default_factory, metadata={"rule": Rule(**rule)})


def check_settings(section: Any) -> None:
    """Raise a ValueError/TypeError naming the first field of `section` whose value its annotation or `Rule` refuses."""
    hints = get_type_hints(type(section))
    for f in dataclasses.fields(section):
        if "rule" in f.metadata:
            _check_value(f.name, getattr(section, f.name), hints[f.name], f.metadata["rule"])


def _check_value(name: str, value: Any, hint: Any, rule: Rule) -> None:
    options = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    kinds = tuple(k for k in options if k is not type(None))
    if value is None:
        if len(kinds) < len(options):
            return
        raise TypeError(f"{name} must be {' or '.join(getattr(k, '__name__', str(k)) for k in kinds)}, got None")
    kind = kinds[0]
    if get_origin(kind) is Literal:
        if value not in get_args(kind):
            raise ValueError(f"{name} must be {rule.what or 'one of ' + ', '.join(map(repr, get_args(kind)))}, "
                             f"got {value!r}")
        return
    if kind is float:
        check_type(name, value, (int, float))
        check_finite(name, value)
    elif kind in (int, bool, str):
        check_type(name, value, kind)
    if rule.low is None and rule.high is None:
        return
    below = rule.low is not None and (value <= rule.low if rule.low_open else value < rule.low)
    above = rule.high is not None and (value >= rule.high if rule.high_open else value > rule.high)
    if below or above:
        text = " ".join(t for t in (rule.what, _bounds(rule)) if t)
        text += f" or None ({rule.none_means})" if rule.none_means else ""
        text += f" ({rule.why})" if rule.why else ""
        shown = f"{name} ({rule.symbol})" if rule.symbol else name
        raise ValueError(f"{shown} must be {text}, got {value!r}")


def _bounds(rule: Rule) -> str:
    def num(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)
    if rule.low is not None and rule.high is not None:
        return f"in {'(' if rule.low_open else '['}{num(rule.low)}, {num(rule.high)}{')' if rule.high_open else ']'}"
    if rule.low is not None:
        return f"{'>' if rule.low_open else '>='} {num(rule.low)}"
    return f"{'<' if rule.high_open else '<='} {num(rule.high)}"  # type: ignore[arg-type]


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, which attributes, and at what size. ``n_*`` = None keeps the dataset's own split sizes.

    ``sensitive`` is one attribute name, or a tuple of names: their intersection, one group per
    observed combination of values (a list is stored as a tuple, a one-name list as the name).
    ``labels``, ``image_column``, ``positive`` and ``split_fractions`` describe an image folder
    (dataset ``"folder"``; ``positive`` and ``split_fractions`` also UTKFace, ``positive`` FairFace);
    see `fapkit.data.folder.FolderDataset`. ``min_group_size`` refuses a split in which a sensitive
    group has fewer images (naming the groups), for every dataset.
    """

    name: str = "synth"
    target: str = "Attractive"
    sensitive: str | tuple[str, ...] = "Male"
    size: int = setting(32)
    root: str | None = setting(None)
    n_train: int | None = setting(None, low=1, none_means="the dataset's own")
    n_valid: int | None = setting(None, low=1, none_means="the dataset's own")
    n_test: int | None = setting(None, low=1, none_means="the dataset's own")
    n_monitor: int | None = setting(None, low=1, none_means="all",
                                    help="per-epoch validation uses the first n_monitor valid images (None: all)")
    correlation: float | None = setting(None, low=0, high=1, none_means="the generator's",
                                        help="synth only: train-split target/sensitive correlation")
    label_noise: float = setting(0.0, low=0, high=0.5, high_open=True)  # synth only
    data_seed: int = setting(0)        # synth: generator seed; LFW, folder, UTKFace, FairFace: split seed
    labels: str | None = None          # folder: the label CSV (None: root/labels.csv)
    image_column: str = "file"         # folder: the CSV column holding image paths relative to root
    positive: str | None = None        # folder/UTKFace/FairFace: the target value coded 1 (None: the larger)
    split_fractions: tuple[float, float, float] | None = None  # folder/UTKFace: train/valid/test (None: 0.7/0.15/0.15)
    min_group_size: int = 1            # images every sensitive group needs in every split (0: no check)

    def __post_init__(self) -> None:
        # lists (from JSON, a notebook parameter, the CLI) become tuples, so equal settings hash alike;
        # "Male|Young" is ("Male", "Young") too, except for a folder, whose column names may hold a "|"
        sensitive = self.sensitive
        if isinstance(sensitive, str) and "|" in sensitive and self.name != "folder":
            sensitive = sensitive.split("|")
        if isinstance(sensitive, (list, tuple)):
            value = tuple(sensitive)
            object.__setattr__(self, "sensitive", value[0] if len(value) == 1 else value)
        if isinstance(self.split_fractions, list):
            object.__setattr__(self, "split_fractions", tuple(self.split_fractions))


_WARMUP_RULES = ("'fixed' (exactly disc_warmup passes), 'plateau' (at most disc_warmup passes, until the held-out "
                  "advantage stops rising) or 'informed' (at most disc_warmup passes, until it has reached warmup_share "
                  "of the predictions' information about z and stopped rising)")


@dataclass(frozen=True)
class AdversaryConfig:
    """The discriminator game of FAPrune and Adversarial Debiasing, read whole by their cache keys.

    A new adversary setting is one field here (its check its `setting` rule): `RunConfig` nests this
    class, the training stage carries it as it is, the cache key reads it whole, and `make_config`
    accepts each field by its name (``make_config(disc_lr=1e-2)``).
    """

    alpha: float = setting(0.0, low=0, high=1)  # L_D = α·L_DI + (1−α)·L_DEO
    lam: float = setting(1.0, low=0, symbol="λ")   # λ: weight of the adversarial term (also the debiasing adversary weight)
    disc_lr: float = setting(1e-3, low=0, low_open=True)  # Adam, discriminator (paper: 1e-3)
    disc_hidden: int = setting(8, low=1)  # paper: one hidden layer of 8 units
    disc_steps: int = setting(1, low=1)  # discriminator steps per generator step (paper: 1)
    disc_warmup: int = setting(0, low=0, why="passes over the training set; 0: none",
                               help="passes of discriminator-only training on the starting model (paper: 0)")
    disc_warmup_rule: WarmupRule = setting(
        "fixed", what=_WARMUP_RULES, help="\"plateau\": stop once the held-out advantage stops rising; \"informed\": "
        "... and has reached warmup_share of what the predictions carry about z (`fapkit.fairness.information`)")
    disc_input: DiscInput = setting("prob")  # "logit": the heads read the logit standardised on the starting model
    disc_balance: bool = setting(False)  # L_D weighs every sensitive group alike, not every sample (paper: False)
    warmup_share: float = setting(0.5, low=0, low_open=True, high=1, why="a share of the information reference",
                                  help="the held-out advantage an informed adversary reaches, as a share of the reference")
    lam_ramp: float = setting(0.0, low=0, high=1, high_open=True, what="a fraction of the stage's steps",
                              help="fraction of the stage over which λ rises linearly from 0 (paper: 0)")
    generator_form: GeneratorForm = setting("paper")


@dataclass(frozen=True)
class FairGrapeConfig:
    """FairGRAPE's iterative pruning (Lin et al. 2022; `fapkit.methods.fairgrape`): how fast, how much fine-tuning.

    Each iteration keeps ``keep_per_iteration`` of the remaining weights (the authors: 0.9, i.e. 16
    iterations to 80 %), recomputes the groups' importance on ``importance_images`` training images
    (None: all) and fine-tunes for ``finetune_epochs``; the final retrain takes the run's ``epochs``.
    """

    keep_per_iteration: float = setting(0.9, low=0, high=1, low_open=True, high_open=True)
    finetune_epochs: int = setting(3, low=0)
    importance_images: int | None = setting(None, low=1, none_means="all")


@dataclass(frozen=True)
class CeagConfig:
    """CEAG's constrained fine-tuning (Hashemizadeh et al. 2024; `fapkit.methods.ceag`).

    Every group g may lose at most ``epsilon`` more accuracy than the model as a whole:
    ``ψ_g = (A_dense,g − A_sparse,g) − (A_dense − A_sparse) ≤ ε``, with one Lagrange multiplier per
    group, raised by ``dual_lr`` × the violation measured on each group's last ``buffer`` training
    predictions (``replay_buffer``). Defaults are the authors' UTKFace settings (ε 0.01, dual lr 1e-4,
    buffer 40).
    """

    epsilon: float = setting(0.01, low=0, symbol="CEAG's tolerance ε")
    dual_lr: float = setting(1e-4, low=0, low_open=True)
    replay_buffer: int = setting(40, low=1, why="predictions kept per group")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run. Epoch counts: `pretrain_epochs` for the dense model the
    pruning methods start from (and for Normal training itself), `epochs` for the method's own stage."""

    method: str = "faprune"
    data: DataConfig = setting(default_factory=DataConfig, key="root")
    adversary: AdversaryConfig = field(default_factory=AdversaryConfig)
    fairgrape: FairGrapeConfig = field(default_factory=FairGrapeConfig)
    ceag: CeagConfig = field(default_factory=CeagConfig)
    arch: str = setting("resnet18", key="root")
    ratio: float = setting(0.8)        # fraction of prunable weights removed (structure="channel": of channels)
    init: Init = setting("pretrained")
    scope: Scope = setting("layer")
    structure: Structure = setting("weight", key_omits="weight",
                                   help="\"channel\": prune whole output channels, exported as a narrower dense model")
    epochs: int = setting(3, low=1)
    pretrain_epochs: int = setting(4, low=1)
    batch_size: int = setting(64, low=1, key="root")
    lr: float = setting(1e-3, low=0, low_open=True)  # Adam, weights
    score_lr: float = setting(1e-2, low=0, low_open=True)  # Adam, mask scores
    masked_lr: float | None = setting(None, low=0, low_open=True,
                                      help="Adam, weights of the fixed-mask stages (LMW, Fair-LMW, Scratch); None: lr")
    schedule: LrSchedule = setting("cosine", key="every",
                                   help="weights' and scores' lr: \"cosine\" (warm-up, then to ≈ 0) or \"constant\"")
    lr_warmup: float = setting(0.05, low=0, high=1, high_open=True, what="a fraction of the stage's steps", key="every",
                               help="fraction of a stage's steps of linear lr warm-up (cosine only)")
    bn_reestimate: bool = setting(True, key="every",
                                  help="recompute BatchNorm running statistics once a stage's mask is final")
    budget: Budget = setting("fixed", key="every", help="\"patience\": every stage trains until neither its validation "
                             "loss nor its accuracy improves (`fapkit.training.budget`); \"auto\": fixed at the "
                             "preset's home, patience elsewhere (`fapkit.config.resolve_budget`)")
    patience: int = setting(2, low=1, key="every", help="the patience rule: epochs without improvement that end a "
                            "stage's main phase (then a cosine tail)")
    budget_epoch_steps: int | None = setting(
        None, low=0, why="0: the floor is the epoch count alone", key="every", key_omits=None,
        help="the patience rule's floor: the stage's epoch count, each counted as at least this many optimiser steps "
             "(None: an epoch of the preset's home split)")
    budget_ceiling: int = setting(4, low=1, key="every", help="the patience rule's ceiling, in multiples of its floor")
    budget_tail: float = setting(0.25, low=0, high=1, what="a fraction of the main phase", key="every",
                                 help="the patience rule's cosine tail, a fraction of the main phase (at least one epoch)")
    scratch_epochs: int | None = setting(None, low=1, none_means="pretrain_epochs + epochs",
                                         help="Train-from-Scratch budget; None: pretrain_epochs + epochs")
    weight_decay: float = setting(0.0)
    seed: int = setting(0, key="root")
    weights: str | None = setting(None, key="root")  # optional local dense state_dict to start from
    device: str = setting("cpu", key="root")
    preset: str = "quick"

    @property
    def alpha(self) -> float:
        """The adversary's DI/DEO mix α (`AdversaryConfig.alpha`): tables group runs by it."""
        return self.adversary.alpha

    @property
    def lam(self) -> float:
        """The adversary's weight λ (`AdversaryConfig.lam`)."""
        return self.adversary.lam

    @property
    def finetune_lr(self) -> float:
        """The learning rate a masked model's weights fine-tune with: `masked_lr`, else `lr`."""
        return self.masked_lr if self.masked_lr is not None else self.lr

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The nested sections of a RunConfig whose fields `make_config` also accepts by their own names.
SECTIONS: dict[str, type] = {"data": DataConfig, "adversary": AdversaryConfig, "fairgrape": FairGrapeConfig,
                             "ceag": CeagConfig}


def setting_names() -> dict[str, str]:
    """Every setting a user may name, mapped to its section ("run", "data", "adversary", ...)."""
    names = {f.name: "run" for f in dataclasses.fields(RunConfig) if f.name not in (*SECTIONS, "method", "preset")}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            names[f.name] = section
    return names


def setting_fields() -> dict[str, tuple[Any, str]]:
    """Every setting a user may name (`setting_names`), mapped to (its type, its field's comment).

    The comment is the one after the field in this module (``lr: float = 1e-3  # Adam, weights``):
    the command line (`fapkit.cli`) takes its help from it, so a setting documented here is
    documented there.
    """
    owners = {"run": RunConfig, **SECTIONS}
    out = {}
    for name, section in setting_names().items():
        cls = owners[section]
        rule = next((f.metadata.get("rule") for f in dataclasses.fields(cls) if f.name == name), None)
        help_text = rule.help if rule is not None and rule.help else _field_comments(cls).get(name, "")
        out[name] = (get_type_hints(cls)[name], help_text)
    return out


def _field_comments(cls: type) -> dict[str, str]:
    """``{field: the comment on its line}`` from a dataclass's source."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def _rules() -> dict[str, tuple[Rule, Any]]:
    """Every field of `RunConfig` and its sections that declares a `Rule`: (the rule, its annotation)."""
    out = {}
    for cls in (RunConfig, *SECTIONS.values()):
        hints = get_type_hints(cls)
        out.update({f.name: (f.metadata["rule"], hints[f.name]) for f in dataclasses.fields(cls) if "rule" in f.metadata})
    return out


def nullable_settings() -> tuple[str, ...]:
    """The settings whose annotation allows None: None is a value of theirs, not "keep the preset's"."""
    hints = {name: hint for cls in (RunConfig, *SECTIONS.values()) for name, hint in get_type_hints(cls).items()}
    return tuple(name for name in setting_names()
                 if get_origin(hints[name]) in (Union, UnionType) and type(None) in get_args(hints[name]))


def key_settings(key: str) -> tuple[str, ...]:
    """The `RunConfig` settings whose `Rule` puts them in every stage's key (``"every"``) or every root stage's
    (``"root"``), in field order."""
    return tuple(f.name for f in dataclasses.fields(RunConfig) if "rule" in f.metadata and f.metadata["rule"].key == key)


def key_omitted_values() -> dict[str, Any]:
    """Settings left out of a cache key at one value (added to keys in use), with that value."""
    return {name: rule.key_omits for name, (rule, _) in _rules().items() if rule.key_omits is not _UNSET}

