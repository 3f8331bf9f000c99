"""The three splits a run uses, as datasets (for looking at the data, e.g. notebook 00)."""
from __future__ import annotations

from typing import Any

from .config import DataConfig
from .data import load


def load_splits(data: DataConfig) -> dict[str, Any]:
    """train/valid/test of `data` with the same sizes, correlation, noise and seed as `fapkit.methods.run` uses.

    SynthFaces is generated at the requested split sizes; a CelebA/LFW split larger than the
    requested size is cut to its first `n` images, as the training loaders do.
    """
    splits: dict[str, Any] = {}
    for split, n in (("train", data.n_train), ("valid", data.n_valid), ("test", data.n_test)):
        extra: dict[str, Any] = {}
        if data.name == "synth":
            extra = dict(n=n, correlation=data.correlation, label_noise=data.label_noise, seed=data.data_seed)
        ds = load(data.name, split=split, target=data.target, sensitive=data.sensitive, size=data.size,
                  root=data.root, **extra)
        if data.name != "synth" and n is not None and n < len(ds):
            ds = ds.subset(n)
        splits[split] = ds
    return splits
