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

One attribute is multi-valued: ``Age_Group`` (`AGE_GROUPS`: 0-19, 20-39, 40-59, 60+, coded
0..3), drawn after all the binary ones from ``P(Age_Group | Young)`` (`AGE_GROUP_RATES`) with a
random stream of its own (`sample_age_group`), so the binary attributes keep the values they had
before it existed. Every level is possible whatever Young says (CelebA's Young is a subjective
label), so every intersection with it has members. It may be sensitive (k = 4 groups) or part of
an intersection, never the target. When the sensitive setting names no binary attribute (e.g.
``sensitive="Age_Group"``), steps 1-3 run with ``Male`` as the sampled sensitive attribute
(``Young`` when the target is Male), see `sampling_pair`; a ``correlation`` needs a binary
sensitive attribute to act on.
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

#: The binary attributes, in the order they are drawn.
BINARY_ATTRIBUTES: tuple[str, ...] = ("Male",) + tuple(ATTRIBUTE_RATES)

#: The levels of ``Age_Group`` (codes 0..3), in years.
AGE_GROUPS: tuple[str, ...] = ("0-19", "20-39", "40-59", "60+")

#: ``P(Age_Group = level | Young = 0)`` and ``P(Age_Group = level | Young = 1)``: the young are
#: mostly under 40, the others mostly over; a few percent either way. Marginals at CelebA's
#: P(Young) ≈ 0.77: about 0.27, 0.43, 0.20, 0.10.
AGE_GROUP_RATES: dict[int, tuple[float, ...]] = {0: (0.02, 0.13, 0.47, 0.38), 1: (0.34, 0.52, 0.12, 0.02)}

#: The multi-valued attributes and the names of their levels (code = index).
MULTI_VALUED: dict[str, tuple[str, ...]] = {"Age_Group": AGE_GROUPS}

SYNTH_ATTRIBUTES: tuple[str, ...] = BINARY_ATTRIBUTES + tuple(MULTI_VALUED)


def levels(name: str) -> tuple[int, ...]:
    """The codes an attribute takes: ``(0, 1)`` for a binary one, ``0..k-1`` for a multi-valued one."""
    return tuple(range(len(MULTI_VALUED[name]))) if name in MULTI_VALUED else (0, 1)


def sampling_pair(target: str, sensitive: tuple[str, ...]) -> tuple[str, str]:
    """(target, binary sensitive attribute) that steps 1-3 sample with.

    The first binary attribute of ``sensitive`` (so an intersection's ``correlation`` acts on it),
    else ``Male`` (``Young`` when the target is Male).
    """
    binary = [name for name in sensitive if name not in MULTI_VALUED]
    if binary:
        return target, binary[0]
    return target, ("Young" if target == "Male" else "Male")


def sample_age_group(young: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw ``Age_Group`` codes (0..3) from `AGE_GROUP_RATES` given Young, with one uniform per face from ``rng``."""
    cum = np.cumsum(np.array([AGE_GROUP_RATES[0], AGE_GROUP_RATES[1]]), axis=1)[np.asarray(young, dtype=np.int64)]
    u = rng.random(len(young))
    return np.minimum((u[:, None] >= cum[:, :-1]).sum(axis=1), len(AGE_GROUPS) - 1).astype(np.int64)


def _rates(name: str) -> tuple[float, float]:
    """(P(name=1 | Male=0), P(name=1 | Male=1)); Male is trivially (0, 1)."""
    if name in MULTI_VALUED:
        raise ValueError(f"{name} has {len(MULTI_VALUED[name])} levels {list(MULTI_VALUED[name])}; these rates are "
                         f"those of the binary attributes {list(BINARY_ATTRIBUTES)}")
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
    """Draw all `BINARY_ATTRIBUTES` for ``n`` faces (steps 1-3 of the module docstring; ``target`` and
    ``sensitive`` are binary); ``Age_Group`` is `sample_age_group`'s."""
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
    return {k: attrs[k] for k in BINARY_ATTRIBUTES}
