"""Helpers for the real-browser test (tests/test_browser.py): notebook preparation, a throw-away
JupyterLab server, and headless Debian Chromium driven by Playwright.

Nothing here downloads anything: Chromium is Debian's (`apt-get install chromium`, done by .ci/run),
JupyterLab and the widget extension come from the project's virtualenv.
"""
from __future__ import annotations

import ast
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("FAPKIT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "build" / "browser"          # screenshots, logs (git-ignored via build/)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
                 "--disable-dev-shm-usage"]


# ----------------------------------------------------------------------------- notebooks


def parameters_cell_index(nb: dict[str, Any]) -> int:
    """Index of the cell tagged `parameters` (papermill's convention)."""
    for i, cell in enumerate(nb["cells"]):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    raise ValueError("the notebook has no cell tagged 'parameters'")


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def notebook_parameters(nb: dict[str, Any]) -> dict[str, Any]:
    """The literal assignments of the parameters cell, e.g. {"PRESET": "quick", "RATIO": 0.8}."""
    tree = ast.parse(_source(nb["cells"][parameters_cell_index(nb)]))
    params: dict[str, Any] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    params[target.id] = ast.literal_eval(node.value)  # type: ignore[arg-type]
                except ValueError:
                    params[target.id] = None  # not a literal (e.g. Path("runs")); still a parameter name
    return params


def directory_parameters(params: dict[str, Any]) -> list[str]:
    """Parameter names that name output folders: RUNS_DIR, RESULTS_DIR, FIGURES_DIR, OUT_DIR, ..."""
    return [name for name in params if name.upper().endswith("_DIR") or name.upper() in ("RUNS", "RESULTS", "FIGURES")]


