"""Measuring and learning fairness: the metrics, the DI / DEO discriminators, and what predictions carry about z.

`metrics` (pure, fairlearn-shaped DI, DEO, group rates and the degenerate flags), `discriminators` (the
heads of FAPrune and Adversarial Debiasing, their update, the generator's fairness term, the advantage
monitor), `information` (binned plug-in estimates of I(s; z) and I(s; z | y) with a permutation null).
"""
