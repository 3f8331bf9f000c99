"""Figures for the synthetic face benchmark.

Writes
- ``<out_dir>/synth_samples.png``: test images per (z, y) group, labelled;
- ``<out_dir>/synth_group_rates.png`` and ``<results_dir>/synth_group_rates.csv``:
  P(y=1 | z) per split, measured and as specified, with the z-vs-y probe accuracies
  in a second panel.

Run: ``python scripts/demo_data.py`` (from the repository root).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fapkit.bench.data import probe_gap
from fapkit.data import SynthFaces

SPLITS = ("train", "valid", "test")


def _samples_figure(ds: SynthFaces, path: Path, per_group: int = 8) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(per_group * 1.1, 4 * 1.35))
    for ax, (zv, yv) in zip(axes, [(0, 0), (0, 1), (1, 0), (1, 1)]):
        idx = np.flatnonzero(((ds.z == zv) & (ds.y == yv)).numpy())[:per_group]
        row = ds.images[idx].permute(0, 2, 3, 1).numpy()  # [k, H, W, 3]
        pad = np.full((len(row), ds.size, 2, 3), 255, np.uint8)
        strip = np.concatenate([np.concatenate([im, p], axis=1) for im, p in zip(row, pad)], axis=1)
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        n_group = int(((ds.z == zv) & (ds.y == yv)).sum())
        ax.set_ylabel(f"{ds.sensitive}={zv}\n{ds.target}={yv}", rotation=0, ha="right", va="center", fontsize=9)
        ax.set_title(f"n={n_group} of {len(ds)}", fontsize=8, loc="right")
    fig.suptitle(f"SynthFaces test split, {ds.size}px: groups by ({ds.sensitive}, {ds.target})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _rates_rows(splits: dict[str, SynthFaces]) -> list[dict]:
    rows = []
    for name, ds in splits.items():
        spec = ds.rates()
        for zv in (0, 1):
            sel = ds.z == zv
            rows.append({
                "split": name, "z": zv, "n": int(sel.sum()),
                "p_y1_given_z": round(float(ds.y[sel].float().mean()), 4),
                "spec_p_y1_given_z": round(spec[zv], 4),
            })
    return rows


def _rates_figure(rows: list[dict], acc: tuple[float, float], steps: int, size: int, path: Path,
                  target: str, sensitive: str) -> None:
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.38
    for k, zv in enumerate((0, 1)):
        sub = [r for r in rows if r["z"] == zv]
        xs = np.arange(len(sub)) + (k - 0.5) * width
        ax.bar(xs, [r["p_y1_given_z"] for r in sub], width, label=f"{sensitive}={zv}")
        ax.scatter(xs, [r["spec_p_y1_given_z"] for r in sub], color="k", marker="_", s=200, zorder=3,
                   label="specified" if zv == 1 else None)
    ax.set_xticks(range(len(SPLITS)), SPLITS)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"P({target}=1 | {sensitive})")
    ax.legend(fontsize=8)
    ax.set_title("Group base rates (CelebA-like bias)", fontsize=10)
    bars = bx.bar([f"z ({sensitive})", f"y ({target})"], acc, color=["tab:red", "tab:blue"])
    bx.bar_label(bars, fmt="%.3f", fontsize=8)
    bx.set_ylim(0, 1)
    bx.set_title(f"Probe test acc. ({steps} steps, {size}px)", fontsize=10)
    fig.suptitle(f"Probe gap z - y = {acc[0] - acc[1]:.3f}: the sensitive cue is the easier one", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(out_dir: str | Path = "figures", results_dir: str | Path = "results", *, size: int = 64,
         probe_steps: int = 200, seed: int = 0, cache_dir: str | Path | None = "data/cache") -> dict:
    """Write the sample grid, the group-rate figure and CSV; return paths and numbers."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir, results_dir = Path(out_dir), Path(results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)

    splits = {s: SynthFaces(s, size=size, seed=seed, cache_dir=cache_dir) for s in SPLITS}
    test = splits["test"]
    samples = out_dir / "synth_samples.png"
    _samples_figure(test, samples)

    rows = _rates_rows(splits)
    csv_path = results_dir / "synth_group_rates.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    acc = probe_gap(steps=probe_steps, size=size, seed=seed)
    rates_png = out_dir / "synth_group_rates.png"
    _rates_figure(rows, acc, probe_steps, size, rates_png, test.target, test.sensitive)
    return {"samples": str(samples), "rates_png": str(rates_png), "rates_csv": str(csv_path),
            "probe_acc_z": acc[0], "probe_acc_y": acc[1]}


if __name__ == "__main__":
    print(main())
