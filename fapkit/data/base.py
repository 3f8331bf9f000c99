"""Shared dataset container, fast tensor batching, validation and cache helpers.

Every dataset in `fapkit.data` (synthetic faces, CelebA, LFW, image folders) is a
`FaceTensors`: the whole split held in memory as one ``uint8`` image tensor
plus binary target ``y`` and sensitive group ids ``z`` (0/1 for a binary attribute,
``0..k-1`` for one with k groups or an intersection of attributes). Holding uint8 keeps 200k
CelebA images at 64x64 near 2.4 GB, and batching by index slicing
(`TensorLoader`) avoids per-item Python calls, which dominate CPU training
time for small images.
"""

from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..fairness.metrics import group_ids
from ..records import save_torch, stable_hash

#: The 40 CelebA attribute names, in the column order of ``list_attr_celeba.txt``.
CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald",
    "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry",
    "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee",
    "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)

SPLITS: tuple[str, ...] = ("train", "valid", "test")
MIN_SIZE = 8


# ----------------------------------------------------------------------------- validation
def check_split(split: str, allowed: Sequence[str] = SPLITS) -> str:
    """Return ``split`` or raise a ValueError that lists the allowed splits."""
    if split not in allowed:
        raise ValueError(f"unknown split {split!r}; expected one of {list(allowed)}")
    return split


def check_size(size: int) -> int:
    """Image side length in pixels; below 8 pixels no face cue survives."""
    if not isinstance(size, int) or isinstance(size, bool) or size < MIN_SIZE:
        raise ValueError(f"size must be an int >= {MIN_SIZE} (pixels per side), got {size!r}")
    return size


def check_decoding(split: str, size: int, crop: float) -> None:
    """The arguments every local image dataset (CelebA, LFW) decodes with: split, side length, centre crop."""
    check_split(split)
    check_size(size)
    if not 0.0 < crop <= 1.0:
        raise ValueError(f"crop must be in (0, 1] (the fraction of the shorter side kept), got {crop!r}")


def check_attributes(target: str, sensitive: str | Sequence[str], valid: Iterable[str], *, dataset: str) -> None:
    """Refuse unknown attribute names (listing the valid ones) and a target that is also sensitive.

    ``sensitive`` is one name, or several (an intersection, see `sensitive_columns`).
    """
    names = list(valid)
    columns = sensitive_columns(sensitive)
    for role, value in (("target", target), *(("sensitive", c) for c in columns)):
        if value not in names:
            raise ValueError(
                f"unknown {role} attribute {value!r} for {dataset}; valid names: {sorted(names)}"
            )
    if target in columns:
        raise ValueError(
            f"target and sensitive attribute must differ, both are {target!r} ({dataset})"
        )


# ----------------------------------------------------------------------------- groups
def sensitive_columns(sensitive: str | Sequence[str]) -> tuple[str, ...]:
    """The attribute names of a sensitive setting: one name, a list/tuple of names, or ``"a|b"``.

    Several names mean their intersection: one group per combination of values. The names
    must be different strings (at least one).
    """
    if isinstance(sensitive, str):
        columns: tuple[Any, ...] = tuple(sensitive.split("|")) if "|" in sensitive else (sensitive,)
    elif isinstance(sensitive, Sequence):
        columns = tuple(sensitive)
    else:
        raise ValueError(f"sensitive must be an attribute name or a list of names, got {sensitive!r}")
    if not columns or not all(isinstance(c, str) and c for c in columns) or len(set(columns)) != len(columns):
        raise ValueError(f"sensitive must name one attribute or several different ones, got {sensitive!r}")
    return columns


def normalise_sensitive(sensitive: str | Sequence[str]) -> str | tuple[str, ...]:
    """One name as a string, several as a tuple (so ``["Male"]`` and ``"Male"`` are one setting)."""
    columns = sensitive_columns(sensitive)
    return columns[0] if len(columns) == 1 else columns


def sensitive_label(sensitive: str | Sequence[str]) -> str:
    """The display name of a sensitive setting: ``"Male"``, or ``"Male|Young"`` for an intersection."""
    return "|".join(sensitive_columns(sensitive))


