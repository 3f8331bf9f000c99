"""Datasets: the embedded synthetic face benchmark and loaders for local CelebA / LFW / UTKFace / FairFace copies
and for any image folder with a CSV attribute table.

Use `load` to get any of them as a `FaceTensors`, and `make_loader` to
batch it. Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .base import (
    CELEBA_ATTRIBUTES,
    SPLITS,
    FaceTensors,
    TensorLoader,
    check_group_sizes,
    check_min_group_size,
    make_loader,
    sensitive_columns,
    sensitive_label,
)
from .celeba import CelebA
from .folder import FairFace, FolderDataset, TableFaces, UTKFace
from .lfw import LFW
from .registry import DatasetSpec, dataset_names, dataset_spec, register_dataset
from .synth import SYNTH_ATTRIBUTES, SynthFaces

#: The registered datasets (`fapkit.data.registry`), in registration order.
DATASETS: tuple[str, ...] = dataset_names()

#: Where ``load`` looks when ``root`` is None (relative to the working directory).
DEFAULT_ROOTS: dict[str, str] = {n: dataset_spec(n).root for n in DATASETS if dataset_spec(n).root is not None}

#: (target, sensitive) that ``load`` uses when they are not given; a folder's columns must be named.
DEFAULT_ATTRIBUTES: dict[str, tuple[str, str]] = {n: dataset_spec(n).attributes for n in DATASETS
                                                  if dataset_spec(n).attributes is not None}


def load(
    name: str,
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
    spec = dataset_spec(name)  # a ValueError naming the registered datasets
    sized = {} if min_group_size is None else {"min_group_size": min_group_size}
    default_target, default_sensitive = spec.attributes or (None, None)
    target = default_target if target is None else target
    sensitive = default_sensitive if sensitive is None else sensitive
    return spec.open(root if root is not None else spec.root, split, target, sensitive, size, sized, dict(kwargs))


__all__ = [
    "CELEBA_ATTRIBUTES", "CelebA", "DATASETS", "DEFAULT_ATTRIBUTES", "DatasetSpec", "FaceTensors", "FairFace",
    "FolderDataset", "LFW", "SPLITS", "SYNTH_ATTRIBUTES", "SynthFaces", "TableFaces", "TensorLoader", "UTKFace",
    "check_group_sizes", "dataset_spec", "load", "make_loader", "register_dataset", "sensitive_columns",
    "sensitive_label",
]
