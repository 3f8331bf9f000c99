"""Image folders with an attribute table: any CSV-labelled folder, UTKFace and FairFace (nothing is downloaded).

All three read their table into one `AttributeTable` (a relative image path and attribute
values per row) and share one path to a `FaceTensors` (`TableFaces`), so the rules are the
same everywhere:

* the target must take exactly two values in the whole table; they map to 0/1 in sorted
  order (``0 < 1``, ``"no" < "yes"``, ``"Female" < "Male"``) unless ``positive=`` names the
  value that becomes 1;
* the sensitive attribute is one column or several (a list/tuple, or ``"a|b"``): every value,
  or every observed combination of values, is a group, numbered ``0..k-1`` in sorted order
  (columns with a natural order, such as FairFace's age bins, sort by it). ``group_names``
  lists the original values (``"Male|Young"`` for a combination) in id order. The mapping
  is computed over the whole table, so every split numbers the groups alike;
* a group with fewer than ``min_group_size`` images in the loaded split is refused, since
  its fairness metrics would be undefined or noise;
* images are decoded once, centre-cropped and resized, and cached as ``uint8`` (`cached_decode`).

Layouts::

    FolderDataset   root/<any path>.jpg|png ...  +  labels.csv: "file,<attr>,...[,split]"
    UTKFace         root/[UTKFace/]<age>_<gender>_<race>_<date>.jpg[.chip.jpg]
    FairFace        root/train/*.jpg, root/val/*.jpg, fairface_label_train.csv, fairface_label_val.csv

``z`` holds the ``k``-valued group codes (a binary attribute gives codes 0/1), as `FaceTensors`
takes them; ``group_names`` and ``n_groups`` are those of `FaceTensors`.
"""

from __future__ import annotations

import copy
import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch

from .base import (
    SPLITS,
    FaceTensors,
    cached_decode,
    check_decoding,
    check_group_sizes,
    check_min_group_size,
    decode_images,
)

Value = Union[int, str]

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SPLIT_FRACTIONS: tuple[float, float, float] = (0.70, 0.15, 0.15)
#: Values a ``split`` column may hold, and the split each one means.
SPLIT_VALUES: dict[str, str] = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}
YOUNG_BELOW = 30  # ``young`` = age < 30 (UTKFace) / an age bin ending below 30 (FairFace)

UTKFACE_URL = "https://susanqq.github.io/UTKFace/"
UTKFACE_GENDERS: tuple[str, ...] = ("male", "female")  # code 0, 1 (UTKFace's documentation)
UTKFACE_RACES: tuple[str, ...] = ("White", "Black", "Asian", "Indian", "Others")  # code 0..4
UTKFACE_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)[^_/]*\.(?:jpe?g|png)$", re.IGNORECASE)

FAIRFACE_URL = "https://github.com/joojs/fairface"
FAIRFACE_LABELS: dict[str, str] = {"train": "fairface_label_train.csv", "val": "fairface_label_val.csv"}
FAIRFACE_AGE_BINS: tuple[str, ...] = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
FAIRFACE_VALID_FRACTION = 0.1
_FAIRFACE_IMAGE_DIRS = ("", "fairface-img-margin025-trainval", "fairface-img-margin125-trainval")
_LOADER_VERSION = 1
_INT = re.compile(r"^[+-]?\d+$")


# ----------------------------------------------------------------------------- the table
@dataclass
class AttributeTable:
    """One row per image, before any split: image paths relative to the image folder, and attribute columns.

    ``source`` says where the rows came from (a CSV path, a folder) for error messages; ``orders``
    gives the category order of columns whose sorted order would be wrong (FairFace's age bins).
    A column's values are all ints or all strings; None marks an empty cell.
    """

    files: list[str]
    columns: dict[str, list[Value | None]]
    source: str
    orders: dict[str, Sequence[Value]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.files)

    def sort_key(self, column: str, value: Value) -> Value | int:
        order = self.orders.get(column)
        return order.index(value) if order is not None else value

    def distinct(self, column: str) -> list[Value]:
        """The column's distinct non-empty values in sorted (or natural) order."""
        return sorted({v for v in self.columns[column] if v is not None}, key=lambda v: self.sort_key(column, v))

    def binary_columns(self) -> list[str]:
        """Columns without empty cells that take exactly two values: the possible targets."""
        return [c for c, vals in self.columns.items() if None not in vals and len(set(vals)) == 2]


