"""Run a grid of settings, in this process or as Dask tasks: one task per cached stage, each key once.

``grid(method=["faprune", "sgdp"], seed=[0, 1, 2], ratio=0.8)`` builds the specs (dicts of
`fapkit.run` keyword arguments with a ``method``); ``sweep(specs)`` runs them and returns one
`RunResult` per spec, in the specs' order.

The runs are content-addressed stages that depend on each other only through their parent stage
(`fapkit.cache.stage_chain`), so a grid is a task graph with stable keys: with a Dask client,
every stage that is not cached yet becomes one task keyed by its run folder's name
(``normal-<key>``), with its parent's future as an argument. Dask runs a parent before its
children and a shared parent (the dense model of SGDP, LMW and FAPrune) once. Workers read and
write ``runs_dir`` and the data caches through the filesystem: on a cluster they must be on a disk
that the client and every worker mount at the same path (see docs/sweeps.md).
"""
from __future__ import annotations

import itertools
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable, Iterator, Mapping, Sequence

from .cache import RunResult, is_cached, load_result, stage_chain, stage_dir
from .config import RunConfig, make_config
from .records import stable_hash
from .runner import run

if TYPE_CHECKING:  # distributed is imported only when a sweep uses it (it takes a second to import)
    from distributed import Client, LocalCluster

# fapkit.run arguments a spec may not hold: the sweep owns where runs live and the progress bar, and
# a result is rebuilt from its cached record, which runs of the user's own model or loaders lack.
_SWEEP_ARGUMENTS = ("runs_dir", "progress")
_UNCACHED_ARGUMENTS = ("model", "train", "valid", "test")


def grid(**axes: Any) -> list[dict[str, Any]]:
    """The cartesian product of the list- or tuple-valued axes, every other value broadcast.

    The first axis varies slowest, so ``grid(method=["faprune", "sgdp"], seed=[0, 1, 2], ratio=0.8)``
    gives faprune with seeds 0, 1, 2, then sgdp with seeds 0, 1, 2 (each with ratio 0.8).
    """
    values = []
    for name, value in axes.items():
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"grid axis {name} is empty; give at least one value")
            values.append(list(value))
        else:
            values.append([value])
    return [dict(zip(axes, combo)) for combo in itertools.product(*values)]


@dataclass(frozen=True)
class _Job:
    """One spec, validated: its method, the other `fapkit.run` settings and the config they make."""

    label: str                         # "spec 3 {...}", for error messages
    method: str
    settings: dict[str, Any]
    cfg: RunConfig

    @property
    def chain(self) -> list[tuple[str, str]]:
        return stage_chain(self.method, self.cfg)


def sweep(specs: Sequence[Mapping[str, Any]] | Mapping[Hashable, Sequence[Mapping[str, Any]]], *,
          client: Client | None = None, scheduler: str | None = None, workers: int | None = None,
          runs_dir: str | Path = "runs", progress: bool = False, models: bool = False) -> Any:
    """Run every spec (a dict of `fapkit.run` keyword arguments with a ``method``); results in spec order.

    Neither `client`, `scheduler` nor `workers`: in this process, one `fapkit.run` after another.
    `client` (a `distributed.Client`) or `scheduler` (its address, e.g. ``"tcp://host:8786"``,
    connected for this call): one task per stage not yet cached, on that cluster. ``workers=N``: a
    local cluster of N single-threaded worker processes, started for this sweep and closed after it.
    Results carry no model unless ``models=True`` (then each is loaded from `runs_dir`). `progress`
    shows a bar counting finished runs. A failing run raises its error, naming the spec.

    `specs` may also be a mapping of named grids (``{"table 2": [...], "table 3": [...]}``): all of
    them run as one sweep (shared stages once) and the results come back under the same names.
    """
    if isinstance(specs, Mapping):
        groups = {name: list(group) for name, group in specs.items()}
        flat = iter(sweep([spec for group in groups.values() for spec in group], client=client, scheduler=scheduler,
                          workers=workers, runs_dir=runs_dir, progress=progress, models=models))
        return {name: [next(flat) for _ in group] for name, group in groups.items()}
    if sum(x is not None for x in (client, scheduler, workers)) > 1:
        raise ValueError("pass one of client= (a running Dask cluster), scheduler= (its address) or "
                         "workers= (start a local one), not several")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    jobs = [_job(i, spec) for i, spec in enumerate(specs)]  # every spec validated before anything runs
    from tqdm.auto import tqdm

    with tqdm(total=len(jobs), desc="runs", disable=not progress) as bar:
        if workers is not None or scheduler is not None:
            with _cluster_client(workers, scheduler) as connected:
                return _on_cluster(jobs, connected, Path(runs_dir), bar, models)
        if client is not None:
            return _on_cluster(jobs, client, Path(runs_dir), bar, models)
        return _in_process(jobs, Path(runs_dir), bar, models)


