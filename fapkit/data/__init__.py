"""Datasets: the embedded synthetic face benchmark and loaders for local CelebA / LFW / UTKFace / FairFace copies
and for any image folder with a CSV attribute table.

Use `load` to get any of them as a `FaceTensors`, and `make_loader` to
batch it. Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from .base import (
    CELEBA_ATTRIBUTES,
    SPLITS,
    FaceTensors,
    TensorLoader,
    check_attributes,
    check_group_sizes,
    check_min_group_size,
    combination_groups,
    make_loader,
    sensitive_columns,
    sensitive_label,
)
from .celeba import ATTR_FILE as CELEBA_ATTR_FILE
from .celeba import CelebA, read_attr_file
from .folder import FairFace, FolderDataset, TableFaces, UTKFace
from .lfw import ATTR_FILE as LFW_ATTR_FILE
from .lfw import LFW, read_lfw_attributes
from .lfw import _binary_attributes as lfw_binary_attributes
from .synth import SYNTH_ATTRIBUTES, SynthFaces

DATASETS: tuple[str, ...] = ("synth", "celeba", "lfw", "folder", "utkface", "fairface")

#: Where ``load`` looks when ``root`` is None (relative to the working directory).
DEFAULT_ROOTS: dict[str, str] = {"celeba": "data/celeba", "lfw": "data/lfw", "utkface": "data/utkface",
                                 "fairface": "data/fairface"}

#: (target, sensitive) that ``load`` uses when they are not given; a folder's columns must be named.
DEFAULT_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "synth": ("Attractive", "Male"), "celeba": ("Attractive", "Male"), "lfw": ("Attractive", "Male"),
    "utkface": ("gender", "race"), "fairface": ("gender", "race"),
}


def load(
    name: Literal["synth", "celeba", "lfw", "folder", "utkface", "fairface"],
    *,
    split: str = "train",
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    size: int = 64,
    root: str | Path | None = None,
    min_group_size: int | None = None,
    **kwargs: Any,
) -> FaceTensors:
    """Return one split of a dataset: the single entry point for notebooks and the CLI.

    ``root`` is the dataset folder for CelebA/LFW/UTKFace/FairFace (default ``data/<name>``)
    and the image folder for ``"folder"`` (required); for ``"synth"`` it is the cache folder
    (default ``data/cache``). ``target`` and ``sensitive`` default to ``DEFAULT_ATTRIBUTES``
    (a folder's columns must be named).

    ``sensitive`` may name several attributes (a list/tuple, or ``"Male|Young"``): their
    intersection, one group per combination of values (``ds.group_names``, e.g.
    ``"Male=0|Young=1"``; a table dataset's are its values, ``"Female|old"``). The groups are the
    combinations observed over the whole dataset (all splits; for synth every combination its model
    can draw), numbered in sorted order, so every split numbers them alike. ``min_group_size``
    refuses a split in which a group has fewer images, naming the groups and their counts (default:
    1 for the table datasets, no check for synth/CelebA/LFW).

    Extra keyword arguments go to the dataset class (e.g. ``n``, ``correlation``, ``label_noise``,
    ``seed`` for synth; ``seed``, ``crop`` for LFW; ``labels``, ``image_column``, ``positive``,
    ``fractions``, ``seed`` for a folder).
    """
    if min_group_size is not None:
        check_min_group_size(min_group_size)
    sized = {} if min_group_size is None else {"min_group_size": min_group_size}
    if name == "folder":
        if root is None:
            raise ValueError("dataset 'folder' needs root= (the image folder; its labels default to root/labels.csv)")
        return FolderDataset(root, split, target, sensitive, size, **sized, **kwargs)
    default_target, default_sensitive = DEFAULT_ATTRIBUTES.get(name, ("Attractive", "Male"))
    target = default_target if target is None else target
    sensitive = default_sensitive if sensitive is None else sensitive
    if name in ("utkface", "fairface"):
        cls = UTKFace if name == "utkface" else FairFace
        return cls(root or DEFAULT_ROOTS[name], split, target, sensitive, size, **sized, **kwargs)
    if name == "synth":
        if root is not None:
            kwargs.setdefault("cache_dir", root)
        return SynthFaces(split=split, target=target, sensitive=sensitive, size=size, **sized, **kwargs)
    if name not in ("celeba", "lfw"):
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    folder = Path(root or DEFAULT_ROOTS[name])
    columns = sensitive_columns(sensitive)
    universe = _observed_combinations(name, folder, target, columns) if len(columns) > 1 else None
    cls = CelebA if name == "celeba" else LFW
    ds = cls(folder, split, target, columns[0], size, **kwargs)
    if universe is not None:
        z, names = combination_groups({c: ds.attributes[c].numpy() for c in columns}, columns, universe=universe)
        ds.set_groups(torch.from_numpy(z), sensitive=sensitive_label(columns), group_names=names)
    if min_group_size:
        ds.check_group_sizes(min_group_size, split=split)
    return ds


def _observed_combinations(name: str, root: Path, target: str, columns: tuple[str, ...]) -> np.ndarray | None:
    """The combinations of ``columns``' values over a CelebA / LFW attribute table (every split), sorted.

    Checks the names first (a ValueError listing the valid ones). None when the table is absent:
    the dataset class then raises its own error naming the files it expected.
    """
    if name == "celeba":
        path = root / CELEBA_ATTR_FILE
        if not path.is_file():
            return None
        _, names, values = read_attr_file(path)
        check_attributes(target, columns, names, dataset="CelebA")
        stack = values[:, [names.index(c) for c in columns]]
    else:
        path = root / LFW_ATTR_FILE
        if not path.is_file():
            return None
        _, _, names, scores = read_lfw_attributes(path)
        attrs = lfw_binary_attributes(names, scores)
        check_attributes(target, columns, attrs, dataset="LFW")
        stack = np.stack([attrs[c] for c in columns], axis=1)
    return np.unique(stack.astype(np.int64), axis=0)


__all__ = [
    "CELEBA_ATTRIBUTES", "CelebA", "DATASETS", "DEFAULT_ATTRIBUTES", "FaceTensors", "FairFace", "FolderDataset", "LFW",
    "SPLITS", "SYNTH_ATTRIBUTES", "SynthFaces", "TableFaces", "TensorLoader", "UTKFace", "check_group_sizes", "load",
    "make_loader", "sensitive_columns", "sensitive_label",
]
