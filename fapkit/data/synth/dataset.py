"""The SynthFaces dataset: `SynthConfig`, `generate` and the cached `SynthFaces`.

`generate` derives five independent random streams (attributes, style, pixel noise,
label noise, age group) from ``(seed, split, STREAM_VERSION)``, so a split is the same bit for bit
in every process. `SynthFaces` stores the result as a ``.pt`` file keyed by every
field of the `SynthConfig` plus `GENERATOR_VERSION`.

Version 7 (issue 19) added the multi-valued ``Age_Group`` attribute and its crow's-feet cue.
Its values and cue parameters come from a fifth stream, and the first four streams are seeded as
in version 6 (`STREAM_VERSION` stays 6), so every binary attribute, label, style parameter and
noise draw of a split keeps its version-6 value; the images differ from version 6 only at the
outer eye corners of faces with an Age_Group code above 0. Only the cache files are renamed.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch

from ...records import save_torch
from ..base import (
    FaceTensors,
    cache_key,
    check_attributes,
    check_size,
    check_split,
    combination_groups,
    normalise_sensitive,
    sensitive_columns,
    sensitive_label,
    try_load,
)
from .attributes import (
    MULTI_VALUED,
    SYNTH_ATTRIBUTES,
    levels,
    sample_age_group,
    sample_attributes,
    sampling_pair,
    sampling_rates,
)
from .render import render_faces, sample_age_style, sample_style

#: Bump whenever the sampling model (:mod:`fapkit.data.synth.attributes`) or the renderer
#: (:mod:`fapkit.data.synth.render`) changes: it is part of every cache key.
GENERATOR_VERSION = 7
#: The version the random streams are seeded with; changing it redraws every attribute and image,
#: so it stays at 6 while additions draw from streams of their own (see the module docstring).
STREAM_VERSION = 6

Sensitive = Union[str, tuple[str, ...]]

DEFAULT_N: dict[str, int] = {"train": 8000, "valid": 2000, "test": 2000}

_SPLIT_CODE = {"train": 0, "valid": 1, "test": 2}


@dataclass(frozen=True)
class SynthConfig:
    """Every argument that determines a SynthFaces split (and hence its cache key).

    ``sensitive`` is one attribute name or a tuple of several (their intersection).
    """

    split: str = "train"
    target: str = "Attractive"
    sensitive: Sensitive = "Male"
    size: int = 64
    n: int = 8000
    correlation: float | None = None
    label_noise: float = 0.0
    seed: int = 0

    @property
    def sensitive_columns(self) -> tuple[str, ...]:
        return sensitive_columns(self.sensitive)

    def validate(self) -> "SynthConfig":
        check_split(self.split)
        check_attributes(self.target, self.sensitive, SYNTH_ATTRIBUTES, dataset="synth")
        if self.target in MULTI_VALUED:
            raise ValueError(f"target {self.target!r} has {len(MULTI_VALUED[self.target])} levels "
                             f"{list(MULTI_VALUED[self.target])}; a target must be binary. It may be the sensitive "
                             f"attribute (k groups) or part of an intersection instead")
        if self.correlation is not None and all(c in MULTI_VALUED for c in self.sensitive_columns):
            raise ValueError(f"correlation sets P(target | a binary sensitive attribute); sensitive "
                             f"{self.sensitive!r} has none (leave correlation None, or intersect it with a binary "
                             f"attribute, e.g. ('Male', {self.sensitive_columns[0]!r}))")
        check_size(self.size)
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be an int >= 1, got {self.n!r}")
        if self.correlation is not None and not 0.0 <= float(self.correlation) <= 1.0:
            raise ValueError(f"correlation must be None or in [0, 1], got {self.correlation!r}")
        if not 0.0 <= float(self.label_noise) < 0.5:  # 0.5 would make the labels pure noise
            raise ValueError(f"label_noise must be in [0, 0.5), got {self.label_noise!r}")
        return self


def generate(cfg: SynthConfig) -> dict[str, torch.Tensor]:
    """Sample attributes and render images for ``cfg`` (no caching).

    ``z`` is the sensitive attribute's code, or the intersection group id of `groups_of` for several.
    """
    cfg.validate()
    ss = np.random.SeedSequence([int(cfg.seed), _SPLIT_CODE[cfg.split], STREAM_VERSION])
    # spawn(5)'s first four children are spawn(4)'s: the version-6 streams, unchanged
    attr_rng, style_rng, noise_rng, label_rng, group_rng = (np.random.Generator(np.random.PCG64(s))
                                                            for s in ss.spawn(5))
    target, sensitive = sampling_pair(cfg.target, cfg.sensitive_columns)
    q = sampling_rates(target, sensitive, cfg.split, cfg.correlation)
    attrs = sample_attributes(cfg.n, attr_rng, target=target, sensitive=sensitive, q=q)
    attrs["Age_Group"] = sample_age_group(attrs["Young"], group_rng)
    style = sample_style(attrs, style_rng)
    style.update(sample_age_style(attrs["Age_Group"], group_rng))
    images = render_faces(style, cfg.size, noise_rng)
    y = attrs[cfg.target].copy()
    if cfg.split == "train" and cfg.label_noise > 0:
        flip = label_rng.random(cfg.n) < cfg.label_noise
        y[flip] = 1 - y[flip]
    z, _ = groups_of(attrs, cfg.sensitive_columns)
    return {
        "images": images,
        "y": torch.from_numpy(y),
        "z": torch.from_numpy(z),
        "attributes": {k: torch.from_numpy(v) for k, v in attrs.items()},
    }


def groups_of(attrs: dict[str, np.ndarray], columns: Sequence[str]) -> tuple[np.ndarray, list[str] | None]:
    """(z, group names) of a sensitive setting on SynthFaces attributes.

    One binary attribute: its 0/1 values, no names (the binary default). One multi-valued attribute:
    its codes, named ``"Age_Group=0-19"`` and so on. Several: one group per combination of their
    values, every combination the model can draw (so every split numbers them alike), in sorted
    order, named ``"Male=0|Young=1"`` (`fapkit.data.base.combination_groups`).
    """
    if len(columns) == 1 and columns[0] not in MULTI_VALUED:
        return np.asarray(attrs[columns[0]], dtype=np.int64).copy(), None
    universe = list(itertools.product(*(levels(c) for c in columns)))
    return combination_groups(attrs, columns, universe=universe, labels=MULTI_VALUED)


class SynthFaces(FaceTensors):
    """Procedural face-like images with CelebA-named binary attributes (see `fapkit.data.synth`).

    ``split`` is ``"train"``, ``"valid"`` or ``"test"``; ``target`` is a binary name from
    `SYNTH_ATTRIBUTES` and ``sensitive`` another name (``"Age_Group"`` gives 4 groups) or several, as
    a list/tuple or ``"Male|Young"``: their intersection, one group per combination of values
    (``group_names`` such as ``"Male=0|Young=1"``; see `groups_of`). ``size`` is the image side in pixels (>= 8):
    images are rendered at this size directly. ``n`` is the number of images, by default 8000
    for train and 2000 for valid and test.

    ``correlation`` is None for the CelebA rates, or a ``c`` in [0, 1] that gives the train
    split ``|P(y=1|z=1) - P(y=1|z=0)| = c`` around 0.5 (valid/test keep the CelebA rates); for an
    intersection it acts on its first binary attribute, and a lone multi-valued sensitive attribute
    refuses it.
    ``label_noise`` is the probability of flipping the observed train label, in [0, 0.5).
    ``seed`` is the base seed; each split derives its own stream from (seed, split).
    ``cache_dir`` is the folder for the ``.pt`` cache (relative to the working directory), or
    None to always regenerate. ``min_group_size`` (default 0: no check) refuses a split in which a
    sensitive group has fewer images, naming the groups and their counts.

    ``loaded_from_cache`` tells whether the tensors were read from ``cache_path``.
    """

    def __init__(
        self,
        split: str = "train",
        target: str = "Attractive",
        sensitive: str | Sequence[str] = "Male",
        size: int = 64,
        n: int | None = None,
        correlation: float | None = None,
        label_noise: float = 0.0,
        seed: int = 0,
        cache_dir: str | Path | None = "data/cache",
        min_group_size: int = 0,
    ) -> None:
        check_split(split)
        sensitive = normalise_sensitive(sensitive)  # ["Male"] is "Male": one setting, one cache file
        cfg = SynthConfig(
            split=split, target=target, sensitive=sensitive, size=size,
            n=DEFAULT_N[split] if n is None else n,
            correlation=None if correlation is None else float(correlation),
            label_noise=float(label_noise), seed=int(seed),
        ).validate()
        self.config = cfg
        self.cache_path: Path | None = None
        self.loaded_from_cache = False
        data = None
        if cache_dir is not None:
            key = cache_key({"dataset": "synth", "version": GENERATOR_VERSION, **asdict(cfg)})
            self.cache_path = Path(cache_dir) / f"synth_{split}_{size}px_{key}.pt"
            data = try_load(self.cache_path)
            self.loaded_from_cache = data is not None
        if data is None:
            data = generate(cfg)
            if self.cache_path is not None:
                save_torch(self.cache_path, data)
        self.sensitive_columns = cfg.sensitive_columns
        _, names = groups_of({c: data["attributes"][c].numpy() for c in self.sensitive_columns}, self.sensitive_columns)
        super().__init__(
            data["images"], data["y"], data["z"],
            target=target, sensitive=sensitive_label(sensitive), name="synth", attributes=data["attributes"],
            group_names=names,
        )
        if min_group_size:
            self.check_group_sizes(min_group_size, split=split)

    def rates(self) -> tuple[float, float]:
        """The ``(P(y=1|z=0), P(y=1|z=1))`` this split was sampled with (before noise).

        z here is the binary attribute sampled with (`fapkit.data.synth.attributes.sampling_pair`):
        the sensitive one, an intersection's first binary one, or Male (Young) for Age_Group alone.
        """
        c = self.config
        return sampling_rates(*sampling_pair(c.target, c.sensitive_columns), c.split, c.correlation)
