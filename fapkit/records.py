"""Files on disk (run records, checkpoints, data caches): atomic shareable writes, readable errors, content-addressed keys."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

#: The per-epoch checkpoint a stage leaves in its run folder until its record supersedes it.
CHECKPOINT = "checkpoint.pt"
#: Permissions of every file written here: readable by all, so records can be shared on a cluster disk.
SHARED_MODE = 0o644


def stable_hash(payload: Any, length: int = 16) -> str:
    """A short hex digest of a JSON-serialisable payload (keys sorted, so order never matters).

    The first ``length`` hex digits of the SHA-256 of ``json.dumps(payload, sort_keys=True,
    default=str)``: the one hash behind every content-addressed key of the kit (run records use
    16 digits, `fapkit.data.base.cache_key` 20), so changing it renames every record and cache.
    """
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over `path`.

    A crash mid-write leaves the previous file (or none) in place, never a truncated one, and
    readers (other workers, notebooks started in parallel) see either no file or a complete one.
    The file is made world-readable (0o644; ``mkstemp`` makes 0o600) so that records and data
    caches on a shared cluster disk can be read by everyone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, SHARED_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and world-readable (see `_atomic_write`)."""
    _atomic_write(Path(path), lambda h: h.write(data))


def save_json(path: str | Path, data: Any) -> None:
    _atomic_write(Path(path), lambda h: h.write(json.dumps(data, indent=2, sort_keys=True, default=str).encode()))


def load_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"run record {path} is corrupt ({err}); delete it to recompute the run") from err


def save_torch(path: str | Path, obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically and world-readable (see `_atomic_write`)."""
    _atomic_write(Path(path), lambda h: torch.save(obj, h))


def load_torch(path: str | Path) -> Any:
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated zip, foreign pickle, ...: name the file, not the unpickler's internals
        raise ValueError(f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}: {err}); "
                         "delete it to recompute the run") from err
