"""A seeded tabular generator with a tunable dependence of y on z: a user's problem that is not a face.

For the robustness suite (`fapkit.bench.robustness`) and the tests: a different kind of data
from SynthFaces, consumed as a user would, through ``model=`` and plain
``torch.utils.data.DataLoader`` loaders of ``(x, y, z)``.

Each sample has a group z ∈ {0, …, k−1} (the last group has share `minority`, the others share the
rest equally), a latent ability u ~ N(0, I_d), and

* a target y ~ Bernoulli(σ(sharpness · (w·u + dependence · c_z))), with c_z the group's centred
  code (−½ … ½), so `dependence` sets how much y itself depends on z;
* features x = [u + noise_x, proxy · onehot(z) + N(0, 1)]: `proxy` sets how visible z is, so a
  model can learn z's shortcut to y and so treat the groups' errors differently (DEO > 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass(frozen=True)
class TabularConfig:
    """The generator's settings: ``n_train + n_valid + n_test`` samples, split in that order.

    The default evaluation splits (4,000 each) keep DEO's standard error near 0.02 (DESIGN.md §7).
    """

    n_train: int = 6000
    n_valid: int = 4000
    n_test: int = 4000
    features: int = 8
    groups: int = 2
    minority: float = 0.5              # share of the last group
    dependence: float = 1.0            # log-odds shift of y between the extreme groups (before sharpness)
    proxy: float = 1.5                 # how strongly the features reveal z
    sharpness: float = 2.0
    feature_noise: float = 0.5
    seed: int = 0

    @property
    def n(self) -> int:
        return self.n_train + self.n_valid + self.n_test

    def validate(self) -> None:
        for name in ("n_train", "n_valid", "n_test"):
            if getattr(self, name) < 10:
                raise ValueError(f"{name} must be >= 10 samples, got {getattr(self, name)}")
        if self.features < 1:
            raise ValueError(f"features must be >= 1, got {self.features}")
        if self.groups < 2:
            raise ValueError(f"groups must be >= 2, got {self.groups}")
        if not 0 < self.minority < 1:
            raise ValueError(f"minority must be in (0, 1), got {self.minority}")


def tabular_tensors(cfg: TabularConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x float32 [n, features + groups], y int64 [n], z int64 [n]) drawn from `cfg` (same seed, same tensors)."""
    cfg.validate()
    gen = torch.Generator().manual_seed(cfg.seed)
    shares = torch.full((cfg.groups,), (1 - cfg.minority) / (cfg.groups - 1))
    shares[-1] = cfg.minority
    z = torch.multinomial(shares, cfg.n, replacement=True, generator=gen)
    u = torch.randn(cfg.n, cfg.features, generator=gen)
    w = torch.randn(cfg.features, generator=gen) / cfg.features ** 0.5
    code = z.float() / (cfg.groups - 1) - 0.5
    logit = cfg.sharpness * (u @ w + cfg.dependence * code)
    y = (torch.rand(cfg.n, generator=gen) < torch.sigmoid(logit)).long()
    seen = u + cfg.feature_noise * torch.randn(cfg.n, cfg.features, generator=gen)
    revealed = cfg.proxy * torch.nn.functional.one_hot(z, cfg.groups).float() + torch.randn(cfg.n, cfg.groups,
                                                                                           generator=gen)
    return torch.cat([seen, revealed], dim=1), y, z


@dataclass(frozen=True)
class TabularSplit:
    """One split's tensors; `z` is where `fapkit.training.batches.group_count` reads the number of groups."""

    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


class TabularLoader:
    """Batches of a `TabularSplit`; shuffled in an order fixed by (seed, epoch), so runs repeat and resume.

    The training loop sets ``epoch`` before each pass (as for the kit's own `fapkit.data.TensorLoader`).
    """

    def __init__(self, ds: TabularSplit, batch_size: int, *, shuffle: bool, seed: int = 0) -> None:
        self.ds, self.batch_size, self.shuffle, self.seed, self.epoch = ds, int(batch_size), shuffle, int(seed), 0

    def __len__(self) -> int:
        return math.ceil(len(self.ds) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        n = len(self.ds)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1000003 + self.epoch))
                 if self.shuffle else torch.arange(n))
        for k in range(len(self)):
            sel = order[k * self.batch_size:(k + 1) * self.batch_size]
            yield self.ds.x[sel], self.ds.y[sel], self.ds.z[sel]
        self.epoch += 1


def tabular_loaders(cfg: TabularConfig, *, batch_size: int = 64,
                    seed: int = 0) -> tuple[TabularLoader, TabularLoader, TabularLoader]:
    """train (shuffled, seeded by `seed`), valid and test loaders over the splits of `tabular_tensors`."""
    x, y, z = tabular_tensors(cfg)
    a, b = cfg.n_train, cfg.n_train + cfg.n_valid
    parts = [TabularSplit(x[s], y[s], z[s]) for s in (slice(0, a), slice(a, b), slice(b, None))]
    return (TabularLoader(parts[0], batch_size, shuffle=True, seed=seed),
            *(TabularLoader(p, 512, shuffle=False) for p in parts[1:]))


def mlp(inputs: int, hidden: int = 64, seed: int = 0) -> torch.nn.Module:
    """A user's small MLP with one logit: two hidden ReLU layers (initialised from `seed`)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
