"""Model builders: torchvision architectures with a one-logit head, nothing downloaded."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

ARCHITECTURES = ("resnet18", "shufflenet_v2_x1_0", "mobilenet_v2", "small_cnn")

# Smallest input side we accept. Padding lets the torchvision trunks run on any size, but below
# 16 px their stride-4 stem already leaves a 4×4 map and the later stages see a single pixel.
MIN_INPUT_SIZE = {"resnet18": 16, "shufflenet_v2_x1_0": 16, "mobilenet_v2": 16, "small_cnn": 8}


class SmallCNN(nn.Module):
    """A four-layer CNN for tests and smoke runs: Conv-BN-ReLU ×3, global pooling, Linear(→1)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def check_arch(arch: str, size: int | None = None) -> None:
    """Raise a ValueError naming the bad architecture or an image size it cannot take."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if size is not None and size < MIN_INPUT_SIZE[arch]:
        raise ValueError(
            f"image size {size} is too small for {arch}: it needs at least {MIN_INPUT_SIZE[arch]}×{MIN_INPUT_SIZE[arch]}")


def build_model(arch: str, *, weights: str | Path | None = None, seed: int | None = None) -> nn.Module:
    """Build `arch` with a single-logit head, randomly initialised (seeded if `seed` is given).

    `weights` is an optional local state_dict file (one logit head, same architecture); the kit
    never downloads pretrained weights.
    """
    check_arch(arch)
    if seed is not None:
        torch.manual_seed(seed)
    if arch == "small_cnn":
        model: nn.Module = SmallCNN()
    else:
        import torchvision  # here, not at import: it costs seconds (torch._dynamo), and small_cnn runs need none

        model = getattr(torchvision.models, arch)(weights=None, num_classes=1)
    if weights is not None:
        load_weights(model, weights, arch=arch)
    return model


def load_weights(model: nn.Module, path: str | Path, *, arch: str = "model") -> None:
    """Load a local state_dict, with an error that says which architecture it does not fit."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say so instead of a pickle traceback
        raise ValueError(f"cannot read weights file {path}: {err}") from err
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"weights file {path} does not fit architecture {arch}: {str(err).splitlines()[0]}") from err
