"""Presets, `make_config` and the validation every entry point goes through.

The settings themselves are the dataclasses of `fapkit.settings` (re-exported here); a setting of a
nested section (`DataConfig`, `AdversaryConfig`) may be given by its own name, e.g.
``make_config(target="Smiling", disc_lr=1e-2)``.
"""
from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any, Literal

from .checks import check_ratio, check_type
from .data import DATASETS
from .data.base import check_min_group_size, sensitive_columns
from .data.folder import check_fractions
from .data.registry import dataset_names, dataset_spec
from .data.synth import SynthConfig
from .models import ARCHITECTURES, check_arch
from .plans import plan_of
from .registry import channel_methods, method_names, spec_of
from .settings import SECTIONS, AdversaryConfig, DataConfig, RunConfig, check_settings, nullable_settings, setting_names

__all__ = ["ARCHITECTURES", "DATASETS", "PRESETS", "AdversaryConfig", "DataConfig", "RunConfig", "default_seeds",
           "make_config", "updated", "validate"]

PRESETS = ("smoke", "quick", "paper")


# The adversary of a short schedule needs help to become informative before the generator plays
# against it (DESIGN.md §7): the paper's discriminator (Adam lr 1e-3, one step per batch, no warm-up)
# sees ~25,000 steps on CelebA; the quick preset's FAPrune stage has 141. The quick and smoke presets
# therefore warm the discriminator up on the starting model and give it a larger learning rate and
# several steps per generator step (values chosen on the validation split, see README "Presets").
# The warm-up runs until the heads' advantage on held-out batches stops rising (at most 50 passes
# over the stored predictions, which costs seconds), not for a count tuned on one dataset, and λ
# rises from 0 over the first 30 % of the game (scripts/tuning_search.py chose it for FAPrune and
# Adversarial Debiasing alike, by one rule, on search seeds; README "Presets").
# Off the benchmark (a user's MLP, a small split) the heads reading σ(logit) of a pruned start learnt
# nothing, and the plateau rule stopped a trajectory that never rose (README "The adversary off the
# benchmark", scripts/adversary_diagnosis.py): the short presets' heads read the standardised logit, and
# the warm-up runs until the held-out advantage has reached half of what the predictions carry about z
# (`fapkit.fairness.information`) and stopped rising, or 50 passes; a game that ends below is flagged.
_SHORT_SCHEDULE_ADVERSARY = dict(disc_lr=1e-2, disc_steps=3, disc_warmup=50, disc_warmup_rule="informed",
                                 disc_input="logit", warmup_share=0.5, lam_ramp=0.3)
