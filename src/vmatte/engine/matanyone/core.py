"""The MatAnyone streaming engine: one :meth:`InferenceCore.step` per frame, state kept here.

Step order follows the official ``InferenceCore.step`` (see the fixture README's call
sequence): encode the frame; if a mask is given, it *is* the output and is written to memory;
otherwise read memory, fuse, decode; then encode the prediction, into memory on memory frames
(with a sensory deep update) or only to refresh the previous-frame value on the others.

``first_frame_pred=True`` is the warm-up ("recurrent refinement") step: the frame counter goes
back to 0, the previous value is used as the readout without key matching, and afterwards the
working and object memory are replaced by this prediction (the sensory memory is kept).

Frames are zero-padded to a multiple of 16 (outputs cropped back); with ``max_internal_size``
they are first scaled down bilinearly (as the official core does for its GUI) and the alpha is
brought back to full resolution by a fast guided filter on the full-resolution frame (logits:
bilinear); not covered by the numeric fixture, which runs at full resolution.

One core can track several targets at once (a *group*, ``targets=T``): the batch axis of every
per-target tensor is the target. The frame is encoded once ([1, ...]); the mask encoder, the
memory readout (one top-k affinity for all, see :mod:`.memory`), the change-probability head,
fusion, object transformer and decoder run as one batched call over the T targets, the shared
frame features broadcast against them. This is exact (up to float rounding of batched kernels)
only because every target of a group has the same memory frames and the same step schedule:
they got their masks at the same frame. :meth:`select` and :meth:`concat` split and join groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ...models.matanyone import MatAnyone
from .memory import MemoryManager, region_adaptive_fusion
from .preprocess import Pad, pad_divide_by, unpad
from .settings import MatAnyoneSettings
from .upsample import grey, guided_upsample


@dataclass
class StepOutput:
    alpha: Tensor  # [T,H,W] in [0,1], cropped (and resized) back to the input size
    logits: Tensor | None  # [T,H,W] matting logits before the clamp (None for a mask step)
    change_prob: Tensor | None  # [T,h,w] at stride 16 of the padded internal frame (normal frames only)


class InferenceCore:
    """Streaming MatAnyone inference for ``targets`` targets of one frame stream (default 1).

    ``trace``: set it to a dict to have each step record its stage tensors there (batch axis
    removed, so the first target's, overwritten every step): f16, pix_feat, key, shrinkage,
    selection, mem_val_diff, memory_readout, msk_value, obj_summary, sensory_after,
    obj_memory_after, alpha_out. Named as in the fixture's intermediates, for stage-by-stage
    debugging.
    """

    def __init__(self, network: MatAnyone, settings: MatAnyoneSettings | None = None, targets: int = 1) -> None:
        if targets < 1:
            raise ValueError(f"a core tracks at least one target, got {targets}")
        self.network = network.eval()
        self.settings = settings or MatAnyoneSettings()
        self.targets = targets
        self.trace: dict[str, Tensor] | None = None
        self.clear()

    @property
    def device(self) -> torch.device:
        return self.network.pixel_mean.device

    def _record(self, **tensors: Tensor) -> None:
        if self.trace is not None:
            self.trace.update({k: v[0].detach() for k, v in tensors.items()})

    def clear(self) -> None:
        s = self.settings
        self.memory = MemoryManager(s.max_mem_frames, s.top_k)
        self.curr_ti = -1
        self.last_mem_ti = 0
        self.last_alpha: Tensor | None = None  # previous alpha, padded, [T,1,H,W]
        self.last_value: Tensor | None = None  # mask-encoder value of the previous alpha [T,...]
        self.last_pix_feat: Tensor | None = None  # the frame's, [1,...]
        self.pad: Pad = (0, 0, 0, 0)

    def state(self) -> dict:
        """What the next step depends on besides the network and the frame (for journaled runs)."""
        return {
            "targets": self.targets,
            "curr_ti": self.curr_ti,
            "last_mem_ti": self.last_mem_ti,
            "last_alpha": self.last_alpha,
            "last_value": self.last_value,
            "last_pix_feat": self.last_pix_feat,
            "pad": list(self.pad),
            "memory": self.memory.state(),
        }

    def load_state(self, state: dict) -> None:
        self.targets = int(state["targets"])
        self.curr_ti, self.last_mem_ti = int(state["curr_ti"]), int(state["last_mem_ti"])
        self.last_alpha, self.last_value = state["last_alpha"], state["last_value"]
        self.last_pix_feat = state["last_pix_feat"]
        self.pad = tuple(state["pad"])
        self.memory.load_state(state["memory"])

    @torch.inference_mode()
    def step(self, image: Tensor, mask: Tensor | None = None, first_frame_pred: bool = False) -> StepOutput:
        """``image`` [3,H,W] in [0,1]; ``mask`` [T,H,W] in [0,1] (each target on this frame)."""
        s = self.settings
        net = self.network
        if self.trace is not None:
            self.trace.clear()
        self.curr_ti += 1
        image = image.to(self.device, torch.float32)
        if mask is not None:
            if mask.shape[0] != self.targets:
                raise ValueError(f"this core tracks {self.targets} target(s), got {mask.shape[0]} masks")
            mask = mask.to(self.device, torch.float32)
        out_size = image.shape[-2:]
        internal = self._internal_size(*out_size)
        full_image = image
        if internal is not None:  # bilinear, as upstream (the mask too: it is a soft map here)
            image = F.interpolate(image[None], size=internal, mode="bilinear", align_corners=False)[0]
            small_image = image
            if mask is not None:
                mask = F.interpolate(mask[None], size=internal, mode="bilinear", align_corners=False)[0]
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
        self._record(f16=ms_feat[0], pix_feat=pix_feat, key=key, shrinkage=shrinkage, selection=selection)

        logits = change_prob = None
        if need_segment:
            alpha, logits, change_prob = self._segment(key, selection, pix_feat, ms_feat, update_sensory)
        if mask is not None:
            alpha, _ = pad_divide_by(mask, 16)
            alpha = alpha.unsqueeze(1)  # [T,1,H,W]: the target is the batch axis
        self.last_alpha = alpha

        if is_mem_frame:
            if first_frame_pred:
                self.memory.clear()
            self._add_memory(image, pix_feat, alpha, key, shrinkage)
        else:
            # not a memory frame: only the value is kept (the summary only for a trace)
            self.last_value, _, obj_summary = net.encode_mask(
                self._per_target(image),
                pix_feat,
                self.memory.sensory,
                alpha,
                deep_update=False,
                summarize=self.trace is not None,
            )
            if obj_summary is not None:
                self._record(msk_value=self.last_value, obj_summary=obj_summary)
        self.last_pix_feat = pix_feat
        self._record(
            sensory_after=self.memory.sensory,
            obj_memory_after=self.memory.obj_memory,
            alpha_out=unpad(alpha, self.pad)[0],
        )

        def restore(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            t = unpad(t, self.pad)
            if internal is not None:
                t = F.interpolate(t, size=out_size, mode="bilinear", align_corners=False)
            return t[:, 0]

        def restore_alpha(t: Tensor) -> Tensor:
            t = unpad(t, self.pad)
            if internal is not None:  # guided by the full-resolution frame, not plain bilinear
                t = guided_upsample(t, grey(small_image[None]), grey(full_image[None]))
            return t[:, 0]

        return StepOutput(restore_alpha(alpha), restore(logits), None if change_prob is None else change_prob[:, 0])

    def _per_target(self, t: Tensor) -> Tensor:
        """A frame tensor [1,...] as T views, for layers that concatenate it with per-target ones."""
        return t.expand(self.targets, *t.shape[1:])

    def _internal_size(self, h: int, w: int) -> tuple[int, int] | None:
        """The downscaled (h, w) when ``max_internal_size`` asks for one, else None."""
        limit = self.settings.max_internal_size
        if limit <= 0 or min(h, w) <= limit:
            return None
        short = min(h, w)
        return int(h / short * limit), int(w / short * limit)

    def _segment(
        self, key: Tensor, selection: Tensor, pix_feat: Tensor, ms_feat: list[Tensor], update_sensory: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        if not self.memory.engaged:
            raise RuntimeError("MatAnyone needs a first-frame mask before it can predict")
        net = self.network
        change_prob = None
        if self.curr_ti == 0:
            readout = self.last_value  # first-frame prediction: no key matching
        else:
            readout = self.memory.read_pixel(key, selection)
            value_diff = readout - self.last_value
            change_prob = net.change_probability(
                self._per_target(self.last_pix_feat), self._per_target(pix_feat), self.last_alpha, value_diff
            )
            self._record(mem_val_diff=value_diff)
            readout = region_adaptive_fusion(readout, self.last_value, change_prob)
        fused = net.pixel_fusion(pix_feat, readout, self.memory.sensory, self.last_alpha)
        memory_readout = net.readout_query(fused, self.memory.obj_memory)
        self._record(memory_readout=memory_readout)
        sensory, logits, alpha = net.segment(ms_feat, memory_readout, self.memory.sensory, update_sensory)
        self.memory.sensory = sensory
        return alpha, logits, change_prob

    def _add_memory(self, image: Tensor, pix_feat: Tensor, alpha: Tensor, key: Tensor, shrinkage: Tensor) -> None:
        self.memory.initialize_sensory_if_needed(key, self.targets)
        value, sensory, obj_summary = self.network.encode_mask(
            self._per_target(image), pix_feat, self.memory.sensory, alpha, True
        )
        self.memory.add_memory(key, shrinkage, value, obj_summary)
        self._record(msk_value=value, obj_summary=obj_summary)
        self.memory.sensory = sensory
        self.last_mem_ti = self.curr_ti
        self.last_value = value

    def select(self, index: Sequence[int]) -> InferenceCore:
        """A core for the targets ``index`` of this one, in that order, in the same state."""
        idx = torch.as_tensor(list(index), dtype=torch.long, device=self.device)
        out = InferenceCore(self.network, self.settings, len(idx))
        out.memory = self.memory.select(idx)
        out.curr_ti, out.last_mem_ti, out.pad = self.curr_ti, self.last_mem_ti, self.pad
        out.last_alpha = None if self.last_alpha is None else self.last_alpha[idx]
        out.last_value = None if self.last_value is None else self.last_value[idx]
        out.last_pix_feat = self.last_pix_feat
        return out

    @staticmethod
    def concat(cores: Sequence[InferenceCore]) -> InferenceCore:
        """One core for the targets of ``cores`` (in order). Exact only for cores on the same
        schedule: same memory frames (checked) and the same frames since the last memory frame
        (checked). Cores whose working memory is empty may differ (their next step must be a
        mask step, which makes a memory frame whatever the schedule)."""
        first = cores[0]
        if len(cores) == 1:
            return first
        engaged = [c.memory.engaged for c in cores]
        if any(engaged):
            gap = first.curr_ti - first.last_mem_ti
            if not all(engaged) or any(c.curr_ti - c.last_mem_ti != gap for c in cores):
                raise ValueError("only cores on the same memory schedule can be concatenated")
        out = InferenceCore(first.network, first.settings, sum(c.targets for c in cores))
        out.memory = MemoryManager.concat([c.memory for c in cores])
        out.curr_ti, out.last_mem_ti, out.pad = first.curr_ti, first.last_mem_ti, first.pad
        out.last_pix_feat = first.last_pix_feat

        def cat(name: str) -> Tensor | None:
            parts = [getattr(c, name) for c in cores]
            return None if any(p is None for p in parts) else torch.cat(parts, 0)

        out.last_alpha, out.last_value = cat("last_alpha"), cat("last_value")
        return out
