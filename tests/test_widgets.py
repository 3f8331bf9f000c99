"""The slider explorer without a kernel: set a slider's value, the callback runs synchronously."""
from __future__ import annotations

import re
from typing import Any

import ipywidgets
import pytest
from fake_results import fake

from fapkit.widgets import GridCompute, make_compute, metrics_html, pruning_explorer


class RecordingCompute:
    """A fake compute: records every call and returns a fake result whose numbers follow the settings."""

    def __init__(self) -> None:
        self.calls: list[dict[str, float]] = []

    def __call__(self, *, ratio: float, alpha: float, lam: float) -> Any:
        self.calls.append({"ratio": ratio, "alpha": alpha, "lam": lam})
        return fake("faprune", ratio=ratio, acc=0.9 - ratio / 10, di=0.3 + alpha / 2, deo=0.5 - lam / 20)


def cell(html: str, cls: str) -> str:
    match = re.search(rf'<td class="{cls}">([^<]*)</td>', html)
    assert match, f"no cell with class {cls} in {html}"
    return match.group(1)


def test_explorer_parts_and_initial_compute() -> None:
    compute = RecordingCompute()
    box = pruning_explorer(compute, ratio=0.8, alpha=0.0, lam=1.0, plot=lambda r: None)
    assert isinstance(box, ipywidgets.VBox)
    assert isinstance(box.table, ipywidgets.HTML) and isinstance(box.plot, ipywidgets.Output)
    for slider, (low, high) in ((box.ratio_slider, (0.5, 0.95)), (box.alpha_slider, (0.0, 1.0)),
                                (box.lam_slider, (0.0, 5.0))):
        assert isinstance(slider, ipywidgets.FloatSlider)
        assert (slider.min, slider.max) == (low, high) and slider.continuous_update is False
    assert compute.calls == [{"ratio": 0.8, "alpha": 0.0, "lam": 1.0}]
    assert cell(box.table.value, "fap-acc") == "0.8200"
    assert box.last_result.config.ratio == 0.8


def test_moving_sliders_calls_compute_and_updates_table() -> None:
    compute = RecordingCompute()
    box = pruning_explorer(compute, plot=lambda r: None)
    before_html, before_result = box.table.value, box.last_result

    box.ratio_slider.value = 0.9
    assert compute.calls[-1] == {"ratio": 0.9, "alpha": 0.0, "lam": 1.0}
    assert box.last_result is not before_result and box.last_result.config.ratio == 0.9
    assert box.table.value != before_html
    assert cell(box.table.value, "fap-acc") == "0.8100"
    assert cell(box.table.value, "fap-ratio") == "0.9000"

    box.alpha_slider.value = 1.0
    assert compute.calls[-1]["alpha"] == 1.0
    assert cell(box.table.value, "fap-di") == "0.8000"

    box.lam_slider.value = 2.0
    assert compute.calls[-1] == {"ratio": 0.9, "alpha": 1.0, "lam": 2.0}
    assert cell(box.table.value, "fap-deo") == "0.4000"
    assert len(compute.calls) == 4  # one initial call plus one per slider change


def test_slider_values_are_rounded_for_the_cache() -> None:
    compute = RecordingCompute()
    box = pruning_explorer(compute, compute_now=False, plot=lambda r: None)
    assert compute.calls == []
    box.ratio_slider.value = 0.85
    assert compute.calls[-1]["ratio"] == 0.85  # not 0.8500000000000001


def test_compute_error_is_shown_and_last_result_kept() -> None:
    compute = RecordingCompute()
    box = pruning_explorer(compute, plot=lambda r: None)
    good = box.last_result

    def broken(**_: float) -> Any:
        raise ValueError("no such run")

    box.compute = broken
    box.lam_slider.value = 3.0
    assert "fap-error" in box.table.value and "no such run" in box.table.value
    assert box.last_result is good and isinstance(box.last_error, ValueError)


def test_default_plot_draws_a_figure() -> None:
    box = pruning_explorer(RecordingCompute())
    assert box.last_figure is not None and box.last_figure.axes


def test_metrics_html_matches_the_explorer_table() -> None:
    compute = RecordingCompute()
    box = pruning_explorer(compute, ratio=0.7, alpha=0.5, lam=2.0, plot=lambda r: None)
    headless = metrics_html(compute(ratio=0.7, alpha=0.5, lam=2.0), ratio=0.7, alpha=0.5, lam=2.0)
    assert headless == box.table.value