# FairGRAPE's schedule (DESIGN.md §10). The authors' FairGRAPE keeps 0.9 per iteration (16
# iterations to 80 %) with 3 fine-tuning epochs each: 48 epochs of fine-tuning plus 16 importance passes,
# ~30× a quick-preset stage. The short presets keep 0.6 per iteration (4 iterations to 80 %: sparsity
# 0.4, 0.64, 0.784, 0.8), fine-tune one epoch each and score on the first 1,000 (smoke: 256) training
# images.
_SHORT_FAIRGRAPE = dict(keep_per_iteration=0.6, finetune_epochs=1, importance_images=1000)
# CEAG's multipliers grow by dual_lr × violation per step, so what they can reach scales with the number
# of steps: the authors' UTKFace runs take ~7,000 constrained steps at dual lr 1e-4, the quick preset's
# stage 141. The short presets raise dual_lr to 1e-2 (≈ 50× fewer steps, rounded up), nothing else.
_SHORT_CEAG = dict(dual_lr=1e-2)
_PRESET_VALUES: dict[str, dict[str, Any]] = {
    # A four-layer CNN at 32×32 on ~1000 images: seconds per method; for tests and CI notebook runs.
    "smoke": dict(arch="small_cnn", epochs=2, pretrain_epochs=4, lr=1e-3, score_lr=1e-2, **_SHORT_SCHEDULE_ADVERSARY,
                  fairgrape={**_SHORT_FAIRGRAPE, "importance_images": 256}, ceag=_SHORT_CEAG,
                  data=dict(size=32, n_train=1024, n_valid=512, n_test=512)),
    # ResNet18 at 32×32 on SynthFaces: all eight methods in minutes on a 2-core CPU. The test split is
    # large enough that DEO's standard error is ≈ 0.02; per-epoch validation reads 1,000 images, the
    # final validation (for choosing settings) all 5,000. Scratch gets the pretraining budget.
    # masked_lr 3e-3: the fixed-mask stages' weight lr, searched on validation accuracy (README "Presets").
    # budget "auto": these epoch counts on ResNet18 and SynthFaces, where they were searched; the patience
    # rule for any other architecture, dataset or a user's model (`resolve_budget`, README "Stage budgets"),
    # whose floor keeps at least the optimiser steps these epochs take at home.
    "quick": dict(arch="resnet18", epochs=3, pretrain_epochs=4, budget="auto", lr=1e-3, score_lr=1e-2, masked_lr=3e-3,
                  scratch_epochs=4,
                  **_SHORT_SCHEDULE_ADVERSARY, fairgrape=_SHORT_FAIRGRAPE, ceag=_SHORT_CEAG,
                  data=dict(size=32, n_train=3000, n_valid=5000, n_test=10000, n_monitor=1000)),
    # The paper's settings (ResNet18, Adam lr 1e-4, batch 64, 30 pretraining epochs, discriminator
    # Adam lr 1e-3 with one step per batch and no warm-up); meant for a GPU and CelebA.
    "paper": dict(arch="resnet18", epochs=10, pretrain_epochs=30, lr=1e-4, score_lr=1e-2, batch_size=64,
                  disc_lr=1e-3, disc_steps=1, disc_warmup=0, device="auto", data=dict(name="celeba", size=128)),
    # Every preset trains with the same schedule (RunConfig defaults: linear warm-up over 5 % of a
    # stage's steps, then cosine to ≈ 0, BN statistics re-estimated at the end). The paper states no
    # schedule; ``schedule="constant", bn_reestimate=False`` is its literal constant-lr reading.
}


#: Where a preset's fixed epoch counts were chosen (the learning problem: architecture, dataset, target, image
#: size, training split): its "auto" budget keeps them there. The sensitive attribute is not part of it: it
#: changes what is measured, not what the network must learn.
BUDGET_HOME: dict[str, dict[str, Any]] = {
    "quick": dict(arch="resnet18", name="synth", target="Attractive", size=32, n_train=3000)}


def resolve_budget(cfg: RunConfig, *, user: bool = False, given: bool = False) -> RunConfig:
    """`cfg` with an ``"auto"`` budget made concrete: "fixed" on its preset's `BUDGET_HOME`, else "patience".

    `user`: the run trains a user's model or data, which no preset's epoch counts were chosen for; a
    budget the preset made "fixed" for the home architecture is then "patience" too, unless the user
    set the budget (`given`).
    """
    if user and not given and _PRESET_VALUES[cfg.preset].get("budget") == "auto":
        cfg = replace(cfg, budget="auto")
    home = BUDGET_HOME.get(cfg.preset)
    if cfg.budget == "auto":
        here = {"arch": cfg.arch, **{k: getattr(cfg.data, k) for k in ("name", "target", "size", "n_train")}}
        at_home = not user and home is not None and here == home
        cfg = replace(cfg, budget="fixed" if at_home else "patience")
    if cfg.budget == "patience" and cfg.budget_epoch_steps is None:
        # the rule's floor in optimiser steps: an epoch of the split the preset's epoch counts were chosen on
        cfg = replace(cfg, budget_epoch_steps=math.ceil(home["n_train"] / cfg.batch_size) if home else 0)
    return cfg


