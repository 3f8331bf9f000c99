"""What the researcher sees: notebook 02's pruning explorer in a real JupyterLab, in headless Chromium.

Kernel-less widget tests cannot catch a widget that never renders in JupyterLab ("model not found"
from mismatched ipywidgets / jupyterlab_widgets) or outputs that never update. This test starts
JupyterLab from the venv on a copy of notebooks/02_fair_pruning.ipynb (INTERACTIVE=True, smoke
preset, output folders in a temporary directory), runs all cells from the Run menu, moves the
pruning-ratio and α sliders with the keyboard, and checks that the metrics table shows what
`fapkit.runner.run` returns for the slider values read from the page, and that the plot changed.

Needs Debian's Chromium at /usr/bin/chromium (`sudo apt-get install -y chromium`; .ci/run does it);
FAPKIT_SKIP_BROWSER=1 skips. Screenshots and the console log go to build/browser/.
    .venv/bin/python -m pytest tests/test_browser.py -v -s
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    REPO,
    BrowserFailure,
    ConsoleLog,
    LabServer,
    kernel_idle,
    launch_chromium,
    notebook_parameters,
    open_notebook,
    poll_page,
    prepare_notebook,
    run_all_cells,
    screenshot,
    wait_for_widget,
    write_notebook,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NOTEBOOK = REPO / "notebooks" / "02_fair_pruning.ipynb"
# Parameters of the copy the browser opens. ARCH: the notebook's own ARCH would override the smoke
# preset's tiny CNN, and every slider move trains a model, so ask for the tiny CNN explicitly.
OVERRIDES = {"INTERACTIVE": True, "PRESET": "smoke", "PROGRESS": False}
SMOKE_ARCH = "small_cnn"
# Notebook parameter -> fapkit.runner.run keyword: the settings the notebook's `compute` shares.
RUN_KEYWORDS = {"PRESET": "preset", "DATASET": "dataset", "DATA_ROOT": "root", "TARGET": "target",
                "SENSITIVE": "sensitive", "ARCH": "arch", "SEED": "seed", "RUNS_DIR": "runs_dir"}
METRICS = ("acc", "di", "deo")                   # compared with Python; "ratio" too when shown
EXPLORER = ".jp-OutputArea-output .widget-vbox:has(.widget-slider):has(.fap-explorer)"
TOY = ".jp-OutputArea-output .widget-vbox:has(.widget-slider):has(.toy-square)"
RUN_ALL_TIMEOUT = 420.0                          # s: the notebook's cells up to the explorer (smoke preset)
UPDATE_TIMEOUT = 180.0                           # s: one slider release = one FAPrune run (smoke)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chromium() -> Path:
    if os.environ.get("FAPKIT_SKIP_BROWSER") == "1":
        pytest.skip("FAPKIT_SKIP_BROWSER=1")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: the browser test drives Debian's Chromium. Install it with "
                    "`sudo apt-get install -y chromium` (.ci/run does this in CI), or set FAPKIT_SKIP_BROWSER=1 "
                    "to skip the browser tests.", pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the Python package playwright is missing: .venv/bin/pip install -e '.[test]' "
                    "(no `playwright install` needed: the test uses /usr/bin/chromium)", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Any]:
    """The server's root folder with the prepared notebook copies, and their effective parameters."""
    tmp = tmp_path_factory.mktemp("browser")
    root = tmp / "lab"
    root.mkdir()
    write_notebook(root / "toy_slider.ipynb", [
        "import ipywidgets as widgets\n"
        "slider = widgets.IntSlider(value=3, min=0, max=10, description='n', continuous_update=False)\n"
        "label = widgets.HTML(value=\"<span class='toy-square'>9</span>\")\n"
        "def on_change(change):\n"
        "    label.value = f\"<span class='toy-square'>{change['new'] ** 2}</span>\"\n"
        "slider.observe(on_change, names='value')\n"
        "widgets.VBox([slider, label])"], parameters="N = 3")
    params = None
    if NOTEBOOK.exists():
        declared = notebook_parameters(json.loads(NOTEBOOK.read_text(encoding="utf-8")))
        overrides = {**OVERRIDES, **({"ARCH": SMOKE_ARCH} if "ARCH" in declared else {})}
        params = prepare_notebook(NOTEBOOK, root / NOTEBOOK.name, overrides, folder=root)
    return {"tmp": tmp, "root": root, "params": params}


