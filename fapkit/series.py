"""Run the notebook series headless with papermill.

``python -m fapkit.series --preset quick`` executes every ``notebooks/0*.ipynb`` in order into
``build/notebooks/`` (never over the sources), with the repository root as working directory, so
tables land in ``results/`` and figures in ``figures/`` as the notebooks save them. Each notebook
gets ``PRESET``, ``SCOPE`` (``--scope``: "demo", what ``make demo`` runs, or "full", ``make
reproduce``; `fapkit.plans`), ``PROGRESS=False`` and ``INTERACTIVE=False`` (those it declares) plus
any extra parameters it declares in its ``parameters`` cell.

Cost is stated in dense steps (DESIGN.md §14): the series first times the bench's dense step
(`fapkit.bench.masking.dense_step_ms`, a few seconds), prints one line as each notebook starts and
ends (runs in the cache, wall time, dense steps, runs computed, elapsed, an estimate of what is left
from the last series of the same preset and scope) and a summary against the plan's budget, and
writes ``results/series_<preset>_<scope>.json``. ``--workers N``
starts a local Dask cluster (N one-thread workers) for the series and gives its address to every
notebook that declares ``SCHEDULER``, whose sweeps then run there; ``--scheduler tcp://HOST:PORT``
gives a running cluster's address instead (see docs/sweeps.md).
Parameters are checked before any notebook starts (`fapkit.notebook.check_parameters`),
and again by each notebook's setup cell (`fapkit.notebook.setup`).
"""
from __future__ import annotations

import ast
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .config import PRESETS
from .notebook import check_parameters
from .plans import SCOPES, plan_of
from .records import load_json, save_json


def notebook_paths(notebooks_dir: str | Path = "notebooks", only: Iterable[str] | None = None) -> list[Path]:
    """The series' notebooks (``0*.ipynb``, sorted); `only` keeps those whose name starts with any given prefix."""
    folder = Path(notebooks_dir)
    paths = sorted(folder.glob("0*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks matching 0*.ipynb in {folder.resolve()}")
    if only is not None:
        prefixes = [str(p) for p in only]
        paths = [p for p in paths if any(p.stem.startswith(prefix) or p.name == prefix for prefix in prefixes)]
        if not paths:
            raise ValueError(f"no notebook in {folder} matches {prefixes}")
    return paths


def _declared(path: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(path)))


_KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def run_series(preset: str = "quick", *, scope: str = "demo", notebooks_dir: str | Path = "notebooks",
               build_dir: str | Path = "build/notebooks", parameters: Mapping[str, Any] | None = None,
               only: Sequence[str] | None = None, root: str | Path | None = None,
               kernel_name: str = "python3", threads: int | None = None, workers: int | None = None,
               scheduler: str | None = None) -> list[Path]:
    """Execute the notebooks with papermill into `build_dir`; return the executed notebooks' paths.

    Every notebook receives PRESET, SCOPE, PROGRESS=False and INTERACTIVE=False if it declares them, and
    those of `parameters` that its parameters cell declares (a name no notebook declares is an error).
    Notebooks run with `root` as working directory (default: the folder above `notebooks_dir`,
    i.e. the repository root). A failing cell stops the series with papermill's error; the
    partly executed notebook is left in `build_dir` for inspection.

    `threads` caps the CPU threads of each kernel (OMP_NUM_THREADS/MKL_NUM_THREADS, read by torch
    at import). On a machine shared with other jobs, 1 thread can be several times faster than
    torch's default, whose spinning worker threads then fight the other processes for cores.

    `workers` starts a local Dask cluster (that many one-thread worker processes) for the series and
    closes it afterwards; its address, or `scheduler`'s (a running cluster), becomes the SCHEDULER
    parameter of every notebook that declares one. Without either, SCHEDULER keeps its default
    (None: each notebook runs its grid in its own kernel).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    if workers is not None and scheduler is not None:
        raise ValueError("give workers (start a local Dask cluster) or scheduler (a running one's address), not both")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string such as 'tcp://HOST:PORT', got {scheduler!r}")
    if (workers is not None or scheduler is not None) and "SCHEDULER" in (parameters or {}):
        raise ValueError("SCHEDULER is set twice: by workers/scheduler and as a notebook parameter; give one")
    paths = notebook_paths(notebooks_dir, only)
    src_dir = Path(notebooks_dir).resolve()
    out_dir = Path(build_dir).resolve()
    if out_dir == src_dir:
        raise ValueError("build_dir must differ from notebooks_dir: executed notebooks never overwrite the sources")
    out_dir.mkdir(parents=True, exist_ok=True)
    cwd = Path(root).resolve() if root is not None else src_dir.parent
    base = {"PRESET": preset, "SCOPE": scope, "PROGRESS": False, "INTERACTIVE": False}
    extra = dict(parameters or {})
    check_parameters({**base, **extra})
    declared = {path: _declared(path) for path in paths}
    unknown = set(extra) - set().union(*declared.values())
    if unknown:
        raise ValueError(f"no notebook declares parameter(s) {sorted(unknown)}")

    with _thread_env(threads), _cluster(workers, scheduler) as address:
        if address is not None:
            extra["SCHEDULER"] = address  # only the notebooks that declare it get it
        return _execute(paths, out_dir, cwd, base, extra, declared, kernel_name, threads)


@contextmanager
def _cluster(workers: int | None, scheduler: str | None) -> Iterator[str | None]:
    """The scheduler address the notebooks get: a local cluster's for the series' duration, or `scheduler`."""
    if workers is None:
        yield scheduler
        return
    from .sweeps import local_cluster

    with local_cluster(workers) as cluster:
        print(f"Dask: {workers} local worker(s) at {cluster.scheduler_address}", flush=True)
        yield cluster.scheduler_address


@contextmanager
def _thread_env(threads: int | None) -> Iterator[None]:
    """Set the thread-count variables the kernels inherit, and restore them afterwards."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    if threads is not None:
        for name in names:
            os.environ[name] = str(threads)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _execute(paths: list[Path], out_dir: Path, cwd: Path, base: dict[str, Any], extra: dict[str, Any],
             declared: dict[Path, set[str]], kernel_name: str, threads: int | None) -> list[Path]:
    """Run each notebook in turn with papermill, printing where the series is; write its cost record."""
    import papermill

    preset, scope = base["PRESET"], base["SCOPE"]
    step_ms = _dense_step_ms(threads)
    print(f"series ({preset}, {scope}): {len(paths)} notebooks; dense step {step_ms:.1f} ms "
          "(fapkit.bench.masking.dense_step_ms, the unit of the costs below)", flush=True)
    runs_dir = cwd / str(extra.get("RUNS_DIR", "runs"))
    record = cwd / str(extra.get("RESULTS_DIR", "results")) / f"series_{preset}_{scope}.json"
    previous = _previous_costs(record)
    outputs: list[Path] = []
    costs: list[dict[str, Any]] = []
    total = time.perf_counter()
    for i, path in enumerate(paths, start=1):
        # Only what the notebook declares: papermill would inject any name, and an undeclared one is unused.
        params = {k: v for k, v in {**base, **extra}.items() if k in declared[path]}
        target = out_dir / path.name
        before = _finished_runs(runs_dir)
        guess = previous.get(path.stem)
        expected = f"; the last series took {guess * step_ms / 1e3:.0f} s here ({guess:,.0f} dense steps)" if guess else ""
        print(f"[{i}/{len(paths)}] {path.stem}: starting, {_runs(len(before))} in {runs_dir.name}/{expected}", flush=True)
        start = time.perf_counter()
        try:
            # The kernel's own log level ERROR: ipykernel warns on every start that its local TCP sockets are
            # unencrypted, a note about the transport the series chose, not something a reader can act on.
            papermill.execute_notebook(str(path), str(target), parameters=params, kernel_name=kernel_name,
                                       cwd=str(cwd), progress_bar=False, extra_arguments=_KERNEL_ARGUMENTS)
        except Exception:
            print(f"[{i}/{len(paths)}] {path.stem}: FAILED after {time.perf_counter() - start:.1f} s; see {target}",
                  flush=True)
            raise
        seconds = time.perf_counter() - start
        cost = {"notebook": path.stem, "seconds": round(seconds, 1), "dense_steps": round(seconds * 1e3 / step_ms),
                "runs_computed": len(_finished_runs(runs_dir) - before)}
        costs.append(cost)
        print(f"[{i}/{len(paths)}] {path.stem}: done in {seconds:.1f} s = {cost['dense_steps']:,} dense steps, "
              f"{_runs(cost['runs_computed'])} computed; elapsed {(time.perf_counter() - total) / 60:.1f} min"
              f"{_left(paths[i:], previous, step_ms)}", flush=True)
        outputs.append(target)
    seconds = time.perf_counter() - total
    summary = {"preset": preset, "scope": scope, "dense_step_ms": round(step_ms, 2), "seconds": round(seconds, 1),
               "dense_steps": round(seconds * 1e3 / step_ms), "budget_dense_steps": plan_of(preset, scope).budget_dense_steps,
               "notebooks": costs}
    print(f"series ({preset}, {scope}): {seconds:.1f} s for {len(outputs)} notebooks = {summary['dense_steps']:,} dense "
          f"steps of {step_ms:.1f} ms{_against_budget(summary)}", flush=True)
    if len(outputs) == len(notebook_paths(paths[0].parent)):  # a partial series (--only) is no estimate of the whole
        save_json(record, summary)
    return outputs


