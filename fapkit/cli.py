"""Command line: ``python -m fapkit run --method faprune ...`` prints the result as one JSON object;
``python -m fapkit sweep --method faprune sgdp --seed 0 1 2 ...`` runs every combination and prints one
JSON line per run (see docs/sweeps.md); ``python -m fapkit tune --method faprune --tolerance 0.01 ...``
chooses the method's knob for an accuracy budget (`fapkit.tune`) and prints one JSON line per frontier
point, then the choice; ``python -m fapkit export RUN_DIR FOLDER`` writes a cached run's deployable files
(`fapkit.export`), as ``run ... --save FOLDER`` does for the run it computes."""
from __future__ import annotations

import argparse
import json
import sys
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from .config import ARCHITECTURES, DATASETS, PRESETS
from .registry import method_names
from .settings import setting_fields


def _fractions(text: str) -> tuple[float, ...]:
    """``"0.7,0.15,0.15"`` -> ``(0.7, 0.15, 0.15)``; the run configuration checks the values."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers (train,valid,test), "
                                         f"got {text!r}") from None


def _sensitive(names: list[str] | None) -> str | tuple[str, ...] | None:
    """``--sensitive`` of a run: one name stays a string, several are a tuple (their intersection)."""
    if names is None:
        return None
    return names[0] if len(names) == 1 else tuple(names)


#: Settings whose flag is not their field's name, and help where a field's comment says too little for a shell.
_FLAG_OF = {"name": "dataset"}
_HELP = {
    "name": f"one of {', '.join(DATASETS)}",
    "arch": f"one of {', '.join(ARCHITECTURES)}",
    "root": "folder of a local dataset copy (CelebA, LFW, UTKFace, FairFace) or, for 'folder', the image folder",
    "sensitive": "sensitive attribute; several names (--sensitive Male Young) give their intersection",
    "split_fractions": "folder/UTKFace: split fractions TRAIN,VALID,TEST, e.g. 0.7,0.15,0.15",
}


def _add_settings(p: argparse.ArgumentParser, *, many: bool) -> None:
    """Every `fapkit.run` setting as an option, generated from the settings dataclasses (`fapkit.settings`).

    The flag is the field's name with dashes (``masked_lr`` -> ``--masked-lr``), its type and choices
    the field's annotation, its help the field's comment. A nullable setting takes ``none``; a bool
    ``true``/``false``. `many`: each takes one or more values (a sweep's axes). An option not given is
    not passed on, so the preset's value holds.
    """
    p.add_argument("--method", nargs="+" if many else None, default=["faprune"] if many else "faprune",
                   help=f"one of {', '.join(method_names())}")
    p.add_argument("--preset", nargs="+" if many else None, default=["quick"] if many else "quick",
                   help=f"one of {', '.join(PRESETS)}")
    group = p.add_argument_group("settings", "every setting of a run (fapkit.settings); the preset's value unless given")
    for name, (kind, comment) in setting_fields().items():
        convert, choices, several = _option(kind)
        nargs = "+" if many or several else None
        text = _HELP.get(name, comment) or ""
        if choices:
            text = f"{text} (one of {', '.join(choices)})".strip()
        group.add_argument(f"--{_FLAG_OF.get(name, name).replace('_', '-')}", dest=_FLAG_OF.get(name, name),
                           type=convert, nargs=nargs, choices=None, default=argparse.SUPPRESS,
                           metavar=_FLAG_OF.get(name, name).upper(), help=text.replace("%", "%%"))
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--progress", action="store_true", help="show progress bars on stderr")


def _option(kind: Any) -> tuple[Any, tuple[str, ...], bool]:
    """(converter, choices, takes several values) for a setting of type `kind`."""
    args = [a for a in get_args(kind) if a is not type(None)]
    nullable = type(None) in get_args(kind)
    if get_origin(kind) is Literal:
        choices = tuple(map(str, get_args(kind)))
        return _choice(choices), choices, False
    if args and get_origin(kind) in (Union, UnionType):
        if any(get_origin(a) is tuple and a.__args__[-1] is Ellipsis for a in args):  # str | tuple[str, ...]
            return str, (), True
        if any(get_origin(a) is tuple for a in args):                                # split fractions
            return _nullable(_fractions) if nullable else _fractions, (), False
        inner, choices, several = _option(args[0])
        return (_nullable(inner) if nullable else inner), choices, several
    if kind is bool:
        return _bool, (), False
    return kind, (), False


def _choice(choices: tuple[str, ...]) -> Any:
    def convert(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text
    return convert


def _nullable(convert: Any) -> Any:
    def parse_or_none(text: str) -> Any:
        return None if text.lower() == "none" else convert(text)
    parse_or_none.__name__ = getattr(convert, "__name__", "value")
    return parse_or_none


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fapkit", description="Fairness-aware adversarial network pruning")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one method and print its test metrics as JSON")
    _add_settings(r, many=False)
    r.add_argument("--save", default=None, metavar="FOLDER", help="also write the model's deployable files there "
                                                                  "(safetensors, manifest; see `fapkit export`)")
    _add_export_options(r)
    e = sub.add_parser("export", help="write a cached run's deployable files (safetensors, manifest, ONNX)",
                       description="Writes model.safetensors, masks.safetensors, weights.sparse.safetensors and "
                                   "manifest.json (and model.onnx) of the finished run in RUN_DIR into FOLDER, and "
                                   "re-measures the test metrics on each weights file.")
    e.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder, e.g. runs/faprune-<key>")
    e.add_argument("folder", metavar="FOLDER", help="where the files go (new, empty, or an earlier export)")
    _add_export_options(e)
    s = sub.add_parser("sweep", help="run every combination of the given values; one JSON line per run",
                       description="Each option takes one or more values; every combination runs (e.g. "
                                   "--method faprune sgdp --seed 0 1 2: six runs), in this process, "
                                   "on a local Dask cluster (--workers) or on a running one (--scheduler).")
    _add_settings(s, many=True)
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="start a local Dask cluster of N 1-thread workers")
    where.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, tcp://HOST:PORT")
    t = sub.add_parser("tune", help="choose a method's knob (λ, ε) for an accuracy budget; JSON lines",
                       description="Sweeps the method's knob on a geometric grid (widened at its fairer edge), "
                                   "chooses on the validation split the fairest value whose validation accuracy "
                                   "is within --tolerance of the dense model's, and prints each frontier point "
                                   "and then the choice as JSON lines.")
    _add_settings(t, many=False)
    t.add_argument("--tolerance", type=float, default=0.01, help="accuracy the user gives up, e.g. 0.01 (one point)")
    t.add_argument("--metric", default="DEO", help="'DEO' (lower is fairer) or 'DI' (higher is fairer)")
    t.add_argument("--values", type=float, nargs="+", default=None, help="the starting grid of the knob")
    t.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds per value (default: the preset's)")
    t.add_argument("--widen", type=int, default=2, help="most grid steps added beyond the starting grid")
    where = t.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="start a local Dask cluster of N 1-thread workers")
    where.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, tcp://HOST:PORT")
    return parser


def _add_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--float16", action="store_true", help="the sparse weights file in float16")
    p.add_argument("--onnx", action="store_true", help="also model.onnx (the 'onnx' extra)")


_NOT_SETTINGS = ("command", "method", "preset", "runs_dir", "progress", "workers", "scheduler", "tolerance", "metric",
                 "values", "seeds", "widen", "save", "float16", "onnx", "run_dir", "folder")


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The parsed command line and the `fapkit.run` settings it gives (those not given left out).

    A run's ``--sensitive A`` is ``sensitive="A"``, ``--sensitive A B`` is ``sensitive=("A", "B")``.
    """
    args = _parser().parse_args(argv)
    if args.command in ("run", "tune") and hasattr(args, "sensitive"):
        args.sensitive = _sensitive(args.sensitive)
    # A setting not given is absent (argparse.SUPPRESS); one given as ``none`` is None, which a nullable setting keeps.
    return args, {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}


def main(argv: list[str] | None = None) -> int:
    args, settings = parse(argv)
    try:
        if args.command == "sweep":
            return _sweep(args, settings)
        if args.command == "tune":
            return _tune(args, settings)
        if args.command == "export":
            return _export(args)
        from .runner import run  # heavy imports only once the arguments parsed

        result = run(args.method, preset=args.preset, runs_dir=args.runs_dir, progress=args.progress, **settings)
        if args.save is not None:
            result.save(args.save, float16=args.float16, onnx=args.onnx)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:  # ImportError: a missing extra
        print(f"fapkit: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(_printed(result), default=str))
    return 0


def _sweep(args: argparse.Namespace, axes: dict[str, list[Any]]) -> int:
    """Every combination of the options' values, one JSON line per run in grid order."""
    from .sweeps import grid, sweep

    specs = grid(method=args.method, preset=args.preset, **axes)
    client = None
    if args.scheduler is not None:
        from distributed import Client

        try:
            client = Client(args.scheduler, timeout=30)
        except (OSError, ValueError) as err:  # unreachable, refused or malformed address
            raise ValueError(f"cannot reach the Dask scheduler at {args.scheduler!r}: {err}") from err
    try:
        results = sweep(specs, client=client, workers=args.workers, runs_dir=args.runs_dir, progress=args.progress)
    finally:
        if client is not None:
            client.close()
    for result in results:
        print(json.dumps(_printed(result), default=str))
    return 0


def _tune(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    from .tuning import tune

    result = tune(args.method, tolerance=args.tolerance, metric=args.metric, values=args.values, seeds=args.seeds,
                  widen=args.widen, preset=args.preset, workers=args.workers, scheduler=args.scheduler,
                  runs_dir=args.runs_dir, progress=args.progress, **settings)
    for line in result.json_lines():
        print(json.dumps(line, default=str))
    return 0


def _export(args: argparse.Namespace) -> int:
    """A cached run's deployable files; prints the files, their size against the dense file and the re-measured metrics."""
    from .cache import load_run

    manifest = load_run(args.run_dir).save(args.folder, float16=args.float16, onnx=args.onnx)
    print(json.dumps({"folder": args.folder, **{k: manifest[k] for k in ("method", "files", "size_to_dense", "remeasured")}},
                     default=str))
    return 0


def _printed(result: Any) -> dict[str, Any]:
    """A run's summary as printed: everything but the per-epoch history and the per-layer table."""
    summary = result.summary()
    for key in ("history", "layers"):
        summary.pop(key)
    return summary
