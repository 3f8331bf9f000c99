"""Run the notebook series headless with papermill.

``python -m fapkit.series --preset quick`` executes every ``notebooks/0*.ipynb`` in order into
``build/notebooks/`` (never over the sources), with the repository root as working directory, so
tables land in ``results/`` and figures in ``figures/`` as the notebooks save them. Each notebook
gets ``PRESET``, ``PROGRESS=False`` and ``INTERACTIVE=False`` (those it declares) plus any extra parameters it
declares in its ``parameters`` cell; the wall time of each notebook is printed. ``--workers N``
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


def run_series(preset: str = "quick", *, notebooks_dir: str | Path = "notebooks",
               build_dir: str | Path = "build/notebooks", parameters: Mapping[str, Any] | None = None,
               only: Sequence[str] | None = None, root: str | Path | None = None,
               kernel_name: str = "python3", threads: int | None = None, workers: int | None = None,
               scheduler: str | None = None) -> list[Path]:
    """Execute the notebooks with papermill into `build_dir`; return the executed notebooks' paths.

    Every notebook receives PRESET, PROGRESS=False and INTERACTIVE=False if it declares them, and
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
    base = {"PRESET": preset, "PROGRESS": False, "INTERACTIVE": False}
    extra = dict(parameters or {})
    check_parameters({**base, **extra})
    declared = {path: _declared(path) for path in paths}
    unknown = set(extra) - set().union(*declared.values())
    if unknown:
        raise ValueError(f"no notebook declares parameter(s) {sorted(unknown)}")

    with _thread_env(threads), _cluster(workers, scheduler) as address:
        if address is not None:
            extra["SCHEDULER"] = address  # only the notebooks that declare it get it
        return _execute(paths, out_dir, cwd, base, extra, declared, kernel_name, preset)


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
             declared: dict[Path, set[str]], kernel_name: str, preset: str) -> list[Path]:
    """Run each notebook in turn with papermill, printing its wall time."""
    import papermill

    outputs: list[Path] = []
    total = time.perf_counter()
    for path in paths:
        # Only what the notebook declares: papermill would inject any name, and an undeclared one is unused.
        params = {k: v for k, v in {**base, **extra}.items() if k in declared[path]}
        target = out_dir / path.name
        start = time.perf_counter()
        try:
            # The kernel's own log level ERROR: ipykernel warns on every start that its local TCP sockets are
            # unencrypted, a note about the transport the series chose, not something a reader can act on.
            papermill.execute_notebook(str(path), str(target), parameters=params, kernel_name=kernel_name,
                                       cwd=str(cwd), progress_bar=False, extra_arguments=_KERNEL_ARGUMENTS)
        except Exception:
            print(f"{path.name}: FAILED after {time.perf_counter() - start:.1f} s; see {target}", flush=True)
            raise
        print(f"{path.name}: {time.perf_counter() - start:.1f} s", flush=True)
        outputs.append(target)
    print(f"series ({preset}): {time.perf_counter() - total:.1f} s for {len(outputs)} notebooks", flush=True)
    return outputs


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m fapkit.series --preset quick [--only 03 04] [--workers N | --scheduler ADDR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fapkit.series",
                                     description="Execute the notebook series headless.")
    parser.add_argument("--preset", default="quick", choices=PRESETS)
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
        run_series(args.preset, notebooks_dir=args.notebooks_dir, build_dir=args.build_dir, only=args.only,
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