def _dense_step_ms(threads: int | None) -> float:
    """The bench's dense step in this process, at the kernels' thread count."""
    import torch

    from .bench.masking import dense_step_ms

    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return dense_step_ms(steps=10, warmup=2)
    finally:
        torch.set_num_threads(saved)


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _finished_runs(runs_dir: Path) -> set[str]:
    """The run folders of finished stages (`fapkit.cache.is_cached`: the record is written last)."""
    return {p.parent.name for p in runs_dir.glob("*/record.json")}


def _previous_costs(record: Path) -> dict[str, float]:
    """Dense steps per notebook of the last whole series with this record, for the estimates; {} if none."""
    try:
        return {c["notebook"]: float(c["dense_steps"]) for c in load_json(record)["notebooks"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _left(rest: list[Path], previous: dict[str, float], step_ms: float) -> str:
    if not rest:
        return ""
    known = [previous[p.stem] for p in rest if p.stem in previous]
    if len(known) < len(rest):
        left = f"{len(rest)} notebook{'s' if len(rest) > 1 else ''}"
        return f"; {left} left (no estimate: no earlier whole series of this preset and scope)"
    return f"; about {sum(known) * step_ms / 6e4:.0f} min left (the last series' {sum(known):,.0f} dense steps)"


def _against_budget(summary: dict[str, Any]) -> str:
    budget = summary["budget_dense_steps"]
    if budget is None:
        return ""
    verdict = "within" if summary["dense_steps"] <= budget else "OVER"
    return f"; budget {budget:,} dense steps: {verdict}"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m fapkit.series --preset quick [--scope full] [--only 03 04] [--workers N | --scheduler ADDR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fapkit.series",
                                     description="Execute the notebook series headless.")
    parser.add_argument("--preset", default="quick", choices=PRESETS)
    parser.add_argument("--scope", default="demo", choices=SCOPES,
                        help="demo: what make demo runs; full: every table over 3 seeds (make reproduce)")
    parser.add_argument("--notebooks-dir", default="notebooks")
    parser.add_argument("--build-dir", default="build/notebooks")
    parser.add_argument("--only", nargs="*", default=None, help="notebook name prefixes, e.g. 00 03_baselines")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per kernel (1 is often fastest on a machine shared with other jobs)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="run the notebooks' grids on a local Dask cluster of N one-thread workers")
    where.add_argument("--scheduler", default=None,
                       help="run the notebooks' grids on the running Dask scheduler at tcp://HOST:PORT")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="extra notebook parameter, a Python literal, e.g. -p RATIOS '[0.8, 0.9]'")
    args = parser.parse_args(argv)
    parameters = {name: _literal(value) for name, value in args.param}
    try:
        run_series(args.preset, scope=args.scope, notebooks_dir=args.notebooks_dir, build_dir=args.build_dir, only=args.only,
                   parameters=parameters, threads=args.threads, workers=args.workers, scheduler=args.scheduler)
    except (TypeError, ValueError, FileNotFoundError) as err:
        print(f"fapkit.series: error: {err}", file=sys.stderr)
        return 2
    return 0


def _literal(text: str) -> Any:
    """A command-line value as a Python literal (\"0.8\", \"[1, 2]\", \"True\"), else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


if __name__ == "__main__":
    raise SystemExit(main())
