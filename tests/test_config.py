"""Presets, validation at the boundary, and cache keys that change with every setting that matters."""
import dataclasses

import pytest

import fapkit.cache as cache
from fapkit.cache import stage_key
from fapkit.config import DataConfig, RunConfig, make_config, updated
from fapkit.settings import SECTIONS, setting_names


@pytest.mark.parametrize("overrides, message", [
    (dict(ratio=1.0), r"pruning ratio must be in \[0, 1\).*got 1.0"),
    (dict(ratio=-0.1), r"pruning ratio must be in \[0, 1\)"),
    (dict(alpha=1.5), r"alpha must be in \[0, 1\].*got 1.5"),
    (dict(lam=-1.0), r"lam \(λ\) must be >= 0, got -1.0"),
    (dict(epochs=0), r"epochs must be >= 1, got 0"),
    (dict(batch_size=0), r"batch_size must be >= 1, got 0"),
    (dict(arch="vgg16"), r"unknown architecture 'vgg16'; choose one of resnet18"),
    (dict(dataset="imagenet"), r"unknown dataset 'imagenet'; choose one of synth, celeba, lfw"),
    (dict(target="Male", sensitive="Male"), r"target and sensitive attribute must differ, both are 'Male'"),
    (dict(size=8), r"image size 8 is too small for resnet18: it needs at least 16"),
    (dict(init="zeros"), r"init must be one of 'pretrained', 'random', got 'zeros'"),
    (dict(bogus=1), r"unknown setting 'bogus'; allowed settings:"),
])
def test_bad_settings_name_the_value_and_what_is_allowed(overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config("faprune", preset="quick", **overrides)


def test_unknown_method_and_preset():
    with pytest.raises(ValueError, match=r"unknown method 'prune'; choose one of normal, adv_debias"):
        make_config("prune")
    with pytest.raises(ValueError, match=r"unknown preset 'huge'; choose one of smoke, quick, paper"):
        make_config("faprune", preset="huge")


@pytest.mark.parametrize("name, value", [("ratio", "0.8"), ("epochs", 2.5), ("alpha", True), ("seed", "0")])
def test_wrong_types_are_refused(name, value):
    with pytest.raises(TypeError, match=name):
        make_config("faprune", **{name: value})


def test_random_init_only_for_search_methods():
    with pytest.raises(ValueError, match="applies to 'sgdp' and 'faprune', not 'lmw'"):
        make_config("lmw", init="random")


def test_presets():
    quick = make_config("faprune", preset="quick")
    assert (quick.arch, quick.data.size, quick.data.name) == ("resnet18", 32, "synth")
    paper = make_config("faprune", preset="paper")
    assert (paper.lr, paper.batch_size, paper.pretrain_epochs, paper.data.name) == (1e-4, 64, 30, "celeba")


# Settings that, by design, do not change a method's result (everything else must change its key).
_ADVERSARY = {"disc_lr", "disc_hidden", "disc_steps", "disc_warmup", "disc_warmup_rule", "lam_ramp", "disc_input",
              "warmup_share", "disc_balance"}
_FAIRGRAPE = {"keep_per_iteration", "finetune_epochs", "importance_images"}  # FairGRAPE's own section
_CEAG = {"epsilon", "dual_lr", "replay_buffer"}  # CEAG's own section
_OTHERS = _FAIRGRAPE | _CEAG
_IRRELEVANT = {
    "normal": {"ratio", "alpha", "lam", "init", "scope", "structure", "generator_form", "epochs", "score_lr", "scratch_epochs",
               "masked_lr"} | _OTHERS | _ADVERSARY,
    # the adversary is read whole (one AdversaryConfig): FAPrune's generator form is in Adversarial Debiasing's
    # key too, though its projected step does not read it
    "adv_debias": {"ratio", "init", "scope", "structure", "score_lr", "scratch_epochs", "masked_lr"} | _OTHERS,
    "scratch": {"alpha", "lam", "init", "generator_form", "score_lr"} | _OTHERS | _ADVERSARY,
    "sgdp": {"alpha", "lam", "generator_form", "scratch_epochs", "masked_lr"} | _OTHERS | _ADVERSARY,
    "lmw": {"alpha", "lam", "init", "generator_form", "score_lr", "scratch_epochs"} | _OTHERS | _ADVERSARY,
    "fair_sgdp": {"scratch_epochs", "masked_lr"} | _OTHERS,
    "fair_lmw": {"init", "score_lr", "scratch_epochs"} | _OTHERS,
    "faprune": {"scratch_epochs", "masked_lr"} | _OTHERS,
    "fairgrape": {"alpha", "lam", "init", "generator_form", "score_lr", "scratch_epochs"} | _ADVERSARY | _CEAG,
    "ceag": {"alpha", "lam", "init", "generator_form", "score_lr", "scratch_epochs"} | _ADVERSARY | _FAIRGRAPE,
}
_CHANGED = {"arch": "mobilenet_v2", "ratio": 0.5, "structure": "channel", "alpha": 0.7, "lam": 2.0, "init": "random",
            "scope": "global",
            "generator_form": "confusion", "epochs": 9, "pretrain_epochs": 9, "batch_size": 7, "lr": 0.5,
            "score_lr": 0.5, "disc_lr": 0.5, "disc_hidden": 3, "disc_steps": 4, "disc_warmup": 2, "scratch_epochs": 2,
            "weight_decay": 0.1, "seed": 5, "weights": "w.pt", "device": "cuda", "disc_warmup_rule": "plateau",
            "lam_ramp": 0.3, "schedule": "constant", "lr_warmup": 0.2, "bn_reestimate": False,
            "masked_lr": 0.3, "keep_per_iteration": 0.5, "finetune_epochs": 1, "importance_images": 10,
            "epsilon": 0.05, "dual_lr": 0.3, "replay_buffer": 7, "disc_input": "logit", "warmup_share": 0.3, "disc_balance": True,
            "budget": "patience", "patience": 3, "budget_ceiling": 2, "budget_tail": 0.5,
            "budget_epoch_steps": 9}
_DATA_CHANGED = {"name": "celeba", "target": "Smiling", "sensitive": "Young", "size": 64, "root": "/x",
                 "n_train": 11, "n_valid": 11, "n_test": 11, "n_monitor": 5, "correlation": 0.3, "label_noise": 0.1,
                 "data_seed": 3, "labels": "t.csv", "image_column": "path", "positive": "yes",
                 "split_fractions": (0.8, 0.1, 0.1), "min_group_size": 5}


@pytest.mark.parametrize("method", list(_IRRELEVANT))
def test_cache_key_changes_with_every_setting_that_changes_the_result(method):
    base = RunConfig(method=method)
    assert {name for name, section in setting_names().items() if section != "data"} == set(_CHANGED)
    assert {f.name for f in dataclasses.fields(DataConfig)} == set(_DATA_CHANGED)
    key = stage_key(method, base)
    for name, value in _CHANGED.items():
        if name == "init" and method not in ("sgdp", "faprune"):
            continue  # random init is refused for the others
        if name == "structure" and method in ("scratch", "fairgrape", "ceag"):
            continue  # channel pruning is refused for them
        changed = stage_key(method, updated(base, **{name: value}))
        if name in _IRRELEVANT[method]:
            assert changed == key, f"{method}: {name} should not change the key"
        else:
            assert changed != key, f"{method}: changing {name} must not reuse the cached result"
    for name, value in _DATA_CHANGED.items():
        data = dataclasses.replace(base.data, **{name: value})
        assert stage_key(method, dataclasses.replace(base, data=data)) != key, f"{method}: data.{name}"
    assert stage_key(method, dataclasses.replace(base, preset="paper")) == key  # the name alone changes nothing


def test_cache_key_includes_the_kit_version(monkeypatch):
    cfg = RunConfig(method="faprune")
    key = stage_key("faprune", cfg)
    monkeypatch.setattr(cache, "__version__", "999.0")
    assert stage_key("faprune", cfg) != key


def test_every_setting_has_one_name_and_nested_sections_take_it_flat_or_whole():
    names = [f.name for cls in (RunConfig, *SECTIONS.values()) for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))  # a flat name routes to exactly one section
    flat = make_config("faprune", disc_lr=0.02, lam=2.0, target="Smiling")
    whole = make_config("faprune", adversary=dataclasses.replace(flat.adversary), data=flat.data)
    assert flat == whole and flat.adversary.disc_lr == 0.02 and flat.lam == 2.0
    assert make_config("faprune", adversary={"alpha": 1.0}, lam=3.0).adversary.lam == 3.0  # by name on top
    assert updated(flat, alpha=0.5).adversary == dataclasses.replace(flat.adversary, alpha=0.5)
    with pytest.raises(ValueError, match="disc_steps must be >= 1, got 0"):
        updated(flat, disc_steps=0)
