"""The target's appearance memory: what each target looked like, read by top-k attention.

Keys are RVM's own LR-ASPP features (128 channels at stride 16 of its internal frame, already
computed for the matte, so memory reads add no second backbone), L2-normalised. Values are the
per-label probabilities at those tokens (label 0 = not a target, 1..K = the targets). As in
XMem/Cutie/MatAnyone, frames with a given mask are permanent and the rest form a FIFO working
memory; a query token reads the softmax of its ``top_k`` most similar memory tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


class AppearanceMemory:
    def __init__(self, max_frames: int = 8, top_k: int = 20, temperature: float = 0.05) -> None:
        self.max_frames = max_frames
        self.top_k = top_k
        self.temperature = temperature
        self.clear()

    def clear(self) -> None:
        self._permanent: list[tuple[Tensor, Tensor]] = []
        self._working: list[tuple[Tensor, Tensor]] = []

    def state(self) -> dict:
        return {"permanent": [list(e) for e in self._permanent], "working": [list(e) for e in self._working]}

    def load_state(self, state: dict) -> None:
        self._permanent = [tuple(e) for e in state["permanent"]]
        self._working = [tuple(e) for e in state["working"]]

    def __len__(self) -> int:
        return len(self._permanent) + len(self._working)

    @staticmethod
    def key(features: Tensor) -> Tensor:
        """[C, h, w] features -> [C, h*w] unit keys."""
        return F.normalize(features.float().flatten(1), dim=0)

    def add(self, key: Tensor, values: Tensor, permanent: bool = False) -> None:
        """``key`` [C, N], ``values`` [L, N] label probabilities at the same tokens."""
        if permanent:
            self._permanent.append((key, values))
        else:
            self._working.append((key, values))
            if len(self._working) > self.max_frames:
                self._working.pop(0)

    def readout(self, key: Tensor, labels: int, permanent_only: bool = False) -> Tensor:
        """Label probabilities [L, N] for the query tokens ``key`` [C, N]. ``permanent_only``:
        read the given masks only (the working memory of a lost target says "not here")."""
        entries = self._permanent + ([] if permanent_only else self._working)
        mem_key = torch.cat([k for k, _ in entries], 1)
        # Labels added after a memory frame (a target first seen later) read 0 there.
        mem_val = torch.cat([F.pad(v, (0, 0, 0, labels - v.shape[0])) for _, v in entries], 1)
        similarity = (key.T @ mem_key) / self.temperature  # [N, M]
        top, index = similarity.topk(min(self.top_k, similarity.shape[1]), dim=1)
        weights = top.softmax(dim=1)  # [N, k]
        return (mem_val[:, index] * weights).sum(-1)  # [L, N]
