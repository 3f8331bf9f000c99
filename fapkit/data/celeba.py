"""CelebA from a local copy in the standard layout (nothing is downloaded).

Expected under ``root``::

    img_align_celeba/000001.jpg ...      aligned and cropped 178x218 JPEGs
    list_attr_celeba.txt                 line 1: image count; line 2: the 40 attribute
                                         names; then "filename v1 ... v40" with -1/1
    list_eval_partition.txt              "filename 0|1|2" (train / valid / test)

The files are read by our own parser: torchvision's ``CelebA`` class verifies MD5 sums of
the text files, which rejects the small fixtures the tests write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import (
    CELEBA_ATTRIBUTES,
    SPLITS,
    FaceTensors,
    cached_decode,
    check_attributes,
    check_decoding,
    decode_images,
)

CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_DIR = "img_align_celeba"
_LOADER_VERSION = 1


def _missing_error(root: Path, missing: list[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"CelebA not found in {root.resolve()}: missing {missing}. Expected "
        f"{IMAGE_DIR}/ (the aligned JPEGs), {ATTR_FILE} and {PARTITION_FILE} in that folder. "
        f"CelebA cannot be downloaded automatically; obtain it from {CELEBA_URL} "
        f"(\"Align&Cropped Images\" plus the Anno and Eval files)."
    )


def read_attr_file(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Parse ``list_attr_celeba.txt``: (filenames, attribute names, 0/1 int8 matrix)."""
    with open(path, encoding="utf-8") as fh:
        lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count line and an attribute-name line")
    names = lines[1].split()
    files: list[str] = []
    rows: list[list[str]] = []
    for i, line in enumerate(lines[2:]):
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise ValueError(
                f"{path}, line {i + 3}: expected a filename and {len(names)} values, got {len(parts) - 1}"
            )
        files.append(parts[0])
        rows.append(parts[1:])
    try:  # one vectorised conversion: ~1 s for the 202,599 CelebA rows
        raw = np.array(rows, dtype=np.int8).reshape(len(rows), len(names))
    except ValueError as err:
        raise ValueError(f"{path}: attribute values must be -1 or 1 ({err})") from None
    return files, names, (raw > 0).astype(np.int8)  # -1/1 -> 0/1


def read_partition_file(path: Path) -> dict[str, int]:
    """Parse ``list_eval_partition.txt``: filename -> 0 (train), 1 (valid), 2 (test)."""
    out: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}, line {n}: expected 'filename 0|1|2', got {line.strip()!r}")
            out[parts[0]] = int(parts[1])
    return out


class CelebA(FaceTensors):
    """A CelebA split as uint8 tensors, decoded and resized once and then cached.

    ``root`` is the folder holding ``img_align_celeba/``, ``list_attr_celeba.txt`` and
    ``list_eval_partition.txt``; ``split`` is ``"train"``, ``"valid"`` or ``"test"`` (the
    official partition); ``target`` and ``sensitive`` are two different names of the 40
    CelebA attributes.

    ``size`` is the output side in pixels: the centred square (178x178 of the 178x218 aligned
    image when ``crop=1``) is resized with PIL's antialiasing bilinear filter. ``crop`` is the
    fraction of the shorter image side kept around the centre.

    ``cache_dir`` is where the decoded tensor is cached, by default ``root/.fapkit_cache`` (or
    ``data/cache`` when root is read-only); ``cache=False`` decodes every time.

    Labels are 0/1 (CelebA's -1 becomes 0). ``attributes`` holds all 40 columns.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        target: str = "Attractive",
        sensitive: str = "Male",
        size: int = 64,
        *,
        crop: float = 1.0,
        cache_dir: str | Path | None = None,
        cache: bool = True,
    ) -> None:
        root = Path(root)
        check_decoding(split, size, crop)
        missing = [f for f in (ATTR_FILE, PARTITION_FILE) if not (root / f).is_file()]
        if not root.is_dir() or missing:
            raise _missing_error(root, missing if root.is_dir() else [IMAGE_DIR, ATTR_FILE, PARTITION_FILE])
        files, names, values = read_attr_file(root / ATTR_FILE)
        check_attributes(target, sensitive, names, dataset="CelebA")
        partition = read_partition_file(root / PARTITION_FILE)
        code = SPLITS.index(split)
        keep = np.array([partition.get(f, -1) == code for f in files], dtype=bool)
        if not any(f in partition for f in files):
            raise ValueError(f"{root / PARTITION_FILE} lists none of the files in {root / ATTR_FILE}")
        split_files = [f for f, k in zip(files, keep) if k]
        values = values[keep]

        self.root = root
        images, self.cache_path, self.loaded_from_cache = cached_decode(
            lambda: self._decode(split_files, size, crop), split_files,
            {"dataset": "celeba", "split": split, "size": size, "crop": crop, "version": _LOADER_VERSION},
            root=root, cache_dir=cache_dir, cache=cache, stem=f"celeba_{split}_{size}px")

        self.files = split_files
        attrs = {name: torch.from_numpy(values[:, j].astype(np.int64)) for j, name in enumerate(names)}
        super().__init__(
            images, attrs[target].clone(), attrs[sensitive].clone(),
            target=target, sensitive=sensitive, name="celeba", attributes=attrs,
        )

    def _decode(self, files: list[str], size: int, crop: float) -> torch.Tensor:
        img_dir = self.root / IMAGE_DIR
        if not img_dir.is_dir():
            raise _missing_error(self.root, [IMAGE_DIR])
        paths = [img_dir / f for f in files]
        absent = [p.name for p in paths if not p.is_file()]
        if absent:
            raise FileNotFoundError(
                f"CelebA in {self.root.resolve()} is incomplete: {len(absent)} of {len(paths)} "
                f"images of this split are missing from {img_dir} (first: {absent[:5]}). "
                f"Re-extract img_align_celeba.zip from {CELEBA_URL}."
            )
        return decode_images(paths, size, crop=crop)


__all__ = ["CelebA", "CELEBA_ATTRIBUTES", "CELEBA_URL", "read_attr_file", "read_partition_file"]