@pytest.fixture(scope="module")
def lab(chromium, workspace):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*-console.log")]:  # only this run's artifacts
        old.unlink()
    with LabServer(workspace["root"], workspace["tmp"] / "jupyter", ARTIFACTS / "jupyterlab.log") as server:
        yield server


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


class Session:
    """One browser page on the lab, its console log, and failure reports with a screenshot."""

    def __init__(self, page: Any, console: ConsoleLog, lab: LabServer, name: str):
        self.page, self.console, self.lab, self.name = page, console, lab, name

    def fail(self, message: str) -> None:
        shot = screenshot(self.page, f"{self.name}-failure")
        self.lab.remember_children()
        raise BrowserFailure(f"{message}\nscreenshot: {shot}\n{self.console.report()}\n"
                             f"server log ({self.lab.log_path}) tail:\n{self.lab.log_tail(1500)}")

    @contextlib.contextmanager
    def diagnosed(self):
        """Turn any error (a Playwright timeout, a plain assert) into a failure with screenshot and console."""
        try:
            yield
        except BrowserFailure:
            raise
        except Exception as err:
            self.fail(f"{type(err).__name__}: {err}")


@pytest.fixture
def session(browser, lab, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    context.set_default_navigation_timeout(120_000)
    page = context.new_page()
    console = ConsoleLog()
    console.attach(page)
    name = request.node.name.replace("test_", "", 1)
    try:
        yield Session(page, console, lab, name)
    finally:
        lab.remember_children()
        lab.shutdown_kernels()
        (ARTIFACTS / f"{name}-console.log").write_text("\n".join(console.entries) + "\n")
        context.close()


def _open_and_run(s: Session, notebook: str, selector: str, timeout: float) -> Any:
    """Open `notebook` in its own workspace, Run → Run All Cells, return the rendered widget `selector`."""
    try:
        open_notebook(s.page, s.lab, notebook, workspace=s.name.replace("_", "-"))
        s.lab.remember_children()
        run_all_cells(s.page)
        return wait_for_widget(s.page, selector, timeout)
    except BrowserFailure as err:  # add the screenshot, console and server log
        s.fail(str(err))
    except Exception as err:  # a Playwright timeout etc.
        s.fail(f"{type(err).__name__}: {err}")


# ----------------------------------------------------------------------------- reading the page


def _number(text: str) -> tuple[float, int]:
    """A displayed number and its decimals: "0.8125" -> (0.8125, 4); "81.2 %" -> (0.812, 3); "—" -> nan."""
    text = text.strip()
    match = re.search(r"[-+]?\d+(?:\.(\d+))?(?:[eE][-+]?\d+)?", text.replace("−", "-"))
    if match is None:
        return math.nan, 0
    value, decimals = float(match.group(0)), len(match.group(1) or "")
    if text.endswith("%"):
        return value / 100, decimals + 2
    return value, decimals


def _close(shown: tuple[float, int], value: float) -> bool:
    number, decimals = shown
    if math.isnan(number) or math.isnan(value):
        return math.isnan(number) and math.isnan(value)
    return abs(number - value) <= 0.5 * 10 ** -decimals + 1e-9


def _slider(box: Any, label: re.Pattern) -> Any:
    slider = box.locator(".widget-slider").filter(has=box.page.locator(".widget-label", has_text=label))
    assert slider.count() == 1, f"expected one slider labelled {label.pattern!r}, found {slider.count()}"
    return slider


def _slider_value(slider: Any) -> float | None:
    """The slider's value as shown (`.widget-readout`), or None while the handle's aria-valuetext
    still disagrees with it. (noUiSlider leaves aria-valuenow at the initial value after a keyboard
    move; aria-valuetext follows the handle.)"""
    readout = _number(slider.locator(".widget-readout").text_content() or "")
    aria = slider.locator(".noUi-handle").get_attribute("aria-valuetext")
    if aria is not None and not _close(readout, float(aria)):
        return None
    return round(readout[0], readout[1])


def _settled_value(page: Any, slider: Any, differs_from: float | None = None, timeout: float = 10) -> float | None:
    """The slider's value once readout and handle agree (and it differs from `differs_from`)."""
    def value() -> tuple[float] | None:
        v = _slider_value(slider)
        return (v,) if v is not None and v != differs_from else None
    got = poll_page(page, value, timeout)
    return got[0] if got else None


def _state(box: Any) -> dict[str, Any]:
    """What the explorer shows now: the table's numbers (text, value, decimals), its HTML, the plot."""
    cells = {}
    for key in ("acc", "di", "deo", "ratio", "setting-ratio", "setting-alpha", "setting-lam"):
        loc = box.locator(f".fap-{key}")
        if loc.count():
            text = loc.first.text_content() or ""
            cells[key] = (text, *_number(text))
    table = box.locator(".widget-html")
    images = box.locator(".widget-output img")
    return {"cells": cells, "table": table.last.inner_html() if table.count() else "",
            "img": images.last.get_attribute("src") if images.count() else None,
            "status": box.locator(".fap-status, .fap-error").all_text_contents()}


def _ready(state: dict[str, Any], before: dict[str, Any] | None) -> bool:
    complete = all(k in state["cells"] for k in METRICS) and not any("comput" in s for s in state["status"])
    return complete and (before is None or state["table"] != before["table"])


# ----------------------------------------------------------------------------- tests


def test_jupyterlab_renders_and_updates_a_widget(session):
    """The harness and the widget stack alone (no fapkit): an IntSlider moved by keyboard updates an HTML label."""
    s = session
    box = _open_and_run(s, "toy_slider.ipynb", TOY, timeout=120)
    with s.diagnosed():
        assert box.locator(".toy-square").text_content() == "9"
        handle = box.locator(".noUi-handle")
        handle.focus()
        handle.press("ArrowRight")
        if not poll_page(s.page, lambda: box.locator(".toy-square").text_content() != "9", 30):
            s.fail("the HTML label did not update after the slider moved: widget messages do not reach the kernel "
                   "or its updates do not reach the page")
        n = int(box.locator(".widget-readout").text_content())
        assert n == 4 and box.locator(".toy-square").text_content() == str(n * n)
        assert not s.console.errors(), s.console.report()


def test_pruning_explorer_in_jupyterlab(session, workspace, monkeypatch):
    """Notebook 02 with INTERACTIVE=True: the explorer renders, and moving the ratio and α sliders
    updates the table to what `fapkit.runner.run` gives for the values on the sliders, and the plot."""
    s = session
    if workspace["params"] is None:
        pytest.fail(f"{NOTEBOOK} is missing", pytrace=False)
    monkeypatch.chdir(workspace["root"])  # resolve relative paths (data cache, ...) as the kernel does
    t0 = time.monotonic()
    box = _open_and_run(s, NOTEBOOK.name, EXPLORER, timeout=RUN_ALL_TIMEOUT)
    with s.diagnosed():
        _explore(s, box, workspace)
    print(f"browser test wall time {time.monotonic() - t0:.0f} s; screenshots in {ARTIFACTS}")


def _explore(s: Session, box: Any, workspace: dict[str, Any]) -> None:
    page, params = s.page, workspace["params"]
    run_settings = {kw: params[name] for name, kw in RUN_KEYWORDS.items() if name in params}
    run_settings.setdefault("preset", "smoke")
    run_settings.setdefault("runs_dir", str(workspace["root"] / "runs"))  # the kernel's cwd is the root
    lam = params.get("LAM", 1.0)

    box.scroll_into_view_if_needed()
    before = poll_page(page, lambda: (lambda st: st if _ready(st, None) and st["img"] else None)(_state(box)), 60)
    if before is None:
        s.fail(f"the explorer rendered but its metrics table / plot never filled: {_state(box)}")
    screenshot(page, "explorer-1-before")

    from fapkit.runner import run

    def check(state: dict[str, Any], ratio: float, alpha: float, step: str) -> None:
        runs = Path(run_settings["runs_dir"])
        existing = {str(p) for p in runs.iterdir()} if runs.exists() else set()
        result = run("faprune", ratio=ratio, alpha=alpha, lam=lam, **run_settings)
        cache = "hit" if str(result.run_dir) in existing else "MISS"  # a miss: the kernel ran other settings
        want = {"acc": result.acc, "di": result.di, "deo": result.deo, "ratio": result.ratio}
        shown = {k: state["cells"][k] for k in (*METRICS, "ratio") if k in state["cells"]}
        wrong = {k: (shown[k][0], want[k]) for k in shown if not _close(shown[k][1:], want[k])}
        if wrong:
            s.fail(f"{step}: the table shows {shown} but fapkit.runner.run('faprune', ratio={ratio}, "
                   f"alpha={alpha}, lam={lam}, {run_settings}) gives {want} (run cache {cache}: "
                   f"{result.run_dir}); mismatched (shown, expected): {wrong}")
        for key, value in (("setting-ratio", ratio), ("setting-alpha", alpha), ("setting-lam", lam)):
            if key in state["cells"] and not _close(state["cells"][key][1:], value):
                s.fail(f"{step}: the table says it shows {key}={state['cells'][key][0]}, the slider reads {value}")
        print(f"{step}: ratio={ratio} alpha={alpha} lam={lam}: shown {({k: v[0] for k, v in shown.items()})} "
              f"== Python (run cache {cache})")

    def move(slider: Any, key: str, step: str, prior: dict[str, Any]) -> tuple[dict[str, Any], float]:
        old = _settled_value(page, slider)
        handle = slider.locator(".noUi-handle")
        handle.scroll_into_view_if_needed()
        handle.focus()
        handle.press(key)  # one key press = one release = one run (continuous_update=False)
        new = _settled_value(page, slider, differs_from=old)
        if new is None:
            s.fail(f"{step}: pressing {key} on the slider handle did not move it from {old}")
        t = time.monotonic()
        state = poll_page(page, lambda: (lambda st: st if _ready(st, prior) else None)(_state(box)), UPDATE_TIMEOUT)
        if state is None:
            now = _state(box)
            s.fail(f"{step}: the metrics table did not update within {UPDATE_TIMEOUT:.0f} s after the slider "
                   f"moved {old} -> {new}; table now: {now['cells']} status {now['status']}")
        # the table is final; the plot is redrawn right after it, then the kernel goes idle
        poll_page(page, lambda: _state(box)["img"] not in (None, prior["img"]) and kernel_idle(page), 60)
        state = _state(box)
        if not _ready(state, prior):
            s.fail(f"{step}: the table changed again while the plot was redrawn: {state['cells']}")
        print(f"{step}: slider {old} -> {new}, table and plot updated in {time.monotonic() - t:.1f} s")
        box.scroll_into_view_if_needed()
        return state, new

    ratio_slider = _slider(box, re.compile(r"ratio", re.I))
    alpha_slider = _slider(box, re.compile(r"α|alpha", re.I))
    ratio0, alpha0 = _settled_value(page, ratio_slider), _settled_value(page, alpha_slider)
    assert (ratio0, alpha0) == (params.get("RATIO", 0.8), params.get("ALPHA", 0.0)), (ratio0, alpha0)
    check(before, ratio0, alpha0, "initial")

    after_ratio, ratio1 = move(ratio_slider, "ArrowLeft", "ratio", before)
    screenshot(page, "explorer-2-after-ratio")
    check(after_ratio, ratio1, alpha0, "after the ratio move")
    if after_ratio["img"] == before["img"]:
        s.fail("after the ratio move: the table updated but the plot image did not change")

    after_alpha, alpha1 = move(alpha_slider, "ArrowRight", "alpha", after_ratio)
    screenshot(page, "explorer-3-after-alpha")
    check(after_alpha, ratio1, alpha1, "after the α move")
    same_numbers = all(after_alpha["cells"][k][0] == after_ratio["cells"][k][0] for k in METRICS)
    if after_alpha["img"] == after_ratio["img"] and not same_numbers:
        s.fail("after the α move: the numbers changed but the plot image did not")

    errors = [e for e in s.console.errors() if "favicon" not in e]
    assert not errors, s.console.report()
