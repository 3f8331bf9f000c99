"""Trade-off frontiers: the Pareto filter by hand, the grid, the matched-accuracy choice made on validation."""
import math

import pytest
from fake_results import fake

from fapkit.frontier import frontier_frame, frontier_grid, knob_of, knob_values, matched_accuracy, pareto_front
from fapkit.presentation.figures import frontier_figure
from fapkit.registry import spec_of


def test_pareto_front_on_a_hand_made_set():
    acc = [0.80, 0.70, 0.75, 0.80, 0.60, math.nan, 0.90]
    deo = [0.30, 0.20, 0.35, 0.30, 0.25, 0.10, 0.50]
    # (0.75, 0.35) is beaten by (0.80, 0.30); (0.60, 0.25) by (0.70, 0.20); the two equal points keep each other;
    # NaN is never on the front and beats nothing; the most accurate point is on it however unfair
    assert pareto_front(acc, deo) == [True, True, False, True, False, False, True]
    assert pareto_front([], []) == []
    with pytest.raises(ValueError, match="differ in length: 2 and 1"):
        pareto_front([0.1, 0.2], [0.3])


def test_the_grid_sweeps_each_knob_and_refuses_it_as_a_shared_setting():
    assert spec_of("faprune").knob == "lam" and spec_of("ceag").knob == "epsilon" and spec_of("lmw").knob is None
    specs = frontier_grid(preset="smoke", seeds=[0, 1], methods=["faprune", "ceag", "lmw"], alpha=0.0)
    assert [(s["method"], s.get("lam", s.get("epsilon")), s["seed"]) for s in specs] == [
        ("faprune", 1.0, 0), ("faprune", 1.0, 1), ("faprune", 3.0, 0), ("faprune", 3.0, 1),
        ("ceag", 0.01, 0), ("ceag", 0.01, 1), ("ceag", 0.05, 0), ("ceag", 0.05, 1), ("lmw", None, 0), ("lmw", None, 1)]
    assert knob_values("lmw", "quick") == (None,) and knob_values("faprune", "quick") == (0.3, 1.0, 3.0)
    with pytest.raises(ValueError, match="'lam' is 'faprune''s frontier knob"):
        frontier_grid(preset="smoke", seeds=[0], methods=["faprune"], lam=2.0)


def _run(method, seed, *, acc, deo, val_acc, val_deo, **settings):
    r = fake(method, acc=acc, deo=deo, seed=seed, **settings)
    r.valid_metrics = {"acc": val_acc, "deo": val_deo, "di": 0.5}
    return r


def _results():
    out = []
    for seed in (0, 1, 2):
        e = 0.001 * seed
        out.append(_run("normal", seed, acc=0.80 + e, deo=0.40, val_acc=0.80 + e, val_deo=0.40))
        # λ = 3: the fairest on the test split but 4 points less accurate on validation; λ = 1: within 3 points
        out.append(_run("faprune", seed, lam=3.0, acc=0.79, deo=0.05 + e, val_acc=0.76, val_deo=0.06))
        out.append(_run("faprune", seed, lam=1.0, acc=0.78, deo=0.20 + e, val_acc=0.785, val_deo=0.15))
        out.append(_run("faprune", seed, lam=0.3, acc=0.795, deo=0.30 + e, val_acc=0.795, val_deo=0.30))
        out.append(_run("lmw", seed, acc=0.70, deo=0.10, val_acc=0.70, val_deo=0.10))
    return out


def test_matched_accuracy_chooses_on_validation_and_reports_the_test_split_with_intervals():
    table = matched_accuracy(_results(), metric="DEO")
    row = table.set_index(["within", "method"])
    # within 1 point: only λ = 0.3 (validation 0.795 ≥ 0.801 − 0.01); within 3: λ = 1 is fairer on validation
    assert row.loc[(0.01, "faprune"), "value"] == 0.3 and row.loc[(0.01, "faprune"), "qualifying"] == 1
    assert row.loc[(0.03, "faprune"), "value"] == 1.0 and row.loc[(0.03, "faprune"), "qualifying"] == 2
    # λ = 3's test DEO (0.05) is never chosen: its validation accuracy is 4 points below dense
    chosen = row.loc[(0.03, "faprune")]
    assert chosen["DEO"] == pytest.approx(0.201) and chosen["seeds"] == 3
    assert chosen["DEO low"] < 0.201 < chosen["DEO high"]
    assert row.loc[(0.03, "lmw"), "qualifying"] == 0 and math.isnan(row.loc[(0.03, "lmw"), "DEO"])
    with pytest.raises(ValueError, match="dense model's runs"):
        matched_accuracy([r for r in _results() if r.method != "normal"], metric="DEO")


def test_frontier_frame_marks_each_method_s_own_front_and_the_figure_is_written(tmp_path):
    results = _results()
    assert {knob_of(r) for r in results if r.method == "faprune"} == {0.3, 1.0, 3.0}
    df = frontier_frame(results, metric="DEO").set_index(["method", "value"], drop=False)
    assert list(df["seeds"].unique()) == [3]
    # faprune: λ=0.3 (0.795, 0.301), λ=3 (0.79, 0.051) are on its front; λ=1 (0.78, 0.201) is beaten by λ=3
    fap = df[df["method"] == "faprune"].set_index("value")["pareto"].to_dict()
    assert fap == {0.3: True, 1.0: False, 3.0: True}
    fig = frontier_figure(results, metric="DEO", path=tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 0 and fig.axes
