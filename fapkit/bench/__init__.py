"""Benchmarks: ``python -m fapkit.bench`` writes results/bench.json and figures/bench.png."""