def prepare_notebook(src: Path, dst: Path, overrides: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Copy `src` to `dst` the way papermill injects parameters, and return the effective parameters.

    A cell tagged `injected-parameters` follows the `parameters` cell and sets `overrides`; every
    output-folder parameter (see `directory_parameters`) is pointed at `folder/<name lower>` unless
    overridden. Outputs and saved widget state are dropped and the kernel is the venv's `python3`, so
    JupyterLab opens a clean notebook without a kernel-selection dialog.
    """
    nb = json.loads(Path(src).read_text(encoding="utf-8"))
    params = notebook_parameters(nb)
    values = {name: str(folder / name.lower()) for name in directory_parameters(params)}
    values.update(overrides)
    lines = ["# Parameters injected by tests/test_browser.py"] + [f"{k} = {v!r}" for k, v in values.items()]
    injected = {"cell_type": "code", "execution_count": None, "id": "injected-parameters",
                "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "source": "\n".join(lines)}
    cells = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    idx = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    cells.insert(idx + 1, injected)
    for cell in cells:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["cells"] = cells
    nb.setdefault("metadata", {})["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                                    "language": "python"}
    nb["metadata"].pop("widgets", None)
    if nb.get("nbformat_minor", 0) < 5:  # cell ids (the injected cell has one) need nbformat 4.5
        nb["nbformat_minor"] = 5
        for i, cell in enumerate(nb["cells"]):
            cell.setdefault("id", f"cell-{i}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
    effective = dict(params)
    effective.update(values)
    return effective


def code_cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "id": secrets.token_hex(4),
            "metadata": {"tags": tags or []}, "outputs": [], "source": source}


def write_notebook(path: Path, sources: list[str], parameters: str | None = None) -> Path:
    """A minimal nbformat-4.5 notebook of code cells (the first tagged `parameters` if given)."""
    cells = ([code_cell(parameters, ["parameters"])] if parameters is not None else []) + \
        [code_cell(s) for s in sources]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- JupyterLab server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc); kernels run in their own session, so killpg misses them."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LabServer:
    """`jupyter lab` on 127.0.0.1:<free port> with a random token, rooted at `root`.

    Jupyter's config/data/runtime folders, the lab's user settings and workspaces and IPython's
    profile all live under `state` so nothing of the developer's own setup leaks in; the kernel is
    the venv's Python (`import fapkit` works: it is installed editable there). Use as a context
    manager: the server (and the kernels it started) is stopped whatever happens.
    """

    def __init__(self, root: Path, state: Path, log: Path, startup_timeout: float = 120.0):
        self.root, self.state, self.log_path = Path(root), Path(state), Path(log)
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._pids: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, notebook: str, workspace: str | None = None) -> str:
        """The notebook in JupyterLab; a named workspace starts with no other tabs restored."""
        where = f"/lab/workspaces/{workspace}" if workspace else "/lab"
        return f"{self.url}{where}/tree/{notebook}?token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every kernel session (frees CPU and memory between tests)."""
        try:
            for sess in self.api("/api/sessions"):
                self.api(f"/api/sessions/{sess['id']}", method="DELETE")
        except Exception as err:
            print(f"could not shut down kernels: {err}")

    def _settings(self) -> Path:
        """User settings: no news/update checks (no network), no toasts asking about them."""
        settings = self.state / "lab-settings"
        notif = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notif.parent.mkdir(parents=True, exist_ok=True)
        notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        return settings

    def start(self) -> "LabServer":
        jupyter = Path(sys.executable).with_name("jupyter")
        if not jupyter.exists():
            raise RuntimeError(f"{jupyter} not found: run the tests with the project's virtualenv (make test)")
        for sub in ("config", "data", "runtime", "ipython", "workspaces"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(JUPYTER_CONFIG_DIR=str(self.state / "config"), JUPYTER_DATA_DIR=str(self.state / "data"),
                   JUPYTER_RUNTIME_DIR=str(self.state / "runtime"), IPYTHONDIR=str(self.state / "ipython"),
                   JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1",
                   PATH=str(jupyter.parent) + os.pathsep + env.get("PATH", ""))
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_TOKEN", None)
        # `import fapkit` in the kernel: the venv has it editable; also put the repo on the path in case
        # the kit was installed non-editable from another checkout.
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        cmd = [str(jupyter), "lab", "--no-browser", "--ServerApp.open_browser=False",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
               "--ServerApp.terminals_enabled=False", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               f"--LabApp.user_settings_dir={self._settings()}",
               "--LabApp.extension_manager=readonly",
               f"--LabApp.workspaces_dir={self.state / 'workspaces'}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            cmd.append("--ServerApp.allow_root=True")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        return self

    def api(self, path: str, method: str = "GET", timeout: float = 10.0) -> Any:
        sep = "&" if "?" in path else "?"
        req = urllib.request.Request(f"{self.url}{path}{sep}token={self.token}", method=method,
                                     data=b"" if method in ("POST", "DELETE") else None)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode} during startup:\n{self.log_tail()}")
            try:
                self.api("/api/status", timeout=5)
                return
            except (urllib.error.URLError, ConnectionError, OSError, ValueError) as err:
                last = err
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer /api/status within {self.startup_timeout:.0f} s "
                           f"(last error: {last}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def remember_children(self) -> None:
        """Note the server's descendants (its kernels run in their own sessions) so `stop` can end them."""
        if self.proc is not None and self.proc.poll() is None:
            self._pids.update(_descendants(self.proc.pid))

    def stop(self) -> None:
        if self.proc is None:
            return
        self.remember_children()
        pid = self.proc.pid
        if self.proc.poll() is None:
            try:  # graceful: the server shuts its kernels down
                self.api("/api/shutdown", method="POST", timeout=5)
            except Exception:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)  # the server's own group (start_new_session: its pgid is its pid)
            except (ProcessLookupError, PermissionError):
                pass
            for child in list(self._pids):
                if _alive(child):
                    try:
                        os.kill(child, sig)
                    except (ProcessLookupError, PermissionError):
                        pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and (self.proc.poll() is None or any(map(_alive, self._pids))):
                time.sleep(0.1)
            if self.proc.poll() is not None and not any(map(_alive, self._pids)):
                break
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._log is not None:
            self._log.close()
        self.proc = None

    def __enter__(self) -> "LabServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ----------------------------------------------------------------------------- browser


class ConsoleLog:
    """Browser console messages and uncaught page errors, for assertion messages."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("console", lambda msg: self.entries.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda err: self.entries.append(f"[pageerror] {err}"))
        page.on("crash", lambda _page: self.entries.append("[crash] the page crashed"))

    def errors(self) -> list[str]:
        return [e for e in self.entries if e.startswith(("[error]", "[pageerror]", "[crash]"))]

    def report(self, limit: int = 40) -> str:
        errs = self.errors()
        shown = errs[-limit:] or ["(no console errors)"]
        rest = [e for e in self.entries if e not in errs][-10:]
        return ("browser console errors:\n  " + "\n  ".join(shown) +
                ("\nlast other console messages:\n  " + "\n  ".join(rest) if rest else ""))


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                                      timeout=60_000)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    try:
        page.screenshot(path=str(path), full_page=False, timeout=20_000)
    except Exception as err:  # a screenshot must never mask the real failure
        print(f"screenshot {name} failed: {err}")
        return path
    print(f"screenshot: {path}")
    return path


# ----------------------------------------------------------------------------- JupyterLab in the page

NOTEBOOK_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"   # the notebook tab in front
STDERR_ATTR = '[data-mime-type="application/vnd.jupyter.stderr"]'
STDERR = f".jp-OutputArea-output{STDERR_ATTR}"
WIDGET_ERRORS = ("Error displaying widget", "model not found", "Failed to load model class",
                 "Could not create a view")


class BrowserFailure(AssertionError):
    """A failure seen in the browser; the message carries console errors and a screenshot path."""


def kernel_idle(page: Any) -> bool:
    """The status bar's kernel item reads "<kernel name> | Idle" (not "No Kernel | Idle")."""
    return page.locator(".jp-StatusBar-Item", has_text=re.compile(r"^(?!\s*No Kernel).*\|\s*Idle\b")).count() > 0


def prompts(page: Any) -> list[str]:
    return [p.strip() for p in page.locator(f"{NOTEBOOK_PANEL} .jp-CodeCell .jp-InputArea-prompt").all_text_contents()]


def open_notebook(page: Any, lab: LabServer, name: str, workspace: str | None = None,
                  timeout: float = 120.0) -> None:
    """Open `name` in JupyterLab (in its own workspace if given) and wait until its kernel is idle."""
    page.goto(lab.lab_url(name, workspace), wait_until="domcontentloaded", timeout=timeout * 1000)
    page.locator(f"{NOTEBOOK_PANEL} .jp-Cell").first.wait_for(state="attached", timeout=timeout * 1000)
    if not poll_page(page, lambda: kernel_idle(page), timeout):
        raise BrowserFailure(f"the kernel of {name} never became idle within {timeout:.0f} s")


def run_all_cells(page: Any) -> None:
    """Run → Run All Cells, through the menu bar as a user would."""
    page.locator(f"{NOTEBOOK_PANEL} .jp-Cell").first.click()  # make the notebook the current widget
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).first.click()
    item = page.locator('.lm-Menu-item[data-command="runmenu:run-all"], '
                        '.lm-Menu-item[data-command="notebook:run-all-cells"]').first
    item.click()


