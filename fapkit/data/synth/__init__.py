"""SynthFaces: a seeded, vectorised, procedural face benchmark with CelebA-named attributes.

Why it exists: most users of the kit have no CelebA copy, yet the paper's phenomenon (a
dense model that picks up the sensitive attribute as a shortcut, pruning that keeps the
bias) must be reproducible anywhere. The generator therefore copies the *structure* of
CelebA's bias: the sensitive attribute (Male by default) has a large, salient visual cue,
the target (Attractive by default) a small, low-contrast one, and the two are correlated
at CelebA's published rates.

The package has one module per concept:

- `~fapkit.data.synth.attributes`: the attribute model, i.e. the joint distribution of
  the CelebA-like binary attributes (`ATTRIBUTE_RATES`, `P_MALE`), its marginal,
  conditional and per-split sampling rates, and `sample_attributes`; and the multi-valued
  ``Age_Group`` (`AGE_GROUPS`, `sample_age_group`), usable as a k-group sensitive attribute;
- `~fapkit.data.synth.render`: style sampling (attributes to continuous render
  parameters) and the image renderer `render_faces`, with the visual cue of every
  attribute;
- `~fapkit.data.synth.dataset`: `SynthConfig`, `generate` (attributes,
  style, images and label noise from one seeded config) and the cached `SynthFaces`.
"""

from .attributes import (
    AGE_GROUP_RATES,
    AGE_GROUPS,
    ATTRIBUTE_RATES,
    BINARY_ATTRIBUTES,
    MULTI_VALUED,
    P_MALE,
    SYNTH_ATTRIBUTES,
    conditional_rates,
    levels,
    marginal_rate,
    sample_age_group,
    sample_attributes,
    sampling_pair,
    sampling_rates,
)
from .dataset import DEFAULT_N, GENERATOR_VERSION, STREAM_VERSION, SynthConfig, SynthFaces, generate, groups_of
from .render import CHUNK, render_faces, sample_age_style, sample_style

__all__ = [
    "AGE_GROUPS", "AGE_GROUP_RATES", "ATTRIBUTE_RATES", "BINARY_ATTRIBUTES", "CHUNK", "DEFAULT_N", "GENERATOR_VERSION",
    "MULTI_VALUED", "P_MALE", "STREAM_VERSION", "SYNTH_ATTRIBUTES", "SynthConfig", "SynthFaces", "conditional_rates",
    "generate", "groups_of", "levels", "marginal_rate", "render_faces", "sample_age_group", "sample_age_style",
    "sample_attributes", "sample_style", "sampling_pair", "sampling_rates",
]
