"""Typed run configuration, presets and the validation every entry point goes through."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from .checks import check_alpha, check_finite, check_ratio
from .data import DATASETS
from .models import ARCHITECTURES, check_arch
from .registry import method_names, spec_of
from .schedule import LR_SCHEDULES, LrSchedule

#: The paper's eight methods in its row order (`fapkit.registry` holds their specs; `register` adds more).
METHODS = method_names()
METHOD_TITLES = {name: spec_of(name).title for name in METHODS}


def method_title(method: str) -> str:
    """The paper's row name of a method (e.g. "Ours (FAPrune)"), or the name itself if unknown."""
    try:
        return spec_of(method).title
    except ValueError:
        return method


PRESETS = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, which attributes, and at what size. ``n_*`` = None keeps the dataset's own split sizes."""

    name: str = "synth"
    target: str = "Attractive"
    sensitive: str = "Male"
    size: int = 32
    root: str | None = None
    n_train: int | None = None
    n_valid: int | None = None
    n_test: int | None = None
    n_monitor: int | None = None       # per-epoch validation uses the first n_monitor valid images (None: all)
    correlation: float | None = None   # synth only: train-split target/sensitive correlation
    label_noise: float = 0.0           # synth only
    data_seed: int = 0                 # synth only: generator seed


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run. Epoch counts: `pretrain_epochs` for the dense model the
    pruning methods start from (and for Normal training itself), `epochs` for the method's own stage."""

    method: str = "faprune"
    data: DataConfig = field(default_factory=DataConfig)
    arch: str = "resnet18"
    ratio: float = 0.8                 # fraction of prunable weights removed
    alpha: float = 0.0                 # L_D = α·L_DI + (1−α)·L_DEO
    lam: float = 1.0                   # λ: weight of the adversarial term (also the debiasing adversary weight)
    init: Literal["pretrained", "random"] = "pretrained"
    scope: Literal["layer", "global"] = "layer"
    generator_form: Literal["paper", "confusion"] = "paper"
    epochs: int = 3
    pretrain_epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3                   # Adam, weights
    score_lr: float = 1e-2             # Adam, mask scores
    masked_lr: float | None = None     # Adam, weights of the fixed-mask stages (LMW, Fair-LMW, Scratch); None: lr
    disc_lr: float = 1e-3              # Adam, discriminator (paper: 1e-3)
    disc_hidden: int = 8               # paper: one hidden layer of 8 units
    disc_steps: int = 1                # discriminator steps per generator step (paper: 1)
    disc_warmup: int = 0               # passes of discriminator-only training on the starting model (paper: 0)
    disc_warmup_rule: Literal["fixed", "plateau"] = "fixed"  # "plateau": stop once held-out advantage stops rising
    lam_ramp: float = 0.0              # fraction of the stage over which λ rises linearly from 0 (paper: 0, constant)
    schedule: LrSchedule = "cosine"    # weights' and scores' lr: "cosine" (warm-up, then to ≈ 0) or "constant"
    lr_warmup: float = 0.05            # fraction of a stage's steps of linear lr warm-up (cosine only)
    bn_reestimate: bool = True         # recompute BatchNorm running statistics once a stage's mask is final
    scratch_epochs: int | None = None  # Train-from-Scratch budget; None: pretrain_epochs + epochs
    weight_decay: float = 0.0
    seed: int = 0
    weights: str | None = None         # optional local dense state_dict to start from
    device: str = "cpu"
    preset: str = "quick"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The adversary of a short schedule needs help to become informative before the generator plays