def _typed(values: list[str]) -> list[Value | None]:
    """All-integer columns become ints (so 2 < 10 sorts numerically); empty cells become None."""
    cells = [v if v != "" else None for v in values]
    if all(v is None or _INT.match(v) for v in cells):
        return [int(v) if v is not None else None for v in cells]
    return cells


def read_label_csv(path: Path, image_column: str = "file") -> AttributeTable:
    """Parse a comma-separated label table with a header line; every column but ``image_column`` is an attribute."""
    hint = f"expected a header line naming the columns (e.g. '{image_column},<target>,<sensitive>') and one row per image"
    with open(path, encoding="utf-8-sig", newline="") as fh:  # utf-8-sig: spreadsheet exports start with a BOM
        reader = csv.reader(fh)
        rows = [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]
    if not rows:
        raise ValueError(f"{path} is empty; {hint}")
    header = rows[0][1]
    if image_column not in header:
        if any(c.lower().endswith(IMAGE_SUFFIXES) for c in header):
            raise ValueError(f"{path}: the first line {header} looks like a data row, not a header; {hint}")
        raise ValueError(f"{path}: no column {image_column!r} (image_column: the image path relative to the folder) "
                         f"in the header {header}; pass image_column= to name the column that holds the image paths")
    if "" in header or len(set(header)) != len(header):
        raise ValueError(f"{path}: the header {header} has an empty or repeated column name; every column needs its own")
    if len(rows) == 1:
        raise ValueError(f"{path} has a header but no rows; {hint}")
    cells: list[list[str]] = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ValueError(f"{path}, line {line}: expected {len(header)} comma-separated fields "
                             f"({', '.join(header)}), got {len(row)}")
        cells.append(row)
    j = header.index(image_column)
    files = [row[j] for row in cells]
    seen: set[str] = set()
    for line, f in zip((ln for ln, _ in rows[1:]), files):
        if f == "":
            raise ValueError(f"{path}, line {line}: the {image_column!r} cell is empty; every row names one image")
        if f in seen:
            raise ValueError(f"{path}, line {line}: image {f!r} is listed twice; each image needs one row")
        seen.add(f)
    columns = {name: _typed([row[k] for row in cells]) for k, name in enumerate(header) if k != j}
    return AttributeTable(files, columns, str(path))


def _concat(tables: Sequence[AttributeTable], source: str) -> AttributeTable:
    """Rows of several tables with the same columns (FairFace's train and val files), in order."""
    names = list(tables[0].columns)
    for t in tables[1:]:
        if list(t.columns) != names:
            raise ValueError(f"{t.source} has columns {list(t.columns)}, expected {names} as in {tables[0].source}")
    columns: dict[str, list[Value | None]] = {}
    for name in names:
        vals = [v for t in tables for v in t.columns[name]]
        kinds = {type(v) for v in vals if v is not None}
        columns[name] = [str(v) if v is not None else None for v in vals] if len(kinds) > 1 else vals
    return AttributeTable([f for t in tables for f in t.files], columns, source)