def default_seeds(preset: str, kind: Literal["main", "ablation"]) -> list[int]:
    """The seeds a table averages over by default on `preset` (its demo plan, `fapkit.plans`).

    ``"main"``: tables 2–3 and figure 1 (at least 3 seeds on the quick and paper presets);
    ``"ablation"``: tables 4–5 (one seed in the quick demo, three in its full plan).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if kind not in ("main", "ablation"):
        raise ValueError(f"kind must be 'main' or 'ablation', got {kind!r}")
    plan = plan_of(preset)
    return list(plan.table_seeds if kind == "main" else plan.ablation_seeds)


#: Settings for which None is a value of its own (not "keep the preset's value"): those whose annotation allows it.
_NULLABLE = nullable_settings()


#: Architectures whose channel dependencies torch-pruning cannot trace, and why.
CHANNEL_UNTRACEABLE = {"shufflenet_v2_x1_0": "torch-pruning cannot trace its channel shuffle (a reshape-transpose-"
                                             "reshape of the channels; VainF/Torch-Pruning#14)"}


def make_config(method: str = "faprune", *, preset: str = "quick", **overrides: Any) -> RunConfig:
    """A validated RunConfig: preset values, then `overrides`.

    A setting of a nested section is given by its own name (``target=...``, ``disc_lr=...``) or the
    section whole (``data=DataConfig(...)``, ``adversary=AdversaryConfig(...)`` or a dict); ``dataset``
    is another name for ``name``, the data set's. None keeps the preset's value (except for settings
    whose None means something, e.g. ``weights``).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    preset_values = dict(_PRESET_VALUES[preset])
    sections: dict[str, dict[str, Any]] = {name: dict(preset_values.pop(name, {})) for name in SECTIONS}
    values: dict[str, Any] = {}
    _route(preset_values, sections, values)
    overrides = dict(overrides)
    if "dataset" in overrides:
        overrides["name"] = overrides.pop("dataset")
    for name in SECTIONS:  # a section given whole: its fields, then any given by name on top
        whole = overrides.pop(name, None)
        if whole is not None:
            sections[name].update(whole if isinstance(whole, dict) else _fields_of(whole))
    _route({k: v for k, v in overrides.items() if v is not None or k in _NULLABLE}, sections, values)
    cfg = resolve_budget(RunConfig(method=method, preset=preset, **values,
                                   **{name: cls(**sections[name]) for name, cls in SECTIONS.items()}))
    validate(cfg)
    return cfg


def updated(cfg: RunConfig, **changes: Any) -> RunConfig:
    """`cfg` with `changes` (settings by name, as `make_config` takes them), validated."""
    sections = {name: _fields_of(getattr(cfg, name)) for name in SECTIONS}
    values: dict[str, Any] = {}
    _route(changes, sections, values)
    new = replace(cfg, **values, **{name: SECTIONS[name](**sections[name]) for name in SECTIONS})
    validate(new)
    return new


def _fields_of(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in fields(section)}


def _route(settings: dict[str, Any], sections: dict[str, dict[str, Any]], values: dict[str, Any]) -> None:
    """Put each setting into its section's values (data, adversary) or the run's own; unknown names raise."""
    names = setting_names()
    for key, value in list(settings.items()):
        where = names.get(key)
        if where is None:
            allowed = sorted(set(names) | {"dataset", *SECTIONS})
            raise ValueError(f"unknown setting {key!r}; allowed settings: {', '.join(allowed)}")
        if where == "run":
            values[key] = value
        else:
            sections[where][key] = value


