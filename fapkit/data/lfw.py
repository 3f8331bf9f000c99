"""LFW with the Kumar et al. attribute table, from a local copy (nothing is downloaded).

Expected under ``root``::

    lfw/<Person_Name>/<Person_Name>_0001.jpg     (or <Person_Name>/... directly in root)
    lfw_attributes.txt

``lfw_attributes.txt`` (Kumar et al., "Attribute and Simile Classifiers", ICCV 2009) has
a comment line, a header line ``#<TAB>person<TAB>imagenum<TAB>Male<TAB>Asian...`` and then
tab-separated rows ``Aaron Eckhart<TAB>1<TAB>1.568346...`` with *continuous* classifier
scores, one row per image. We binarise every score by its sign (score > 0 -> 1), which is
the convention of the table's authors, and rename columns CelebA-style: spaces and
hyphens become underscores, apostrophes are dropped ("Wavy Hair" -> "Wavy_Hair",
"5 o' Clock Shadow" -> "5_o_Clock_Shadow"). Two aliases make the paper's targets
available under CelebA names: ``Young`` is LFW's ``Youth`` column, and ``Attractive`` is
``Attractive Woman`` for faces with Male <= 0 and ``Attractive Man`` otherwise.

LFW has no official attribute split: persons (not images) are partitioned 70/15/15 by a
seeded permutation, so no identity appears in two splits.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .base import (
    FaceTensors,
    cached_decode,
    check_attributes,
    check_decoding,
    decode_images,
)

LFW_URL = "http://vis-www.cs.umass.edu/lfw/"
LFW_ATTR_URL = "https://www.cs.columbia.edu/CAVE/databases/pubfig/download/lfw_attributes.txt"
ATTR_FILE = "lfw_attributes.txt"
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
_LOADER_VERSION = 1


def celeba_style(name: str) -> str:
    """``"5 o' Clock Shadow"`` -> ``"5_o_Clock_Shadow"``; ``"Wavy Hair"`` -> ``"Wavy_Hair"``."""
    return re.sub(r"_+", "_", re.sub(r"[\s\-]+", "_", name.replace("'", "").strip())).strip("_")


def read_lfw_attributes(path: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Parse the attribute table: (persons, image numbers, CelebA-style names, float scores)."""
    header: list[str] | None = None
    persons: list[str] = []
    nums: list[int] = []
    rows: list[list[str]] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if line.startswith("#"):
                cells = [c.strip() for c in line.lstrip("#").split("\t") if c.strip()]
                if cells[:2] == ["person", "imagenum"]:
                    header = cells
                continue
            if header is None:
                raise ValueError(f"{path}: no '#\\tperson\\timagenum\\t...' header before line {n}")
            cells = line.rstrip("\n").split("\t")
            if len(cells) != len(header):
                raise ValueError(f"{path}, line {n}: expected {len(header)} tab-separated fields, got {len(cells)}")
            persons.append(cells[0].strip())
            nums.append(int(cells[1]))
            rows.append(cells[2:])
    if header is None:
        raise ValueError(f"{path}: no '#\\tperson\\timagenum\\t...' header line found")
    names = [celeba_style(h) for h in header[2:]]
    scores = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return persons, np.array(nums, dtype=np.int64), names, scores


def _binary_attributes(names: list[str], scores: np.ndarray) -> dict[str, np.ndarray]:
    """Sign-binarised columns plus the ``Young`` and ``Attractive`` aliases."""
    attrs = {name: (scores[:, j] > 0).astype(np.int64) for j, name in enumerate(names)}
    if "Young" not in attrs and "Youth" in attrs:
        attrs["Young"] = attrs["Youth"]
    if "Attractive" not in attrs and {"Attractive_Man", "Attractive_Woman", "Male"} <= attrs.keys():
        attrs["Attractive"] = np.where(attrs["Male"] == 1, attrs["Attractive_Man"], attrs["Attractive_Woman"])
    return attrs


def person_split(persons: list[str], split: str, seed: int) -> set[str]:
    """Persons of ``split`` under a seeded 70/15/15 partition of the sorted unique names."""
    unique = sorted(set(persons))
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0x1F3])))
    order = [unique[i] for i in rng.permutation(len(unique))]
    n_train = round(SPLIT_FRACTIONS[0] * len(unique))
    n_valid = round(SPLIT_FRACTIONS[1] * len(unique))
    bounds = {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, len(unique))}
    lo, hi = bounds[split]
    return set(order[lo:hi])


