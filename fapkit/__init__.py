"""fapkit: fairness-aware adversarial network pruning (FAPrune) as a research kit.

`fapkit.run(method, ...)` runs one method of the paper (see `fapkit.methods`); the building blocks
live in `fapkit.masking` (prunable layers), `fapkit.discriminators`, `fapkit.train` (the loop),
`fapkit.metrics` (DI, DEO) and `fapkit.data` (SynthFaces, CelebA, LFW).
"""

__version__ = "0.1.0"

from .config import METHODS, RunConfig, make_config  # noqa: E402
from .methods import RunResult, run  # noqa: E402

__all__ = ["METHODS", "RunConfig", "RunResult", "make_config", "run", "__version__"]
