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
from typing import Any

from .config import ARCHITECTURES, DATASETS, PRESETS
from .registry import method_names


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


def _add_settings(p: argparse.ArgumentParser, *, many: bool) -> None:
    """The `fapkit.run` settings as options; `many`: each takes one or more values (a sweep's axes)."""
    n = "+" if many else None

    def add(flag: str, help: str | None = None, **kwargs: Any) -> None:
        p.add_argument(flag, nargs=n, help=help, **kwargs)

    add("--method", help=f"one of {', '.join(method_names())}", default=["faprune"] if many else "faprune")
    add("--dataset", help=f"one of {', '.join(DATASETS)}", default=None)
    add("--root", help="folder of a local dataset copy (CelebA, LFW, UTKFace, FairFace) or, for 'folder', the "
                       "image folder", default=None)
    add("--target", default=None)
    if many:
        add("--sensitive", default=None, help="sensitive attribute(s), one run each; 'Male|Young' is the "
                                              "intersection of Male and Young")
    else:
        p.add_argument("--sensitive", nargs="+", default=None, metavar="NAME",
                       help="sensitive attribute; several names (--sensitive Male Young) give their intersection, "
                            "one group per combination of values")
    add("--labels", default=None, help="folder: the label CSV (default: ROOT/labels.csv)")
    add("--image-column", default=None, help="folder: the CSV column of image paths relative to ROOT (default: file)")
    add("--positive", default=None, help="folder/UTKFace/FairFace: the target value coded 1")
    add("--split-fractions", type=_fractions, default=None, metavar="TRAIN,VALID,TEST",
        help="folder/UTKFace: split fractions, e.g. 0.7,0.15,0.15")
    add("--min-group-size", type=int, default=None, help="images every sensitive group needs in every split")
    add("--data-seed", type=int, default=None, help="synth: generator seed; other datasets: split seed")
    add("--arch", help=f"one of {', '.join(ARCHITECTURES)}", default=None)
    add("--size", type=int, default=None, help="image side in pixels")
    add("--ratio", type=float, default=None, help="fraction of prunable weights removed, in [0, 1)")
    add("--alpha", type=float, default=None, help="L_D = α·L_DI + (1−α)·L_DEO, α in [0, 1]")
    add("--lam", type=float, default=None, help="λ, weight of the adversarial term (>= 0)")
    add("--disc-input", default=None, help="what the discriminator heads read: 'prob' (the paper) or 'logit' "
                                           "(standardised on the starting model)")
    add("--disc-warmup-rule", default=None, help="'fixed', 'plateau' or 'informed' (until the held-out advantage "
                                                 "reaches --warmup-share of the predictions' information about z)")
    add("--disc-warmup", type=int, default=None, help="most warm-up passes of the discriminator (0: none)")
    add("--warmup-share", type=float, default=None, help="share of the information reference an informed "
                                                         "adversary reaches, in (0, 1]")
    add("--epochs", type=int, default=None)
    add("--pretrain-epochs", type=int, default=None)
    add("--batch-size", type=int, default=None)
    add("--init", default=None, help="'pretrained' or 'random' (random-init search)")
    add("--scope", default=None, help="'layer' or 'global' top-k")
    add("--generator-form", default=None, help="'paper' or 'confusion'")
    add("--schedule", default=None, help="learning-rate schedule: 'cosine' (warm-up, then to ≈ 0) or 'constant'")
    add("--lam-ramp", type=float, default=None, help="fraction of the stage over which λ rises from 0 (0: constant)")
    add("--weights", default=None, help="local dense state_dict to start from")
    add("--device", default=None, help="cpu, cuda or auto")
    add("--seed", type=int, default=None)
    add("--preset", default=["quick"] if many else "quick", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--progress", action="store_true", help="show progress bars on stderr")


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
    if args.command in ("run", "tune"):
        args.sensitive = _sensitive(args.sensitive)
    return args, {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS and v is not None}


def main(argv: list[str] | None = None) -> int:
    args, settings = parse(argv)
    try:
        if args.command == "sweep":
            return _sweep(args, settings)
        if args.command == "tune":
            return _tune(args, settings)
        if args.command == "export":
            return _export(args)
        from .methods import run  # heavy imports only once the arguments parsed

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