def combination_groups(values: Mapping[str, Any], columns: Sequence[str], *,
                       universe: Sequence[Sequence[int]] | np.ndarray | None = None,
                       labels: Mapping[str, Sequence[str]] | None = None) -> tuple[np.ndarray, list[str]]:
    """Intersection groups: a group id per row for the combination of ``columns``' integer values.

    ``values`` maps each column to an integer array (one value per row). The groups are the rows of
    ``universe`` (the combinations that exist: those observed over a whole dataset, so every split
    numbers them alike), or by default the combinations observed in ``values``; they are numbered
    ``0..k-1`` in sorted order of the value tuples. ``group_names[g]`` is ``"Male=1|Young=0"``: each
    column with its value, or with ``labels[column][value]`` where given (``"Age_Group=20-39"``).
    A row whose combination is not in ``universe`` raises a ValueError naming it.
    """
    stack = np.stack([np.asarray(values[c]).reshape(-1).astype(np.int64) for c in columns], axis=1)
    source = stack if universe is None else np.asarray(universe, dtype=np.int64).reshape(-1, len(columns))
    combos = [tuple(int(v) for v in row) for row in np.unique(source, axis=0)] if len(source) else []
    index = {combo: g for g, combo in enumerate(combos)}
    codes = np.empty(len(stack), dtype=np.int64)
    for i, row in enumerate(map(tuple, stack.tolist())):
        g = index.get(row)
        if g is None:
            raise ValueError(f"row {i} has the combination {dict(zip(columns, row))} of {'|'.join(columns)}, "
                             f"which is not one of the {len(combos)} known groups")
        codes[i] = g
    labels = labels or {}

    def shown(column: str, value: int) -> str:
        names = labels.get(column)
        return str(names[value]) if names is not None and 0 <= value < len(names) else str(value)

    names = ["|".join(f"{c}={shown(c, v)}" for c, v in zip(columns, combo)) for combo in combos]
    return codes, names


def check_min_group_size(min_group_size: int) -> int:
    """``min_group_size``: an int >= 0 (images per group and split; 0: no check)."""
    if not isinstance(min_group_size, int) or isinstance(min_group_size, bool) or min_group_size < 0:
        raise ValueError(f"min_group_size must be an int >= 0 (images per group and split; 0: no check), "
                         f"got {min_group_size!r}")
    return min_group_size


def check_group_sizes(counts: Sequence[int] | np.ndarray, names: Sequence[Any], min_group_size: int, *, split: str,
                      sensitive: str, dataset: str) -> None:
    """Refuse a split in which a group has fewer than ``min_group_size`` images, naming each such group and its count.

    ``counts[g]`` is the number of images of group ``g`` in the split, ``names[g]`` its name. Every
    dataset of the kit refuses small groups through this one function (fairness metrics of a group
    of a few images are undefined or noise).
    """
    small = [(names[g], int(c)) for g, c in enumerate(counts) if c < min_group_size]
    if small:
        listed = ", ".join(f"{n!r} ({c})" for n, c in small)
        raise ValueError(
            f"{dataset}: split {split!r} has {len(small)} group(s) of {sensitive!r} with fewer than "
            f"min_group_size={min_group_size} images: {listed}. Fairness metrics need every group in every split; "
            f"merge or drop these groups, change the split (fractions, seed, split column, sizes) or lower "
            f"min_group_size"
        )


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    return batch_size


# ----------------------------------------------------------------------------- caching
def cache_key(fields: Mapping[str, Any]) -> str:
    """Stable short hash of a JSON-serialisable mapping (sorted keys).

    `fapkit.records.stable_hash` with 20 hex digits, the length of every data cache key.
    """
    return stable_hash(dict(fields), length=20)


def try_load(path: Path) -> dict[str, Any] | None:
    """Load a cache file written by `~fapkit.records.save_torch`; None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a corrupt or foreign file is rebuilt rather than trusted
        return None


def files_digest(names: Iterable[str]) -> str:
    """Digest of an ordered file list: a changed split or file set gives a new cache key."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode())
        h.update(b"\n")
    return h.hexdigest()[:20]


def resolve_cache_dir(root: Path, cache_dir: str | Path | None) -> Path:
    """``cache_dir`` if given, else ``root/.fapkit_cache`` when writable, else ``data/cache``."""
    if cache_dir is not None:
        return Path(cache_dir)
    preferred = root / ".fapkit_cache"
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK):
            return preferred
    except OSError:  # read-only dataset copies are common on shared clusters
        pass
    return Path("data/cache")


def cached_decode(decode: Callable[[], torch.Tensor], files: Sequence[str], key_fields: Mapping[str, Any], *,
                  root: Path, cache_dir: str | Path | None, cache: bool, stem: str) -> tuple[torch.Tensor, Path | None, bool]:
    """Images decoded by ``decode()``, or read from the cache a previous call wrote.

    The cache file ``<stem>_<key>.pt`` (in `resolve_cache_dir`) is keyed by ``key_fields``
    plus a digest of ``files``, so another split, size, crop or file set never reuses it; a
    corrupt or mismatching file is decoded again. Returns (images, cache path or None, whether
    the images came from the cache).
    """
    digest = files_digest(files)
    path = None
    if cache:
        path = resolve_cache_dir(root, cache_dir) / f"{stem}_{cache_key({**key_fields, 'files': digest})}.pt"
        data = try_load(path)
        if data is not None and data.get("files") == digest:
            return data["images"], path, True
    images = decode()
    if path is not None:
        save_torch(path, {"images": images, "files": digest})
    return images, path, False


