"""Every dataset the kit loads, as one `DatasetSpec` each: the one place a dataset's facts live.

A spec says where the dataset's files are by default, which (target, sensitive) pair a run takes when
none is named, which attribute names it always has (checked before any training), which of a run's
data settings it reads (and under which keyword its class takes them), and how to open one split.
`fapkit.data.load`, the run configuration's checks (`fapkit.config`) and the split loaders
(`fapkit.splits`) all read these specs; a new dataset is one `register_dataset` call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .base import CELEBA_ATTRIBUTES, FaceTensors, check_attributes, combination_groups, sensitive_columns, sensitive_label
from .celeba import ATTR_FILE as CELEBA_ATTR_FILE
from .celeba import CelebA, read_attr_file
from .folder import FairFace, FolderDataset, UTKFace
from .lfw import ATTR_FILE as LFW_ATTR_FILE
from .lfw import LFW, read_lfw_attributes
from .lfw import _binary_attributes as lfw_binary_attributes
from .synth import SYNTH_ATTRIBUTES, SynthFaces

#: ``open(root, split, target, sensitive, size, sized, options)``: one split as `FaceTensors`; ``sized`` holds
#: ``min_group_size`` when the caller gave one, ``options`` the dataset class's own keyword arguments.
Opener = Callable[[Any, str, Any, Any, int, dict[str, Any], dict[str, Any]], FaceTensors]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its defaults, the attribute names it always has, the run settings it reads, how to open it."""

    name: str
    open: Opener
    root: str | None = None            # the folder ``load`` reads when given none (None: the dataset needs no files,
    # or, for a folder, must be told)
    attributes: tuple[str, str] | None = None  # (target, sensitive) when none is named (None: they must be named)
    known: tuple[str, ...] | None = None  # attribute names it has whatever its files say (None: read from its files)
    # `fapkit.settings.DataConfig` fields it reads beyond name/target/sensitive/size/root, and the keyword its class
    # takes each under
    options: Mapping[str, str] = field(default_factory=dict)


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset; refuses a second one under the same name."""
    if spec.name in _DATASETS:
        raise ValueError(f"dataset {spec.name!r} is already registered")
    _DATASETS[spec.name] = spec
    return spec


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a registered dataset, or a ValueError naming the registered ones."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(_DATASETS)}") from None


def dataset_names() -> tuple[str, ...]:
    """The registered datasets, in registration order."""
    return tuple(_DATASETS)


def _open_synth(root, split, target, sensitive, size, sized, options):  # type: ignore[no-untyped-def]
    if root is not None:
        options.setdefault("cache_dir", root)
    return SynthFaces(split=split, target=target, sensitive=sensitive, size=size, **sized, **options)


def _open_folder(root, split, target, sensitive, size, sized, options):  # type: ignore[no-untyped-def]
    if root is None:
        raise ValueError("dataset 'folder' needs root= (the image folder; its labels default to root/labels.csv)")
    return FolderDataset(root, split, target, sensitive, size, **sized, **options)


def _table_opener(cls: type) -> Opener:
    def open_table(root, split, target, sensitive, size, sized, options):  # type: ignore[no-untyped-def]
        return cls(root, split, target, sensitive, size, **sized, **options)
    return open_table


def _attribute_table_opener(cls: type) -> Opener:
    """CelebA / LFW: one attribute column per class, intersections regrouped over the whole attribute table."""
    def open_attribute_table(root, split, target, sensitive, size, sized, options):  # type: ignore[no-untyped-def]
        folder = Path(root)
        columns = sensitive_columns(sensitive)
        universe = _observed_combinations(cls, folder, target, columns) if len(columns) > 1 else None
        ds = cls(folder, split, target, columns[0], size, **options)
        if universe is not None:
            z, names = combination_groups({c: ds.attributes[c].numpy() for c in columns}, columns, universe=universe)
            ds.set_groups(torch.from_numpy(z), sensitive=sensitive_label(columns), group_names=names)
        if sized.get("min_group_size"):
            ds.check_group_sizes(sized["min_group_size"], split=split)
        return ds
    return open_attribute_table


def _observed_combinations(cls: type, root: Path, target: str, columns: Sequence[str]) -> np.ndarray | None:
    """The combinations of ``columns``' values over a CelebA / LFW attribute table (every split), sorted.

    Checks the names first (a ValueError listing the valid ones). None when the table is absent:
    the dataset class then raises its own error naming the files it expected.
    """
    if cls is CelebA:
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


_SPLIT_SEED = {"data_seed": "seed"}
for _spec in (
    DatasetSpec("synth", _open_synth, attributes=("Attractive", "Male"), known=SYNTH_ATTRIBUTES,
                options={"correlation": "correlation", "label_noise": "label_noise", "data_seed": "seed"}),
    DatasetSpec("celeba", _attribute_table_opener(CelebA), root="data/celeba", attributes=("Attractive", "Male"),
                known=CELEBA_ATTRIBUTES),
    DatasetSpec("lfw", _attribute_table_opener(LFW), root="data/lfw", attributes=("Attractive", "Male"),
                options=_SPLIT_SEED),
    DatasetSpec("folder", _open_folder,
                options={**_SPLIT_SEED, "labels": "labels", "image_column": "image_column",
                         "split_fractions": "fractions", "positive": "positive"}),
    DatasetSpec("utkface", _table_opener(UTKFace), root="data/utkface", attributes=("gender", "race"),
                known=("age", "gender", "race", "young"),
                options={**_SPLIT_SEED, "split_fractions": "fractions", "positive": "positive"}),
    DatasetSpec("fairface", _table_opener(FairFace), root="data/fairface", attributes=("gender", "race"),
                known=("age", "gender", "race", "service_test", "young"), options={**_SPLIT_SEED, "positive": "positive"}),
):
    register_dataset(_spec)
