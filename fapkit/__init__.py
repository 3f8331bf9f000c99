"""fapkit: fairness-aware adversarial network pruning (FAPrune) as a research kit.

``fapkit.run(method, ...)`` runs one method of the paper (see `fapkit.runner`), ``fapkit.sweep(fapkit.grid(...))``
a grid of them, in this process or on a Dask cluster (see `fapkit.sweep` and docs/sweeps.md), ``fapkit.tune(method,
tolerance=0.01, ...)`` the fairest setting of its knob within an accuracy budget; the building blocks
live in `fapkit.masking` (prunable layers), `fapkit.fairness.discriminators`, `fapkit.training.loop` (the loop),
`fapkit.fairness.metrics` (DI, DEO) and `fapkit.data` (SynthFaces, CelebA, LFW).
"""

__version__ = "0.2.0"

from . import methods  # noqa: E402,F401  (registers the adversarial step kinds of FAPrune and Adversarial Debiasing)
from .cache import RunResult  # noqa: E402
from .config import RunConfig, make_config  # noqa: E402
from .registry import method_names, register  # noqa: E402
from .runner import run  # noqa: E402
from .sweeps import grid, sweep  # noqa: E402  (`fapkit.sweep` is the function; the module is `fapkit.sweeps`)
from .tuning import tune  # noqa: E402  (`fapkit.tune` is the function; the module is `fapkit.tuning`)

__all__ = ["METHODS", "RunConfig", "RunResult", "grid", "make_config", "method_names", "register", "run", "sweep",
           "tune", "__version__"]


def __getattr__(name: str):
    """``fapkit.METHODS``: the registered methods, read when asked (a method registered later is in it)."""
    if name == "METHODS":
        return method_names()
    raise AttributeError(f"module 'fapkit' has no attribute {name!r}")
