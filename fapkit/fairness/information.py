"""What a model's predictions carry about the sensitive attribute: the adversary's upper reference.

A discriminator head reading a score s (a probability or a logit) can at best lower its
cross-entropy for z from H(z) to H(z | s), so the mutual information I(s; z), in nats, bounds a DI
head's advantage, and I(s; z | y) = Σ_c P(y=c)·I(s; z | y=c) bounds the DEO heads'. Both are
estimated here on held-out predictions, without any model: s is cut into equal-frequency bins,
entropies are plug-in estimates with the Miller–Madow bias correction ((m − 1) / 2n per entropy,
m the occupied cells), and the result is mixed like the discriminator's loss,
α·I(s; z) + (1 − α)·I(s; z | y) (`reference_information`).

Finite samples make any plug-in estimate positive by chance, so the estimate is compared with a
permutation null (z shuffled, within each y cell for the conditional term): the predictions carry
information about z only when the estimate exceeds the null's 95th percentile (``significant``).
`fapkit.methods.adversarial.warm_up_discriminator` warms the heads up until their held-out advantage reaches a
share of this reference, and calls a game whose adversary ended below it uninformed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Permutations of the null (their 95th percentile is the significance level).
NULL_PERMUTATIONS = 39


def bin_count(n: int) -> int:
    """Equal-frequency bins for `n` scores: ≈ n^(1/3), between 2 and 16 (≥ 2 samples per bin and group on average)."""
    return int(np.clip(round(n ** (1 / 3)), 2, 16))


def _codes(score: np.ndarray, bins: int) -> np.ndarray:
    """The equal-frequency bin of each score (ties share a bin, so a constant score is one bin)."""
    edges = np.unique(np.quantile(score, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, score, side="right")


def _entropy(counts: np.ndarray, n: int) -> float:
    """Plug-in entropy (nats) of `counts` with the Miller–Madow correction."""
    counts = counts[counts > 0]
    p = counts / n
    return float(-(p * np.log(p)).sum() + (len(counts) - 1) / (2 * n))


def binned_information(codes: np.ndarray, z: np.ndarray, groups: int) -> float:
    """I(b; z) in nats of bin codes `b` and group ids `z` (Miller–Madow corrected plug-in; may be slightly < 0)."""
    n = len(z)
    if n < 2:
        return 0.0
    width = int(codes.max()) + 1
    joint = np.bincount(codes * groups + z, minlength=width * groups)
    return (_entropy(np.bincount(codes, minlength=width), n) + _entropy(np.bincount(z, minlength=groups), n)
            - _entropy(joint, n))


def _mixed(codes_all: np.ndarray, cell_codes: list[np.ndarray], cells: list[np.ndarray], z: np.ndarray,
           alpha: float, groups: int) -> tuple[float, float]:
    """(I(s; z), I(s; z | y)) for one assignment of z."""
    di = binned_information(codes_all, z, groups) if alpha > 0 else 0.0
    n = len(z)
    deo = sum(len(idx) / n * binned_information(codes, z[idx], groups)
              for codes, idx in zip(cell_codes, cells) if len(idx)) if alpha < 1 else 0.0
    return di, deo


@dataclass(frozen=True)
class Reference:
    """What the held-out scores carry about z (nats): the DI and DEO terms, their α-mix, and the null's level."""

    di: float               # I(s; z)
    deo: float              # I(s; z | y)
    mixed: float            # α·di + (1 − α)·deo, comparable with `AdversaryMonitor.mixed_advantage`
    null95: float           # 95th percentile of `mixed` with z permuted (within y cells for deo)
    samples: int
    bins: int

    @property
    def significant(self) -> bool:
        """Whether the scores carry more about z than chance would give on this many samples."""
        return self.mixed > self.null95

    def as_record(self, prefix: str = "") -> dict[str, float | int | bool]:
        return {f"{prefix}{k}": (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()} | {
            f"{prefix}significant": self.significant}


def reference_information(score: np.ndarray, y: np.ndarray, z: np.ndarray, *, alpha: float, groups: int = 2,
                          seed: int = 0, permutations: int = NULL_PERMUTATIONS) -> Reference:
    """The binned estimate of what `score` tells about `z` (and about z given `y`), with its permutation null.

    `score`: one number per sample (σ(logit) or the logit: the estimate is invariant to any monotone
    map of it, as the bins are quantiles); `y` ∈ {0, 1}; `z` ∈ {0, …, groups − 1}. Bins are chosen
    per y cell for the conditional term (`bin_count` of the cell's size).
    """
    score, y, z = (np.asarray(a).reshape(-1) for a in (score, y, z))
    if not len(score) == len(y) == len(z):
        raise ValueError(f"score, y and z differ in length: {len(score)}, {len(y)}, {len(z)}")
    y, z = y.astype(np.int64), z.astype(np.int64)
    n = len(z)
    codes_all = _codes(score, bin_count(n)) if n else np.zeros(0, np.int64)
    cells = [np.flatnonzero(y == c) for c in (0, 1)]
    cell_codes = [_codes(score[idx], bin_count(len(idx))) if len(idx) else idx for idx in cells]
    di, deo = _mixed(codes_all, cell_codes, cells, z, alpha, groups)
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(permutations):
        # DI's null shuffles z over all samples; DEO's within each y cell, so that it keeps P(z | y)
        shuffled = z[rng.permutation(n)]
        within = z.copy()
        for idx in cells:
            within[idx] = z[idx][rng.permutation(len(idx))]
        null_di = _mixed(codes_all, cell_codes, cells, shuffled, alpha, groups)[0] if alpha > 0 else 0.0
        null_deo = _mixed(codes_all, cell_codes, cells, within, 1.0 if alpha >= 1 else 0.0, groups)[1]
        null.append(alpha * null_di + (1 - alpha) * null_deo)
    return Reference(di=di, deo=deo, mixed=alpha * di + (1 - alpha) * deo,
                     null95=float(np.quantile(null, 0.95)) if null else 0.0, samples=n, bins=bin_count(n))
