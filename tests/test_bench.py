"""The benchmark commands run and report what they claim (tiny sizes; no timing is asserted)."""
from __future__ import annotations

import math
from pathlib import Path

from fapkit.bench.__main__ import _figure
from fapkit.bench.masking import bench_masking
from fapkit.bench.steps import bench_steps


def test_bench_masking_reports_ratios_and_search_counters() -> None:
    out = bench_masking(steps=2, warmup=1, batch=4, size=16)
    for key in ("masked_over_dense", "global_over_dense", "masked_over_dense_paired", "global_over_dense_paired"):
        assert math.isfinite(out[key]) and out[key] > 0
    assert out["masked_over_dense"] == out["masked_step_ms"] / out["dense_vs_masked_ms"]
    # every timed and warm-up step of the layer-scope model selected a mask for each of its 21 layers
    assert out["layer_search"]["selections"] >= 21 * 3 and out["layer_search"]["fallbacks"] == 0
    assert out["global_search"]["selections"] >= 3


def test_bench_steps_and_figure(tmp_path: Path) -> None:
    steps = bench_steps(steps=2, batch=4, size=16)
    assert steps["faprune_over_sgdp"] == steps["faprune_step_ms"] / steps["sgdp_step_ms"]
    masking = {"masked_over_dense": 1.1, "threads": 2}
    out = {"masking": masking, "masking_1thread": {**masking, "threads": 1}, "steps": steps,
           "data": {"probe_acc_z": 0.9, "probe_acc_y": 0.8, "synth_10k_64px_seconds": 2.0}}
    _figure(out, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_bench_fairgrape_times_the_greedy_against_the_importance_pass(tmp_path: Path) -> None:
    from fapkit.bench.fairgrape import bench_fairgrape

    out = bench_fairgrape(images=8, batch=4, size=16, arch="small_cnn")
    assert out["images"] == 8 and out["weights"] > 0
    assert out["greedy_over_importance"] == out["greedy_seconds"] / out["importance_seconds"]
    steps = {"faprune_over_sgdp": 1.0}
    _figure({"masking": {"masked_over_dense": 1.1, "threads": 2}, "steps": steps, "fairgrape": out,
             "data": {"probe_acc_z": 0.9, "probe_acc_y": 0.8, "synth_10k_64px_seconds": 2.0}}, tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 10_000


def test_latency_bench_times_the_exported_pruned_model_against_the_dense_one(tmp_path: Path) -> None:
    from fapkit.bench.latency import _pruned, bench_latency
    from fapkit.models import build_model

    out = bench_latency(arch="small_cnn", batches=(1,), threads=(1,), repeats=2)
    torch_rows = [r for r in out["rows"] if r["runtime"] == "torch"]
    assert len(torch_rows) == 1 and torch_rows[0]["dense_ms"] > 0 and torch_rows[0]["pruned_over_dense"] > 0
    assert torch_rows[0]["channel_ms"] > 0 and torch_rows[0]["channel_over_dense"] > 0  # the narrowed channel model
    pruned = _pruned(build_model("small_cnn", seed=0), 0.8)
    zeros = sum(int((m.weight == 0).sum()) for m in pruned.modules() if hasattr(m, "weight") and m.weight.dim() > 1)
    total = sum(m.weight.numel() for m in pruned.modules() if hasattr(m, "weight") and m.weight.dim() > 1)
    assert abs(zeros / total - 0.8) < 0.01  # what the exported file holds: 80 % exact zeros
    _figure({"masking": {"masked_over_dense": 1.1, "threads": 2}, "steps": {"faprune_over_sgdp": 1.0}, "latency": out,
             "data": {"probe_acc_z": 0.9, "probe_acc_y": 0.8, "synth_10k_64px_seconds": 2.0}}, tmp_path / "l.png")
    assert (tmp_path / "l.png").stat().st_size > 10_000
