"""The allocator setting that training applies: freed tensor memory is reused, not faulted in again."""
from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys, torch
if sys.argv[1] == "tuned":
    from fapkit.training.runtime import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()  # applied, and idempotent
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.ones(1 << 22)  # warm up torch's own allocations
before = faults()
for _ in range(20):
    t = torch.ones(1 << 22)  # 16 MiB: above glibc's default mmap threshold
    del t
print(faults() - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_keep_freed_memory_stops_refaulting_reallocated_tensors() -> None:
    pages = (1 << 22) * 4 // 4096  # pages of one 16 MiB tensor
    default, tuned = _faults("default"), _faults("tuned")
    # glibc's adaptive threshold lets some reuse happen by default (5-8 of the 20 fault in
    # again here), but freed blocks keep going back to the kernel ...
    assert default >= 3 * pages
    # ... while tuned, the block is reused after the first allocation
    assert tuned <= 2 * pages
