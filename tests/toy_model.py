"""Tiny models whose outputs are known exactly (after open_lth's ``testing/toy_model.py``).

``ToyLinear`` is one bias-free ``Linear(4, 1)`` with weights ``[1, -2, 3, -4]``: with an
all-ones input the dense output is ``-2``, and every mask's output is the sum of the kept
weights, so masked forwards and optimizer steps can be asserted to exact numbers.
``TinyNet`` is a small conv net (two convs, one linear, with biases and a batch norm) for
tests that need several layers of different sizes.
"""

from __future__ import annotations

import torch
from torch import nn

TOY_WEIGHTS = (1.0, -2.0, 3.0, -4.0)


class ToyLinear(nn.Module):
    """``y = w · x`` with ``w = [1, -2, 3, -4]`` and no bias."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([TOY_WEIGHTS]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class TinyNet(nn.Module):
    """Conv(3->8, 3x3) -> BN -> ReLU -> Conv(8->16, 3x3) -> pool -> Linear(16->3)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.fc = nn.Linear(16, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv1(x)))
        x = self.conv2(x).mean(dim=(2, 3))
        return self.fc(x)
