"""fapkit: fairness-aware adversarial network pruning (FAPrune) as a research kit."""

__version__ = "0.1.0"
