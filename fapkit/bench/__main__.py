"""Run every benchmark, write results/bench.json and a bar figure of the ratios."""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fapkit.bench")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--figures-dir", default="figures")
    args = parser.parse_args()

    from ..records import save_json
    from .data import bench_data
    from .fairgrape import bench_fairgrape
    from .latency import bench_latency
    from .masking import bench_masking
    from .steps import bench_steps

    out = {"machine": {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
                       "python": platform.python_version()}}
    out["masking"] = bench_masking(steps=args.steps)
    print("masking", json.dumps(out["masking"]))
    threads = torch.get_num_threads()
    if threads > 1:  # the kit on a machine shared with other jobs may run with one thread
        torch.set_num_threads(1)
        out["masking_1thread"] = bench_masking(steps=args.steps)
        torch.set_num_threads(threads)
        print("masking (1 thread)", json.dumps(out["masking_1thread"]))
    out["steps"] = bench_steps(steps=args.steps)
    print("steps", json.dumps(out["steps"]))
    out["data"] = bench_data()
    print("data", json.dumps(out["data"]))
    out["fairgrape"] = bench_fairgrape()  # the quick preset's importance pass: 1,000 images
    print("fairgrape", json.dumps(out["fairgrape"]))
    out["latency"] = bench_latency()  # the exported 80 %-sparse and 50 %-channel models against the dense one
    print("latency", json.dumps(out["latency"]))
    save_json(Path(args.results_dir) / "bench.json", out)
    _figure(out, Path(args.figures_dir) / "bench.png")
    print(f"wrote {Path(args.results_dir) / 'bench.json'} and {Path(args.figures_dir) / 'bench.png'}")


def _figure(out: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threads = out["masking"]["threads"]
    ratios = {f"masked / dense\n({threads} threads)": (out["masking"]["masked_over_dense"], 1.15)}
    if "masking_1thread" in out:
        ratios["masked / dense\n(1 thread)"] = (out["masking_1thread"]["masked_over_dense"], 1.15)
    ratios["FAPrune / SGDP"] = (out["steps"]["faprune_over_sgdp"], 1.05)
    if "fairgrape" in out:
        ratios["FairGRAPE greedy /\nimportance pass"] = (out["fairgrape"]["greedy_over_importance"], 1.0)
    fig, axes = plt.subplots(1, 3 if "latency" in out else 2, figsize=(16 if "latency" in out else 11, 3.4))
    names = list(ratios)
    values = [ratios[n][0] for n in names]
    axes[0].bar(names, values, color=["#4c72b0", "#64b5cd", "#55a868", "#dd8452"][:len(names)])
    axes[0].scatter(names, [ratios[n][1] for n in names], marker="_", s=900, color="red", label="target (at most)")
    for i, v in enumerate(values):
        axes[0].annotate(f"{v:.3f}", (i, v), ha="center", va="top", xytext=(0, -4), textcoords="offset points",
                         color="white", fontweight="bold")
    axes[0].set_ylim(min(0.9, min(values) - 0.05), max(1.25, max(values) + 0.05))  # ratios near 1: show the difference
    axes[0].set_ylabel("time ratio (lower is better)")
    axes[0].legend(loc="upper right", fontsize=8)
    d = out["data"]
    axes[1].bar(["probe acc z", "probe acc y"], [d["probe_acc_z"], d["probe_acc_y"]], color=["#c44e52", "#8172b2"])
    axes[1].set_ylim(0.4, 1.0)
    axes[1].set_title(f"SynthFaces: 10k @64px in {d['synth_10k_64px_seconds']:.2f} s")
    if "latency" in out:  # the exported 80 %-sparse model: the same dense kernels, so about 1
        rows = out["latency"]["rows"]
        labels = [f"{r['runtime'].replace('onnxruntime', 'ORT')}\nb{r['batch']} t{r['threads']}" for r in rows]
        at = range(len(rows))
        axes[2].bar([i - 0.2 for i in at], [r["pruned_over_dense"] for r in rows], width=0.4, color="#937860",
                    label=f"{out['latency']['ratio']:.0%} unstructured")
        if all("channel_over_dense" in r for r in rows):  # the narrowed model of a channel run
            axes[2].bar([i + 0.2 for i in at], [r["channel_over_dense"] for r in rows], width=0.4, color="#55a868",
                        label=f"{out['latency'].get('channel_ratio', 0.5):.0%} of channels removed")
        axes[2].set_xticks(list(at), labels)
        axes[2].legend(loc="upper right", fontsize=7)
        axes[2].axhline(1.0, color="black", linewidth=0.8)
        axes[2].set_ylabel("pruned / dense latency")
        axes[2].set_title(f"{out['latency']['arch']}: exported pruned models, inference")
        axes[2].tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