@contextmanager
def _cluster_client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client of a local cluster started now (`workers`) or of the running one at `scheduler`."""
    from distributed import Client

    if workers is not None:
        with local_cluster(workers) as cluster, Client(cluster) as local:
            yield local
    else:
        with Client(scheduler) as remote:
            yield remote


@contextmanager
def local_cluster(workers: int) -> Iterator[LocalCluster]:
    """A Dask cluster on this machine: `workers` processes of one thread each, no dashboard."""
    from distributed import LocalCluster

    # One thread per worker: a run's torch ops then use one core each, and N workers share N cores
    # without the oversubscription that N multi-threaded runs would cause. With the dashboard off the
    # scheduler still serves its health routes over HTTP, on 8787 unless told otherwise: any free
    # port instead, so that a second cluster (the series' and a sweep's) starts without a warning.
    # Dask's nannies run in this process and set OMP_NUM_THREADS=1 (and the like) in *our* environment
    # before spawning the workers; put it back, or kernels and runs started here later get one thread.
    saved = dict(os.environ)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        os.environ.clear()
        os.environ.update(saved)
        yield cluster


def _job(index: int, spec: Mapping[str, Any]) -> _Job:
    if not isinstance(spec, Mapping):
        raise TypeError(f"spec {index} must be a dict of fapkit.run settings, got {type(spec).__name__} {spec!r}")
    label = f"spec {index} {dict(spec)!r}"
    if "method" not in spec:
        raise ValueError(f"{label} has no 'method'; each spec names its method")
    for name in _SWEEP_ARGUMENTS:
        if name in spec:
            raise ValueError(f"{label} sets {name!r}; pass {name}= to sweep() instead, for all specs")
    for name in _UNCACHED_ARGUMENTS:
        if name in spec:
            raise ValueError(f"{label} sets {name!r}; a sweep runs cached stages only, so use "
                             f"fapkit.run(..., {name}=...) for your own model or loaders")
    settings = {k: v for k, v in spec.items() if k != "method"}
    with _naming(label):
        cfg = make_config(spec["method"], **settings)
    return _Job(label, spec["method"], settings, cfg)


@contextmanager
def _naming(label: str) -> Iterator[None]:
    """Re-raise an error as the same type, its message prefixed by `label` (which spec failed)."""
    try:
        yield
    except Exception as err:
        try:
            named = type(err)(f"{label}: {err}")
        except Exception:  # an exception type whose constructor takes other arguments
            named = RuntimeError(f"{label}: {type(err).__name__}: {err}")
        raise named from err


def _in_process(jobs: list[_Job], runs_dir: Path, bar: Any, models: bool) -> list[RunResult]:
    """Today's path: one `fapkit.run` after another in this process."""
    results = []
    for job in jobs:
        with _naming(job.label):
            result = run(job.method, runs_dir=runs_dir, **job.settings)
        if not models:
            result.model = None  # the same result whichever way the sweep ran
        results.append(result)
        bar.update()
    return results


def _on_cluster(jobs: list[_Job], client: Client, runs_dir: Path, bar: Any, models: bool) -> list[RunResult]:
    """Submit one task per uncached stage (parents first), wait for them, rebuild results from records."""
    from distributed import as_completed

    finals = _submit(jobs, client, runs_dir)
    waiting: dict[str, list[_Job]] = {}  # task key of a job's own stage -> the jobs that wait for it
    for job, final in zip(jobs, finals):
        if final is None:
            bar.update()  # cached: nothing to run
        else:
            waiting.setdefault(final.key, []).append(job)
    unique = list({f.key: f for f in finals if f is not None}.values())
    try:
        for future in as_completed(unique):
            if future.status != "finished":
                with _naming(waiting[future.key][0].label):
                    future.result()  # raises the task's error here, on the client
            bar.update(len(waiting[future.key]))
    except BaseException:
        client.cancel(unique)  # stop what nobody waits for any more
        raise
    results = []
    for job in jobs:
        with _naming(job.label):
            results.append(load_result(job.method, job.cfg, stage_dir(runs_dir, *job.chain[-1]), model=models))
    return results


