"""File sizes of `fapkit.export` at a pruning ratio, as a Markdown table (README "Export and deploy").

Each architecture's random init is pruned to the ratio layer by layer by magnitude, as LMW prunes it,
and exported in float32 and float16 (without re-measurement: no data is read). The sizes depend only
on how many weights each layer keeps, which a layer-wise ratio fixes, so a trained run of any
method at the same ratio and scope writes files of the same size.

``python scripts/export_sizes.py --ratio 0.8 --arch resnet18 mobilenet_v2``
"""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path

from fapkit.cache import RunResult
from fapkit.config import make_config
from fapkit.export import MASKS_FILE, MODEL_FILE, SPARSE_FILE, save
from fapkit.masking import attach_fixed, magnitude_masks
from fapkit.models import build_model


def pruned(arch: str, ratio: float) -> RunResult:
    """A result whose model is `arch`'s seeded init with the `ratio` smallest weights of each layer at 0."""
    model = build_model(arch, seed=0)
    masker = attach_fixed(model, magnitude_masks(model, ratio))
    summary = masker.summary()
    return RunResult("lmw", make_config("lmw", arch=arch, ratio=ratio), {}, summary["ratio_prunable"],
                     summary["ratio_all"], [], masker.export().eval(), layers=[asdict(r) for r in masker.report()])


def sizes(archs: list[str], ratio: float) -> str:
    lines = ["| architecture | ratio | model.safetensors | masks.safetensors | weights.sparse (float32) | "
             "weights.sparse (float16) |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            result = pruned(arch, ratio)
            files = {f16: save(result, Path(tmp) / f"{arch}-{f16}", float16=f16, remeasure=False)["files"]
                     for f16 in (False, True)}
            dense = files[False][MODEL_FILE]["bytes"]

            def cell(n: int) -> str:
                return f"{n / 1e6:.2f} MB ({n / dense:.3f}×)"

            lines.append(f"| {arch} | {result.ratio:.3f} | {cell(dense)} | {cell(files[False][MASKS_FILE]['bytes'])} | "
                         f"{cell(files[False][SPARSE_FILE]['bytes'])} | {cell(files[True][SPARSE_FILE]['bytes'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratio", type=float, default=0.8)
    parser.add_argument("--arch", nargs="+", default=["resnet18", "mobilenet_v2"])
    args = parser.parse_args()
    print(sizes(args.arch, args.ratio))