def poll_page(page: Any, predicate: Any, timeout: float, interval_ms: int = 250) -> Any:
    """Call `predicate` until it returns something truthy (returned) or `timeout` s pass (None),
    sleeping in the page between tries so Playwright keeps delivering console events."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        page.wait_for_timeout(interval_ms)


def wait_for_widget(page: Any, selector: str, timeout: float) -> Any:
    """Wait until `selector` (a rendered widget) exists in an output area; fail fast on widget errors
    or when Run All stopped (kernel idle, nothing queued) without rendering it."""
    widget = page.locator(NOTEBOOK_PANEL).locator(selector)
    deadline = time.monotonic() + timeout
    settled_since: float | None = None
    while time.monotonic() < deadline:
        if widget.count():
            widget.last.wait_for(state="attached")
            return widget.last
        body = "\n".join(page.locator(f"{NOTEBOOK_PANEL} .jp-OutputArea-output").all_text_contents())
        bad = [msg for msg in WIDGET_ERRORS if msg in body]
        if bad:
            raise BrowserFailure(f"the notebook shows a widget error ({', '.join(bad)}):\n"
                                 + _excerpt(body, bad[0]))
        marks = prompts(page)
        done = kernel_idle(page) and not any("*" in m for m in marks) and any(re.search(r"\d", m) for m in marks)
        if done:
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since > 5.0:
                panel = page.locator(NOTEBOOK_PANEL)
                errors = "\n".join(panel.locator(STDERR).all_text_contents())[-3000:]
                outputs = "\n".join(panel.locator(f".jp-OutputArea-output:not({STDERR_ATTR})")
                                     .all_text_contents())[-1500:]
                raise BrowserFailure("Run All finished without rendering the widget "
                                     f"({selector}); prompts {marks}; stderr outputs:\n{errors}\n"
                                     f"last outputs (a widget shown as plain text means its JupyterLab "
                                     f"extension did not load):\n{outputs}")
        else:
            settled_since = None
        page.wait_for_timeout(500)
    raise BrowserFailure(f"no widget ({selector}) within {timeout:.0f} s; prompts {prompts(page)}")


def _excerpt(text: str, needle: str, width: int = 600) -> str:
    i = text.find(needle)
    return text[max(0, i - width // 2): i + width // 2] if i >= 0 else text[-width:]
