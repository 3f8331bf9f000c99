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
from typing import Any, Literal, get_args, get_type_hints

from .checks import check_alpha, check_finite, check_type
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


def check_choice(name: str, value: Any, kind: Any) -> None:
    """A ValueError naming the setting, the bad value and the allowed ones, unless `value` is one of them."""
    if value not in allowed(kind):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed(kind)))}, got {value!r}")


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
    size: int = 32
    root: str | None = None
    n_train: int | None = None
    n_valid: int | None = None
    n_test: int | None = None
    n_monitor: int | None = None       # per-epoch validation uses the first n_monitor valid images (None: all)
    correlation: float | None = None   # synth only: train-split target/sensitive correlation
    label_noise: float = 0.0           # synth only
    data_seed: int = 0                 # synth: generator seed; LFW, folder, UTKFace, FairFace: split seed
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


@dataclass(frozen=True)
class AdversaryConfig:
    """The discriminator game of FAPrune and Adversarial Debiasing, read whole by their cache keys.

    A new adversary setting is one field here (and its check in `check`): `RunConfig` nests this
    class, the training stage carries it as it is, the cache key reads it whole, and `make_config`
    accepts each field by its name (``make_config(disc_lr=1e-2)``).
    """

    alpha: float = 0.0                 # L_D = α·L_DI + (1−α)·L_DEO
    lam: float = 1.0                   # λ: weight of the adversarial term (also the debiasing adversary weight)
    disc_lr: float = 1e-3              # Adam, discriminator (paper: 1e-3)
    disc_hidden: int = 8               # paper: one hidden layer of 8 units
    disc_steps: int = 1                # discriminator steps per generator step (paper: 1)
    disc_warmup: int = 0               # passes of discriminator-only training on the starting model (paper: 0)
    disc_warmup_rule: WarmupRule = "fixed"  # "plateau": stop once the held-out advantage stops rising;
    # "informed": ... and has reached warmup_share of what the predictions carry about z (`fapkit.fairness.information`)
    disc_input: DiscInput = "prob"     # "logit": the heads read the logit standardised on the starting model
    warmup_share: float = 0.5          # the held-out advantage an informed adversary reaches, as a share of the reference
    lam_ramp: float = 0.0              # fraction of the stage over which λ rises linearly from 0 (paper: 0)
    generator_form: GeneratorForm = "paper"

    def check(self) -> None:
        """Raise a ValueError/TypeError naming the first bad setting and what is allowed."""
        for name in ("alpha", "lam", "disc_lr", "lam_ramp", "warmup_share"):
            check_type(name, getattr(self, name), (int, float))
            check_finite(name, getattr(self, name))
        for name in ("disc_hidden", "disc_steps", "disc_warmup"):
            check_type(name, getattr(self, name), int)
        check_alpha(self.alpha)
        if self.lam < 0:
            raise ValueError(f"lam (λ) must be >= 0, got {self.lam}")
        if not self.disc_lr > 0:
            raise ValueError(f"disc_lr must be > 0, got {self.disc_lr}")
        if not 0.0 <= self.lam_ramp < 1.0:
            raise ValueError(f"lam_ramp must be a fraction of the stage's steps in [0, 1), got {self.lam_ramp}")
        for name in ("disc_hidden", "disc_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.disc_warmup < 0:
            raise ValueError(f"disc_warmup must be >= 0 (passes over the training set; 0: none), got {self.disc_warmup}")
        if self.disc_warmup_rule not in allowed(WarmupRule):
            raise ValueError(f"disc_warmup_rule must be 'fixed' (exactly disc_warmup passes), 'plateau' (at most "
                             f"disc_warmup passes, until the held-out advantage stops rising) or 'informed' (at "
                             f"most disc_warmup passes, until it has reached warmup_share of the predictions' "
                             f"information about z and stopped rising), got {self.disc_warmup_rule!r}")
        check_choice("disc_input", self.disc_input, DiscInput)
        if not 0.0 < self.warmup_share <= 1.0:
            raise ValueError(f"warmup_share must be in (0, 1] (a share of the information reference), "
                             f"got {self.warmup_share}")
        check_choice("generator_form", self.generator_form, GeneratorForm)


@dataclass(frozen=True)
class FairGrapeConfig:
    """FairGRAPE's iterative pruning (Lin et al. 2022; `fapkit.methods.fairgrape`): how fast, how much fine-tuning.

    Each iteration keeps ``keep_per_iteration`` of the remaining weights (the authors: 0.9, i.e. 16
    iterations to 80 %), recomputes the groups' importance on ``importance_images`` training images
    (None: all) and fine-tunes for ``finetune_epochs``; the final retrain takes the run's ``epochs``.
    """

    keep_per_iteration: float = 0.9
    finetune_epochs: int = 3
    importance_images: int | None = None

    def check(self) -> None:
        check_type("keep_per_iteration", self.keep_per_iteration, (int, float))
        if not 0.0 < self.keep_per_iteration < 1.0:
            raise ValueError(f"keep_per_iteration must be in (0, 1), got {self.keep_per_iteration}")
        check_type("finetune_epochs", self.finetune_epochs, int)
        if self.finetune_epochs < 0:
            raise ValueError(f"finetune_epochs must be >= 0, got {self.finetune_epochs}")
        if self.importance_images is not None:
            check_type("importance_images", self.importance_images, int)
            if self.importance_images < 1:
                raise ValueError(f"importance_images must be >= 1 or None (all), got {self.importance_images}")


@dataclass(frozen=True)
class CeagConfig:
    """CEAG's constrained fine-tuning (Hashemizadeh et al. 2024; `fapkit.methods.ceag`).

    Every group g may lose at most ``epsilon`` more accuracy than the model as a whole:
    ``ψ_g = (A_dense,g − A_sparse,g) − (A_dense − A_sparse) ≤ ε``, with one Lagrange multiplier per
    group, raised by ``dual_lr`` × the violation measured on each group's last ``buffer`` training
    predictions (``replay_buffer``). Defaults are the authors' UTKFace settings (ε 0.01, dual lr 1e-4,
    buffer 40).
    """

    epsilon: float = 0.01
    dual_lr: float = 1e-4
    replay_buffer: int = 40

    def check(self) -> None:
        for name in ("epsilon", "dual_lr"):
            check_type(name, getattr(self, name), (int, float))
            check_finite(name, getattr(self, name))
        if self.epsilon < 0:
            raise ValueError(f"epsilon (CEAG's tolerance ε) must be >= 0, got {self.epsilon}")
        if not self.dual_lr > 0:
            raise ValueError(f"dual_lr must be > 0, got {self.dual_lr}")
        check_type("replay_buffer", self.replay_buffer, int)
        if self.replay_buffer < 1:
            raise ValueError(f"replay_buffer must be >= 1 (predictions kept per group), got {self.replay_buffer}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run. Epoch counts: `pretrain_epochs` for the dense model the
    pruning methods start from (and for Normal training itself), `epochs` for the method's own stage."""

    method: str = "faprune"
    data: DataConfig = field(default_factory=DataConfig)
    adversary: AdversaryConfig = field(default_factory=AdversaryConfig)
    fairgrape: FairGrapeConfig = field(default_factory=FairGrapeConfig)
    ceag: CeagConfig = field(default_factory=CeagConfig)
    arch: str = "resnet18"
    ratio: float = 0.8                 # fraction of prunable weights removed (structure="channel": of channels)
    init: Init = "pretrained"
    scope: Scope = "layer"
    structure: Structure = "weight"    # "channel": prune whole output channels, exported as a narrower dense model
    epochs: int = 3
    pretrain_epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3                   # Adam, weights
    score_lr: float = 1e-2             # Adam, mask scores
    masked_lr: float | None = None     # Adam, weights of the fixed-mask stages (LMW, Fair-LMW, Scratch); None: lr
    schedule: LrSchedule = "cosine"    # weights' and scores' lr: "cosine" (warm-up, then to ≈ 0) or "constant"
    lr_warmup: float = 0.05            # fraction of a stage's steps of linear lr warm-up (cosine only)
    bn_reestimate: bool = True         # recompute BatchNorm running statistics once a stage's mask is final
    budget: Budget = "fixed"           # "patience": every stage trains until neither its validation loss nor accuracy
    patience: int = 2                  # ... improves for this many epochs (`fapkit.training.budget`), then a cosine tail
    budget_epoch_steps: int | None = None  # ... for at least its fixed epoch count, each counted as at least this many
    # optimiser steps (None: as many as an epoch of the preset's home split takes, `fapkit.config.resolve_budget`)
    budget_ceiling: int = 4            # ... and at most this many times that floor
    budget_tail: float = 0.25          # ... the tail lasting this fraction of the epochs before it (at least one)
    scratch_epochs: int | None = None  # Train-from-Scratch budget; None: pretrain_epochs + epochs
    weight_decay: float = 0.0
    seed: int = 0
    weights: str | None = None         # optional local dense state_dict to start from
    device: str = "cpu"
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
        out[name] = (get_type_hints(cls)[name], _field_comments(cls).get(name, ""))
    return out


def _field_comments(cls: type) -> dict[str, str]:
    """``{field: the comment on its line}`` from a dataclass's source."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments
