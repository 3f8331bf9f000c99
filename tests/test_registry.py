"""The method registry: one spec per method drives the runner, the cache keys and the titles."""
import pytest

import fapkit
from fapkit.cache import stage_chain, stage_key
from fapkit.config import METHODS, make_config, method_title
from fapkit.registry import MethodSpec, register, registered, spec_of

TINY = dict(preset="smoke", size=16, n_train=192, n_valid=96, n_test=96, pretrain_epochs=1, epochs=1)


def test_the_paper_s_eight_methods_are_registered_in_its_row_order():
    assert METHODS == ("normal", "adv_debias", "scratch", "sgdp", "lmw", "fair_sgdp", "fair_lmw", "faprune")
    assert [spec_of(m).dense for m in METHODS] == [True, True] + [False] * 6
    assert spec_of("fair_sgdp").stage == "sgdp" and spec_of("fair_sgdp").parent == "adv_debias"


def test_a_toy_method_added_in_one_place_runs_is_cached_and_titled(tmp_path):
    # FAPrune's adversarial mask search started from the debiased dense model: one spec, nothing else.
    toy = MethodSpec("fair_faprune", "Fair-FAPrune (toy)", 3, "adv_debias", spec_of("faprune").key_fields,
                     mask="scores", step="faprune")
    with registered(toy):
        result = fapkit.run("fair_faprune", ratio=0.8, runs_dir=tmp_path, **TINY)
        cfg = make_config("fair_faprune", ratio=0.8, **TINY)
        assert [stage for stage, _ in stage_chain("fair_faprune", cfg)] == ["normal", "adv_debias", "fair_faprune"]
        assert result.ratio == pytest.approx(0.8, abs=0.01) and "train_adv_deo_y0" in result.history[0]
        assert stage_key("fair_faprune", cfg) != stage_key("faprune", make_config("faprune", ratio=0.8, **TINY))
        assert method_title("fair_faprune") == "Fair-FAPrune (toy)"
        again = fapkit.run("fair_faprune", ratio=0.8, runs_dir=tmp_path, **TINY)
        assert again.run_dir == result.run_dir and again.metrics["acc"] == result.metrics["acc"]  # from the cache
    with pytest.raises(ValueError, match="unknown method 'fair_faprune'; choose one of normal, adv_debias"):
        make_config("fair_faprune")


def test_register_refuses_duplicates_unknown_parents_and_unknown_settings():
    with pytest.raises(ValueError, match="'sgdp' is already registered"):
        register(spec_of("sgdp"))
    with pytest.raises(ValueError, match="starts from 'teacher', which is not registered"):
        register(MethodSpec("student", "Student", 0, "teacher", ("ratio",)))
    with pytest.raises(ValueError, match=r"key fields \['temperature'\] are not RunConfig settings"):
        register(MethodSpec("distil", "Distil", 0, "normal", ("ratio", "temperature")))