# against it (DESIGN.md §7): the paper's discriminator (Adam lr 1e-3, one step per batch, no warm-up)
# sees ~25,000 steps on CelebA; the quick preset's FAPrune stage has 141. The quick and smoke presets
# therefore warm the discriminator up on the starting model and give it a larger learning rate and
# several steps per generator step (values chosen on the validation split, see README "Presets").
# The warm-up runs until the heads' advantage on held-out batches stops rising (at most 50 passes
# over the stored predictions, which costs seconds), not for a count tuned on one dataset, and λ
# rises from 0 over the first 30 % of the game (scripts/tuning_search.py chose it for FAPrune and
# Adversarial Debiasing alike, by one rule, on search seeds; README "Presets").
_SHORT_SCHEDULE_ADVERSARY = dict(disc_lr=1e-2, disc_steps=3, disc_warmup=50, disc_warmup_rule="plateau", lam_ramp=0.3)
_PRESET_VALUES: dict[str, dict[str, Any]] = {
    # A four-layer CNN at 32×32 on ~1000 images: seconds per method; for tests and CI notebook runs.
    "smoke": dict(arch="small_cnn", epochs=2, pretrain_epochs=4, lr=1e-3, score_lr=1e-2, **_SHORT_SCHEDULE_ADVERSARY,
                  data=dict(size=32, n_train=1024, n_valid=512, n_test=512)),
    # ResNet18 at 32×32 on SynthFaces: all eight methods in minutes on a 2-core CPU. The test split is
    # large enough that DEO's standard error is ≈ 0.02; per-epoch validation reads 1,000 images, the
    # final validation (for choosing settings) all 5,000. Scratch gets the pretraining budget.
    # masked_lr 3e-3: the fixed-mask stages' weight lr, searched on validation accuracy (README "Presets").
    "quick": dict(arch="resnet18", epochs=3, pretrain_epochs=4, lr=1e-3, score_lr=1e-2, masked_lr=3e-3, scratch_epochs=4,
                  **_SHORT_SCHEDULE_ADVERSARY,
                  data=dict(size=32, n_train=3000, n_valid=5000, n_test=10000, n_monitor=1000)),
    # The paper's settings (ResNet18, Adam lr 1e-4, batch 64, 30 pretraining epochs, discriminator
    # Adam lr 1e-3 with one step per batch and no warm-up); meant for a GPU and CelebA.
    "paper": dict(arch="resnet18", epochs=10, pretrain_epochs=30, lr=1e-4, score_lr=1e-2, batch_size=64,
                  disc_lr=1e-3, disc_steps=1, disc_warmup=0, device="auto", data=dict(name="celeba", size=128)),
    # Every preset trains with the same schedule (RunConfig defaults: linear warm-up over 5 % of a
    # stage's steps, then cosine to ≈ 0, BN statistics re-estimated at the end). The paper states no
    # schedule; ``schedule="constant", bn_reestimate=False`` is its literal constant-lr reading.
}


#: Seeds a notebook averages over when its SEEDS parameter is None, per preset and kind of table:
#: "main" for tables 2–3 and figure 1 (at least 3 seeds on the quick and paper presets), "ablation"
#: for tables 4–6 and figure 3, which the quick preset runs on one seed to fit a CPU's budget.
DEFAULT_SEEDS: dict[str, dict[str, tuple[int, ...]]] = {
    "smoke": {"main": (0, 1), "ablation": (0,)},
    "quick": {"main": (0, 1, 2), "ablation": (0,)},
    "paper": {"main": (0, 1, 2), "ablation": (0, 1, 2)},
}


def default_seeds(preset: str, kind: Literal["main", "ablation"]) -> list[int]:
    """The seeds of `DEFAULT_SEEDS` for `preset` and `kind` ("main": tables 2–3; "ablation": tables 4–6)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if kind not in ("main", "ablation"):
        raise ValueError(f"kind must be 'main' or 'ablation', got {kind!r}")
    return list(DEFAULT_SEEDS[preset][kind])


def make_config(method: str = "faprune", *, preset: str = "quick", **overrides: Any) -> RunConfig:
    """A validated RunConfig: preset values, then `overrides` (data fields may be given flat, e.g. target=...)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = dict(_PRESET_VALUES[preset])
    data_values = dict(values.pop("data"))
    data_names = {f.name for f in fields(DataConfig)}
    run_names = {f.name for f in fields(RunConfig)} - {"data", "method", "preset"}
    if "dataset" in overrides:
        overrides["name"] = overrides.pop("dataset")
    for key, value in overrides.items():
        if value is None and key not in ("weights", "root", "correlation", "n_train", "n_valid", "n_test",
                                         "n_monitor", "scratch_epochs", "masked_lr"):
            continue  # None means "keep the preset's value"
        if key in data_names:
            data_values[key] = value
        elif key in run_names:
            values[key] = value
        else:
            allowed = sorted(run_names | data_names | {"dataset"})
            raise ValueError(f"unknown setting {key!r}; allowed settings: {', '.join(allowed)}")
    cfg = RunConfig(method=method, preset=preset, data=DataConfig(**data_values), **values)
    validate(cfg)
    return cfg


def _check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float, (int, float)))
    if not ok:
        wanted = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TypeError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}")


