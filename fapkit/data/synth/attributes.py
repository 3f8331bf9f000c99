"""The attribute model of SynthFaces: a joint distribution of CelebA-named binary attributes.

Sampling model (all rates in `ATTRIBUTE_RATES`):

1. ``z ~ Bernoulli(P(sensitive=1))`` (the marginal implied by the table).
2. ``y | z ~ Bernoulli(q_z)`` with ``q_z = P(target=1 | sensitive=z)``. The table stores
   every attribute conditionally on Male; a pair that does not involve Male is linked
   through Male (Bayes rule), i.e. attributes are conditionally independent given Male.
   ``correlation=c`` replaces ``q_z`` on the *train* split only (valid/test keep the
   CelebA rates, as in real CelebA where the test set shares the bias) by::

        q_1 = 0.5 + s * c / 2,   q_0 = 0.5 - s * c / 2

   where ``s = +1`` if the CelebA rates make ``y=1`` more likely when ``z=1`` and ``-1``
   otherwise. So ``c = |P(y=1|z=1) - P(y=1|z=0)|``: 0 means y independent of z (and
   balanced), 1 means y is a deterministic function of z.
3. Male (when it is neither target nor sensitive) is drawn from ``P(Male | z, y)``, then
   every remaining attribute from ``P(a | Male)``.
4. ``label_noise=p`` flips the *observed* target ``y`` with probability p (train split
   only; done by `fapkit.data.synth.dataset.generate`). ``attributes[target]`` keeps
   the true label the image was drawn from.

`sampling_rates` gives the ``q_z`` of steps 1-2 for a split, `sample_attributes`
draws steps 1-3.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

#: P(Male=1) in CelebA: about 41.7 % of the 202,599 images (Liu et al. 2015,
#: list_attr_celeba.txt).
P_MALE = 0.417

#: (P(a=1 | Male=0), P(a=1 | Male=1)). Attractive and Blond_Hair follow the per-gender
#: rates commonly reported for CelebA (e.g. in the fairness literature on Attractive/Male
#: and Blond_Hair/Male: Attractive ~0.68 women vs ~0.28 men, Blond_Hair ~0.24 vs ~0.02).
#: The others are our approximations, chosen so that the implied marginals match CelebA's
#: published marginal frequencies (Smiling 0.48, Young 0.77, Wavy_Hair 0.32,
#: Eyeglasses 0.065, Heavy_Makeup 0.39, Bangs 0.15); they are approximate, not read
#: from the file.
ATTRIBUTE_RATES: dict[str, tuple[float, float]] = {
    "Attractive": (0.68, 0.28),
    "Smiling": (0.53, 0.41),  # approximate
    "Young": (0.87, 0.64),  # approximate
    "Blond_Hair": (0.24, 0.02),
    "Wavy_Hair": (0.47, 0.11),  # approximate
    "Eyeglasses": (0.02, 0.12),  # approximate
    "Heavy_Makeup": (0.66, 0.005),  # approximate
    "Bangs": (0.22, 0.06),  # approximate
}

SYNTH_ATTRIBUTES: tuple[str, ...] = ("Male",) + tuple(ATTRIBUTE_RATES)


def _rates(name: str) -> tuple[float, float]:
    """(P(name=1 | Male=0), P(name=1 | Male=1)); Male is trivially (0, 1)."""
    return (0.0, 1.0) if name == "Male" else ATTRIBUTE_RATES[name]


def marginal_rate(name: str) -> float:
    """P(name=1) implied by the table."""
    r0, r1 = _rates(name)
    return (1 - P_MALE) * r0 + P_MALE * r1


def _male_posterior(evidence: Mapping[str, int]) -> float:
    """P(Male=1 | evidence) under conditional independence given Male."""
    like1, like0 = P_MALE, 1 - P_MALE
    for name, value in evidence.items():
        r0, r1 = _rates(name)
        like1 *= r1 if value else 1 - r1
        like0 *= r0 if value else 1 - r0
    return like1 / (like1 + like0)


def conditional_rates(target: str, sensitive: str) -> tuple[float, float]:
    """CelebA-model ``(P(y=1 | z=0), P(y=1 | z=1))`` for a target/sensitive pair."""
    out = []
    for zval in (0, 1):
        pm = _male_posterior({sensitive: zval})
        r0, r1 = _rates(target)
        out.append((1 - pm) * r0 + pm * r1)
    return out[0], out[1]


def sampling_rates(target: str, sensitive: str, split: str, correlation: float | None) -> tuple[float, float]:
    """The ``(P(y=1|z=0), P(y=1|z=1))`` used to sample a split (before label noise)."""
    q0, q1 = conditional_rates(target, sensitive)
    if correlation is None or split != "train":
        return q0, q1
    sign = 1.0 if q1 >= q0 else -1.0
    return 0.5 - sign * correlation / 2, 0.5 + sign * correlation / 2


def sample_attributes(
    n: int,
    rng: np.random.Generator,
    *,
    target: str,
    sensitive: str,
    q: tuple[float, float],
) -> dict[str, np.ndarray]:
    """Draw all `SYNTH_ATTRIBUTES` for ``n`` faces (see the module docstring)."""
    z = (rng.random(n) < marginal_rate(sensitive)).astype(np.int64)
    y = (rng.random(n) < np.where(z == 1, q[1], q[0])).astype(np.int64)
    attrs: dict[str, np.ndarray] = {sensitive: z, target: y}
    if "Male" not in attrs:
        pm = np.empty(n)
        for zv in (0, 1):
            for yv in (0, 1):
                pm[(z == zv) & (y == yv)] = _male_posterior({sensitive: zv, target: yv})
        attrs["Male"] = (rng.random(n) < pm).astype(np.int64)
    male = attrs["Male"]
    for name in ATTRIBUTE_RATES:  # fixed order keeps the stream reproducible
        draw = rng.random(n)
        if name not in attrs:
            r0, r1 = ATTRIBUTE_RATES[name]
            attrs[name] = (draw < np.where(male == 1, r1, r0)).astype(np.int64)
    return {k: attrs[k] for k in SYNTH_ATTRIBUTES}
