"""One setting is one field: its check, nullability and cache-key membership are read from the field (`setting`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import pytest

from fapkit import config, registry
from fapkit.cache import stage_key
from fapkit.config import make_config, updated
from fapkit.registry import method_names, spec_of
from fapkit.settings import SECTIONS, RunConfig, check_settings, key_settings, nullable_settings, setting, setting_fields


@dataclass(frozen=True)
class Knobs:
    """A section as a method module would declare it: nothing but fields."""

    width: int = setting(4, low=1, why="units per layer")
    share: float = setting(0.5, low=0, low_open=True, high=1, what="a share of the batch")
    temperature: float | None = setting(None, low=0, low_open=True, none_means="no scaling", symbol="τ")
    mode: Literal["fast", "exact"] = setting("fast")


def test_a_sections_fields_alone_check_its_values_and_name_what_is_allowed():
    check_settings(Knobs())  # the defaults pass
    check_settings(Knobs(temperature=None))
    cases = [(dict(width=0), ValueError, r"width must be >= 1 \(units per layer\), got 0"),
             (dict(share=0.0), ValueError, r"share must be a share of the batch in \(0, 1\], got 0.0"),
             (dict(share=float("nan")), ValueError, "share must be a finite number, got nan"),
             (dict(temperature=-1.0), ValueError, r"temperature \(τ\) must be > 0 or None \(no scaling\), got -1.0"),
             (dict(mode="slow"), ValueError, "mode must be one of 'fast', 'exact', got 'slow'"),
             (dict(width=2.5), TypeError, "width must be int"),
             (dict(width=True), TypeError, "width must be int"),
             (dict(width=None), TypeError, "width must be int, got None")]
    for changes, error, message in cases:
        with pytest.raises(error, match=message):
            check_settings(Knobs(**changes))


def _run_fields() -> list[dataclasses.Field]:
    return [f for cls in (RunConfig, *SECTIONS.values()) for f in dataclasses.fields(cls)]


def test_make_config_takes_none_for_exactly_the_settings_whose_annotation_allows_it():
    assert set(config._NULLABLE) == set(nullable_settings())
    assert {"masked_lr", "scratch_epochs", "budget_epoch_steps", "importance_images", "n_train"} <= set(config._NULLABLE)
    assert "lr" not in config._NULLABLE and "sensitive" not in config._NULLABLE
    # None for a nullable setting is its value; for any other it keeps the preset's
    assert make_config("fairgrape", importance_images=None).fairgrape.importance_images is None
    assert make_config("faprune", lr=None).lr == make_config("faprune").lr


def test_every_bounded_setting_refuses_the_value_just_outside_its_bounds_by_name():
    checked = 0
    base = make_config("faprune")
    for f in _run_fields():
        rule = f.metadata.get("rule")
        if rule is None or rule.low is None:
            continue
        kind = setting_fields()[f.name][0]
        below = rule.low if rule.low_open else (rule.low - 1 if kind in (int, int | None) else rule.low - 0.5)
        with pytest.raises(ValueError, match=rf"^{f.name}\b.* must be .*got {below!r}"):
            updated(base, **{f.name: below})
        checked += 1
    assert checked >= 15  # epochs, batch size, learning rates, the adversary's, the budget's, FairGRAPE's, CEAG's


def test_a_field_marked_for_every_stage_is_in_every_methods_key_and_changes_it():
    every = key_settings("every")
    assert {"schedule", "budget", "patience", "budget_epoch_steps"} <= set(every)
    assert registry.SCHEDULE_FIELDS == every and set(registry.COMMON_FIELDS) == set(key_settings("root"))
    for method in method_names():
        assert set(every) <= set(spec_of(method).key_fields), method
    cfg = make_config("sgdp", preset="smoke")
    assert stage_key("sgdp", updated(cfg, budget_epoch_steps=5)) != stage_key("sgdp", cfg)
    # left out of keys at its `key_omits` value: results cached before the setting existed keep their key
    assert registry.KEY_DEFAULTS == {"structure": "weight", "budget_epoch_steps": None}


def test_every_field_is_a_setting_with_a_rule_but_the_sections_and_the_datasets_own():
    plain = {f.name for f in _run_fields() if "rule" not in f.metadata}
    # the data settings whose check depends on the dataset (`fapkit.config._validate_data`); a new field has a rule
    dataset_checked = {"name", "target", "sensitive", "labels", "image_column", "positive", "split_fractions",
                       "min_group_size"}
    assert plain == {"method", "preset", "adversary", "fairgrape", "ceag"} | dataset_checked