def validate(cfg: RunConfig) -> None:
    """Raise a ValueError/TypeError naming the first bad setting and what is allowed."""
    spec = spec_of(cfg.method)  # a ValueError naming the registered methods
    for name, cls in SECTIONS.items():
        if not isinstance(getattr(cfg, name), cls):
            raise TypeError(f"{name} must be a {cls.__name__}, got {type(getattr(cfg, name)).__name__}")
    for name in SECTIONS:
        if name != "data":
            check_settings(getattr(cfg, name))
    check_settings(cfg)  # every field's type and bounds (`fapkit.settings.Rule`)
    check_ratio(cfg.ratio)
    if cfg.init == "random" and not spec.random_init:
        allowed = [name for name in method_names() if spec_of(name).random_init]
        raise ValueError(f"init='random' (random-init subnetwork search) applies to {' and '.join(map(repr, allowed))}, "
                         f"not {cfg.method!r}")
    if cfg.structure == "channel" and not spec.dense and cfg.method not in channel_methods():
        raise ValueError(f"structure='channel' (pruning whole output channels) applies to "
                         f"{', '.join(map(repr, channel_methods()))}, not {cfg.method!r}")
    if cfg.structure == "channel" and cfg.arch in CHANNEL_UNTRACEABLE:
        raise ValueError(f"structure='channel' cannot prune {cfg.arch}: {CHANNEL_UNTRACEABLE[cfg.arch]}; use one of "
                         f"{', '.join(a for a in ARCHITECTURES if a not in CHANNEL_UNTRACEABLE)}")
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {cfg.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    d = cfg.data
    if d.name not in dataset_names():
        raise ValueError(f"unknown dataset {d.name!r}; choose one of {', '.join(dataset_names())}")
    check_settings(d)
    check_arch(cfg.arch, d.size)
    _validate_data(d)
    if cfg.device not in ("cpu", "cuda", "auto") and not cfg.device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {cfg.device!r}")


#: Data settings only the datasets whose spec reads them take (`fapkit.data.registry.DatasetSpec.options`); any
#: other dataset must leave them at their default.
_DATASET_ONLY = ("labels", "image_column", "split_fractions", "positive")
_UNSET_DATA = {f.name: f.default for f in fields(DataConfig)}


def _validate_data(d: DataConfig) -> None:
    """The data section's attributes, folder settings and group-size minimum (names, types, which dataset reads what)."""
    check_type("target", d.target, str)
    if not isinstance(d.sensitive, (str, tuple)):
        raise TypeError(f"sensitive must be an attribute name or a tuple of names, got {type(d.sensitive).__name__} "
                        f"{d.sensitive!r}")
    columns = sensitive_columns(d.sensitive)  # a ValueError for an empty, repeated or non-string name
    if d.target == d.sensitive or d.target in columns:
        raise ValueError(f"target and sensitive attribute must differ, both are {d.target!r}")
    spec = dataset_spec(d.name)
    known = spec.known
    if known is not None:
        for role, value in (("target", d.target), *(("sensitive", c) for c in columns)):
            if value not in known:
                raise ValueError(f"unknown {role} attribute {value!r} for dataset {d.name!r}; valid names: "
                                 f"{', '.join(sorted(known))}")
    if d.name == "synth":
        SynthConfig(target=d.target, sensitive=d.sensitive, correlation=d.correlation).validate()
    if d.name == "folder" and d.root is None:
        raise ValueError("dataset 'folder' needs root (the image folder; its labels default to root/labels.csv, "
                         "or set labels)")
    for name in _DATASET_ONLY:
        unset, readers = _UNSET_DATA[name], [n for n in dataset_names() if name in dataset_spec(n).options]
        if getattr(d, name) != unset and d.name not in readers:
            raise ValueError(f"{name} applies to dataset {' and '.join(map(repr, readers))}, not {d.name!r}; "
                             f"leave it at {unset!r}")
    if d.labels is not None:
        check_type("labels", d.labels, str)
    check_type("image_column", d.image_column, str)
    if not d.image_column:
        raise ValueError("image_column must name the label table's column of image paths, got ''")
    if d.positive is not None:
        check_type("positive", d.positive, (str, int))
    if d.split_fractions is not None:
        check_fractions(d.split_fractions)
    check_min_group_size(d.min_group_size)
