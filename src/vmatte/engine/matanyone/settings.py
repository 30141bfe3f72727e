"""Inference settings for MatAnyone, named as in the official eval config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MatAnyoneSettings:
    mem_every: int = 5  # a frame k becomes a memory frame when k - last memory frame >= mem_every
    max_mem_frames: int = 5  # working memory: the permanent first frame + a FIFO of the rest
    top_k: int = 30  # softmax over the top-k most similar memory tokens only
    stagger_updates: int = 5  # the decoder updates the sensory memory when 1 <= gap <= this
    warmup_frames: int = 10  # the paper's recurrent refinement: extra predictions of frame 0
    r_erode: int = 10  # first-frame mask: elliptical erode radius (kernel size, 0 = off)
    r_dilate: int = 10  # first-frame mask: elliptical dilate (applied before the erode)
    max_internal_size: int = -1  # > 0: the network sees frames whose short side is at most this

    def __post_init__(self) -> None:
        if self.mem_every < 1 or self.max_mem_frames < 1 or self.top_k < 1:
            raise ValueError("mem_every, max_mem_frames and top_k must be >= 1")
        if self.warmup_frames < 0 or self.r_erode < 0 or self.r_dilate < 0:
            raise ValueError("warmup_frames, r_erode and r_dilate must be >= 0")
