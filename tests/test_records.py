"""Atomic writes and readable errors for corrupt records and checkpoints."""
import json
import os
import stat

import pytest
import torch

from fapkit.data.base import cache_key
from fapkit.records import load_json, load_torch, save_json, save_torch, stable_hash


def test_json_and_torch_round_trip(tmp_path):
    save_json(tmp_path / "r.json", {"b": 1, "a": [1.5]})
    assert load_json(tmp_path / "r.json") == {"a": [1.5], "b": 1}
    save_torch(tmp_path / "c.pt", {"w": torch.arange(3)})
    assert torch.equal(load_torch(tmp_path / "c.pt")["w"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "r.json"
    save_json(path, {"ok": 1})

    class Unserialisable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_json(path, {"bad": Unserialisable()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_corrupt_files_give_a_clear_error(tmp_path):
    (tmp_path / "r.json").write_text('{"acc": 0.8')
    with pytest.raises(ValueError, match=r"run record .*r.json is corrupt.*delete it"):
        load_json(tmp_path / "r.json")
    save_torch(tmp_path / "c.pt", {"w": torch.zeros(1000)})
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"checkpoint .*c.pt is corrupt or unreadable"):
        load_torch(tmp_path / "c.pt")


def test_stable_hash_ignores_key_order_and_sees_values():
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_written_files_are_readable_by_everyone(tmp_path):
    """mkstemp makes 0o600; records and data caches on a shared cluster disk must be readable by all."""
    save_json(tmp_path / "r.json", {"a": 1})
    save_torch(tmp_path / "c.pt", {"w": torch.arange(3)})
    for name in ("r.json", "c.pt"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644


def test_keys_are_pinned():
    """Existing run folders and data caches are found by these keys: changing the hash renames them all."""
    synth = {"dataset": "synth", "version": 6, "split": "train", "target": "Attractive", "sensitive": "Male",
             "size": 64, "n": 8000, "correlation": None, "label_noise": 0.0, "seed": 0}
    assert cache_key(synth) == "6a3acc03809a77516985" == stable_hash(synth, length=20)
    assert cache_key({"b": [2.5, None], "a": 1}) == "2daaea6dd63221f95a6e"
    assert stable_hash({"a": 1, "b": [2.5, None]}) == "2daaea6dd63221f9"