def _submit(jobs: Sequence[_Job], client: Client, runs_dir: Path) -> list[Any]:
    """One task per stage not yet cached, parents first; per job the future of its own stage (None: cached).

    Equal stages (a shared parent, or the same spec twice) get one task. Tasks are submitted in
    the jobs' order, which is the order Dask starts them in when workers are busy.
    """
    # Workers may run in another working directory: give them absolute paths, and the client's
    # directory for the settings that stay relative because they are part of the cache key (root).
    runs_abs, cwd = str(runs_dir.resolve()), os.getcwd()
    futures: dict[str, Any] = {}  # run-folder name -> its task's future: one task per stage key
    # A task's key is its run folder's name plus the runs folder: Dask deduplicates equal keys, so
    # the same stage in two runs folders (two sweeps on one cluster) must not share one task.
    where = stable_hash(runs_abs, length=8)
    finals = []
    for job in jobs:
        parent = None
        for stage, key in _uncached_suffix(job.chain, runs_dir):
            name = stage_dir(runs_dir, stage, key).name
            if name not in futures:
                futures[name] = client.submit(_stage_task, stage, job.settings, runs_abs, cwd, name, parent,
                                              key=f"{name}@{where}")
            parent = futures[name]
        finals.append(parent)
    return finals


class BackgroundSweep:
    """Specs submitted to a Dask cluster and not waited for: ask which are done, load those.

    What the slider explorer uses to precompute a grid while the user looks at the first result.
    ``BackgroundSweep(specs, client=client)`` submits at once (in the specs' order, so put the
    settings wanted first at the front); `done` never blocks; `result` waits for
    one spec and returns its `RunResult` (without the model unless ``models=True``), raising the
    run's error if it failed; `when_done` calls back (on a Dask thread) when it finishes.
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]], *, client: Client, runs_dir: str | Path = "runs",
                 models: bool = False) -> None:
        self.jobs = [_job(i, spec) for i, spec in enumerate(specs)]
        self.runs_dir = Path(runs_dir)
        self.models = models
        self.futures = _submit(self.jobs, client, self.runs_dir)

    def __len__(self) -> int:
        return len(self.jobs)

    def done(self, index: int) -> bool:
        """True once spec `index` is cached or its task has ended (finished or failed)."""
        future = self.futures[index]
        return future is None or future.done()

    def count_done(self) -> int:
        return sum(self.done(i) for i in range(len(self.jobs)))

    def result(self, index: int) -> RunResult:
        """Spec `index`'s result, waiting for its task if it is still running."""
        job, future = self.jobs[index], self.futures[index]
        with _naming(job.label):
            if future is not None:
                future.result()  # waits; raises the task's error
            return load_result(job.method, job.cfg, stage_dir(self.runs_dir, *job.chain[-1]), model=self.models)

    def when_done(self, index: int, callback: Any) -> None:
        """Call ``callback()`` once spec `index` is done: now if it already is, else from a Dask thread."""
        future = self.futures[index]
        if future is None or future.done():
            callback()
        else:
            future.add_done_callback(lambda _: callback())

    def cancel(self) -> None:
        """Cancel the tasks still pending (those already finished stay cached)."""
        pending = [f for f in self.futures if f is not None and not f.done()]
        if pending:
            pending[0].client.cancel(pending)


def _uncached_suffix(chain: list[tuple[str, str]], runs_dir: Path) -> list[tuple[str, str]]:
    """The stages of `chain` after its last cached one: what must still run, root first."""
    for i in range(len(chain) - 1, -1, -1):
        if is_cached(stage_dir(runs_dir, *chain[i])):
            return chain[i + 1:]
    return chain


def _stage_task(stage: str, settings: dict[str, Any], runs_dir: str, cwd: str, expected: str,
                parent: Any = None) -> dict[str, Any]:
    """One stage on a Dask worker; returns its JSON summary (never the model: it stays in runs_dir).

    `expected` is the stage's run-folder name as the client computed it. `parent` is the parent
    task's summary, unused: its future as an argument makes Dask run this task after the parent's,
    which `fapkit.run` then loads from the cache.
    """
    import torch

    torch.set_num_threads(1)  # one core per task; the worker's process count sets the parallelism
    _enter(cwd)
    name = stage_dir(runs_dir, *stage_chain(stage, make_config(stage, **settings))[-1]).name
    if name != expected:  # the key hashes the kit version: this worker runs another one
        raise RuntimeError(f"this worker would store the stage as {name}, the client expects {expected}: "
                           "install the same fapkit version on the client and every worker")
    return run(stage, runs_dir=runs_dir, **settings).summary()


def _enter(cwd: str) -> None:
    """Work in the client's directory, so that relative settings (the SynthFaces cache data/cache, a
    dataset root, weights) mean what they mean there. A worker runs one task at a time (one thread)
    and every task of a client asks for the same directory, so the worker simply stays there."""
    if os.getcwd() == cwd:
        return
    try:
        os.chdir(cwd)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"the client's working directory {cwd} does not exist on worker "
                                f"{socket.gethostname()}; runs/ and data/ must be on a disk that the client "
                                "and all workers mount at the same path (see docs/sweeps.md)") from err
