"""Benchmark of the synthetic face data: generation speed and cue salience.

Run ``python -m fapkit.bench.data`` to print a JSON dict with

- ``synth_10k_64px_seconds``: wall time to generate 10,000 images at 64x64 (no cache);
- ``probe_acc_z`` / ``probe_acc_y``: test accuracy of a small CNN trained for the same
  number of steps to predict the sensitive attribute z and the target y;
- ``probe_gap``: ``probe_acc_z - probe_acc_y``. A clearly positive gap is what makes the
  sensitive attribute a shortcut, as Male is for Attractive on CelebA.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from typing import Iterator, Literal

import torch
from torch import nn

from fapkit.data.base import FaceTensors, TensorLoader
from fapkit.data.synth import SynthFaces


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (None: leave it alone).

    One thread makes the probe reproducible bit for bit and, on a shared small machine,
    several times faster than contended OpenMP threads.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def probe_net(size: int, width: int = 16) -> nn.Module:
    """Strided 3x3 conv-BN-ReLU blocks down to a 4x4 map, global average pool, linear head.

    The depth grows with ``size`` (3 blocks at 32 px, 4 at 64 px) so the receptive field
    covers the whole face at any size. BatchNorm makes 100-200 steps enough for the probe
    to settle, so the z-vs-y gap reflects cue salience rather than one seed's luck.
    """
    layers: list[nn.Module] = []
    cin, cout = 3, width
    for _ in range(max(1, int(math.log2(size)) - 2)):
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        cin, cout = cout, min(2 * cout, 8 * width)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 2))


def probe_accuracy(
    train: FaceTensors,
    test: FaceTensors,
    label: Literal["y", "z"],
    *,
    steps: int = 200,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
) -> float:
    """Train `probe_net` for ``steps`` Adam steps on ``label``; return test accuracy.

    Runs with the current torch thread setting; wrap in `torch_threads` for
    reproducible numbers.
    """
    if label not in ("y", "z"):
        raise ValueError(f"label must be 'y' or 'z', got {label!r}")
    torch.manual_seed(seed)
    net = probe_net(train.size)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loader = TensorLoader(train, batch_size, shuffle=True, seed=seed, drop_last=True)
    pick = 1 if label == "y" else 2
    step = 0
    net.train()
    while step < steps:
        for batch in loader:
            x, t = batch[0], batch[pick]
            loss = nn.functional.cross_entropy(net(x), t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step >= steps:
                break
    net.eval()
    correct = 0
    with torch.no_grad():
        for batch in TensorLoader(test, 512, shuffle=False):
            correct += int((net(batch[0]).argmax(1) == batch[pick]).sum())
    return correct / len(test)


def time_generation(n: int = 10_000, size: int = 64) -> float:
    """Seconds to generate ``n`` synthetic faces at ``size`` px with caching disabled."""
    t0 = time.perf_counter()
    SynthFaces("train", n=n, size=size, cache_dir=None)
    return time.perf_counter() - t0


def probe_gap(
    *, steps: int = 200, size: int = 64, n_train: int = 4000, n_test: int = 2000,
    seed: int = 0, threads: int | None = 1,
) -> tuple[float, float]:
    """``(probe_acc_z, probe_acc_y)`` on SynthFaces(Attractive, Male) at CelebA rates."""
    train = SynthFaces("train", size=size, n=n_train, seed=seed, cache_dir=None)
    test = SynthFaces("test", size=size, n=n_test, seed=seed, cache_dir=None)
    with torch_threads(threads):
        acc_z = probe_accuracy(train, test, "z", steps=steps, seed=seed)
        acc_y = probe_accuracy(train, test, "y", steps=steps, seed=seed)
    return acc_z, acc_y


def bench_data(*, probe_steps: int = 200, size: int = 64, seed: int = 0, threads: int | None = 1) -> dict:
    """Generation time for 10k 64-px images and the z-vs-y probe accuracies."""
    seconds = time_generation()
    acc_z, acc_y = probe_gap(steps=probe_steps, size=size, seed=seed, threads=threads)
    return {
        "synth_10k_64px_seconds": round(seconds, 3),
        "probe_acc_z": round(acc_z, 4),
        "probe_acc_y": round(acc_y, 4),
        "probe_gap": round(acc_z - acc_y, 4),
        "probe_steps": probe_steps,
        "probe_size": size,
        "target": "Attractive",
        "sensitive": "Male",
    }


if __name__ == "__main__":
    print(json.dumps(bench_data(), indent=2))
