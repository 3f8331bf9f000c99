"""The SynthFaces dataset: `SynthConfig`, `generate` and the cached `SynthFaces`.

`generate` derives four independent random streams (attributes, style, pixel noise,
label noise) from ``(seed, split, GENERATOR_VERSION)``, so a split is the same bit for bit
in every process. `SynthFaces` stores the result as a ``.pt`` file keyed by every
field of the `SynthConfig` plus `GENERATOR_VERSION`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ...records import save_torch
from ..base import FaceTensors, cache_key, check_attributes, check_size, check_split, try_load
from .attributes import SYNTH_ATTRIBUTES, sample_attributes, sampling_rates
from .render import render_faces, sample_style

#: Bump whenever the sampling model (:mod:`fapkit.data.synth.attributes`) or the renderer
#: (:mod:`fapkit.data.synth.render`) changes: it is part of every cache key.
GENERATOR_VERSION = 6

DEFAULT_N: dict[str, int] = {"train": 8000, "valid": 2000, "test": 2000}

_SPLIT_CODE = {"train": 0, "valid": 1, "test": 2}


@dataclass(frozen=True)
class SynthConfig:
    """Every argument that determines a SynthFaces split (and hence its cache key)."""

    split: str = "train"
    target: str = "Attractive"
    sensitive: str = "Male"
    size: int = 64
    n: int = 8000
    correlation: float | None = None
    label_noise: float = 0.0
    seed: int = 0

    def validate(self) -> "SynthConfig":
        check_split(self.split)
        check_attributes(self.target, self.sensitive, SYNTH_ATTRIBUTES, dataset="synth")
        check_size(self.size)
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be an int >= 1, got {self.n!r}")
        if self.correlation is not None and not 0.0 <= float(self.correlation) <= 1.0:
            raise ValueError(f"correlation must be None or in [0, 1], got {self.correlation!r}")
        if not 0.0 <= float(self.label_noise) < 0.5:  # 0.5 would make the labels pure noise
            raise ValueError(f"label_noise must be in [0, 0.5), got {self.label_noise!r}")
        return self


def generate(cfg: SynthConfig) -> dict[str, torch.Tensor]:
    """Sample attributes and render images for ``cfg`` (no caching)."""
    cfg.validate()
    ss = np.random.SeedSequence([int(cfg.seed), _SPLIT_CODE[cfg.split], GENERATOR_VERSION])
    attr_rng, style_rng, noise_rng, label_rng = (np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(4))
    q = sampling_rates(cfg.target, cfg.sensitive, cfg.split, cfg.correlation)
    attrs = sample_attributes(cfg.n, attr_rng, target=cfg.target, sensitive=cfg.sensitive, q=q)
    style = sample_style(attrs, style_rng)
    images = render_faces(style, cfg.size, noise_rng)
    y = attrs[cfg.target].copy()
    if cfg.split == "train" and cfg.label_noise > 0:
        flip = label_rng.random(cfg.n) < cfg.label_noise
        y[flip] = 1 - y[flip]
    return {
        "images": images,
        "y": torch.from_numpy(y),
        "z": torch.from_numpy(attrs[cfg.sensitive].copy()),
        "attributes": {k: torch.from_numpy(v) for k, v in attrs.items()},
    }


class SynthFaces(FaceTensors):
    """Procedural face-like images with CelebA-named binary attributes (see `fapkit.data.synth`).

    ``split`` is ``"train"``, ``"valid"`` or ``"test"``; ``target`` and ``sensitive`` are two
    different names from `SYNTH_ATTRIBUTES`. ``size`` is the image side in pixels (>= 8):
    images are rendered at this size directly. ``n`` is the number of images, by default 8000
    for train and 2000 for valid and test.

    ``correlation`` is None for the CelebA rates, or a ``c`` in [0, 1] that gives the train
    split ``|P(y=1|z=1) - P(y=1|z=0)| = c`` around 0.5 (valid/test keep the CelebA rates).
    ``label_noise`` is the probability of flipping the observed train label, in [0, 0.5).
    ``seed`` is the base seed; each split derives its own stream from (seed, split).
    ``cache_dir`` is the folder for the ``.pt`` cache (relative to the working directory), or
    None to always regenerate.

    ``loaded_from_cache`` tells whether the tensors were read from ``cache_path``.
    """

    def __init__(
        self,
        split: str = "train",
        target: str = "Attractive",
        sensitive: str = "Male",
        size: int = 64,
        n: int | None = None,
        correlation: float | None = None,
        label_noise: float = 0.0,
        seed: int = 0,
        cache_dir: str | Path | None = "data/cache",
    ) -> None:
        check_split(split)
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
        super().__init__(
            data["images"], data["y"], data["z"],
            target=target, sensitive=sensitive, name="synth", attributes=data["attributes"],
        )

    def rates(self) -> tuple[float, float]:
        """The ``(P(y=1|z=0), P(y=1|z=1))`` this split was sampled with (before noise)."""
        c = self.config
        return sampling_rates(c.target, c.sensitive, c.split, c.correlation)
