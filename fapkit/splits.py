"""The three splits a run uses, as datasets (for looking at the data, e.g. notebook 00)."""
from __future__ import annotations

from typing import Any

from .config import DataConfig
from .data import load
from .data.registry import dataset_spec


def dataset_options(data: DataConfig) -> dict[str, Any]:
    """The keyword arguments of `fapkit.data.load` that `data` sets beyond name, target, sensitive, size and root.

    Each dataset's spec names the settings it reads (`fapkit.data.registry.DatasetSpec.options`): ``data_seed``
    is the synthetic generator's seed and the split seed of LFW and of the table datasets (folder, UTKFace,
    FairFace); the folder settings go to the datasets that read them.
    """
    return {keyword: getattr(data, setting) for setting, keyword in dataset_spec(data.name).options.items()}


def load_splits(data: DataConfig) -> dict[str, Any]:
    """train/valid/test of `data` with the same sizes, correlation, noise and seed as `fapkit.runner.run` uses.

    SynthFaces is generated at the requested split sizes; a split of another dataset larger than
    the requested size is cut to its first `n` images, as the training loaders do. Every split,
    as cut, must hold at least ``data.min_group_size`` images of every sensitive group (a
    ValueError names the groups below it and their counts).
    """
    splits: dict[str, Any] = {}
    for split, n in (("train", data.n_train), ("valid", data.n_valid), ("test", data.n_test)):
        extra = dataset_options(data)
        if data.name == "synth":
            extra["n"] = n
        ds = load(data.name, split=split, target=data.target, sensitive=data.sensitive, size=data.size,
                  root=data.root, min_group_size=data.min_group_size, **extra)
        if data.name != "synth" and n is not None and n < len(ds):
            ds = ds.subset(n)
            ds.check_group_sizes(data.min_group_size, split=split)
        splits[split] = ds
    return splits
