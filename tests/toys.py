"""Toy models and loaders shared by the tests: predictions and data whose relation to y and z is known.

``OneLogit`` wraps `toy_model.TinyNet` to one logit; ``ZCoder`` is a model whose logit reveals z exactly
when its input codes z (``z_coded_loader``); ``toy_loader`` gives random 4×4 images with balanced y and z;
``CrashingLoader`` dies when a given epoch starts, as a killed process would.
"""
from __future__ import annotations

import torch
from torch import nn
from toy_model import TinyNet

from fapkit.data import TensorLoader
from fapkit.data.base import FaceTensors


def toy_loader(n: int = 32, batch: int = 8, seed: int = 0) -> TensorLoader:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 4, 4), generator=gen, dtype=torch.uint8)
    y, z = torch.tensor([0, 1] * (n // 2)), torch.tensor([0, 0, 1, 1] * (n // 4))
    return TensorLoader(FaceTensors(images, y, z, target="t", sensitive="s", name="toy"), batch, shuffle=True, seed=0)


class OneLogit(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = TinyNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, :1]


class CrashingLoader:
    """A loader that dies when its `crash_epoch` starts (as a killed process would)."""

    def __init__(self, loader: TensorLoader, crash_epoch: int) -> None:
        self.loader, self.crash_epoch, self.epoch = loader, crash_epoch, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        if self.epoch == self.crash_epoch:
            raise RuntimeError("killed")
        self.loader.epoch = self.epoch
        return iter(self.loader)


class ZCoder(nn.Module):
    """A 'model' whose logit is 8·(x₀ − ½) behind a batch norm: its predictions reveal z when x₀ = z."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(1, affine=False)
        self.fc = nn.Linear(1, 1)
        with torch.no_grad():
            self.fc.weight.fill_(8.0)
            self.fc.bias.fill_(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(x.reshape(len(x), -1)[:, :1]))


def z_coded_loader(n: int = 64, batch_size: int = 16) -> TensorLoader:
    z = torch.tensor([0, 1] * (n // 2))
    y = torch.tensor([0, 0, 1, 1] * (n // 4))
    images = (z * 255).to(torch.uint8).reshape(n, 1, 1, 1).expand(n, 3, 1, 1).contiguous()
    return TensorLoader(FaceTensors(images, y, z, target="t", sensitive="s", name="toy"), batch_size,
                        shuffle=True, seed=0)
