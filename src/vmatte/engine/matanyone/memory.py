"""MatAnyone's memory: working memory read by top-k attention, plus object and sensory memory.

- Working memory (XMem/Cutie): keys, shrinkages and values of memory frames. The first frame
  inserted after a clear is permanent; the rest form a FIFO of ``max_mem_frames - 1`` frames.
- Object memory: the running sum of the memory frames' object summaries ([sum, area] pairs).
- Sensory memory: a per-target stride-16 hidden state, updated every frame by the decoder and
  on memory frames by the mask encoder. It survives the clears of the first-frame warm-up.

Several targets at once (a "group", see :mod:`vmatte.engine.matanyone.core`): the batch axis
is the target axis. Keys and shrinkages depend only on the frame, and every target of a group
has the same memory frames, so they are stored once ([1, ...]) and the top-k affinity is
computed once per frame; values, object memory and sensory memory are per target ([T, ...]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def get_similarity(mem_key: Tensor, mem_shrinkage: Tensor, query_key: Tensor, query_selection: Tensor) -> Tensor:
    """XMem's anisotropic L2 similarity, scaled by the memory shrinkage. -> [B, N, HW].

    -||k_m - k_q||^2 weighted per channel by the query selection e_q, expanded as
    -e.k_m^2 + 2 k_m.(e k_q) - e.k_q^2 so it is two matrix products.
    """
    ck = mem_key.shape[1]
    mk = mem_key.flatten(2).transpose(1, 2)  # [B, N, CK]
    ms = mem_shrinkage.flatten(1).unsqueeze(2)  # [B, N, 1]
    qk = query_key.flatten(2)
    qe = query_selection.flatten(2)
    a_sq = mk.pow(2) @ qe
    two_ab = 2 * (mk @ (qk * qe))
    b_sq = (qe * qk.pow(2)).sum(1, keepdim=True)
    return (-a_sq + two_ab - b_sq) * ms / math.sqrt(ck)


def top_k_softmax(similarity: Tensor, top_k: int) -> Tensor:
    """Softmax over the ``top_k`` largest similarities of each query token, zero elsewhere.

    As upstream, the exponentials are taken without subtracting the maximum.
    """
    values, indices = torch.topk(similarity, k=min(top_k, similarity.shape[1]), dim=1)
    x_exp = values.exp()
    x_exp = x_exp / torch.sum(x_exp, dim=1, keepdim=True)
    return torch.zeros_like(similarity).scatter_(1, indices, x_exp)


def region_adaptive_fusion(readout: Tensor, last_value: Tensor, change_prob: Tensor) -> Tensor:
    """R' = p * R + (1 - p) * V_prev: trust the memory where the target changed (MatAnyone 3.2)."""
    return readout * change_prob + last_value * (1 - change_prob)


class MemoryManager:
    def __init__(self, max_mem_frames: int = 5, top_k: int = 30) -> None:
        self.max_mem_frames = max_mem_frames
        self.top_k = top_k
        self.sensory: Tensor | None = None
        self.clear()

    def clear(self) -> None:
        """Drop working and object memory (the sensory memory stays)."""
        self.perm: list[tuple[Tensor, Tensor, Tensor]] = []  # (key [1], shrinkage [1], value [T])
        self.fifo: list[tuple[Tensor, Tensor, Tensor]] = []
        self.obj_memory: Tensor | None = None

    def state(self) -> dict:
        return {
            "perm": [list(e) for e in self.perm],
            "fifo": [list(e) for e in self.fifo],
            "obj_memory": self.obj_memory,
            "sensory": self.sensory,
        }

    def load_state(self, state: dict) -> None:
        self.perm = [tuple(e) for e in state["perm"]]
        self.fifo = [tuple(e) for e in state["fifo"]]
        self.obj_memory, self.sensory = state["obj_memory"], state["sensory"]

    @property
    def engaged(self) -> bool:
        return bool(self.perm or self.fifo)

    @property
    def num_frames(self) -> int:
        return len(self.perm) + len(self.fifo)

    def initialize_sensory_if_needed(self, key: Tensor, targets: int = 1, sensory_dim: int = 256) -> None:
        if self.sensory is None:
            h, w = key.shape[-2:]
            self.sensory = torch.zeros((targets, sensory_dim, h, w), device=key.device, dtype=key.dtype)

    def add_memory(self, key: Tensor, shrinkage: Tensor, value: Tensor, obj_summary: Tensor) -> None:
        entry = (key.flatten(2), shrinkage.flatten(2), value.flatten(2))
        if not self.engaged:
            self.perm.append(entry)  # the first frame after a clear is permanent
        else:
            self.fifo.append(entry)
            if len(self.perm) + len(self.fifo) > self.max_mem_frames:
                self.fifo.pop(0)
        self.obj_memory = obj_summary if self.obj_memory is None else self.obj_memory + obj_summary

    def read_pixel(self, query_key: Tensor, query_selection: Tensor) -> Tensor:
        """Top-k attention readout of the working-memory values -> [T, CV, h, w].

        ``query_key`` is the frame's ([1, ...]); the one affinity is applied to every target's
        values (a broadcast matrix product), as each target alone would compute the same one.
        """
        entries = self.perm + self.fifo
        mem_key = torch.cat([e[0] for e in entries], 2)
        mem_shrinkage = torch.cat([e[1] for e in entries], 2)
        mem_value = torch.cat([e[2] for e in entries], 2)
        similarity = get_similarity(mem_key, mem_shrinkage, query_key, query_selection)
        affinity = top_k_softmax(similarity, self.top_k)
        h, w = query_key.shape[-2:]
        return (mem_value @ affinity).view(mem_value.shape[0], -1, h, w)

    def select(self, index: Tensor) -> MemoryManager:
        """A memory holding only the targets ``index`` (shared keys kept, not copied)."""
        out = MemoryManager(self.max_mem_frames, self.top_k)
        out.perm = [(k, s, v[index]) for k, s, v in self.perm]
        out.fifo = [(k, s, v[index]) for k, s, v in self.fifo]
        out.obj_memory = None if self.obj_memory is None else self.obj_memory[index]
        out.sensory = None if self.sensory is None else self.sensory[index]
        return out

    @staticmethod
    def concat(parts: Sequence[MemoryManager]) -> MemoryManager:
        """The targets of ``parts`` in one memory; the parts must hold the same memory frames
        (equal keys), which is what makes the shared affinity exact for every target."""
        first = parts[0]
        layout = (len(first.perm), len(first.fifo))
        for m in parts[1:]:
            if (len(m.perm), len(m.fifo)) != layout or not all(
                torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
                for a, b in zip(first.perm + first.fifo, m.perm + m.fifo)
            ):
                raise ValueError("only memories with the same memory frames can be concatenated")

        def cat(tensors: list[Tensor | None]) -> Tensor | None:
            if all(t is None for t in tensors):
                return None
            if any(t is None for t in tensors):  # a fresh memory beside a used one: no common state
                raise ValueError("cannot concatenate a memory without sensory state to one with it")
            return torch.cat(tensors, 0)

        out = MemoryManager(first.max_mem_frames, first.top_k)
        out.perm = [(k, s, torch.cat([m.perm[j][2] for m in parts], 0)) for j, (k, s, _) in enumerate(first.perm)]
        out.fifo = [(k, s, torch.cat([m.fifo[j][2] for m in parts], 0)) for j, (k, s, _) in enumerate(first.fifo)]
        out.obj_memory = cat([m.obj_memory for m in parts])
        out.sensory = cat([m.sensory for m in parts])
        return out
