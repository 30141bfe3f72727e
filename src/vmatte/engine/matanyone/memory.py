"""MatAnyone's memory: working memory read by top-k attention, plus object and sensory memory.

- Working memory (XMem/Cutie): keys, shrinkages and values of memory frames. The first frame
  inserted after a clear is permanent; the rest form a FIFO of ``max_mem_frames - 1`` frames.
- Object memory: the running sum of the memory frames' object summaries ([sum, area] pairs).
- Sensory memory: a per-target stride-16 hidden state, updated every frame by the decoder and
  on memory frames by the mask encoder. It survives the clears of the first-frame warm-up.

Single target, batch 1: every tensor keeps its batch axis, there is no object axis.
"""

from __future__ import annotations

import math

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
        self.perm: list[tuple[Tensor, Tensor, Tensor]] = []  # (key, shrinkage, value)
        self.fifo: list[tuple[Tensor, Tensor, Tensor]] = []
        self.obj_memory: Tensor | None = None

    @property
    def engaged(self) -> bool:
        return bool(self.perm or self.fifo)

    @property
    def num_frames(self) -> int:
        return len(self.perm) + len(self.fifo)

    def initialize_sensory_if_needed(self, key: Tensor, sensory_dim: int = 256) -> None:
        if self.sensory is None:
            b, _, h, w = key.shape
            self.sensory = torch.zeros((b, sensory_dim, h, w), device=key.device, dtype=key.dtype)

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
        """Top-k attention readout of the working-memory values -> [B, CV, h, w]."""
        entries = self.perm + self.fifo
        mem_key = torch.cat([e[0] for e in entries], 2)
        mem_shrinkage = torch.cat([e[1] for e in entries], 2)
        mem_value = torch.cat([e[2] for e in entries], 2)
        similarity = get_similarity(mem_key, mem_shrinkage, query_key, query_selection)
        affinity = top_k_softmax(similarity, self.top_k)
        b, _, h, w = query_key.shape
        return (mem_value @ affinity).view(b, -1, h, w)
