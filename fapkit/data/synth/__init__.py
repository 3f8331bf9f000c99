"""SynthFaces: a seeded, vectorised, procedural face benchmark with CelebA-named attributes.

Why it exists: most users of the kit have no CelebA copy, yet the paper's phenomenon (a
dense model that picks up the sensitive attribute as a shortcut, pruning that keeps the
bias) must be reproducible anywhere. The generator therefore copies the *structure* of
CelebA's bias: the sensitive attribute (Male by default) has a large, salient visual cue,
the target (Attractive by default) a small, low-contrast one, and the two are correlated
at CelebA's published rates.

The package has one module per concept:

- `~fapkit.data.synth.attributes`: the attribute model, i.e. the joint distribution of
  the CelebA-like attributes (`ATTRIBUTE_RATES`, `P_MALE`), its marginal,
  conditional and per-split sampling rates, and `sample_attributes`;
- `~fapkit.data.synth.render`: style sampling (attributes to continuous render
  parameters) and the image renderer `render_faces`, with the visual cue of every
  attribute;
- `~fapkit.data.synth.dataset`: `SynthConfig`, `generate` (attributes,
  style, images and label noise from one seeded config) and the cached `SynthFaces`.
"""

from .attributes import (
    ATTRIBUTE_RATES,
    P_MALE,
    SYNTH_ATTRIBUTES,
    conditional_rates,
    marginal_rate,
    sample_attributes,
    sampling_rates,
)
from .dataset import DEFAULT_N, GENERATOR_VERSION, SynthConfig, SynthFaces, generate
from .render import CHUNK, render_faces, sample_style

__all__ = [
    "ATTRIBUTE_RATES", "CHUNK", "DEFAULT_N", "GENERATOR_VERSION", "P_MALE", "SYNTH_ATTRIBUTES",
    "SynthConfig", "SynthFaces", "conditional_rates", "generate", "marginal_rate", "render_faces",
    "sample_attributes", "sample_style", "sampling_rates",
]
