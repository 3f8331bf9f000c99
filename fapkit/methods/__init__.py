"""The methods, one module per family: what each one does that the stage runner (`fapkit.runner`) does not.

* `adversarial`: FAPrune's step (Algorithm 1) and Adversarial Debiasing's, with the discriminator's warm-up;
  registered as the step kinds ``faprune`` and ``debias`` of the loop;
* `fairgrape`: FairGRAPE's group-importance iterative pruning, its own stage trainer;
* `ceag`: CEAG's constrained fine-tuning, its own stage trainer.

The fixed-mask and score-mask baselines (SGDP, LMW, Scratch, Fair-SGDP, Fair-LMW) and normal training have no
module: they are the runner's masks (`fapkit.masking`) with the loop's cross-entropy step, declared in
`fapkit.registry`. FairGRAPE and CEAG register their own specs, with their trainers, in their modules.
"""
# Importing registers: the step kinds "faprune" and "debias", then FairGRAPE and CEAG after the paper's eight.
from . import adversarial, fairgrape, ceag  # noqa: F401, I001  (the order is the registration order)
