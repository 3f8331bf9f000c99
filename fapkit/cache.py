"""The run cache: what a finished stage leaves in ``runs/`` and how it is found, keyed and read back.

Every stage of a method (`fapkit.registry`) is cached in ``runs/<stage>-<key>/`` (`stage_dir`):
``record.json`` (metrics, history, config, per-layer report) and ``model.pt`` (the plain model,
pruned weights = 0), written atomically (`fapkit.records`). The key (`stage_key`) hashes exactly
the settings the stage reads, its parent's key and the kit's version, so a changed setting never
reuses a stale result and equal settings always do. A stage depends on nothing but its parent
(`stage_chain`); processes sharing ``runs/`` serialise on one lock file per stage (`stage_lock`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn
from filelock import FileLock

from . import __version__
from .config import RunConfig, make_config
from .fairness.metrics import is_degenerate, is_near_constant
from .models import build_model
from .records import CHECKPOINT, load_json, load_torch, save_json, save_torch, stable_hash
from .registry import COMMON_FIELDS, KEY_DEFAULTS, parent_of, spec_of

RECORD, MODEL = "record.json", "model.pt"
#: The metrics a record keeps at its top level (the test split's); `from_record` reads them back.
_METRICS = ("acc", "di", "deo", "deo_max", "deo_mean", "deo_tpr", "groups", "degenerate", "near_constant",
            "group_acc_change", "acc_change_std", "max_excess_gap",  # these three: pruned stages only
            "group_names",  # named groups only (an intersection, a k-valued attribute)
            "adversary_status",  # stages that play (or start from) an adversarial game: `adversary_of`
            "undefined",  # metrics the test split cannot define, with the reason (`fapkit.training.evaluation.evaluate`)
            "at_chance")  # validation accuracy not above the majority-class rate (`fapkit.fairness.metrics.at_chance`)


@dataclass
class RunResult:
    """What a method returns: test-split metrics, achieved pruning ratio, history, model, config."""

    method: str
    config: RunConfig
    metrics: dict[str, Any]
    ratio: float                       # achieved fraction of prunable weights removed
    ratio_all: float                   # the same over all parameters
    history: list[dict[str, Any]]
    model: nn.Module | None = field(repr=False, default=None)
    run_dir: str | None = None
    seconds: float = 0.0               # this stage's own compute time (parents excluded); kept in the cache
    layers: list[dict[str, Any]] = field(default_factory=list, repr=False)  # one record per masked layer
    valid_metrics: dict[str, Any] = field(default_factory=dict, repr=False)  # the whole validation split
    # weight counts behind `ratio` and `ratio_all`: prunable_weights, kept_weights, parameters, kept_parameters
    mask_totals: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def acc(self) -> float:
        return self.metrics["acc"]

    @property
    def di(self) -> float:
        return self.metrics["di"]

    @property
    def deo(self) -> float:
        return self.metrics["deo"]

    @property
    def degenerate(self) -> bool:
        """A (nearly) constant predictor in some sensitive group: its DI/DEO are trivially 'fair'."""
        return bool(self.metrics.get("degenerate", is_degenerate(self.metrics["groups"])))

    @property
    def near_constant(self) -> bool:
        """Not degenerate, but a group's selection rate is within 0.05 of 0 or 1 (`fapkit.fairness.metrics.is_near_constant`)."""
        return bool(self.metrics.get("near_constant", is_near_constant(self.metrics["groups"])))

    @property
    def at_chance(self) -> bool:
        """Its validation accuracy is not above the majority-class rate (`fapkit.fairness.metrics.at_chance`): the
        model has not learnt the target, so its fairness says nothing of the method (False for records from before
        the flag)."""
        return bool(self.metrics.get("at_chance", False))

    @property
    def uninformed(self) -> bool:
        """The run's game (its own, or its parent's: Fair-SGDP/Fair-LMW) was played against an uninformed adversary.

        Its warm-up ended with a held-out advantage below ``warmup_share`` of what the starting
        predictions carry about z, though they carry more than chance (`fapkit.methods.adversarial.adversary_status`):
        the fairness term gave the generator no signal, so the run's fairness says nothing of the method.
        """
        return self.metrics.get("adversary_status") == "uninformed"

    def save(self, folder: str | Path, **options: Any) -> dict[str, Any]:
        """Write the run's deployable files into `folder` and return their manifest (`fapkit.export.save`).

        ``model.safetensors``, ``masks.safetensors``, ``weights.sparse.safetensors``, ``manifest.json``
        and, with ``onnx=True``, ``model.onnx``; options ``float16``, ``onnx``, ``remeasure``, ``test``.
        """
        from .export import save  # safetensors and the export code load only when a run is exported

        return save(self, folder, **options)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: everything but the model (`to_record`)."""
        return self.to_record()

    def to_record(self) -> dict[str, Any]:
        """What ``record.json`` holds: the test metrics, the stage's own settings, history and masks.

        ``config`` is `stage_settings` of this stage, the settings its key hashes: a parent stage's
        record says what that stage read, whichever child computed it.
        """
        m = self.metrics
        return {"method": self.method, **{k: m[k] for k in _METRICS if k in m},
                "degenerate": self.degenerate, "near_constant": self.near_constant,
                "ratio": self.ratio, "ratio_all": self.ratio_all, "seconds": self.seconds, "run_dir": self.run_dir,
                "config": stage_settings(self.method, self.config), "history": self.history, "layers": self.layers,
                "mask_totals": self.mask_totals, "valid": self.valid_metrics}

    @classmethod
    def from_record(cls, record: dict[str, Any], cfg: RunConfig, *, model: nn.Module | None = None,
                    run_dir: str | None = None) -> RunResult:
        """The result `to_record` wrote, for the run `cfg` asked for (records of fapkit 0.1.0 included)."""
        metrics = {k: record[k] for k in _METRICS if k in record}
        metrics["degenerate"] = record.get("degenerate", is_degenerate(metrics["groups"]))
        metrics["near_constant"] = record.get("near_constant", is_near_constant(metrics["groups"]))
        layers, totals = _layers_and_totals(record)
        return cls(record["method"], cfg, metrics, record["ratio"], record["ratio_all"], record["history"], model,
                   run_dir, seconds=record.get("seconds", 0.0), layers=layers, valid_metrics=record.get("valid", {}),
                   mask_totals=totals)


def stage_settings(stage: str, cfg: RunConfig) -> dict[str, Any]:
    """The settings `stage` and the stages it starts from read (JSON-ready), as its cache key hashes them."""
    settings: dict[str, Any] = {}
    name: str | None = stage
    while name is not None:
        spec = spec_of(name)
        parent = parent_of(name, cfg)
        names = spec.key_fields + (COMMON_FIELDS if parent is None else ())
        settings.update(_read(cfg, names))
        name = parent
    return dict(sorted(settings.items()))


def _read(cfg: RunConfig, names: tuple[str, ...]) -> dict[str, Any]:
    """The settings `names` of `cfg`, JSON-ready, less those at their `KEY_DEFAULTS` value (older keys stay valid)."""
    return {name: _plain(getattr(cfg, name)) for name in names
            if not (name in KEY_DEFAULTS and getattr(cfg, name) == KEY_DEFAULTS[name])}


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) else value


def stage_key(stage: str, cfg: RunConfig) -> str:
    """Cache key of `stage` for `cfg`: the stage's settings, its parent's key and the kit version."""
    spec = spec_of(stage)
    parent = parent_of(stage, cfg)
    names = spec.key_fields + (COMMON_FIELDS if parent is None else ())
    payload: dict[str, Any] = {"stage": spec.stage, "version": __version__, **_read(cfg, names)}
    if parent is not None:
        payload["parent"] = stage_key(parent, cfg)
    return stable_hash(payload)


def stage_chain(method: str, cfg: RunConfig) -> list[tuple[str, str]]:
    """The cached stages `method` runs for `cfg` as (stage method, stage key) pairs, root parent first.

    E.g. fair_sgdp: [("normal", ...), ("adv_debias", ...), ("fair_sgdp", ...)]. Each stage's run
    folder is ``stage_dir(runs_dir, stage, key)``; a stage reads nothing from another but its parent.
    """
    chain: list[tuple[str, str]] = []
    stage: str | None = method
    while stage is not None:
        chain.append((stage, stage_key(stage, cfg)))
        stage = parent_of(stage, cfg)
    return chain[::-1]


def stage_dir(runs_dir: str | Path, stage: str, key: str) -> Path:
    """The run folder of a cached stage: ``runs_dir/<stage>-<key>``."""
    return Path(runs_dir) / f"{stage}-{key}"


def is_cached(run_dir: str | Path) -> bool:
    """Whether a run folder holds a finished stage (its record and model; the record is written last)."""
    run_dir = Path(run_dir)
    return (run_dir / RECORD).exists() and (run_dir / MODEL).exists()


def stage_lock(run_dir: Path) -> FileLock:
    """The lock a process holds while it checks, computes and writes the stage in `run_dir`.

    A sibling file ``<run_dir>.lock``: another process (a Dask worker, a second notebook) reaching
    the same key waits for it, then loads the record; the OS releases a killed holder's lock.
    """
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(run_dir.parent / f"{run_dir.name}.lock"))


def save_result(result: RunResult, run_dir: Path) -> None:
    """Write a finished stage's model and record; the record supersedes the per-epoch checkpoint."""
    save_torch(run_dir / MODEL, result.model.state_dict())
    save_json(run_dir / RECORD, result.to_record())
    (run_dir / CHECKPOINT).unlink(missing_ok=True)


