"""Cost of a score-masked training step relative to a dense one (ResNet-18, CPU).

Dense step: Adam on all weights. Masked step: Adam on the scores of
`fapkit.masking.attach_scores` (weights frozen), top-k selection included, for
``scope="layer"`` and ``scope="global"``. Each masked variant is timed against the dense
step in one process, the two interleaved step by step (the order alternating) so that
machine noise hits both alike; medians are reported. Run ``python -m fapkit.bench.masking`` to print the JSON.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torchvision
from torch import nn

from fapkit.masking import attach_scores
from fapkit.training.runtime import keep_freed_memory


def _make_step(model: nn.Module, params, x: torch.Tensor, y: torch.Tensor, lr: float) -> Callable[[], None]:
    opt = torch.optim.Adam(params, lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def dense_step_ms(*, steps: int = 15, batch: int = 64, size: int = 32, lr: float = 1e-3, warmup: int = 3,
                  seed: int = 0) -> float:
    """Median ms of the bench's dense step (ResNet-18, Adam, batch 64 at 32 px, random data): the unit of a budget.

    The series divides its wall times by it (`fapkit.series`), so a budget in dense steps holds on
    any machine; `bench_masking` measures the same step, interleaved with the masked ones.
    """
    keep_freed_memory()
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=1).train()
    step = _make_step(model, model.parameters(), torch.randn(batch, 3, size, size),
                      torch.randint(0, 2, (batch, 1)).float(), lr)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None


def interleaved_times(runners: dict[str, Callable[[], object]], repeats: int, warmup: int = 3) -> dict[str, list[float]]:
    """Each call's time (ms) of every runner, the runners interleaved with the order rotating every round, after
    `warmup` untimed rounds: slow load changes of the machine fall on all of them alike."""
    for _ in range(warmup):
        for run in runners.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for i in range(repeats):
        for name in names[i % len(names):] + names[: i % len(names)]:
            start = time.perf_counter()
            runners[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def _search_counters(masker: Any) -> dict[str, int]:
    """The band search's counters summed over a score masker's layer groups (selections, retries, fallbacks)."""
    stats = [g.search.stats for g in masker.engine.groups]
    return {
        "selections": sum(s.calls for s in stats),
        "band_retries": sum(s.band_retries for s in stats),
        "fallbacks": sum(s.fallbacks for s in stats),
        "band_values": sum(s.last_band for s in stats),
    }


def bench_masking(
    *,
    steps: int = 30,
    batch: int = 64,
    size: int = 32,
    ratio: float = 0.8,
    lr: float = 1e-3,
    warmup: int = 3,
    seed: int = 0,
) -> dict:
    """Median step times (ms) of dense, layer-scope masked and global-scope masked training.

    Returns ``dense_step_ms`` (all dense steps), ``dense_vs_masked_ms`` / ``dense_vs_global_ms``
    (the dense steps of each pair), ``masked_step_ms``, ``global_step_ms``, the ratios of the
    medians within each pair ``masked_over_dense`` and ``global_over_dense``, the medians of per-round
    ratios (``*_paired``, steadier when other processes load the machine), and the
    band-search counters (selections, band retries, exact fallbacks, last band sizes).
    """
    load_before = _load_average()
    allocator_tuned = keep_freed_memory()  # as training does (fapkit.training.loop.fit)
    torch.manual_seed(seed)
    dense = torchvision.models.resnet18(num_classes=1)
    masked, global_ = copy.deepcopy(dense), copy.deepcopy(dense)
    layer_masker = attach_scores(masked, ratio, scope="layer")
    global_masker = attach_scores(global_, ratio, scope="global")
    for m in (dense, masked, global_):
        m.train()
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 2, (batch, 1)).float()
    runs = {
        "dense": _make_step(dense, dense.parameters(), x, y, lr),
        "masked": _make_step(masked, layer_masker.score_parameters(), x, y, lr),
        "global": _make_step(global_, global_masker.score_parameters(), x, y, lr),
    }
    # each masked variant is timed against the dense model in its own interleaved pair, the
    # order alternating every round: a training run holds one model, and a third model in
    # the rotation would add cache pressure (about 0.02 on the ratio) that no run has
    times: dict[str, list[float]] = {}
    for name in ("masked", "global"):
        pair_times = interleaved_times({"dense": runs["dense"], name: runs[name]}, steps, warmup)
        times[name], times[f"dense_vs_{name}"] = pair_times[name], pair_times["dense"]
    times["dense"] = times["dense_vs_masked"] + times["dense_vs_global"]
    med = {name: statistics.median(ts) for name, ts in times.items()}
    # ratios within one round (steps run back to back) resist slow load changes better
    paired = {
        name: statistics.median(m / d for m, d in zip(times[name], times[f"dense_vs_{name}"]))
        for name in ("masked", "global")
    }

    return {
        "dense_step_ms": med["dense"],
        "dense_vs_masked_ms": med["dense_vs_masked"],  # the dense steps of each pair
        "dense_vs_global_ms": med["dense_vs_global"],
        "masked_step_ms": med["masked"],
        "global_step_ms": med["global"],
        "masked_over_dense": med["masked"] / med["dense_vs_masked"],
        "global_over_dense": med["global"] / med["dense_vs_global"],
        "masked_over_dense_paired": paired["masked"],
        "global_over_dense_paired": paired["global"],
        "steps": steps,
        "batch": batch,
        "size": size,
        "ratio": ratio,
        "lr": lr,
        "threads": torch.get_num_threads(),
        "allocator_tuned": allocator_tuned,
        "load_average": [load_before, _load_average()],  # other processes skew timings
        "torch": torch.__version__,
        "layer_search": _search_counters(layer_masker),
        "global_search": _search_counters(global_masker),
    }


def main() -> None:
    print(json.dumps(bench_masking(), indent=2))


if __name__ == "__main__":
    main()