def _missing_error(root: Path, missing: list[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"LFW not found in {root.resolve()}: missing {missing}. Expected lfw/<Person_Name>/"
        f"<Person_Name>_0001.jpg ... (or the person folders directly in that folder) and "
        f"{ATTR_FILE}. LFW cannot be downloaded automatically; obtain the images from "
        f"{LFW_URL} and the attribute table from {LFW_ATTR_URL}."
    )


def _image_dir(root: Path) -> Path:
    return root / "lfw" if (root / "lfw").is_dir() else root


class LFW(FaceTensors):
    """An LFW split (person-disjoint) as uint8 tensors, decoded once and then cached.

    ``root`` is the folder holding ``lfw/`` (or the person folders) and ``lfw_attributes.txt``;
    ``split`` is ``"train"``, ``"valid"`` or ``"test"``, with persons split 70/15/15 by a
    partition seeded with ``seed``; ``target`` and ``sensitive`` are two different CelebA-style
    attribute names (see the module docstring).

    ``size`` is the output side in pixels (centre crop, then antialiased bilinear resize);
    ``crop`` is the fraction of the 250-px side kept around the centre (0.6 keeps the face and
    a little hair, close to CelebA's aligned framing). ``cache_dir`` and ``cache`` are as for
    `~fapkit.data.celeba.CelebA`.

    ``persons`` lists the identity of every image.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        target: str = "Smiling",
        sensitive: str = "Male",
        size: int = 64,
        seed: int = 0,
        *,
        crop: float = 0.6,
        cache_dir: str | Path | None = None,
        cache: bool = True,
    ) -> None:
        root = Path(root)
        check_decoding(split, size, crop)
        if not root.is_dir() or not (root / ATTR_FILE).is_file():
            raise _missing_error(root, [ATTR_FILE] if root.is_dir() else ["lfw/", ATTR_FILE])
        persons, nums, names, scores = read_lfw_attributes(root / ATTR_FILE)
        attrs_np = _binary_attributes(names, scores)
        check_attributes(target, sensitive, attrs_np, dataset="LFW")

        chosen = person_split(persons, split, seed)
        keep = np.array([p in chosen for p in persons], dtype=bool)
        rel = [f"{p.replace(' ', '_')}/{p.replace(' ', '_')}_{k:04d}.jpg" for p, k, m in zip(persons, nums, keep) if m]

        self.root = root
        images, self.cache_path, self.loaded_from_cache = cached_decode(
            lambda: self._decode(rel, size, crop), rel,
            {"dataset": "lfw", "split": split, "size": size, "crop": crop, "seed": seed,
             "version": _LOADER_VERSION},
            root=root, cache_dir=cache_dir, cache=cache, stem=f"lfw_{split}_{size}px")

        self.files = rel
        self.persons = [p for p, m in zip(persons, keep) if m]
        attrs = {k: torch.from_numpy(v[keep]) for k, v in attrs_np.items()}
        super().__init__(
            images, attrs[target].clone(), attrs[sensitive].clone(),
            target=target, sensitive=sensitive, name="lfw", attributes=attrs,
        )

    def _decode(self, rel: list[str], size: int, crop: float) -> torch.Tensor:
        img_dir = _image_dir(self.root)
        paths = [img_dir / r for r in rel]
        absent = [r for r, p in zip(rel, paths) if not p.is_file()]
        if absent:
            if len(absent) == len(paths):
                raise _missing_error(self.root, ["lfw/<Person_Name>/*.jpg"])
            raise FileNotFoundError(
                f"LFW in {self.root.resolve()} is incomplete: {len(absent)} of {len(paths)} images "
                f"listed in {ATTR_FILE} for this split are missing under {img_dir} "
                f"(first: {absent[:5]}). Re-extract lfw.tgz from {LFW_URL}."
            )
        return decode_images(paths, size, crop=crop)


__all__ = ["LFW", "LFW_URL", "LFW_ATTR_URL", "celeba_style", "read_lfw_attributes", "person_split"]
