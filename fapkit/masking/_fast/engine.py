"""The fast score engine: exact top-k masks and effective weights, updated incrementally.

`FastEngine` implements `~fapkit.masking.reference.ScoreEngine` for all
score-masked layers of one model, with the same results as the reference engine. Everything
lives in flat "arena" tensors with one 64-aligned segment per layer:

* ``s`` -- the scores themselves: each ``layer.scores`` parameter is a view of its segment
  (re-linked automatically if a parameter is replaced, e.g. after ``model.to(...)`` or a
  ``deepcopy``); padding holds NaN, which no comparison counts;
* bool flags: the mask and the sign of ``s``, double-buffered (``*_fresh`` is computed,
  then swapped in), the band and the flip candidates;
* ``weff = W ⊙ m`` (what the layer computes with) and ``wsign = W ⊙ sign(s)`` (what the
  backward pass multiplies the incoming gradient with).

One sync (after the scores changed, i.e. once per optimizer step):

1. **Sweep** -- a single streaming pass over ``s`` in cache-sized chunks: ``|s|``, the
   count of values above each group's band (`~fapkit.masking._fast.search.BandSearch`),
   ``fresh = |s| >= lo``, the ``|s| > hi`` flags and ``s < 0``. Temporaries are float
   (comparisons into float are ~3x faster than into bool on CPU; float -> bool copies are
   cheap) and stay in a chunk-sized workspace; only bool flags reach memory.
2. **Candidates** -- every few chunks, while the flags are still in cache, word-wise
   (8 flags per int64) XOR/OR mark the positions that are in a band or whose mask bit or
   sign may have flipped; one sparse scan at the end finds them.
3. **Settle** -- per group keep the ``k - c_hi`` largest band members (a stable sort of a
   few thousand values: ties go to the lower position, exactly like
   `~fapkit.masking.topk.exact_topk_masks`).
4. **Apply** -- rewrite ``weff``/``wsign`` at the candidate positions only. ``W`` itself is
   recovered from ``wsign`` and the old sign, so no copy of the weights is kept.

Work is skipped entirely while no score or weight tensor changed (version counters), so
evaluation costs nothing extra. In-place edits through ``.data`` bypass version counters:
call ``Masker.invalidate()`` after them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import _torch
from ..topk import exact_topk_masks
from .bits import sparse_nonzero
from .search import BandSearch

CHUNK = 1 << 20  # elements per streaming chunk: the float temporaries stay in L3
ALIGN = 64  # segment alignment (elements): int64 word views and cache lines
SORT_LIMIT = 1 << 20  # band members settled by one sort; above, kthvalue per group
BLOCK = 1 << 21  # flags are combined every ~BLOCK elements, while they are still in cache


def _padded(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(eq=False)
class Slot:
    """One masked layer: its segment in the arenas and its change-detection keys."""

    engine: FastEngine = field(repr=False)
    name: str
    layer: nn.Module = field(repr=False)
    offset: int
    n: int
    group: int
    weight_requires_grad: bool  # restored when the masking is removed
    key: tuple[int, int, int, int] = (-1, -1, -1, -1)

    @property
    def segment(self) -> slice:
        return slice(self.offset, self.offset + self.n)

    def current_key(self) -> tuple[int, int, int, int]:
        # (version counter, storage address) of scores and weight: notices optimizer
        # steps, load_state_dict, and .data replaced by another tensor
        return _torch.version_key(self.layer.scores) + _torch.version_key(self.layer.weight)

    def effective_weight(self) -> torch.Tensor:
        return self.engine.weff[self.segment].view(self.layer.weight.shape)

    def gradient_factor(self) -> torch.Tensor:
        return self.engine.wsign[self.segment]

    def current_mask(self) -> torch.Tensor:
        """Flat bool mask in force."""
        return self.engine.mask[self.segment]


@dataclass(eq=False)
class Group:
    """Slots that share one top-k: one layer (scope="layer") or all of them ("global")."""

    slots: list[int]
    k: int
    search: BandSearch


@dataclass(eq=False)
class Run:
    """A contiguous stretch of the arenas swept with one group's band bounds."""

    start: int
    stop: int
    group: int


