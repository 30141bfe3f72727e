"""Streaming SAM 2 / 2.1 video tracker: prompts at any frame, several objects, one forward pass.

Split as in Cutie's inference code: the network (:class:`vmatte.models.sam2.Sam2Video`, one step
for one object), the per-object memory bank (:mod:`.memory`: what is kept and for how long) and
this inference core, which feeds frames in order and decides per object and frame what to run.

Per frame ``t`` the image is encoded once and shared by every object; then for each object:

* not started and not prompted at ``t``: no mask yet (logits ``NO_OBJ_SCORE``): objects may enter
  at any frame;
* first prompt at ``t`` (clicks, a box, or a mask): decoded without memory (the frame's features
  plus ``no_mem_embed``); a mask prompt is taken as the answer. The frame becomes a
  *conditioning* frame: its memory (of the hard mask, as the user saw it) is kept for good;
* prompt at ``t`` for an object already tracked (a correction / keyframe): the frame is tracked
  first, then the clicks are decoded *with* memory and with the tracked logits as a mask
  prompt, exactly as the official ``add_new_points_or_box`` does on a tracked frame; the result
  becomes a conditioning frame (``add_all_frames_to_correct_as_cond=True``: with the official
  default the correction would be an ordinary memory and re-propagating would recompute it);
* otherwise tracked: memory attention over the bank, three candidate masks, the best by predicted
  IoU; its memory joins the recent window.

Several prompts for one object on one frame are applied in turn, each refining the previous
result (the official ``add_new_points_or_box`` called again on that frame).

The official ``SAM2VideoPredictor`` loads the whole video first (every frame resized to S x S
float) and keeps every frame's memory; it can propagate backwards too (``reverse=True``) and, on
a re-propagation, lets every frame attend to the memories of *all* prompted frames, later ones
included. That needs the whole video and is not done here: frames flow forward once, a frame
only sees prompts at or before it, and memory stays bounded (:mod:`.memory`). Given the same
prompts in time order, the masks are the official forward propagation's (tested to 1e-4).
Not done either: ``fill_hole_area`` (a CUDA-kernel post-process, which the official package
itself skips without its extension).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...models.sam2 import NO_OBJ_SCORE, FrameFeatures, Sam2Video, SamOutput
from ..segment.sam2 import sam2_input
from .memory import MemoryEntry, ObjectMemory


@dataclass
class Prompt:
    """Clicks (``points`` N x 2 (x, y) in video pixels, ``labels`` 1 on / 0 off the object), a ``box``
    (x0, y0, x1, y1, video pixels) with or without clicks, or a ``mask`` (H x W, > 0 is the object)."""

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.mask is not None:
            if self.points is not None or self.box is not None:
                raise ValueError("a SAM 2 prompt is a mask, or clicks and/or a box, not both")
            return
        if self.points is None and self.box is None:
            raise ValueError("a SAM 2 prompt needs clicks, a box or a mask")
        if self.points is not None:
            self.points = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
            self.labels = np.asarray(self.labels if self.labels is not None else np.ones(len(self.points)))
            if self.labels.reshape(-1).shape[0] != len(self.points):
                raise ValueError(f"{len(self.points)} clicks but {self.labels.size} labels")


@dataclass
class FrameResult:
    index: int
    obj_ids: list  # in the order objects were first prompted
    logits: Tensor  # [n_obj, H, W] mask logits at the video's size (> 0: the object)
    object_scores: Tensor  # [n_obj] object-score logits (> 0: the object is in the frame; NaN: not started)
    ious: Tensor  # [n_obj] the decoder's predicted IoU of each mask (NaN: not started)


@dataclass
class _Object:
    memory: ObjectMemory
    prompts: dict[int, list[Prompt]] = field(default_factory=dict)
    started: bool = False


class Sam2VideoTracker:
    """Feed frames in order with :meth:`step`; add prompts for the current or any later frame first."""

    def __init__(
        self,
        model: Sam2Video,
        video_size: tuple[int, int],
        num_frames: int | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = model.config
        self.size = model.image_size
        self.video_size = video_size  # (H, W)
        # The official predictor caps the pointers at the video's length when it is under 16 frames
        # (and scales their distance code by it); unknown length = a long video.
        self.num_frames = num_frames
        self.max_ptrs = (
            min(num_frames, self.cfg.max_obj_ptrs_in_encoder) if num_frames else self.cfg.max_obj_ptrs_in_encoder
        )
        self.objects: dict[object, _Object] = {}
        self.next_frame = 0
        self._dtype = model.no_mem_embed.dtype
        self._mem_pos: Tensor | None = None

    # --- prompts -----------------------------------------------------------------------------------

    def add_prompt(self, frame: int, obj_id, prompt: Prompt) -> None:
        if frame < self.next_frame:
            raise ValueError(f"frame {frame} is already tracked (streaming: the next frame is {self.next_frame})")
        obj = self.objects.get(obj_id)
        if obj is None:
            cfg = self.cfg
            memory = ObjectMemory(
                cfg.num_maskmem,
                cfg.memory_temporal_stride_for_eval,
                cfg.max_cond_frames_in_attn,
                self.max_ptrs,
                cfg.only_obj_ptrs_in_the_past_for_eval,
                cfg.use_signed_tpos_enc_to_obj_ptrs,
            )
            obj = self.objects[obj_id] = _Object(memory)
        obj.prompts.setdefault(frame, []).append(prompt)

    # --- frames ------------------------------------------------------------------------------------

    def preprocess(self, rgb: np.ndarray) -> Tensor:
        return sam2_input(rgb, self.size, self.device).to(self._dtype)

    @torch.inference_mode()
    def step(self, rgb: np.ndarray) -> FrameResult:
        """Track the next frame (HxWx3 uint8 RGB at ``video_size``)."""
        if tuple(rgb.shape[:2]) != tuple(self.video_size):
            raise ValueError(
                f"frame of {rgb.shape[1]}x{rgb.shape[0]}, the tracker was made for "
                f"{self.video_size[1]}x{self.video_size[0]}"
            )
        return self.step_input(self.preprocess(rgb))

    @torch.inference_mode()
    def step_input(self, x: Tensor) -> FrameResult:
        """Track the next frame given as the network input ``[1, 3, S, S]`` (already normalised)."""
        t = self.next_frame
        frame = self.model.encode_frame(x.to(self.device, self._dtype))
        lows, scores, ious = [], [], []
        for obj in self.objects.values():
            out = self._object_step(t, frame, obj)
            if out is None:
                s4 = self.size // 4
                lows.append(torch.full((1, 1, s4, s4), NO_OBJ_SCORE, device=self.device))
                scores.append(torch.full((1, 1), float("nan"), device=self.device))
                ious.append(torch.full((1, 1), float("nan"), device=self.device))
            else:
                lows.append(out.low_res)
                scores.append(out.object_score.float())
                ious.append(out.iou.float())
            obj.memory.forget_before(t + 1)
        self.next_frame = t + 1
        h, w = self.video_size
        if not lows:
            none = torch.zeros(0, device=self.device)
            return FrameResult(t, [], torch.zeros(0, h, w, device=self.device), none, none)
        low = torch.cat(lows)
        logits = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        return FrameResult(t, list(self.objects), logits, torch.cat(scores)[:, 0], torch.cat(ious)[:, 0])

    def _object_step(self, t: int, frame: FrameFeatures, obj: _Object) -> SamOutput | None:
        prompts = obj.prompts.pop(t, [])
        if not obj.started and not prompts:
            return None
        if not prompts:
            out = self._track(t, frame, obj.memory)
            mem, self._mem_pos = self.model.encode_memory(frame, out.high_res, out.object_score, binarize=False)
            obj.memory.add(t, MemoryEntry(mem.to(torch.bfloat16), out.obj_ptr), conditioning=False)
            return out
        memory = None
        prev = None
        if obj.started:  # a correction: what tracking made of this frame is the decoder's mask prompt
            memory = self._memory(t, obj.memory)
            prev = self._track(t, frame, obj.memory, memory).low_res
        for prompt in prompts:
            out = self._prompted(frame, prompt, memory, prev)
            prev = out.low_res
        # the memory of a prompted frame: the hard mask, from the low-res logits as upstream
        high = F.interpolate(out.low_res, size=(self.size, self.size), mode="bilinear", align_corners=False)
        mem, self._mem_pos = self.model.encode_memory(frame, high, out.object_score, binarize=True)
        obj.memory.add(t, MemoryEntry(mem.to(torch.bfloat16), out.obj_ptr), conditioning=True)
        obj.started = True
        return out

    def _memory(self, t: int, memory: ObjectMemory) -> tuple[Tensor, Tensor, int]:
        spatial, pointers = memory.select(t, self.num_frames)
        # every memory's spatial encoding is the same (it depends on the map's size only)
        return self.model.memory_tokens([(tp, e.mem, self._mem_pos) for tp, e in spatial], pointers, self.max_ptrs)

    def _multimask(self, initial: bool, num_points: int) -> bool:
        cfg = self.cfg
        return (
            cfg.multimask_output_in_sam
            and (initial or cfg.multimask_output_for_tracking)
            and cfg.multimask_min_pt_num <= num_points <= cfg.multimask_max_pt_num
        )

    def _track(self, t: int, frame: FrameFeatures, memory: ObjectMemory, tokens=None) -> SamOutput:
        feat = self.model.condition(frame, tokens if tokens is not None else self._memory(t, memory))
        return self.model.sam_heads(feat, frame.high_res, multimask=self._multimask(False, 0))

    def _prompted(self, frame: FrameFeatures, prompt: Prompt, memory, prev: Tensor | None) -> SamOutput:
        s = self.size
        h, w = self.video_size
        if prompt.mask is not None:
            m = torch.as_tensor(np.asarray(prompt.mask) > 0, device=self.device)[None, None].float()
            if m.shape[-2:] != (s, s):  # as add_new_mask: resized, then thresholded at one half
                m = F.interpolate(m, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
                m = (m >= 0.5).float()
            return self.model.mask_as_output(frame, m)
        coords, labels = [], []
        if prompt.box is not None:  # two corners, labels 2 and 3, before any clicks (as SAM 2 was trained)
            coords.append(np.asarray(prompt.box, dtype=np.float32).reshape(2, 2))
            labels.append(np.array([2, 3]))
        if prompt.points is not None:
            coords.append(prompt.points)
            labels.append(np.asarray(prompt.labels).reshape(-1))
        c = torch.as_tensor(np.concatenate(coords), dtype=torch.float32, device=self.device)
        c = (c / torch.tensor([w, h], dtype=torch.float32, device=self.device) * s)[None]
        lab = torch.as_tensor(np.concatenate(labels).astype(np.int32), device=self.device)[None]
        feat = self.model.condition(frame, memory)
        mask_input = prev.clamp(-32.0, 32.0) if prev is not None else None
        return self.model.sam_heads(
            feat, frame.high_res, c, lab, mask_input, multimask=self._multimask(memory is None, lab.shape[1])
        )

    # --- saved state (a journaled run: --resume) ------------------------------------------------

    def state(self) -> dict:
        """What the next frame depends on, as plain data and tensors: the frame count, the memory
        position encoding and, per object, whether it started and its remembered frames (memory,
        pointer). Prompts are not saved: they are the caller's (re-added before :meth:`load_state`)."""
        return {
            "next_frame": self.next_frame,
            "mem_pos": self._mem_pos,
            "objects": {
                obj_id: {
                    "started": o.started,
                    "cond": {t: [e.mem, e.ptr] for t, e in o.memory.cond.items()},
                    "recent": {t: [e.mem, e.ptr] for t, e in o.memory.recent.items()},
                }
                for obj_id, o in self.objects.items()
            },
        }

    def load_state(self, state: dict) -> None:
        """Continue from ``state`` (of a tracker made the same way, its prompts already added):
        prompts of frames already tracked are dropped, every object's memory is put back."""
        self.next_frame = int(state["next_frame"])
        self._mem_pos = state["mem_pos"]
        for obj_id, saved in state["objects"].items():
            obj = self.objects.get(obj_id)
            if obj is None:
                raise ValueError(f"the saved state has object {obj_id!r}, this tracker was not prompted with it")
            obj.prompts = {f: p for f, p in obj.prompts.items() if f >= self.next_frame}
            obj.started = bool(saved["started"])
            obj.memory.cond = {int(t): MemoryEntry(m, p) for t, (m, p) in saved["cond"].items()}
            obj.memory.recent = {int(t): MemoryEntry(m, p) for t, (m, p) in saved["recent"].items()}

    def state_nbytes(self) -> int:
        """Bytes of tensors held across frames (memories and pointers of every object)."""
        return sum(o.memory.nbytes() for o in self.objects.values())