# ----------------------------------------------------------------------------- splits
def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Three fractions (train, valid, test), each >= 0, summing to 1, with a non-empty train share."""
    try:
        f = tuple(float(x) for x in fractions)
    except (TypeError, ValueError):
        f = ()
    if len(f) != 3 or not all(math.isfinite(x) and x >= 0 for x in f) or abs(sum(f) - 1.0) > 1e-6 or f[0] == 0:
        raise ValueError(f"fractions must be three numbers >= 0 (train, valid, test) summing to 1 with train > 0, "
                         f"got {fractions!r}")
    return f  # type: ignore[return-value]


def seeded_split(files: Sequence[str], fractions: Sequence[float], seed: int) -> np.ndarray:
    """Split codes 0/1/2 (train/valid/test) per row: a seeded permutation of the sorted file names.

    Sorting first makes the split independent of the table's row order; cumulative rounding
    makes the three parts cover every row exactly once.
    """
    f = check_fractions(fractions)
    n = len(files)
    ranked = sorted(range(n), key=files.__getitem__)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0x5F1])))
    order = [ranked[i] for i in rng.permutation(n)]
    b1 = min(n, round(f[0] * n))
    b2 = n if f[2] == 0 else min(n, max(b1, round((f[0] + f[1]) * n)))
    codes = np.empty(n, dtype=np.int8)
    codes[order[:b1]] = 0
    codes[order[b1:b2]] = 1
    codes[order[b2:]] = 2
    return codes


def split_column_codes(values: Sequence[Value | None], files: Sequence[str], source: str, column: str) -> np.ndarray:
    """Split codes from a column of train/valid/test (val and validation also mean valid)."""
    codes = np.empty(len(values), dtype=np.int8)
    for i, v in enumerate(values):
        name = SPLIT_VALUES.get(str(v).strip().lower()) if v is not None else None
        if name is None:
            raise ValueError(f"{source}: column {column!r} holds {v!r} for {files[i]!r}; expected one of "
                             f"{sorted(SPLIT_VALUES)} (train, valid or val, test)")
        codes[i] = SPLITS.index(name)
    return codes


# ----------------------------------------------------------------------------- columns -> codes
def _columns_of(sensitive: str | Sequence[str]) -> tuple[str, ...]:
    return (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)


def resolve_columns(table: AttributeTable, target: str | None, sensitive: str | Sequence[str] | None, *,
                    dataset: str) -> tuple[str, tuple[str, ...]]:
    """Check the target and sensitive column names: (target, sensitive columns).

    A string ``sensitive`` that is not a column but joins columns with ``|`` means their
    intersection, so a run configuration can name one in a single string.
    """
    names = list(table.columns)
    for role, value in (("target", target), ("sensitive", sensitive)):
        if value is None:
            raise ValueError(f"{dataset} needs {role}= (a column of {table.source}); available columns: {names}")
    assert target is not None and sensitive is not None
    if isinstance(sensitive, str) and sensitive not in table.columns and "|" in sensitive:
        sensitive = tuple(sensitive.split("|"))
    columns = _columns_of(sensitive)
    if not columns or len(set(columns)) != len(columns):
        raise ValueError(f"sensitive must name one column or several different ones, got {sensitive!r}")
    for role, value in (("target", target), *(("sensitive", c) for c in columns)):
        if value not in table.columns:
            raise ValueError(f"unknown {role} column {value!r} for {dataset} ({table.source}); available columns: {names}")
    if target in columns:
        raise ValueError(f"target and sensitive attribute must differ, {target!r} is both ({dataset})")
    for c in (target, *columns):
        empty = [f for f, v in zip(table.files, table.columns[c]) if v is None]
        if empty:
            raise ValueError(f"{table.source}: column {c!r} is empty for {len(empty)} image(s) (first: {empty[:5]}); "
                             f"every image needs a {c} value")
    return target, columns


def binary_codes(table: AttributeTable, column: str, positive: Value | None, *, dataset: str) -> tuple[np.ndarray, tuple]:
    """0/1 codes of a two-valued column: ``positive`` (default: the larger value in sorted order) is 1.

    Returns (codes, (value coded 0, value coded 1)). Decided over the whole table, so every split agrees.
    """
    values = table.distinct(column)
    if len(values) != 2:
        binary = [c for c in table.binary_columns() if c != column]
        shown = values if len(values) <= 8 else [*values[:8], "..."]
        raise ValueError(f"target column {column!r} of {dataset} has {len(values)} distinct value(s) {shown} in "
                         f"{table.source}; a target must take exactly two values. Two-valued columns here: {binary}")
    if positive is not None:
        match = [v for v in values if v == positive or str(v) == str(positive)]
        if not match:
            raise ValueError(f"positive={positive!r} is not a value of target column {column!r}; its values are {values}")
        values = [v for v in values if v != match[0]] + match
    codes = np.array([values.index(v) for v in table.columns[column]], dtype=np.int64)
    return codes, (values[0], values[1])


def group_codes(table: AttributeTable, columns: Sequence[str]) -> tuple[np.ndarray, list[Value]]:
    """Group id per row (0..k-1, in sorted order of the value or value combination) and the group names."""
    keys = list(zip(*(table.columns[c] for c in columns)))
    combos = sorted(set(keys), key=lambda t: tuple(table.sort_key(c, v) for c, v in zip(columns, t)))
    index = {t: i for i, t in enumerate(combos)}
    names: list[Value] = [t[0] if len(columns) == 1 else "|".join(map(str, t)) for t in combos]  # type: ignore[misc]
    return np.array([index[t] for t in keys], dtype=np.int64), names


# ----------------------------------------------------------------------------- the dataset
class TableFaces(FaceTensors):
    """One split of an `AttributeTable` as uint8 tensors: the path every table dataset shares.

    ``split_codes`` gives each row's split (0 train, 1 valid, 2 test); images are read from
    ``image_root / file``. ``y`` is the binary target, ``z`` the group id in ``0..k-1`` and
    ``group_names[g]`` the original value(s) of group ``g``; ``target_values`` is the pair of
    target values coded 0 and 1. ``columns`` holds every column's raw values for this split,
    ``attributes`` every two-valued column coded 0/1 in sorted order, ``files`` the image paths.
    """

    def __init__(
        self,
        table: AttributeTable,
        split_codes: np.ndarray,
        *,
        root: Path,
        image_root: Path,
        split: str,
        target: str | None,
        sensitive: str | Sequence[str] | None,
        positive: Value | None,
        min_group_size: int,
        size: int,
        crop: float,
        cache_dir: str | Path | None,
        cache: bool,
        name: str,
        dataset: str,
    ) -> None:
        target, columns = resolve_columns(table, target, sensitive, dataset=dataset)
        y_all, self.target_values = binary_codes(table, target, positive, dataset=dataset)
        z_all, group_names = group_codes(table, columns)
        keep = split_codes == SPLITS.index(split)
        label = "|".join(columns)
        check_group_sizes(np.bincount(z_all[keep], minlength=len(group_names)), group_names,
                          min_group_size, split=split, sensitive=label, dataset=dataset)

        self.root = root
        self.image_root = image_root
        self.files = [f for f, k in zip(table.files, keep) if k]
        self.sensitive_columns = columns
        self.columns = {c: [v for v, k in zip(vals, keep) if k] for c, vals in table.columns.items()}
        files = self.files
        images, self.cache_path, self.loaded_from_cache = cached_decode(
            lambda: self._decode(files, size, crop, split, table.source, dataset), files,
            # the image folder is part of the key: generic names (1.jpg) recur across datasets sharing data/cache
            {"dataset": name, "images": str(image_root.resolve()), "split": split, "size": size, "crop": crop,
             "version": _LOADER_VERSION},
            root=root, cache_dir=cache_dir, cache=cache, stem=f"{name}_{split}_{size}px")

        attrs = {c: torch.from_numpy(binary_codes(table, c, None, dataset=dataset)[0][keep])
                 for c in table.binary_columns()}
        super().__init__(images, torch.from_numpy(y_all[keep]), torch.from_numpy(z_all[keep]), target=target,
                         sensitive=label, name=name, attributes=attrs, group_names=group_names)

    def _decode(self, files: list[str], size: int, crop: float, split: str, source: str, dataset: str) -> torch.Tensor:
        paths = [self.image_root / f for f in files]
        absent = [f for f, p in zip(files, paths) if not p.is_file()]
        if absent:
            raise FileNotFoundError(
                f"{dataset}: {len(absent)} of {len(paths)} images of split {split!r} listed in {source} are missing "
                f"under {self.image_root.resolve()} (first: {absent[:5]})"
            )
        return decode_images(paths, size, crop=crop)

    def subset(self, n: int) -> "TableFaces":
        """The first ``n`` samples as the same class, keeping the group codes and names, files and columns."""
        out = copy.copy(self)
        keep = slice(0, n)
        out.images, out.y, out.z = self.images[keep], self.y[keep], self.z[keep]
        out.attributes = {k: v[keep] for k, v in self.attributes.items()}
        out.columns = {k: v[:n] for k, v in self.columns.items()}
        out.files = self.files[:n]
        return out


def _check_common(split: str, size: int, crop: float, min_group_size: int) -> None:
    """The arguments every table dataset takes, refused before any file is read."""
    check_decoding(split, size, crop)
    check_min_group_size(min_group_size)


# ----------------------------------------------------------------------------- any folder + CSV
class FolderDataset(TableFaces):
    """A split of any image folder described by a CSV table (dataset name ``"folder"``).

    ``root`` is the image folder; ``labels`` the CSV (default ``root/labels.csv``): a header
    line, then one row per image. ``image_column`` (default ``"file"``) holds the image path
    relative to ``root``; ``target`` names a two-valued column (0/1, or two strings mapped in
    sorted order; ``positive=`` picks the value coded 1) and ``sensitive`` one column, several
    (intersection groups) or ``"a|b"``. See the module docstring for the group numbering.

    The splits come from the ``split_column`` (default ``"split"``: train / valid or val / test)
    when the table has one; otherwise from a seeded partition of the rows by ``fractions``
    (default 0.70/0.15/0.15) and ``seed``. Giving ``fractions`` while a split column exists is
    refused rather than ignored. ``min_group_size`` (default 1: every group in every split),
    ``size``, ``crop``, ``cache_dir`` and ``cache`` are as for `~fapkit.data.celeba.CelebA`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        target: str | None = None,
        sensitive: str | Sequence[str] | None = None,
        size: int = 64,
        *,
        labels: str | Path | None = None,
        image_column: str = "file",
        split_column: str | None = "split",
        positive: Value | None = None,
        fractions: Sequence[float] | None = None,
        seed: int = 0,
        min_group_size: int = 1,
        crop: float = 1.0,
        cache_dir: str | Path | None = None,
        cache: bool = True,
    ) -> None:
        root = Path(root)
        _check_common(split, size, crop, min_group_size)
        if fractions is not None:
            check_fractions(fractions)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root.resolve()} not found; FolderDataset reads images from root "
                                    f"and their labels from a CSV (labels=, default root/labels.csv)")
        labels_path = Path(labels) if labels is not None else root / "labels.csv"
        if not labels_path.is_file():
            raise FileNotFoundError(
                f"label table {labels_path.resolve()} not found; expected a CSV with a header line "
                f"'{image_column},<target>,<sensitive>[,split]' and one row per image (pass labels= for another path)"
            )
        table = read_label_csv(labels_path, image_column)
        if split_column is not None and split_column in table.columns:
            if fractions is not None:
                raise ValueError(f"{labels_path} has a {split_column!r} column, which fixes the splits; drop fractions= "
                                 f"or pass split_column=None to split by seeded fractions instead")
            codes = split_column_codes(table.columns.pop(split_column), table.files, str(labels_path), split_column)
        else:
            codes = seeded_split(table.files, fractions or SPLIT_FRACTIONS, seed)
        self.labels = labels_path
        super().__init__(table, codes, root=root, image_root=root, split=split, target=target, sensitive=sensitive,
                         positive=positive, min_group_size=min_group_size, size=size, crop=crop, cache_dir=cache_dir,
                         cache=cache, name="folder", dataset="FolderDataset")


