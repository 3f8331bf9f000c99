"""What the presentation modules share: reading runs the way every table reads them.

The nominal pruning ratio of a run (`nominal_ratio`), the grouping of runs by row and seed
(`by_seed`), the one target a table is about (`single_target`), the sentence saying where our
numbers come from (`describe_ours`), and `missing` for a comparison that could not be made.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Iterable, Literal, Sequence

from ..registry import depends_on_adversary, spec_of

Metric = Literal["DI", "DEO"]

#: Display names of the architectures, as the paper writes them.
ARCH_TITLES = {"resnet18": "ResNet18", "shufflenet_v2_x1_0": "ShuffleNet v2", "mobilenet_v2": "MobileNet v2",
               "small_cnn": "SmallCNN"}
_DATASET_TITLES = {"synth": "SynthFaces (embedded synthetic benchmark)", "celeba": "CelebA", "lfw": "LFW"}


def metric_key(metric: str) -> str:
    """The key of `metric` in ``RunResult.metrics`` ("di" or "deo"); anything but "DI"/"DEO" is an error."""
    if metric not in ("DI", "DEO"):
        raise ValueError(f"metric must be 'DI' or 'DEO', got {metric!r}")
    return metric.lower()


def nominal_ratio(result: Any) -> float:
    """The requested pruning ratio; 0 for the dense methods (`MethodSpec.dense`), whose config still carries a ratio."""
    return 0.0 if spec_of(result.method).dense else float(result.config.ratio)


def seed_list(seeds: Iterable[int]) -> str:
    """"seed 0" or "seeds 0, 1, 2"."""
    unique = sorted(set(seeds))
    return f"seed{'s' if len(unique) != 1 else ''} {', '.join(str(s) for s in unique)}"


def describe_ours(results: Sequence[Any]) -> str:
    """One sentence on where our numbers come from (dataset, attributes, arch, preset, α)."""
    if not results:
        return "Ours: no runs."
    cfg = results[0].config
    data = _DATASET_TITLES.get(cfg.data.name, cfg.data.name)
    archs = sorted({ARCH_TITLES.get(r.config.arch, r.config.arch) for r in results})
    alphas = sorted({r.config.alpha for r in results if depends_on_adversary(r.method)})
    inits = sorted({r.config.init for r in results})
    sensitive = cfg.data.sensitive if isinstance(cfg.data.sensitive, str) else " × ".join(cfg.data.sensitive)
    text = (f"Ours: {data}, target {cfg.data.target}, sensitive {sensitive}, "
            f"{'/'.join(archs)}, preset {cfg.preset}, {seed_list(r.config.seed for r in results)}")
    if alphas:
        text += f", α={'/'.join(f'{a:g}' for a in alphas)}"
    if inits != ["pretrained"]:
        text += f", init {'/'.join(inits)}"
    return text + "."


def by_seed(results: Iterable[Any], key_of_result: Callable[[Any], Hashable],
            label: Callable[[Hashable], str]) -> dict[Hashable, dict[int, Any]]:
    """Group results by row key, then by seed; two results with the same key and seed are an error."""
    grouped: dict[Hashable, dict[int, Any]] = {}
    for r in results:
        key, seed = key_of_result(r), int(r.config.seed)
        row = grouped.setdefault(key, {})
        if seed in row:
            raise ValueError(f"two results for the same table row {label(key)!r} and seed {seed}; pass one run "
                             f"per row and seed (first: {row[seed].config}, second: {r.config})")
        row[seed] = r
    return grouped


def single_target(results: Sequence[Any], target: str | None) -> str:
    """`target`, or else the one target of `results` ("Attractive" when there are none); several are an error."""
    targets = sorted({r.config.data.target for r in results})
    if target is None:
        if len(targets) > 1:
            raise ValueError(f"results mix targets {targets}; pass target= to choose one")
        return targets[0] if targets else "Attractive"
    return target


def missing(value: Any) -> bool:
    """None or NaN: a comparison that could not be made (pandas turns None into NaN in some columns)."""
    return value is None or (isinstance(value, float) and math.isnan(value))
