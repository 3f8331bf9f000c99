"""Command line: `python -m fapkit run --method faprune ...` prints the result as one JSON object."""
from __future__ import annotations

import argparse
import json
import sys

from .config import ARCHITECTURES, DATASETS, METHODS, PRESETS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fapkit", description="Fairness-aware adversarial network pruning")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one method and print its test metrics as JSON")
    r.add_argument("--method", default="faprune", help=f"one of {', '.join(METHODS)}")
    r.add_argument("--dataset", default=None, help=f"one of {', '.join(DATASETS)}")
    r.add_argument("--root", default=None, help="folder of a local CelebA/LFW copy")
    r.add_argument("--target", default=None)
    r.add_argument("--sensitive", default=None)
    r.add_argument("--arch", default=None, help=f"one of {', '.join(ARCHITECTURES)}")
    r.add_argument("--size", type=int, default=None, help="image side in pixels")
    r.add_argument("--ratio", type=float, default=None, help="fraction of prunable weights removed, in [0, 1)")
    r.add_argument("--alpha", type=float, default=None, help="L_D = α·L_DI + (1−α)·L_DEO, α in [0, 1]")
    r.add_argument("--lam", type=float, default=None, help="λ, weight of the adversarial term (>= 0)")
    r.add_argument("--epochs", type=int, default=None)
    r.add_argument("--pretrain-epochs", type=int, default=None)
    r.add_argument("--batch-size", type=int, default=None)
    r.add_argument("--init", default=None, help="'pretrained' or 'random' (random-init search)")
    r.add_argument("--scope", default=None, help="'layer' or 'global' top-k")
    r.add_argument("--generator-form", default=None, help="'paper' or 'confusion'")
    r.add_argument("--weights", default=None, help="local dense state_dict to start from")
    r.add_argument("--device", default=None, help="cpu, cuda or auto")
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--preset", default="quick", help=f"one of {', '.join(PRESETS)}")
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--progress", action="store_true", help="show progress bars on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .methods import run  # heavy imports only once the arguments parsed

    settings = {k: v for k, v in vars(args).items()
                if k not in ("command", "method", "preset", "runs_dir", "progress") and v is not None}
    try:
        result = run(args.method, preset=args.preset, runs_dir=args.runs_dir, progress=args.progress, **settings)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"fapkit: error: {err}", file=sys.stderr)
        return 2
    summary = result.summary()
    summary.pop("history"); summary.pop("layers")
    print(json.dumps(summary, default=str))
    return 0
