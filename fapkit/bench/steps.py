"""FAPrune step vs SGDP step: what the discriminator and the adversarial term add to mask learning."""
from __future__ import annotations

import json
import statistics
import time

import torch

from ..fairness.discriminators import FairnessDiscriminator
from ..masking import attach_scores
from ..methods.adversarial import faprune_step
from ..models import build_model
from ..settings import AdversaryConfig
from ..training.loop import Players, Round, ce_step
from ..training.runtime import keep_freed_memory


def bench_steps(*, steps: int = 20, batch: int = 64, size: int = 32, arch: str = "resnet18") -> dict[str, float]:
    """Median ms of an SGDP step and a FAPrune step, measured alternately in one process."""
    keep_freed_memory()  # as training does
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 2, (batch,))
    z = torch.randint(0, 2, (batch,))
    runners = {}
    for name in ("sgdp", "faprune"):
        model = build_model(arch, seed=0)
        for p in model.parameters():
            p.requires_grad_(False)
        masker = attach_scores(model, 0.8, init="magnitude")
        model.train()
        opt = torch.optim.Adam(masker.score_parameters(), lr=1e-2)
        if name == "sgdp":
            players, turn, step = Players(model, masker.score_parameters(), opt), Round(), ce_step
        else:
            game = AdversaryConfig(alpha=0.5, lam=1.0)
            disc = FairnessDiscriminator(game.alpha)
            players = Players(model, masker.score_parameters(), opt, disc, torch.optim.Adam(disc.parameters(), lr=1e-3))
            turn, step = Round(game, lam=game.lam), faprune_step
        runners[name] = lambda p=players, t=turn, f=step: f(p, (x, y, z), t)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(steps + 3):
        for name, step in runners.items():  # alternate so machine load hits both alike
            start = time.perf_counter()
            step()
            if i >= 3:  # warm-up: allocator, first threshold search
                times[name].append(time.perf_counter() - start)
    sgdp, fap = (statistics.median(times[n]) * 1e3 for n in ("sgdp", "faprune"))
    return {"sgdp_step_ms": sgdp, "faprune_step_ms": fap, "faprune_over_sgdp": fap / sgdp}


if __name__ == "__main__":
    print(json.dumps(bench_steps(), indent=2))
