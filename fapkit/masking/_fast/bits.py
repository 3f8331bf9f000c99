"""Bit tricks of the fast engine: bool flags read eight at a time as int64 words."""

from __future__ import annotations

import torch


def sparse_nonzero(flags: torch.Tensor) -> torch.Tensor:
    """Sorted positions of the True entries of a bool buffer with few True entries.

    The buffer's length must be a multiple of 8 (the engine pads segments to 64). ``torch.nonzero``
    scans byte by byte; scanning eight flags at a time as int64 words and expanding only the
    non-zero words is several times faster when flags are sparse.
    """
    words = flags.view(torch.int64)
    hit = torch.nonzero(words).squeeze(1)
    if hit.numel() == 0:
        return hit
    row, col = torch.nonzero(flags.view(-1, 8)[hit], as_tuple=True)
    return hit[row] * 8 + col
