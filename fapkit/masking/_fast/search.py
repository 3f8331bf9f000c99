"""Exact top-k thresholds that are cheap to update when values move a little per call.

A masked training step needs, per layer (or once for all layers), the set of the ``k``
largest ``|s|``. ``torch.kthvalue`` over the 11.2M scores of a ResNet-18 costs more than a
whole dense training step, so `BandSearch` exploits that scores change slowly:

1. **Count band.** Around the predicted threshold take a narrow band ``[c-w, c+w]``.
   The caller counts, in one streaming pass, the values above the band (``c_hi``) and the
   band members, and records the band members' positions. If ``c_hi < k <= c_hi + band``
   the new k-th value lies in the band; otherwise `BandSearch.check` moves and widens
   the band and the caller counts again (rare: the k-th value moves far less per step
   than the single values do).
2. **Settle** (done by the caller, `.engine`). Only the ``k - c_hi`` largest band
   members are kept: a stable sort of a few thousand gathered values, so values equal to
   the threshold are kept in position order (layer order, then flat index), which makes
   the result equal to `~fapkit.masking.topk.exact_topk_masks` bit for bit.
3. **Adapt.** The band is centred on the last threshold plus its smoothed drift, and its
   width follows how far off that prediction was.

Nothing here assumes how the values changed (counts are exact), so the selection stays
exact after any optimizer step, ``load_state_dict`` or manual edit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class SearchStats:
    """Counters that explain where time went (reported by the benchmark)."""

    calls: int = 0
    band_retries: int = 0
    fallbacks: int = 0
    last_band: int = 0


@dataclass
class BandSearch:
    """State of the incremental search for the k-th largest of ``n`` values.

    ``t`` is the last exact threshold and ``v`` a smoothed per-call move of it; the next
    band is centred on ``t + v`` (thresholds often drift steadily, e.g. while scores grow
    under Adam) and its half-width ``w`` follows the error of that prediction.
    """

    k: int
    n: int
    max_retries: int = 8
    t: float | None = None
    v: float = 0.0
    center: float = 0.0
    w: float = 0.0
    retries: int = 0
    stats: SearchStats = field(default_factory=SearchStats)

    def reset(self) -> None:
        """Forget the previous threshold (the next call starts from a sample estimate)."""
        self.t = None

    def estimate(self, sample: torch.Tensor) -> None:
        """Guess ``t`` and a band width from a (strided) sample of the values."""
        ordered = sample.float().sort(descending=True).values
        m = ordered.numel()
        j = min(m - 1, max(0, round(self.k / self.n * m) - 1))
        q = self.k / self.n
        # four binomial standard errors of a sample quantile (in ranks), at least two ranks
        span = int(4 * math.sqrt(m * q * (1 - q))) + 2
        top = float(ordered[max(0, j - span)])
        bottom = float(ordered[min(m - 1, j + span)])
        self.t, self.v = float(ordered[j]), 0.0
        self.w = self._floor(max(top - self.t, self.t - bottom), self.t)
        self.center = self.t

    def start(self) -> None:
        """Begin one selection: centre the band on the predicted threshold."""
        assert self.t is not None, "call estimate() first"
        self.stats.calls += 1
        self.retries = 0
        self.center = self.t + self.v

    def bounds(self) -> tuple[float, float]:
        """The counting band ``[lo, hi]``."""
        return self.center - self.w, self.center + self.w

    def check(self, c_hi: int, band: int) -> bool:
        """True if the k-th value lies in the band; otherwise move the band and say False.

        ``c_hi`` counts values above the band, ``band`` values inside it. After
        ``max_retries`` moves `exhausted` turns true and the caller falls back to a
        one-shot exact selection.
        """
        if c_hi < self.k <= c_hi + band:
            return True
        self.retries += 1
        self.stats.band_retries += 1
        lo, hi = self.bounds()
        # the k-th value is above the band (too many above) or below it: jump past the
        # old edge and double the width, so a few retries cover any drift
        self.center = hi + self.w if c_hi >= self.k else lo - self.w
        self.w = 2 * self.w
        return False

    @property
    def exhausted(self) -> bool:
        return self.retries > self.max_retries

    def adapt(self, t_new: float, band: int) -> None:
        """Record the exact new threshold; size the band to the prediction error.

        A band 3-20 prediction errors wide (and at least ~32 values) rarely misses (a miss
        costs one extra counting pass of the group) and keeps the settle step small.
        """
        assert self.t is not None
        error = abs(t_new - self.center)
        if error > self.w / 3 or band < 32:
            self.w *= 2
        elif error < self.w / 20 and band > 256:  # shrink fast towards ~10 errors
            self.w = max(10 * error, self.w / 4)
        self.v = 0.5 * self.v + 0.5 * (t_new - self.t)
        self.t = t_new
        self.w = self._floor(self.w, t_new)
        self.stats.last_band = band

    @staticmethod
    def _floor(width: float, t: float) -> float:
        # a zero width could never grow by doubling (constant values): keep a floor
        return max(width, abs(t) * 1e-6, 1e-30)