# ----------------------------------------------------------------------------- UTKFace
def parse_utkface_name(name: str) -> tuple[int, int, int] | None:
    """(age, gender, race) from ``<age>_<gender>_<race>_<date>.jpg[.chip.jpg]``; None when the name does not fit."""
    m = UTKFACE_NAME.match(name)
    if m is None:
        return None
    age, gender, race = (int(g) for g in m.groups()[:3])
    if gender not in (0, 1) or not 0 <= race < len(UTKFACE_RACES):
        return None
    return age, gender, race


def utkface_table(image_root: Path, *, skip_bad_names: bool = False) -> tuple[AttributeTable, list[str]]:
    """The table of a UTKFace folder, parsed from the file names: (table, names skipped)."""
    names = sorted(p.name for p in image_root.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
    if not names:
        raise FileNotFoundError(f"UTKFace: no images (*.jpg, *.png) in {image_root.resolve()}; expected "
                                f"<age>_<gender>_<race>_<date>.jpg files, from {UTKFACE_URL}")
    parsed = [(n, parse_utkface_name(n)) for n in names]
    bad = [n for n, p in parsed if p is None]
    if bad and not skip_bad_names:
        raise ValueError(
            f"UTKFace: {len(bad)} file name(s) in {image_root.resolve()} do not match <age>_<gender 0|1>_<race 0-4>_<date>"
            f".jpg (first: {bad[:5]}); rename or remove them, or pass skip_bad_names=True to leave them out "
            f"(the public release has a few such files)"
        )
    rows = [(n, p) for n, p in parsed if p is not None]
    columns: dict[str, list[Value | None]] = {
        "age": [p[0] for _, p in rows],
        "gender": [p[1] for _, p in rows],
        "race": [p[2] for _, p in rows],
        "young": [int(p[0] < YOUNG_BELOW) for _, p in rows],
    }
    return AttributeTable([n for n, _ in rows], columns, str(image_root)), bad


class UTKFace(TableFaces):
    """A UTKFace split, with the attributes read from the file names (dataset name ``"utkface"``).

    ``root`` holds the images (or a ``UTKFace/`` folder of them), named
    ``<age>_<gender>_<race>_<date>.jpg`` (the aligned set adds ``.chip.jpg``). Columns:
    ``age`` (years), ``gender`` (0 male, 1 female: UTKFace's codes, so target ``"gender"`` is
    1 for female), ``race`` (0 White, 1 Black, 2 Asian, 3 Indian, 4 Others) and ``young``
    (1 when age < 30). ``target`` must be a two-valued one (``gender``, ``young``); ``sensitive``
    any (``race`` gives up to 5 groups, ``("gender", "race")`` up to 10).

    A file name that does not fit the pattern is refused, naming it; ``skip_bad_names=True``
    leaves such files out instead (``skipped`` lists them). UTKFace has no official split: the
    images are partitioned by ``fractions`` (default 0.70/0.15/0.15) with ``seed``. The other
    arguments are as for `FolderDataset`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        target: str = "gender",
        sensitive: str | Sequence[str] = "race",
        size: int = 64,
        *,
        positive: Value | None = None,
        fractions: Sequence[float] | None = None,
        seed: int = 0,
        min_group_size: int = 1,
        skip_bad_names: bool = False,
        crop: float = 1.0,
        cache_dir: str | Path | None = None,
        cache: bool = True,
    ) -> None:
        root = Path(root)
        _check_common(split, size, crop, min_group_size)
        codes_fractions = check_fractions(fractions or SPLIT_FRACTIONS)
        if not root.is_dir():
            raise FileNotFoundError(f"UTKFace not found: {root.resolve()} is not a folder. Expected "
                                    f"<age>_<gender>_<race>_<date>.jpg images in it (or in UTKFace/); UTKFace cannot "
                                    f"be downloaded automatically, obtain it from {UTKFACE_URL}")
        image_root = root / "UTKFace" if (root / "UTKFace").is_dir() else root
        table, self.skipped = utkface_table(image_root, skip_bad_names=skip_bad_names)
        codes = seeded_split(table.files, codes_fractions, seed)
        super().__init__(table, codes, root=root, image_root=image_root, split=split, target=target,
                         sensitive=sensitive, positive=positive, min_group_size=min_group_size, size=size, crop=crop,
                         cache_dir=cache_dir, cache=cache, name="utkface", dataset="UTKFace")


# ----------------------------------------------------------------------------- FairFace
def fairface_table(root: Path) -> tuple[AttributeTable, np.ndarray]:
    """Both FairFace label files as one table, plus whether each row comes from the val file."""
    tables = []
    for part, fname in FAIRFACE_LABELS.items():
        t = read_label_csv(root / fname, "file")
        lacking = [c for c in ("age", "gender", "race") if c not in t.columns]
        if lacking:
            raise ValueError(f"{t.source} lacks column(s) {lacking}; expected FairFace's header "
                             f"file,age,gender,race,service_test")
        tables.append(t)
    table = _concat(tables, f"{root / FAIRFACE_LABELS['train']} + {FAIRFACE_LABELS['val']}")
    ages = table.columns["age"]
    unknown = sorted({str(a) for a in ages} - set(FAIRFACE_AGE_BINS))
    if unknown:
        raise ValueError(f"{table.source}: unknown age bin(s) {unknown}; expected FairFace's {list(FAIRFACE_AGE_BINS)}")
    table.orders["age"] = FAIRFACE_AGE_BINS
    # the upper end of each bin: "20-29" -> 29; "more than 70" is never young
    table.columns["young"] = [int(a != FAIRFACE_AGE_BINS[-1] and int(str(a).split("-")[1]) < YOUNG_BELOW) for a in ages]
    is_val = np.array([False] * len(tables[0]) + [True] * len(tables[1]), dtype=bool)
    return table, is_val


class FairFace(TableFaces):
    """A FairFace split (dataset name ``"fairface"``) from a local copy of the images and label files.

    ``root`` holds ``train/``, ``val/`` (or a ``fairface-img-margin025-trainval/`` folder with
    them), ``fairface_label_train.csv`` and ``fairface_label_val.csv`` with columns
    ``file,age,gender,race,service_test`` (``file`` like ``train/1.jpg``). Columns: ``age``
    (nine bins, ordered by age rather than alphabetically, so ``sensitive="age"`` numbers
    ``"0-2"`` as 0 and ``"more than 70"`` as 8), ``gender`` (Female 0, Male 1 as a target),
    ``race`` (7 groups, alphabetical), ``service_test`` and ``young`` (age bin below 30).

    FairFace's val set is the ``"test"`` split; ``"valid"`` is carved from its train set, a
    seeded ``valid_fraction`` (default 0.1) of the train images, ``"train"`` the rest. The other
    arguments are as for `FolderDataset`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        target: str = "gender",
        sensitive: str | Sequence[str] = "race",
        size: int = 64,
        *,
        positive: Value | None = None,
        valid_fraction: float = FAIRFACE_VALID_FRACTION,
        seed: int = 0,
        min_group_size: int = 1,
        crop: float = 1.0,
        cache_dir: str | Path | None = None,
        cache: bool = True,
    ) -> None:
        root = Path(root)
        _check_common(split, size, crop, min_group_size)
        if not 0.0 <= valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1) (the share of FairFace's train images held out as "
                             f"'valid'), got {valid_fraction!r}")
        missing = [f for f in FAIRFACE_LABELS.values() if not (root / f).is_file()]
        if not root.is_dir() or missing:
            raise FileNotFoundError(
                f"FairFace not found in {root.resolve()}: missing {missing if root.is_dir() else ['train/', *missing]}. "
                f"Expected train/, val/ and the label files {list(FAIRFACE_LABELS.values())} in that folder. FairFace "
                f"cannot be downloaded automatically; obtain it from {FAIRFACE_URL}"
            )
        table, is_val = fairface_table(root)
        codes = np.full(len(table), SPLITS.index("test"), dtype=np.int8)
        train_rows = np.flatnonzero(~is_val)
        codes[train_rows] = seeded_split([table.files[i] for i in train_rows], (1.0 - valid_fraction, valid_fraction, 0.0),
                                         seed)
        image_root = next((root / d for d in _FAIRFACE_IMAGE_DIRS if (root / d / "train").is_dir()), root)
        super().__init__(table, codes, root=root, image_root=image_root, split=split, target=target,
                         sensitive=sensitive, positive=positive, min_group_size=min_group_size, size=size, crop=crop,
                         cache_dir=cache_dir, cache=cache, name="fairface", dataset="FairFace")


__all__ = [
    "AttributeTable", "FAIRFACE_AGE_BINS", "FairFace", "FolderDataset", "TableFaces", "UTKFACE_RACES", "UTKFace",
    "binary_codes", "check_fractions", "fairface_table", "group_codes", "parse_utkface_name", "read_label_csv",
    "seeded_split", "utkface_table",
]
