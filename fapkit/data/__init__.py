"""Datasets: the embedded synthetic face benchmark and loaders for local CelebA / LFW copies.

Use `load` to get any of them as a `FaceTensors`, and `make_loader` to
batch it. Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from .base import CELEBA_ATTRIBUTES, SPLITS, FaceTensors, TensorLoader, make_loader
from .celeba import CelebA
from .lfw import LFW
from .synth import SYNTH_ATTRIBUTES, SynthFaces

DATASETS: tuple[str, ...] = ("synth", "celeba", "lfw")

#: Where ``load`` looks when ``root`` is None (relative to the working directory).
DEFAULT_ROOTS: dict[str, str] = {"celeba": "data/celeba", "lfw": "data/lfw"}


def load(
    name: Literal["synth", "celeba", "lfw"],
    *,
    split: str = "train",
    target: str = "Attractive",
    sensitive: str = "Male",
    size: int = 64,
    root: str | Path | None = None,
    **kwargs: Any,
) -> FaceTensors:
    """Return one split of a dataset: the single entry point for notebooks and the CLI.

    ``root`` is the dataset folder for CelebA/LFW (default ``data/celeba``, ``data/lfw``);
    for ``"synth"`` it is the cache folder (default ``data/cache``). Extra keyword
    arguments go to the dataset class (e.g. ``n``, ``correlation``, ``label_noise``,
    ``seed`` for synth; ``seed``, ``crop`` for LFW).
    """
    if name == "synth":
        if root is not None:
            kwargs.setdefault("cache_dir", root)
        return SynthFaces(split=split, target=target, sensitive=sensitive, size=size, **kwargs)
    if name == "celeba":
        return CelebA(root or DEFAULT_ROOTS["celeba"], split, target, sensitive, size, **kwargs)
    if name == "lfw":
        return LFW(root or DEFAULT_ROOTS["lfw"], split, target, sensitive, size, **kwargs)
    raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")


__all__ = [
    "CELEBA_ATTRIBUTES", "CelebA", "DATASETS", "FaceTensors", "LFW", "SPLITS",
    "SYNTH_ATTRIBUTES", "SynthFaces", "TensorLoader", "load", "make_loader",
]
