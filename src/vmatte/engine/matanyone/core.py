"""The MatAnyone streaming engine: one :meth:`InferenceCore.step` per frame, state kept here.

Step order follows the official ``InferenceCore.step`` (see the fixture README's call
sequence): encode the frame; if a mask is given, it *is* the output and is written to memory;
otherwise read memory, fuse, decode; then encode the prediction, into memory on memory frames
(with a sensory deep update) or only to refresh the previous-frame value on the others.

``first_frame_pred=True`` is the warm-up ("recurrent refinement") step: the frame counter goes
back to 0, the previous value is used as the readout without key matching, and afterwards the
working and object memory are replaced by this prediction (the sensory memory is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...models.matanyone import MatAnyone
from .memory import MemoryManager, region_adaptive_fusion
from .preprocess import Pad, pad_divide_by, unpad
from .settings import MatAnyoneSettings


@dataclass
class StepOutput:
    alpha: Tensor  # [1,H,W] in [0,1], cropped back to the input size
    logits: Tensor | None  # [1,H,W] matting logits before the clamp (None for a mask step)
    change_prob: Tensor | None  # [1,h,w] at stride 16 (normal frames only)


class InferenceCore:
    def __init__(self, network: MatAnyone, settings: MatAnyoneSettings | None = None) -> None:
        self.network = network.eval()
        self.settings = settings or MatAnyoneSettings()
        self.clear()

    def clear(self) -> None:
        s = self.settings
        self.memory = MemoryManager(s.max_mem_frames, s.top_k)
        self.curr_ti = -1
        self.last_mem_ti = 0
        self.last_alpha: Tensor | None = None  # previous alpha, padded, [1,1,H,W]
        self.last_value: Tensor | None = None  # mask-encoder value of the previous alpha
        self.last_pix_feat: Tensor | None = None
        self.pad: Pad = (0, 0, 0, 0)

    @torch.inference_mode()
    def step(self, image: Tensor, mask: Tensor | None = None, first_frame_pred: bool = False) -> StepOutput:
        """``image`` [3,H,W] in [0,1]; ``mask`` [1,H,W] in [0,1] (the target on this frame)."""
        s = self.settings
        net = self.network
        self.curr_ti += 1
        image, self.pad = pad_divide_by(image, 16)
        image = image.unsqueeze(0)

        gap = self.curr_ti - self.last_mem_ti
        is_mem_frame = gap >= s.mem_every or mask is not None
        need_segment = mask is None
        update_sensory = 1 <= gap <= s.stagger_updates
        if first_frame_pred:
            self.curr_ti = self.last_mem_ti = 0
            is_mem_frame = need_segment = update_sensory = True

        ms_feat, pix_feat = net.encode_image(image)
        key, shrinkage, selection = net.transform_key(ms_feat[0])

        logits = change_prob = None
        if need_segment:
            alpha, logits, change_prob = self._segment(key, selection, pix_feat, ms_feat, update_sensory)
        if mask is not None:
            alpha, _ = pad_divide_by(mask, 16)
            alpha = alpha.unsqueeze(0)
        self.last_alpha = alpha

        if is_mem_frame:
            if first_frame_pred:
                self.memory.clear()
            self._add_memory(image, pix_feat, alpha, key, shrinkage)
        else:
            self.last_value, _, _ = net.encode_mask(image, pix_feat, self.memory.sensory, alpha, deep_update=False)
        self.last_pix_feat = pix_feat

        crop = lambda t: None if t is None else unpad(t, self.pad)[0]  # noqa: E731
        return StepOutput(crop(alpha), crop(logits), None if change_prob is None else change_prob[0])

    def _segment(self, key: Tensor, selection: Tensor, pix_feat: Tensor, ms_feat: list[Tensor],
                 update_sensory: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        if not self.memory.engaged:
            raise RuntimeError("MatAnyone needs a first-frame mask before it can predict")
        net = self.network
        change_prob = None
        if self.curr_ti == 0:
            readout = self.last_value  # first-frame prediction: no key matching
        else:
            readout = self.memory.read_pixel(key, selection)
            change_prob = net.change_probability(self.last_pix_feat, pix_feat, self.last_alpha,
                                                 readout - self.last_value)
            readout = region_adaptive_fusion(readout, self.last_value, change_prob)
        fused = net.pixel_fusion(pix_feat, readout, self.memory.sensory, self.last_alpha)
        memory_readout = net.readout_query(fused, self.memory.obj_memory)
        self.debug_memory_readout = memory_readout
        sensory, logits, alpha = net.segment(ms_feat, memory_readout, self.memory.sensory, update_sensory)
        self.memory.sensory = sensory
        return alpha, logits, change_prob

    def _add_memory(self, image: Tensor, pix_feat: Tensor, alpha: Tensor, key: Tensor, shrinkage: Tensor) -> None:
        self.memory.initialize_sensory_if_needed(key)
        value, sensory, obj_summary = self.network.encode_mask(image, pix_feat, self.memory.sensory, alpha, True)
        self.memory.add_memory(key, shrinkage, value, obj_summary)
        self.memory.sensory = sensory
        self.last_mem_ti = self.curr_ti
        self.last_value = value
