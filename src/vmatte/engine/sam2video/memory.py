"""Per-object memory bank of the streaming SAM 2 tracker: what is kept, what is forgotten.

SAM 2 reads, when it tracks frame ``t`` (``SAM2Base._prepare_memory_conditioned_features``):

* the memories of the object's *conditioning* frames (those that received clicks, a box or a
  mask), all of them (``max_cond_frames_in_attn = -1``) or the closest ones;
* the memories of the ``num_maskmem - 1`` (6) frames before ``t`` (every ``r``-th frame with
  ``memory_temporal_stride_for_eval = r``, always including ``t - 1``);
* the object pointers of the conditioning frames up to ``t`` and of the frames ``t - 1`` ...
  ``t - (max_ptrs - 1)`` (15).

The official predictor keeps every frame's memory for the whole video and looks these up by
index. Here a frame's spatial memory is dropped once it falls out of the recent window and its
pointer (a ``C``-vector) once it is older than the pointer window, so what is held is bounded by
the number of prompted frames plus a constant, whatever the video's length. Memories are held
in bfloat16, as upstream stores them; pointers in the compute precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class MemoryEntry:
    mem: Tensor | None  # [1, mem_dim, h, w] bfloat16; None once only the pointer is still needed
    ptr: Tensor  # [1, C]

    def nbytes(self) -> int:
        n = self.ptr.numel() * self.ptr.element_size()
        return n + (self.mem.numel() * self.mem.element_size() if self.mem is not None else 0)


def select_closest_cond(
    t: int, cond: dict[int, MemoryEntry], limit: int
) -> tuple[dict[int, MemoryEntry], dict[int, MemoryEntry]]:
    """(selected, unselected) prompted frames: all when ``limit`` is -1, else the closest one before
    ``t``, the closest at/after it, then the nearest others up to ``limit``."""
    if limit == -1 or len(cond) <= limit:
        return dict(cond), {}
    if limit < 2:
        raise ValueError("max_cond_frames_in_attn must be -1 or at least 2")
    chosen: dict[int, MemoryEntry] = {}
    before = max((s for s in cond if s < t), default=None)
    after = min((s for s in cond if s >= t), default=None)
    for s in (before, after):
        if s is not None:
            chosen[s] = cond[s]
    rest = sorted((s for s in cond if s not in chosen), key=lambda s: abs(s - t))[: limit - len(chosen)]
    chosen.update((s, cond[s]) for s in rest)
    return chosen, {s: e for s, e in cond.items() if s not in chosen}


@dataclass
class ObjectMemory:
    num_maskmem: int
    stride: int
    max_cond: int
    max_ptrs: int  # min(video length, max_obj_ptrs_in_encoder)
    only_past_ptrs: bool
    signed_ptr_distance: bool
    cond: dict[int, MemoryEntry] = field(default_factory=dict)
    recent: dict[int, MemoryEntry] = field(default_factory=dict)

    def recent_frame(self, t: int, t_rel: int) -> int:
        """The frame ``t_rel`` memory slots before ``t`` (every ``stride``-th frame, except the last)."""
        if t_rel == 1:
            return t - 1
        r = self.stride
        return ((t - 2) // r) * r - (t_rel - 2) * r

    def select(self, t: int, num_frames: int | None) -> tuple[list[tuple[int, MemoryEntry]], list[tuple[int, Tensor]]]:
        """(spatial memories with their t_pos, pointers with their frame distance) read at frame ``t``."""
        selected, unselected = select_closest_cond(t, self.cond, self.max_cond)
        spatial = [(0, e) for e in selected.values()]
        for t_pos in range(1, self.num_maskmem):
            s = self.recent_frame(t, self.num_maskmem - t_pos)
            e = self.recent.get(s, unselected.get(s))
            if e is not None and e.mem is not None:
                spatial.append((t_pos, e))
        ptr_cond = {s: e for s, e in selected.items() if s <= t} if self.only_past_ptrs else selected
        pointers = [((t - s) if self.signed_ptr_distance else abs(t - s), e.ptr) for s, e in ptr_cond.items()]
        for t_diff in range(1, self.max_ptrs):
            s = t - t_diff
            if s < 0 or (num_frames is not None and s >= num_frames):
                break
            e = self.recent.get(s, unselected.get(s))
            if e is not None:
                pointers.append((t_diff, e.ptr))
        return spatial, pointers

    def add(self, t: int, entry: MemoryEntry, conditioning: bool) -> None:
        if conditioning:
            self.cond[t] = entry
            self.recent.pop(t, None)
        else:
            self.recent[t] = entry

    def forget_before(self, t: int) -> None:
        """Drop what no frame from ``t`` on will read (the bound on memory)."""
        # the oldest recent frame read at t: ((t - 2) // r) * r - (num_maskmem - 3) * r >= this
        mem_from = t - 1 - self.stride * (self.num_maskmem - 2)
        ptr_from = t - (self.max_ptrs - 1)
        for s in list(self.recent):
            if s < ptr_from:
                del self.recent[s]
            elif s < mem_from and self.recent[s].mem is not None:
                self.recent[s] = MemoryEntry(None, self.recent[s].ptr)

    def nbytes(self) -> int:
        return sum(e.nbytes() for e in (*self.cond.values(), *self.recent.values()))
