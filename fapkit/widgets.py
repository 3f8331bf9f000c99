"""The slider explorer of notebook 02: pruning ratio, α and λ in, accuracy/DI/DEO out.

``pruning_explorer(compute)`` wires three sliders to any function
``compute(*, ratio, alpha, lam) -> RunResult``; ``make_compute(...)`` builds the usual one, which
runs FAPrune through the run cache, so returning to a setting already explored is instant.

With a Dask cluster, ``precompute(client, ...)`` submits a small grid of (ratio, α, λ) at once and
returns a `GridCompute`; given one, the explorer's sliders snap to the grid's points, a computed
point shows at once, and a point still running says so and fills in when its run finishes.

The explorer is a plain `ipywidgets.VBox` subclass whose parts are attributes
(``ratio_slider``, ``alpha_slider``, ``lam_slider``, ``table``, ``plot``, ``last_result``), so
tests drive it without a kernel: set ``box.ratio_slider.value = 0.9`` and the callback runs
synchronously. The metrics table is HTML with one CSS class per number (``fap-acc``, ``fap-di``,
``fap-deo``, ``fap-ratio``) for browser tests; the headless notebook path renders the very same
HTML with `metrics_html`, so sliders and papermill runs show one table.
"""
from __future__ import annotations

import html
import math
import threading
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import ipywidgets as widgets
from IPython.display import clear_output, display

from .fairness.metrics import degenerate_groups, near_constant_groups
from .presentation.figures import group_rates_figure
from .presentation.run_views import result_group_labels

if TYPE_CHECKING:
    from distributed import Client

# Slider values are rounded to this many decimals before `compute` sees them: a FloatSlider may
# report 0.8500000000000001, which would give the run cache a new key for the same setting.
_DECIMALS = 4


class Compute(Protocol):
    """What the explorer calls: keyword-only ratio, alpha, lam; returns a RunResult-like object."""

    def __call__(self, *, ratio: float, alpha: float, lam: float) -> Any: ...


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    return "—" if math.isnan(number) else f"{number:.4f}"


_DEGENERATE_TEXT = ("⚠ degenerate: constant prediction in a sensitive group — DI/DEO are trivially fair, "
                    "not a sign of fairness")
_NEAR_CONSTANT_TEXT = ("⚠ near-constant: a selection rate within 0.05 of 0 or 1 in a sensitive group — much of "
                       "its DI/DEO comes from predicting one class there")


def _which_groups(result: Any, find: Callable[[Any], list[int]]) -> str:
    """With more than two sensitive groups, the ones a warning is about (`result_group_labels`); else ""."""
    groups = getattr(result, "metrics", {}).get("groups")
    if not groups or len(groups) <= 2:
        return ""  # the binary wording is unchanged: "a sensitive group"
    labels = result_group_labels(result)
    named = [labels[g] for g in find(groups) if g < len(labels)]
    return f" (group(s): {', '.join(named)})" if named else ""


