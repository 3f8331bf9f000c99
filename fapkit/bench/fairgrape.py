"""FairGRAPE's greedy selection against its importance pass on ResNet18 (issue 18: the greedy may not cost more)."""
from __future__ import annotations

import json
import time

import torch

from ..masking import prunable_layers
from ..methods.fairgrape import fairgrape_masks, greedy_keep, group_importance
from ..models import build_model


def bench_fairgrape(*, images: int = 1000, batch: int = 64, size: int = 32, arch: str = "resnet18",
                    groups: int = 2, seed: int = 0) -> dict[str, float]:
    """Seconds of one importance pass over `images` random images and of one greedy step over every layer.

    The greedy step is FairGRAPE's first iteration (keep 0.9 of every layer's weights) on that
    importance; its compilation (numba, once per process) is timed apart and not counted.
    """
    gen = torch.Generator().manual_seed(seed)
    model = build_model(arch, seed=seed)
    batches = [(torch.rand(batch, 3, size, size, generator=gen), torch.randint(0, 2, (batch,), generator=gen),
                torch.randint(0, groups, (batch,), generator=gen)) for _ in range(max(1, images // batch))]
    weights = {name: layer.weight for name, layer in prunable_layers(model).items()}
    start = time.perf_counter()
    importance = group_importance(model, weights, batches, device="cpu", groups=groups)
    scoring = time.perf_counter() - start
    start = time.perf_counter()
    greedy_keep(torch.rand(groups, 100, generator=gen, dtype=torch.float64), 50)  # compiles the loop
    compile_seconds = time.perf_counter() - start
    masks = {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}
    start = time.perf_counter()
    fairgrape_masks(importance, masks, 0.1)
    selection = time.perf_counter() - start
    return {"importance_seconds": scoring, "greedy_seconds": selection, "greedy_over_importance": selection / scoring,
            "compile_seconds": compile_seconds, "images": len(batches) * batch, "groups": groups,
            "weights": sum(w.numel() for w in weights.values())}


if __name__ == "__main__":
    print(json.dumps(bench_fairgrape(), indent=2))