def load_result(method: str, cfg: RunConfig, run_dir: str | Path, *, model: bool = True) -> RunResult:
    """The RunResult of a finished stage from its run folder; ``model=False`` leaves out the model."""
    run_dir = Path(run_dir)
    record = {**load_json(run_dir / RECORD), "method": method}
    net = _load_model(cfg, run_dir / MODEL, method) if model else None
    return RunResult.from_record(record, cfg, model=net, run_dir=str(run_dir))


def load_run(run_dir: str | Path) -> RunResult:
    """The RunResult of a finished stage from its run folder alone: its record names the method and the settings.

    The record keeps the settings the stage read (`stage_settings`); the config's other fields, which
    did not affect the stage, are the quick preset's. A folder that is not a finished run is refused
    with a ValueError naming it.
    """
    run_dir = Path(run_dir)
    if not is_cached(run_dir):
        raise ValueError(f"{run_dir} is not a finished run folder (it needs {RECORD} and {MODEL}, e.g. "
                         f"runs/faprune-<key>)")
    record = load_json(run_dir / RECORD)
    return load_result(record["method"], make_config(record["method"], **record["config"]), run_dir)


def _layers_and_totals(record: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per-layer records and weight totals; records written by fapkit 0.1.0 before these were kept apart
    held the totals as two extra rows named "[prunable]" and "[all parameters]" among the layers."""
    layers = record.get("layers", [])
    if "mask_totals" in record:
        return layers, record["mask_totals"]
    rows = {row["name"]: row for row in layers if str(row.get("name", "")).startswith("[")}
    totals = {}
    if "[prunable]" in rows and "[all parameters]" in rows:
        totals = {"prunable_weights": rows["[prunable]"]["n"], "kept_weights": rows["[prunable]"]["kept"],
                  "parameters": rows["[all parameters]"]["n"], "kept_parameters": rows["[all parameters]"]["kept"]}
    return [row for row in layers if row.get("name") not in rows], totals


def _load_model(cfg: RunConfig, path: Path, method: str) -> nn.Module:
    """The cached model of stage `method`: the architecture, narrowed to the saved shapes for a channel-pruned
    stage (`fapkit.surgery.rebuild`)."""
    arch = cfg.arch
    state = load_torch(path)
    try:
        if cfg.structure == "channel" and not spec_of(method).dense:
            from .surgery import rebuild

            model = rebuild(arch, state)
        else:
            model = build_model(arch)
            model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"cached model {path} does not fit architecture {arch}; "
                         "delete the run folder to recompute") from err
    return model.eval()