@dataclass(eq=False)
class FastEngine:
    """Masks and effective weights of all score-masked layers of one model."""

    scope: str
    slots: list[Slot] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    keys: tuple = ()
    size: int = 0
    arenas: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ building
    def add(self, name: str, layer: nn.Module) -> Slot:
        """Register ``layer`` (call `allocate` after the last one)."""
        group = len(self.slots) if self.scope == "layer" else 0
        slot = Slot(self, name, layer, -1, layer.weight.numel(), group,
                    weight_requires_grad=layer.weight.requires_grad)
        self.slots.append(slot)
        return slot

    def allocate(self, kept: Callable[[int], int]) -> None:
        """Lay out segments, create groups, runs and arenas (``kept(n)``: k for n values).

        Segments follow layer order, which is also the order ties are broken in across
        layers for global scope.
        """
        if self.scope == "global":
            members = [list(range(len(self.slots)))]
        else:
            members = [[i] for i in range(len(self.slots))]
        for ids in members:
            n = sum(self.slots[i].n for i in ids)
            self.groups.append(Group(ids, kept(n), BandSearch(kept(n), n)))
        offset = 0
        for slot in self.slots:
            slot.offset = offset
            offset += _padded(slot.n)
        self.size = offset
        w = self.slots[0].layer.weight
        self._allocate(w.device, w.dtype)

    def _allocate(self, device: torch.device, dtype: torch.dtype) -> None:
        total = self.size
        bools = {"device": device, "dtype": torch.bool}
        floats = {"device": device, "dtype": dtype}
        self.arenas = {
            "s": torch.full((total,), float("nan"), **floats),
            "weff": torch.zeros(total, **floats),
            "wsign": torch.zeros(total, **floats),
            **{name: torch.zeros(total, **bools)
               for name in ("mask", "fresh", "sign", "sign_fresh", "band", "cand")},
        }
        # chunks keep temporaries in CPU caches; a GPU streams everything in one go
        chunk = min(CHUNK if device.type == "cpu" else total, total)
        self.work = tuple(torch.empty(chunk, **floats) for _ in range(2))
        by_offset = sorted(self.slots, key=lambda slot: slot.offset)
        self.slot_starts = torch.tensor([slot.offset for slot in by_offset], device=device)
        self.slot_group = torch.tensor([slot.group for slot in by_offset], device=device)
        self.runs = self._plan_runs()
        self.sweep_plan = self._plan(self.runs)

    def _plan_runs(self) -> list[Run]:
        if self.scope == "global":  # one threshold: chunks run across layers (NaN padding)
            return [Run(0, self.size, 0)]
        return [Run(slot.offset, slot.offset + slot.n, slot.group) for slot in self.slots]

    def __getattr__(self, name: str) -> torch.Tensor:
        # arenas read as attributes (engine.mask, engine.weff, ...)
        arenas = self.__dict__.get("arenas")
        if arenas is not None and name in arenas:
            return arenas[name]
        raise AttributeError(name)

    def link(self) -> None:
        """Make every ``layer.scores`` a view of its segment of ``s`` (copying values)."""
        first = self.slots[0].layer.scores
        s = self.arenas["s"]
        if first.device != s.device or first.dtype != s.dtype:  # model moved / cast
            self._allocate(first.device, first.dtype)
            self.invalidate()
            s = self.arenas["s"]
        for slot in self.slots:
            param = slot.layer.scores
            view = s[slot.segment]
            if param.data_ptr() != view.data_ptr():
                with torch.no_grad():
                    view.copy_(param.detach().reshape(-1))
                param.data = view.view(param.shape)
                slot.key = (-1, -1, -1, -1)

    def invalidate(self) -> None:
        """Force a full recomputation at the next sync (after ``.data`` edits)."""
        self.keys = ()
        for g in self.groups:
            g.search.reset()
        for slot in self.slots:
            slot.key = (-1, -1, -1, -1)

    # ------------------------------------------------------------------ per step
    def sync(self, caller: Slot | None = None) -> None:
        """Bring masks and effective weights up to date with scores and weights.

        With ``scope="layer"`` a layer's mask depends only on its own scores, so the check
        made for each forward call looks at the calling slot only.
        """
        if caller is not None and self.scope == "layer" and caller.current_key() == caller.key:
            return
        keys = tuple(slot.current_key() for slot in self.slots)
        if keys == self.keys:
            return
        with torch.no_grad():
            base, item = self.s.data_ptr(), self.s.element_size()
            if any(k[1] != base + slot.offset * item for k, slot in zip(keys, self.slots)):
                self.link()
                keys = tuple(slot.current_key() for slot in self.slots)
            rewrite = [slot for slot, k in zip(self.slots, keys) if k[2:] != slot.key[2:]]
            flips = len(rewrite) < len(self.slots)  # (first sync: everything is rewritten)
            cand = None
            if any(k[:2] != slot.key[:2] for slot, k in zip(self.slots, keys)):
                cand = self._select(flips)
            else:  # only weights changed: same flags, rewrite those effective weights
                self.fresh.copy_(self.mask)
                self.sign_fresh.copy_(self.sign)
                self.cand.zero_()
            if flips:
                self._apply(sparse_nonzero(self.cand) if cand is None else cand)
            for slot in rewrite:
                seg, w = slot.segment, slot.layer.weight.detach().reshape(-1)
                torch.mul(w, self.fresh[seg], out=self.weff[seg])
                torch.where(self.sign_fresh[seg], -w, w, out=self.wsign[seg])
            a = self.arenas
            a["mask"], a["fresh"] = a["fresh"], a["mask"]
            a["sign"], a["sign_fresh"] = a["sign_fresh"], a["sign"]
            for slot, k in zip(self.slots, keys):
                slot.key = k
        self.keys = keys

    def _select(self, flips: bool = True) -> torch.Tensor | None:
        """Canonical top-k of |s| per group into ``fresh``; flip candidates into ``cand``
        (skipped with ``flips=False``, when every effective weight is rewritten anyway).

        Returns the candidate positions, or None if a retry changed ``cand`` since.
        """
        for g in self.groups:
            if g.search.t is None:
                g.search.estimate(self._sample(g))
            g.search.start()
        bounds = [g.search.bounds() for g in self.groups]
        c_hi = self._sweep(self.sweep_plan, bounds, with_sign=True, flips=flips)
        if flips:
            cand = sparse_nonzero(self.cand)
            band_pos = cand[self.band[cand]]
        else:
            cand, band_pos = None, sparse_nonzero(self.band)
        gid = self._group_of(band_pos)
        counts = torch.bincount(gid, minlength=len(self.groups)).tolist()
        settled = []
        for gi, g in enumerate(self.groups):
            if g.search.check(c_hi[gi], counts[gi]):
                settled.append(gi)
                continue
            retry = self._retry(gi, c_hi, flips)  # rare: the threshold left the band
            cand = None  # the retry re-flagged this group's candidates
            keep = gid != gi
            band_pos, gid = band_pos[keep], gid[keep]
            if retry is not None:
                settled.append(gi)
                band_pos, order = torch.sort(torch.cat([band_pos, retry]))
                gid = torch.cat([gid, torch.full_like(retry, gi)])[order]
        self._settle(band_pos, gid, c_hi, settled)
        return cand

    def _sample(self, g: Group) -> torch.Tensor:
        n = sum(self.slots[i].n for i in g.slots)
        stride = max(1, n // 65536)
        return torch.cat([self.s[self.slots[i].segment][::stride].abs() for i in g.slots])

    def _plan(self, runs: list[Run]) -> list[tuple[int, int, int]]:
        """The sweep's work list: ``(start, stop, group)`` chunks, and ``(start, stop, -1)``
        items that combine the flags of the chunks just before them (`_flag`).

        The order is *backwards* through the arenas: the optimizer updates the scores
        front to back, so the last ones it wrote are still in cache when the sweep starts.
        Flags are combined every ~BLOCK elements, while they are still in cache; a block
        may span segments that touch (the gaps are padding, whose flags are all False).
        """
        step = self.work[0].numel()
        items: list[tuple[int, int, int]] = []
        block: list[int] | None = None  # [start, stop) of flags not yet combined
        for run in reversed(runs):
            for start in reversed(range(run.start, run.stop, step)):
                stop = min(run.stop, start + step)
                items.append((start, stop, run.group))
                end = _padded(stop)
                if block is not None and block[0] != end:  # not adjacent: flush
                    items.append((block[0], block[1], -1))
                    block = None
                block = [start, end] if block is None else [start, block[1]]
                if block[1] - block[0] >= BLOCK:
                    items.append((block[0], block[1], -1))
                    block = None
        if block is not None:
            items.append((block[0], block[1], -1))
        return items

    def _sweep(self, plan: list[tuple[int, int, int]], bounds, with_sign: bool,
               flips: bool) -> list[int]:
        """Streaming pass along ``plan`` (see `_plan`); per-group counts of |s| > hi.

        Writes ``fresh = |s| >= lo``, optionally ``sign_fresh = s < 0``, the band flags
        ``lo <= |s| <= hi`` and (with ``flips``) the candidates, see `_flag`.
        """
        a_buf, f_buf = self.work
        s, band, fresh, sign = self.s, self.band, self.fresh, self.sign_fresh
        words = {name: self.arenas[name].view(torch.int64)
                 for name in ("fresh", "band", "mask", "sign", "sign_fresh", "cand")}
        sums, owners = [], []
        for start, stop, group in plan:
            if group < 0:
                self._flag(words, start, stop, flips, signs=with_sign and flips)
                continue
            lo, hi = bounds[group]
            part = s[start:stop]
            a, f = a_buf[: stop - start], f_buf[: stop - start]
            torch.abs(part, out=a)
            torch.gt(a, hi, out=f)
            sums.append(f.sum())
            owners.append(group)
            band[start:stop].copy_(f)  # |s| > hi for now; made the band in _flag
            torch.ge(a, lo, out=a)  # |s| is not needed any more: reuse its buffer
            fresh[start:stop].copy_(a)
            if with_sign:
                torch.lt(part, 0, out=f)
                sign[start:stop].copy_(f)
        # chunk counts are exact in float32 (chunk < 2**24); add them up in float64
        above = torch.zeros(len(self.groups), dtype=torch.float64)
        above.index_add_(0, torch.tensor(owners), torch.stack(sums).double().cpu())
        return [int(c) for c in above.tolist()]

    def _flag(self, words: dict[str, torch.Tensor], start: int, stop: int, flips: bool,
              signs: bool) -> None:
        """On ``[start, stop)``, 8 flags per int64 word (in place where possible):

        * ``band = fresh ^ (|s| > hi)``, that is ``lo <= |s| <= hi``;
        * with ``signs``: ``sign ^= sign_fresh``, so ``sign`` holds the sign *flips* (the old
          sign is ``sign_fresh ^ sign`` from then on, see `_apply`);
        * with ``flips``: ``cand = (fresh ^ mask) | band | sign flips``.
        """
        span = slice(start // 8, stop // 8)
        w = {name: word[span] for name, word in words.items()}
        w["band"].bitwise_xor_(w["fresh"])
        if signs:
            w["sign"].bitwise_xor_(w["sign_fresh"])
        if flips:
            torch.bitwise_xor(w["fresh"], w["mask"], out=w["cand"])
            w["cand"].bitwise_or_(w["band"]).bitwise_or_(w["sign"])

    def _group_of(self, pos: torch.Tensor) -> torch.Tensor:
        slot = torch.searchsorted(self.slot_starts, pos, right=True) - 1
        return self.slot_group[slot]

    def _retry(self, gi: int, c_hi: list[int], flips: bool) -> torch.Tensor | None:
        """Move group ``gi``'s band until it holds the k-th value; its band positions."""
        g = self.groups[gi]
        plan = self._plan([Run(self.slots[i].offset, self.slots[i].offset + self.slots[i].n, gi)
                           for i in g.slots])
        bounds: list = [None] * len(self.groups)
        first, last = self.slots[g.slots[0]], self.slots[g.slots[-1]]
        seg = slice(first.offset, last.offset + _padded(last.n))
        while not g.search.exhausted:
            bounds[gi] = g.search.bounds()
            c_hi[gi] = self._sweep(plan, bounds, with_sign=False, flips=flips)[gi]
            pos = sparse_nonzero(self.band[seg]) + seg.start
            if g.search.check(c_hi[gi], pos.numel()):
                return pos
        # did not converge (values jumped far): one-shot exact selection
        g.search.stats.fallbacks += 1
        values = [self.s[self.slots[i].segment].abs() for i in g.slots]
        for i, keep in zip(g.slots, exact_topk_masks(values, g.k)):
            self.fresh[self.slots[i].segment].copy_(keep)
        self.cand[seg] = True  # every position of the group may have flipped
        g.search.reset()
        return None

    def _settle(self, pos, gid, c_hi: list[int], settled: list[int]) -> None:
        """Keep the ``k - c_hi`` largest band members of each group, ties by position."""
        if not settled:
            return
        values = self.s[pos].abs()
        counts = torch.bincount(gid, minlength=len(self.groups))
        if pos.numel() > SORT_LIMIT:  # wide bands (values moved a lot): linear selection
            self._settle_by_kthvalue(pos, gid, values, c_hi, settled, counts)
            return
        device = pos.device
        room = torch.tensor([g.k - c for g, c in zip(self.groups, c_hi)], device=device)
        # sort by group, then value descending, then position (stable sorts, ``pos``
        # ascending): the canonical order of exact_topk_masks
        order = torch.argsort(values, descending=True, stable=True)
        order = order[torch.argsort(gid[order], stable=True)]
        g_sorted = gid[order]
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(order.numel(), device=device) - starts[g_sorted]
        self.fresh[pos[order[rank >= room[g_sorted]]]] = False
        chosen = torch.tensor(settled, device=device)
        last_kept = values[order[starts[chosen] + room[chosen] - 1]].tolist()
        for gi, t, band in zip(settled, last_kept, counts[chosen].tolist()):
            self.groups[gi].search.adapt(t, band)

    def _settle_by_kthvalue(self, pos, gid, values, c_hi, settled, counts) -> None:
        order = torch.argsort(gid, stable=True)  # positions stay ascending within a group
        starts = (torch.cumsum(counts, 0) - counts).tolist()
        for gi in settled:
            mine = order[starts[gi] : starts[gi] + int(counts[gi])]
            p, v = pos[mine], values[mine]
            keep = self.groups[gi].k - c_hi[gi]
            t = v.kthvalue(v.numel() - keep + 1).values
            drop = v < t
            tied = torch.nonzero(v == t).squeeze(1)
            quota = keep - (v.numel() - int(drop.sum()) - tied.numel())
            drop[tied[quota:]] = True  # surplus ties: the later positions go
            self.fresh[p[drop]] = False
            self.groups[gi].search.adapt(float(t), int(counts[gi]))

    def _apply(self, idx: torch.Tensor) -> None:
        """Rewrite ``weff``/``wsign`` at the candidate positions ``idx``."""
        if idx.numel() == 0:
            return
        old = self.wsign[idx]
        was_negative = self.sign_fresh[idx] ^ self.sign[idx]  # ``sign`` holds flips now
        w = torch.where(was_negative, -old, old)  # W from W ⊙ sign(s) and the old sign
        self.weff[idx] = w * self.fresh[idx]
        self.wsign[idx] = torch.where(self.sign_fresh[idx], -w, w)