def metrics_html(result: Any, *, ratio: float, alpha: float, lam: float, status: str = "done") -> str:
    """The explorer's metrics table for one result and the settings that produced it.

    Each number sits in a cell with a stable class (``fap-acc``, ``fap-di``, ``fap-deo``,
    ``fap-ratio``) and the settings in ``fap-setting-*`` cells, so a browser test can read them.
    A degenerate result (``result.degenerate``: a constant prediction inside a sensitive group)
    gets one more row, a ``fap-degenerate`` cell warning that its DI/DEO are trivially fair; with
    more than two sensitive groups the warning names the groups concerned (by ``group_names`` when
    the run recorded them). The plot below the table shows every group's rates (`group_rates_figure`).
    """
    cells = [("fap-acc", "accuracy ↑", result.acc), ("fap-di", "DI ↑", result.di),
             ("fap-deo", "DEO ↓", result.deo), ("fap-ratio", "achieved ratio", result.ratio)]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in cells)
    body = "".join(f'<td class="{cls}">{_fmt(v)}</td>' for cls, _, v in cells)
    settings = (f'<td class="fap-setting-ratio">{ratio:.4g}</td><td class="fap-setting-alpha">{alpha:.4g}</td>'
                f'<td class="fap-setting-lam">{lam:.4g}</td>')
    warning = ""
    if getattr(result, "degenerate", False):  # a fake or older result may lack the property
        warning = (f'<tr><td class="fap-degenerate" colspan="{len(cells) + 3}" style="color:#b00020">'
                   f"{html.escape(_DEGENERATE_TEXT + _which_groups(result, degenerate_groups))}</td></tr>")
    elif getattr(result, "near_constant", False):
        warning = (f'<tr><td class="fap-near-constant" colspan="{len(cells) + 3}" style="color:#b06000">'
                   f"{html.escape(_NEAR_CONSTANT_TEXT + _which_groups(result, near_constant_groups))}</td></tr>")
    return (
        '<div class="fap-explorer">'
        '<table class="fap-metrics" style="border-collapse:collapse">'
        f"<tr>{head}<th>requested ratio</th><th>α</th><th>λ</th></tr>"
        f"<tr>{body}{settings}</tr>{warning}</table>"
        f'<div class="fap-status">{html.escape(status)}</div></div>'
    )


def _status_html(message: str, *, error: bool = False, css: str = "fap-status") -> str:
    cls = "fap-error" if error else css
    color = "#b00020" if error else "#555"
    return f'<div class="fap-explorer"><div class="{cls}" style="color:{color}">{html.escape(message)}</div></div>'


class PruningExplorer(widgets.VBox):
    """Three sliders, a metrics table and a plot; see `pruning_explorer`."""

    def __init__(self, compute: Compute, *, ratio: float, alpha: float, lam: float,
                 plot: Callable[[Any], Any] | None = None) -> None:
        style = {"description_width": "150px"}
        layout = widgets.Layout(width="480px")
        axes = getattr(compute, "axes", None)  # a GridCompute: the sliders snap to its points
        if axes is not None:
            self.ratio_slider, self.alpha_slider, self.lam_slider = (
                widgets.SelectionSlider(options=[(f"{v:g}", v) for v in axes[name]], value=_nearest(axes[name], start),
                                        description=label, continuous_update=False, style=style, layout=layout)
                for name, start, label in (("ratio", ratio, "pruning ratio"), ("alpha", alpha, "α (1: DI, 0: DEO)"),
                                           ("lam", lam, "λ (adversary weight)")))
        else:
            self.ratio_slider = widgets.FloatSlider(
                value=ratio, min=0.5, max=0.95, step=0.05, description="pruning ratio", readout_format=".2f",
                continuous_update=False, style=style, layout=layout)
            self.alpha_slider = widgets.FloatSlider(
                value=alpha, min=0.0, max=1.0, step=0.1, description="α (1: DI, 0: DEO)", readout_format=".1f",
                continuous_update=False, style=style, layout=layout)
            self.lam_slider = widgets.FloatSlider(
                value=lam, min=0.0, max=5.0, step=0.25, description="λ (adversary weight)", readout_format=".2f",
                continuous_update=False, style=style, layout=layout)
        self.table = widgets.HTML(value=_status_html("not computed yet"))
        self.plot = widgets.Output()
        self.compute = compute
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self.last_figure: Any = None
        self.calls = 0
        self.refreshing: threading.Thread | None = None  # the update started when a grid point finished
        self._plot = plot if plot is not None else (lambda r: group_rates_figure(r, path=None))
        super().__init__([self.ratio_slider, self.alpha_slider, self.lam_slider, self.table, self.plot])
        for slider in (self.ratio_slider, self.alpha_slider, self.lam_slider):
            slider.observe(self._on_change, names="value")

    def settings(self) -> dict[str, float]:
        """The sliders' current values, rounded so equal settings give equal cache keys."""
        return {"ratio": round(float(self.ratio_slider.value), _DECIMALS),
                "alpha": round(float(self.alpha_slider.value), _DECIMALS),
                "lam": round(float(self.lam_slider.value), _DECIMALS)}

    def _on_change(self, change: dict[str, Any]) -> None:
        self.update()

    def update(self) -> Any:
        """Call `compute` with the current settings and refresh the table and plot; return the result.

        An error in `compute` is shown in the table (a widget callback's exception would otherwise
        vanish into the kernel log) and kept in ``last_error``; ``last_result`` keeps the last success.
        """
        settings = self.settings()
        ready = getattr(self.compute, "ready", None)
        if ready is not None and not ready(**settings):  # a grid point still running on the cluster
            done, total = self.compute.progress()
            self.table.value = _status_html(f"running ratio={settings['ratio']:g}, α={settings['alpha']:g}, "
                                            f"λ={settings['lam']:g} on the cluster … ({done} of {total} grid "
                                            "points computed)", css="fap-running")
            self.compute.when_ready(lambda: self._refresh_if_current(settings), **settings)
            return None
        self.table.value = _status_html(f"computing ratio={settings['ratio']:g}, α={settings['alpha']:g}, "
                                        f"λ={settings['lam']:g} …")
        self.calls += 1
        try:
            result = self.compute(**settings)
        except Exception as err:  # shown to the user; the explorer stays usable
            self.last_error = err
            self.table.value = _status_html(f"{type(err).__name__}: {err}", error=True)
            return None
        self.last_error = None
        self.last_result = result
        self.table.value = metrics_html(result, **settings)
        self._redraw(result)
        return result

    def _refresh_if_current(self, settings: dict[str, float]) -> None:
        """A grid point finished: show it if the sliders still point at it (off the Dask thread)."""
        if self.settings() == settings:
            refreshing = threading.Thread(target=self.update, daemon=True)
            refreshing.start()
            self.refreshing = refreshing  # published once started: a reader may join() it at once

    def _redraw(self, result: Any) -> None:
        try:
            figure = self._plot(result)
        except Exception as err:  # a plotting problem must not hide the numbers
            figure = None
            self.last_error = err
        self.last_figure = figure
        with self.plot:
            clear_output(wait=True)
            if figure is not None:
                display(figure)


