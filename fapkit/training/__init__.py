"""How a stage trains and is measured: the machinery every method shares, none of it method-specific.

`loop` (``fit``: the epoch loop over the step kinds, the adversary's warm-up, checkpoints and resume),
`schedule` (learning rate and λ as functions of the step), `budget` (how long a stage trains: fixed or
the patience rule), `batchnorm` (re-estimating statistics once a mask is final), `batches` (the checks
a batch and a model's output go through), `evaluation` (a model's predictions to `fapkit.fairness.metrics`),
`runtime` (allocator settings applied at the entry points).
"""