def validate(cfg: RunConfig) -> None:
    """Raise a ValueError/TypeError naming the first bad setting and what is allowed."""
    spec = spec_of(cfg.method)  # a ValueError naming the registered methods
    for name in ("ratio", "alpha", "lam", "lr", "score_lr", "disc_lr", "weight_decay", "lam_ramp", "lr_warmup"):
        _check_type(name, getattr(cfg, name), (int, float))
    for name in ("lam_ramp", "lr_warmup"):
        check_finite(name, getattr(cfg, name))
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise ValueError(f"{name} must be a fraction of the stage's steps in [0, 1), got {getattr(cfg, name)}")
    if cfg.schedule not in LR_SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(map(repr, LR_SCHEDULES))}, got {cfg.schedule!r}")
    if cfg.disc_warmup_rule not in ("fixed", "plateau"):
        raise ValueError(f"disc_warmup_rule must be 'fixed' (exactly disc_warmup passes) or 'plateau' (at most "
                         f"disc_warmup passes, until the held-out advantage stops rising), got {cfg.disc_warmup_rule!r}")
    if not isinstance(cfg.bn_reestimate, bool):
        raise TypeError(f"bn_reestimate must be bool, got {type(cfg.bn_reestimate).__name__} {cfg.bn_reestimate!r}")
    for name in ("epochs", "pretrain_epochs", "batch_size", "disc_hidden", "disc_steps", "disc_warmup", "seed"):
        _check_type(name, getattr(cfg, name), int)
    for name in ("lam", "lr", "score_lr", "disc_lr", "weight_decay"):
        check_finite(name, getattr(cfg, name))
    check_ratio(cfg.ratio)
    check_alpha(cfg.alpha)
    if cfg.lam < 0:
        raise ValueError(f"lam (λ) must be >= 0, got {cfg.lam}")
    for name in ("epochs", "pretrain_epochs", "batch_size", "disc_hidden", "disc_steps"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.disc_warmup < 0:
        raise ValueError(f"disc_warmup must be >= 0 (passes over the training set; 0: none), got {cfg.disc_warmup}")
    if cfg.scratch_epochs is not None:
        _check_type("scratch_epochs", cfg.scratch_epochs, int)
        if cfg.scratch_epochs < 1:
            raise ValueError(f"scratch_epochs must be >= 1 or None (pretrain_epochs + epochs), got {cfg.scratch_epochs}")
    if cfg.masked_lr is not None:
        _check_type("masked_lr", cfg.masked_lr, (int, float))
        check_finite("masked_lr", cfg.masked_lr)
    for name in ("lr", "score_lr", "disc_lr", "masked_lr"):
        if getattr(cfg, name) is not None and not getattr(cfg, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(cfg, name)}")
    if cfg.init not in ("pretrained", "random"):
        raise ValueError(f"init must be 'pretrained' or 'random', got {cfg.init!r}")
    if cfg.init == "random" and not spec.random_init:
        allowed = [name for name in method_names() if spec_of(name).random_init]
        raise ValueError(f"init='random' (random-init subnetwork search) applies to {' and '.join(map(repr, allowed))}, "
                         f"not {cfg.method!r}")
    if cfg.scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {cfg.scope!r}")
    if cfg.generator_form not in ("paper", "confusion"):
        raise ValueError(f"generator_form must be 'paper' or 'confusion', got {cfg.generator_form!r}")
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {cfg.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    d = cfg.data
    if d.name not in DATASETS:
        raise ValueError(f"unknown dataset {d.name!r}; choose one of {', '.join(DATASETS)}")
    _check_type("size", d.size, int)
    check_arch(cfg.arch, d.size)
    if d.target == d.sensitive:
        raise ValueError(f"target and sensitive attribute must differ, both are {d.target!r}")
    for name in ("n_train", "n_valid", "n_test", "n_monitor"):
        n = getattr(d, name)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ValueError(f"{name} must be a positive int or None, got {n!r}")
    if d.correlation is not None and not 0.0 <= d.correlation <= 1.0:
        raise ValueError(f"correlation must be in [0, 1] or None, got {d.correlation}")
    if not 0.0 <= d.label_noise < 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5), got {d.label_noise}")
    if cfg.device not in ("cpu", "cuda", "auto") and not cfg.device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {cfg.device!r}")


def with_method(cfg: RunConfig, method: str, **changes: Any) -> RunConfig:
    """The same settings for another method (used to build the stages a method starts from)."""
    return replace(cfg, method=method, **changes)
