"""Kill a training subprocess mid-run, after its first checkpoint, as a crash would (for resume tests)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from fapkit.records import load_torch


def kill_after_first_checkpoint(argv: list[str], runs: Path, *, epochs: int, pattern: str = "normal-*/checkpoint.pt",
                                timeout: float = 300.0) -> tuple[Path, int]:
    """Start `argv`, SIGKILL its process group once `runs/pattern` appears; return the checkpoint and its epoch.

    Asserts that the kill came mid-run: a checkpoint exists, it holds 1 to `epochs` − 1 completed
    epochs, and no finished record was written.
    """
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline, ckpt = time.monotonic() + timeout, None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(runs.glob(pattern))
        if found:
            ckpt = found[0]
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert ckpt is not None, "the run ended before it could be killed"
    completed = load_torch(ckpt)["epoch"]
    assert 1 <= completed < epochs
    assert not list(runs.glob(pattern.replace("checkpoint.pt", "record.json")))
    return ckpt, completed
