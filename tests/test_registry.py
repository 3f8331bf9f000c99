"""The method registry: one spec per method drives the runner, the cache keys and the titles."""
import pytest
import seaborn as sns
from fake_results import fake

import fapkit
from fapkit.cache import stage_chain, stage_key
from fapkit.config import make_config
from fapkit.presentation._common import nominal_ratio
from fapkit.presentation.figures import figure1, method_color
from fapkit.presentation.run_views import adversary_table
from fapkit.presentation.tables import baseline_table
from fapkit.registry import MethodSpec, method_names, method_title, paper_methods, register, registered, spec_of

TINY = dict(preset="smoke", size=16, n_train=192, n_valid=96, n_test=96, pretrain_epochs=1, epochs=1)


def test_the_paper_s_eight_methods_are_registered_in_its_row_order():
    eight = ("normal", "adv_debias", "scratch", "sgdp", "lmw", "fair_sgdp", "fair_lmw", "faprune")
    assert paper_methods() == eight and method_names()[:8] == eight
    assert [spec_of(m).dense for m in eight] == [True, True] + [False] * 6
    assert [m for m in eight if spec_of(m).adversarial] == ["adv_debias", "faprune"]
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


def test_a_registered_method_is_read_live_by_every_output():
    # A dense adversarial method registered after import: its colour, legend entry, table ratio and
    # adversary flag all come from its spec, in the figures, the tables and `fapkit.METHODS`.
    toy = MethodSpec("toy_debias", "Toy debiasing", 4, "normal", spec_of("adv_debias").key_fields, step="debias")
    with registered(toy):
        assert "toy_debias" in fapkit.METHODS and not spec_of("toy_debias").paper
        runs = [fake("toy_debias", alpha=0.0, seed=s, ratio=0.5) for s in (0, 1)] + [fake("faprune", seed=0)]
        assert nominal_ratio(runs[0]) == 0.0  # dense: its config's ratio 0.5 is not a pruning ratio
        assert method_color("toy_debias") == sns.color_palette("colorblind", 10)[4]
        fig = figure1(runs, metric="DEO", with_paper=False, path=None)
        legend = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        legend += [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        assert "Toy debiasing †" in legend  # marked: not a row of the paper's tables 2–3
        table = baseline_table(runs, metric="DEO")
        assert "Toy debiasing †" in table.index and set(paper_methods()) <= {m for m in method_names()}
        assert "Toy debiasing" in adversary_table(runs).index
    assert "toy_debias" not in fapkit.METHODS


def test_register_checks_the_kinds_of_a_spec():
    with pytest.raises(ValueError, match="step must be one of 'ce', 'faprune', 'debias', got 'gan'"):
        register(MethodSpec("gan", "GAN", 0, "normal", ("ratio",), step="gan"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mask must be one of"):
        register(MethodSpec("gan", "GAN", 0, "normal", ("ratio",), mask="structured"))  # type: ignore[arg-type]


def test_register_refuses_a_spec_the_runner_cannot_build():
    with pytest.raises(ValueError, match="trainer must be a function taking a StageInputs, got 'mymod:train'"):
        register(MethodSpec("toy", "Toy", 0, "normal", ("ratio",), trainer="mymod:train"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mask 'importance' has no builder in the runner"):
        register(MethodSpec("toy", "Toy", 0, "normal", ("ratio",), mask="importance"))
    with pytest.raises(ValueError, match="decides its steps and epochs itself; .*step='faprune'"):
        register(MethodSpec("toy", "Toy", 0, "normal", ("ratio",), step="faprune", trainer=lambda inputs: None))
    assert "toy" not in fapkit.METHODS


def test_the_methods_with_trainers_carry_their_functions_from_their_own_modules():
    from fapkit.methods import ceag, fairgrape
    from fapkit.registry import spec_of

    assert spec_of("fairgrape").trainer is fairgrape.train_stage and spec_of("ceag").trainer is ceag.train_stage
    assert fapkit.METHODS[-2:] == ("fairgrape", "ceag")  # after the paper's eight, in the order they register
