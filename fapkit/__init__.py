"""fapkit: fairness-aware adversarial network pruning (FAPrune) as a research kit.

``fapkit.run(method, ...)`` runs one method of the paper (see `fapkit.methods`), ``fapkit.sweep(fapkit.grid(...))``
a grid of them, in this process or on a Dask cluster (see `fapkit.sweep` and docs/sweeps.md); the building blocks
live in `fapkit.masking` (prunable layers), `fapkit.discriminators`, `fapkit.train` (the loop),
`fapkit.metrics` (DI, DEO) and `fapkit.data` (SynthFaces, CelebA, LFW).
"""

__version__ = "0.1.0"

from .cache import RunResult  # noqa: E402
from .config import METHODS, RunConfig, make_config  # noqa: E402
from .methods import run  # noqa: E402
from .sweep import grid, sweep  # noqa: E402  (the name `fapkit.sweep` is the function; the module is sys.modules["fapkit.sweep"])

__all__ = ["METHODS", "RunConfig", "RunResult", "grid", "make_config", "run", "sweep", "__version__"]