def pruning_explorer(compute: Compute, *, ratio: float = 0.8, alpha: float = 0.0, lam: float = 1.0,
                     compute_now: bool = True, plot: Callable[[Any], Any] | None = None) -> PruningExplorer:
    """Sliders for the pruning ratio (0.5–0.95), α (0–1) and λ (0–5) driving `compute`.

    Each slider reports only on release (``continuous_update=False``): one change, one run.
    With `compute_now`, the starting setting is computed at once so the table is never empty.
    ``plot(result) -> Figure`` draws the lower panel (default: per-group rates of the result).
    Given a `GridCompute`, the sliders take the grid's values instead and the start snaps to
    the nearest point.
    """
    on_grid = getattr(compute, "axes", None) is not None
    for name, value, low, high in (("ratio", ratio, 0.5, 0.95), ("alpha", alpha, 0.0, 1.0), ("lam", lam, 0.0, 5.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
        if not on_grid and not low <= value <= high:
            raise ValueError(f"{name}={value} is outside the slider's range [{low}, {high}]")
    box = PruningExplorer(compute, ratio=float(ratio), alpha=float(alpha), lam=float(lam), plot=plot)
    if compute_now:
        box.update()
    return box


def make_compute(**fixed_settings: Any) -> Compute:
    """A ``compute(*, ratio, alpha, lam)`` that runs FAPrune with `fixed_settings` (preset, target, arch, ...).

    The settings are validated now, so a typo fails before any slider moves. `runs_dir` and
    `progress` are passed to `fapkit.runner.run` as well.
    """
    from .config import make_config  # light; the heavy training imports wait for the first call

    for name in ("ratio", "alpha", "lam"):
        if name in fixed_settings:
            raise ValueError(f"{name} is set by the explorer's slider; do not fix it in make_compute")
    run_only = {k: fixed_settings[k] for k in ("runs_dir", "progress") if k in fixed_settings}
    settings = {k: v for k, v in fixed_settings.items() if k not in run_only}
    preset = settings.pop("preset", "quick")
    make_config("faprune", preset=preset, **dict(settings))  # raises on a bad setting

    def compute(*, ratio: float, alpha: float, lam: float) -> Any:
        from .runner import run

        return run("faprune", preset=preset, ratio=ratio, alpha=alpha, lam=lam, **run_only, **settings)

    return compute


def _nearest(values: Sequence[float], value: float) -> float:
    return min(values, key=lambda v: (abs(v - value), v))


class GridCompute:
    """FAPrune on a fixed grid of (ratio, α, λ), running in the background on a Dask cluster.

    A `Compute` for `pruning_explorer` with three extras it looks for: ``axes`` (the grid's values
    per slider), ``ready(...)`` (never blocks) and ``when_ready(callback, ...)``. Calling it waits
    for that point's run. Build one with `precompute`.
    """

    def __init__(self, background: Any, points: Sequence[tuple[float, float, float]],
                 axes: dict[str, list[float]]) -> None:
        self.background = background
        self.index = {point: i for i, point in enumerate(points)}
        self.axes = axes

    def _where(self, ratio: float, alpha: float, lam: float) -> int:
        point = (round(ratio, _DECIMALS), round(alpha, _DECIMALS), round(lam, _DECIMALS))
        if point not in self.index:
            raise ValueError(f"ratio={ratio:g}, α={alpha:g}, λ={lam:g} is not on the precomputed grid {self.axes}")
        return self.index[point]

    def ready(self, *, ratio: float, alpha: float, lam: float) -> bool:
        return self.background.done(self._where(ratio, alpha, lam))

    def when_ready(self, callback: Callable[[], None], *, ratio: float, alpha: float, lam: float) -> None:
        self.background.when_done(self._where(ratio, alpha, lam), callback)

    def progress(self) -> tuple[int, int]:
        """(grid points computed, grid points)."""
        return self.background.count_done(), len(self.index)

    def __call__(self, *, ratio: float, alpha: float, lam: float) -> Any:
        return self.background.result(self._where(ratio, alpha, lam))


def precompute(client: Client, *, ratios: Sequence[float], alphas: Sequence[float], lams: Sequence[float],
               start: tuple[float, float, float] | None = None, runs_dir: str = "runs",
               **fixed_settings: Any) -> GridCompute:
    """Submit FAPrune at every (ratio, α, λ) of the grid to `client`'s cluster now; return its `GridCompute`.

    Points nearest to `start` (default: the grid's middle) are submitted first, so the settings a
    user is most likely to look at next come back first. `fixed_settings` are those of
    `make_compute` (preset, target, arch, ...), validated before anything is submitted; `runs_dir` must be
    on a disk the workers share (see docs/sweeps.md).
    """
    from .checks import check_alpha, check_finite, check_ratio
    from .sweeps import BackgroundSweep

    axes = {}
    for name, values, check in (("ratio", ratios, check_ratio), ("alpha", alphas, check_alpha),
                                ("lam", lams, lambda v: check_finite("lam", v))):
        if not values:
            raise ValueError(f"the {name} axis of the grid is empty; give at least one value")
        axes[name] = sorted({round(check(v), _DECIMALS) for v in values})
    for name in ("ratio", "alpha", "lam"):
        if name in fixed_settings:
            raise ValueError(f"{name} is an axis of the grid; give it as {name}s=[...], not as a fixed setting")
    fixed_settings.pop("progress", None)  # the explorer's status line counts the grid's finished points instead
    middle = tuple(values[len(values) // 2] for values in axes.values())
    center = start if start is not None else middle
    points = [(r, a, lam) for r in axes["ratio"] for a in axes["alpha"] for lam in axes["lam"]]
    points.sort(key=lambda p: sum(abs(x - c) / (max(v) - min(v) or 1.0)
                                  for x, c, v in zip(p, center, axes.values())))
    specs = [dict(method="faprune", ratio=r, alpha=a, lam=lam, **fixed_settings) for r, a, lam in points]
    return GridCompute(BackgroundSweep(specs, client=client, runs_dir=runs_dir), points, axes)
