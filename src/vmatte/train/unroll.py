"""A differentiable MatAnyone pass over a short clip, for training.

The same step order as the streaming engine (:mod:`vmatte.engine.matanyone.core`), with the
engine's own :class:`MemoryManager` holding the memory (its batch axis is the sample here, not
the target: every sample of a training batch has the same schedule, so the batched readout is
exact), but without ``inference_mode`` so gradients flow through memory reads and writes:

1. frame 0: encode the first-frame mask into memory; predict frame 0 from it (the warm-up
   step: readout = the mask's value, no key matching); then, as the official warm-up does,
   replace the working and object memory by the encoding of that prediction (sensory kept).
2. frames 1..T-1: top-k readout; change probability U_t from [previous pixel feature, pixel
   feature, previous alpha, readout - previous value]; region-adaptive fusion; pixel fusion,
   object transformer, decoder. Every ``mem_every`` frames the prediction is added to memory
   (with a sensory deep update); on the other frames it only refreshes the previous value.

Returns matting logits (the loss sees them unclamped: a clamp has no gradient outside [0, 1],
so a pixel predicted at -0.3 with truth 1 would never be corrected) and U_t per frame 1..T-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vmatte.engine.matanyone.memory import MemoryManager, region_adaptive_fusion
from vmatte.models.matanyone import MatAnyone


@dataclass
class UnrollOutput:
    logits: Tensor  # [B,T,1,H,W]
    change_prob: Tensor | None  # [B,T-1,1,H/16,W/16], None for T = 1


def unroll(
    net: MatAnyone, image: Tensor, mask0: Tensor, mem_every: int = 2, max_mem_frames: int = 5, top_k: int = 30
) -> UnrollOutput:
    """``image`` [B,T,3,H,W] in [0,1] (H, W multiples of 16); ``mask0`` [B,1,H,W] in [0,1]."""
    b, t = image.shape[:2]
    memory = MemoryManager(max_mem_frames, top_k)
    # The pixel encoder runs on all frames at once: it has no temporal state.
    ms_all, pix_all = net.encode_image(image.flatten(0, 1))
    keys, shrink_all, sel_all = net.transform_key(ms_all[0])

    def at(x: Tensor, i: int) -> Tensor:
        return x.unflatten(0, (b, t))[:, i]

    def add_memory(i: int, alpha: Tensor) -> Tensor:
        memory.initialize_sensory_if_needed(at(keys, i), b)
        value, memory.sensory, summary = net.encode_mask(image[:, i], at(pix_all, i), memory.sensory, alpha, True)
        memory.add_memory(at(keys, i), at(shrink_all, i), value, summary)
        return value

    def decode(i: int, readout: Tensor, last_alpha: Tensor, update_sensory: bool) -> Tensor:
        ms = [at(f, i) for f in ms_all]
        fused = net.pixel_fusion(at(pix_all, i), readout, memory.sensory, last_alpha)
        query = net.readout_query(fused, memory.obj_memory)
        memory.sensory, logits, _ = net.segment(ms, query, memory.sensory, update_sensory)
        return logits

    # Frame 0: mask in, prediction out, prediction into a fresh working memory.
    last_value = add_memory(0, mask0)
    logits0 = decode(0, last_value, mask0, True)
    alpha0 = logits0.clamp(0, 1)
    memory.clear()
    last_value = add_memory(0, alpha0)
    outputs, probs = [logits0], []
    last_alpha, last_pix, last_mem = alpha0, at(pix_all, 0), 0
    for i in range(1, t):
        readout = memory.read_pixel(at(keys, i), at(sel_all, i))
        prob = net.change_probability(last_pix, at(pix_all, i), last_alpha, readout - last_value)
        readout = region_adaptive_fusion(readout, last_value, prob)
        logits = decode(i, readout, last_alpha, True)
        alpha = logits.clamp(0, 1)
        if i - last_mem >= mem_every:
            last_value, last_mem = add_memory(i, alpha), i
        else:
            last_value, _, _ = net.encode_mask(image[:, i], at(pix_all, i), memory.sensory, alpha, False)
        outputs.append(logits)
        probs.append(prob)
        last_alpha, last_pix = alpha, at(pix_all, i)
    return UnrollOutput(torch.stack(outputs, 1), torch.stack(probs, 1) if probs else None)