def _decode_one(path: Path, size: int, crop: float) -> np.ndarray:
    with Image.open(path) as im:
        # JPEG DCT-domain downscaling: decodes 2-8x faster, still >= 2x the target size
        need = math.ceil(2 * size / crop)
        im.draft("RGB", (need, need))
        im = im.convert("RGB")
        w, h = im.size
        side = crop * min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        # PIL's bilinear filter widens its support when shrinking, i.e. it antialiases
        im = im.resize((size, size), Image.Resampling.BILINEAR, box=box)
        return np.asarray(im, dtype=np.uint8)


def decode_images(paths: Sequence[Path], size: int, *, crop: float = 1.0, workers: int | None = None) -> torch.Tensor:
    """Decode, centre-crop (``crop`` x the shorter side) and resize; uint8 ``[N, 3, size, size]``.

    Threads suffice because PIL releases the GIL while decoding and resampling.
    """
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, arr in enumerate(pool.map(lambda p: _decode_one(p, size, crop), paths)):
            out[i] = arr
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------- dataset
class FaceTensors(Dataset):
    """A whole split held as tensors: images, target ``y`` and sensitive group ids ``z``.

    ``images`` is a ``uint8`` tensor ``[N, 3, H, W]``; ``y`` (the observed target label) is an
    ``int64`` tensor ``[N]`` of 0/1 and ``z`` an ``int64 [N]`` tensor of sensitive group ids
    ``0..k-1`` (0/1 for a binary attribute; checked by `fapkit.fairness.metrics.group_ids`). ``target``
    and ``sensitive`` are their attribute names (``"Male|Young"`` for an intersection).
    ``group_names`` optionally names every group, ``group_names[g]`` for id ``g`` (then
    ``k = len(group_names)`` and every id must be below it, and a group may be absent from the
    split); None, the binary default, means the groups are ``{sensitive}=0`` and ``{sensitive}=1``.
    ``name`` is the dataset name (``"synth"``, ``"celeba"``, ``"lfw"`` or user-chosen).
    ``attributes`` optionally maps every known attribute to an ``int64 [N]`` tensor (for the
    synthetic set these are the true, noise-free attributes).

    ``ds[i]`` returns ``(float32 image in [0, 1] of shape [3, H, W], y[i], z[i])``.
    """

    def __init__(
        self,
        images: torch.Tensor,
        y: torch.Tensor,
        z: torch.Tensor,
        *,
        target: str,
        sensitive: str,
        name: str,
        attributes: Mapping[str, torch.Tensor] | None = None,
        group_names: Sequence[Any] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be a uint8 tensor [N, 3, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        n = images.shape[0]
        for label, t in (("y", y), ("z", z)):
            if t.shape != (n,):
                raise ValueError(f"{label} must have shape ({n},), got {tuple(t.shape)}")
        self.images = images
        self.y = y.to(torch.int64)
        if n and not bool(((self.y == 0) | (self.y == 1)).all()):
            raise ValueError("y must contain only 0/1 values")
        self.target = target
        self.name = name
        self.attributes: dict[str, torch.Tensor] = dict(attributes or {})
        self.set_groups(z, sensitive=sensitive, group_names=group_names)

    def set_groups(self, z: torch.Tensor, *, sensitive: str, group_names: Sequence[Any] | None = None) -> "FaceTensors":
        """Replace the sensitive groups (e.g. by an intersection of attributes); returns ``self``.

        ``z`` must hold ids ``0..k-1`` (below ``len(group_names)`` when names are given).
        """
        if z.shape != (len(self),):
            raise ValueError(f"z must have shape ({len(self)},), got {tuple(z.shape)}")
        if group_names is not None:
            group_names = list(group_names)
            if not group_names:
                raise ValueError("group_names must name at least one group (or be None)")
        if len(self):
            ids = group_ids(z, "z")
            if group_names is not None and int(ids.max()) >= len(group_names):
                raise ValueError(f"z holds group id {int(ids.max())}, but group_names names only {len(group_names)} "
                                 f"group(s) {group_names}")
        self.z = z.to(torch.int64)
        self.sensitive = sensitive
        self.group_names: list[Any] | None = group_names
        return self

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.images[i].float().div_(255.0), self.y[i], self.z[i]

    def subset(self, n: int) -> "FaceTensors":
        """The first ``n`` samples (a smaller split for quick runs on a real dataset), groups and names kept."""
        keep = slice(0, n)
        return FaceTensors(self.images[keep], self.y[keep], self.z[keep], target=self.target,
                           sensitive=self.sensitive, name=self.name,
                           attributes={k: v[keep] for k, v in self.attributes.items()},
                           group_names=self.group_names)

    @property
    def size(self) -> int:
        """Image side length in pixels."""
        return int(self.images.shape[-1])

    @property
    def n_groups(self) -> int:
        """k, the number of sensitive groups: ``len(group_names)`` (absent groups included) when they are
        named, else ``1 + max(z)``, at least 2."""
        if self.group_names is not None:
            return len(self.group_names)
        return max(2, int(self.z.max()) + 1) if len(self) else 2

    def names_of_groups(self) -> list[str]:
        """A display name per group id: ``group_names`` as strings, else ``"{sensitive}={g}"``."""
        if self.group_names is not None:
            return [str(g) for g in self.group_names]
        return [f"{self.sensitive}={g}" for g in range(self.n_groups)]

    def group_counts(self) -> list[int]:
        """Images per group id ``0..k-1`` in this split."""
        return torch.bincount(self.z, minlength=self.n_groups).tolist() if len(self) else [0] * self.n_groups

    def check_group_sizes(self, min_group_size: int, *, split: str) -> "FaceTensors":
        """Refuse (a ValueError naming them and their counts) groups with fewer than ``min_group_size``
        images in this split (`check_group_sizes`); returns ``self``."""
        check_min_group_size(min_group_size)
        check_group_sizes(self.group_counts(), self.names_of_groups(), min_group_size, split=split,
                          sensitive=self.sensitive, dataset=self.name)
        return self

    def label_rates(self) -> dict[str, float]:
        """Quick bias checks: ``P(y=1 | z=g)`` per group, and ``P(z=1)`` (binary) or ``P(z=g)`` per group (k > 2).

        A binary split gives ``p_z1``, ``p_y1_given_z0`` and ``p_y1_given_z1``; with k > 2 groups
        (or named groups other than two) the keys are ``p_z{g}`` and ``p_y1_given_z{g}`` for every ``g``.
        """
        k = self.n_groups
        out: dict[str, float] = {}
        if k == 2 and self.group_names is None:
            out["p_z1"] = float(self.z.float().mean()) if len(self) else math.nan
        else:
            for g in range(k):
                out[f"p_z{g}"] = float((self.z == g).float().mean()) if len(self) else math.nan
        for g in range(k):
            sel = self.z == g
            out[f"p_y1_given_z{g}"] = float(self.y[sel].float().mean()) if bool(sel.any()) else math.nan
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, n={len(self)}, size={self.size}, "
            f"target={self.target!r}, sensitive={self.sensitive!r})"
        )


# ----------------------------------------------------------------------------- batching
class TensorLoader:
    """Batches ``(x, y, z)`` straight from a `FaceTensors` by index slicing.

    ``x`` is ``float32 [B, 3, H, W]`` in [0, 1]; ``y`` and ``z`` are ``int64 [B]``.
    With ``shuffle=True`` the order for epoch ``e`` is
    ``torch.randperm(N, generator=torch.Generator().manual_seed(seed * 1000003 + e))``.
    ``epoch`` is incremented after each *complete* pass and may be set by hand, so a run
    resumed at epoch ``e`` sees exactly the batches it would have seen.
    """

    def __init__(
        self,
        ds: FaceTensors,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.ds = ds
        self.batch_size = check_batch_size(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.ds)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int | None = None) -> torch.Tensor:
        """Index order used for ``epoch`` (default: the current one)."""
        e = self.epoch if epoch is None else epoch
        n = len(self.ds)
        if not self.shuffle:
            return torch.arange(n)
        gen = torch.Generator().manual_seed(self.seed * 1000003 + e)
        return torch.randperm(n, generator=gen)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        idx = self.order()
        ds, b = self.ds, self.batch_size
        for k in range(len(self)):
            sel = idx[k * b:(k + 1) * b]
            yield ds.images[sel].float().div_(255.0), ds.y[sel], ds.z[sel]
        self.epoch += 1  # only reached after a full pass

    def __repr__(self) -> str:
        return (
            f"TensorLoader({self.ds!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last}, epoch={self.epoch})"
        )


def make_loader(
    ds: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
) -> TensorLoader | DataLoader:
    """A `TensorLoader` for a `FaceTensors`, else a seeded ``DataLoader``.

    The fallback lets user datasets (anything yielding ``(x, y, z)``) flow through the
    same training code.
    """
    check_batch_size(batch_size)
    if isinstance(ds, FaceTensors):
        return TensorLoader(ds, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
    gen = torch.Generator().manual_seed(int(seed)) if shuffle else None
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=gen)