def test_bad_settings_fail_early() -> None:
    with pytest.raises(ValueError, match="outside the slider's range"):
        pruning_explorer(RecordingCompute(), ratio=0.3)
    with pytest.raises(TypeError, match="ratio must be a float"):
        pruning_explorer(RecordingCompute(), ratio="0.8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="set by the explorer"):
        make_compute(preset="smoke", ratio=0.8)
    with pytest.raises(ValueError, match="unknown setting"):
        make_compute(preset="smoke", colour="red")
    assert callable(make_compute(preset="smoke", target="Attractive", runs_dir="runs", progress=False))


def test_metrics_html_marks_a_degenerate_result() -> None:
    plain = metrics_html(fake("faprune"), ratio=0.8, alpha=0.0, lam=1.0)
    assert "fap-degenerate" not in plain
    degenerate = fake("faprune", sel0=0.0, sel1=0.0)  # predicts nobody positive in either group
    assert degenerate.degenerate
    html = metrics_html(degenerate, ratio=0.8, alpha=0.0, lam=1.0)
    match = re.search(r'<td class="fap-degenerate"[^>]*>([^<]*)</td>', html)
    assert match and "constant prediction in a sensitive group" in match.group(1)
    assert "trivially fair" in match.group(1)
    assert cell(html, "fap-acc") == "0.8000"  # the numbers are still shown


def test_explorer_shows_the_degenerate_warning() -> None:
    box = pruning_explorer(lambda **s: fake("faprune", ratio=s["ratio"], sel1=1.0), plot=lambda r: None)
    assert 'class="fap-degenerate"' in box.table.value


class FakeBackground:
    """A BackgroundSweep stand-in: the test decides which specs are done and fires the callbacks."""

    def __init__(self, points: list[tuple[float, float, float]], done: set[int]) -> None:
        self.points, self.finished, self.callbacks = points, set(done), {}

    def done(self, index: int) -> bool:
        return index in self.finished

    def count_done(self) -> int:
        return len(self.finished)

    def when_done(self, index: int, callback: Any) -> None:
        self.callbacks.setdefault(index, []).append(callback)

    def finish(self, index: int) -> None:
        self.finished.add(index)
        for callback in self.callbacks.pop(index, []):
            callback()

    def result(self, index: int) -> Any:
        assert index in self.finished, "the explorer must not block on a running point"
        ratio, alpha, lam = self.points[index]
        return fake("faprune", ratio=ratio, acc=0.9 - ratio / 10, di=0.3 + alpha / 2, deo=0.5 - lam / 20)


def grid_compute(done_points: list[tuple[float, float, float]]) -> tuple[GridCompute, FakeBackground]:
    axes = {"ratio": [0.7, 0.9], "alpha": [0.0, 1.0], "lam": [1.0, 2.0]}
    points = [(r, a, lam) for r in axes["ratio"] for a in axes["alpha"] for lam in axes["lam"]]
    background = FakeBackground(points, {points.index(p) for p in done_points})
    return GridCompute(background, points, axes), background


def test_explorer_on_a_precomputed_grid_snaps_and_shows_running_points() -> None:
    compute, background = grid_compute([(0.7, 0.0, 1.0)])
    box = pruning_explorer(compute, ratio=0.75, alpha=0.0, lam=1.2, plot=lambda r: None)
    assert isinstance(box.ratio_slider, ipywidgets.SelectionSlider)
    assert [value for _, value in box.ratio_slider.options] == [0.7, 0.9]
    assert box.settings() == {"ratio": 0.7, "alpha": 0.0, "lam": 1.0}  # snapped to the nearest point
    assert cell(box.table.value, "fap-acc") == "0.8300"  # computed point: shown at once

    box.ratio_slider.value = 0.9  # still running on the cluster: say so, do not block
    assert 'class="fap-running"' in box.table.value and "1 of 8 grid points computed" in box.table.value
    box.alpha_slider.value = 1.0  # moved on before (0.9, 0, 1) finished ...
    background.finish(compute.index[(0.9, 0.0, 1.0)])
    assert box.refreshing is None and "fap-running" in box.table.value  # ... so its result is not shown

    background.finish(compute.index[(0.9, 1.0, 1.0)])  # the point the sliders show: fills in
    box.refreshing.join(timeout=10)
    assert cell(box.table.value, "fap-acc") == "0.8100" and cell(box.table.value, "fap-di") == "0.8000"
    assert box.last_result.config.ratio == 0.9


def test_grid_compute_refuses_points_off_the_grid() -> None:
    compute, _ = grid_compute([])
    with pytest.raises(ValueError, match="not on the precomputed grid"):
        compute.ready(ratio=0.8, alpha=0.0, lam=1.0)


def test_a_grid_outside_the_default_slider_ranges_is_explored_on_its_own_values() -> None:
    axes = {"ratio": [0.3], "alpha": [0.0], "lam": [8.0]}
    background = FakeBackground([(0.3, 0.0, 8.0)], {0})
    box = pruning_explorer(GridCompute(background, [(0.3, 0.0, 8.0)], axes), ratio=0.3, alpha=0.0, lam=8.0,
                           plot=lambda r: None)
    assert box.settings() == {"ratio": 0.3, "alpha": 0.0, "lam": 8.0}
    assert cell(box.table.value, "fap-ratio") == "0.3000"


def test_explorer_shows_every_group_of_a_k_group_result() -> None:
    def three(**settings: float) -> Any:
        r = fake("faprune", ratio=settings["ratio"], sensitive="Age_Group")
        r.metrics["groups"] = {g: {"count": 40, "n_pos": 20, "n_neg": 20, "selection_rate": s, "tpr": s, "fpr": s,
                                   "accuracy": 0.7} for g, s in enumerate((0.0, 0.4, 0.6))}
        r.metrics["group_names"] = ["Age_Group=0-19", "Age_Group=20-39", "Age_Group=40-59"]
        return r

    box = pruning_explorer(three)
    legend = [t.get_text() for t in box.last_figure.axes[0].get_legend().get_texts()]
    assert legend == ["Age_Group=0-19 (n=40)", "Age_Group=20-39 (n=40)", "Age_Group=40-59 (n=40)"]
    match = re.search(r'<td class="fap-degenerate"[^>]*>([^<]*)</td>', box.table.value)
    assert match and "constant prediction in a sensitive group" in match.group(1)
    assert "(group(s): Age_Group=0-19)" in match.group(1)  # the group concerned, by name
    binary = metrics_html(fake("faprune", sel0=0.0), ratio=0.8, alpha=0.0, lam=1.0)
    assert "group(s):" not in binary  # two groups: the wording as before
