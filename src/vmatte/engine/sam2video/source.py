"""SAM 2 as a mask source of the frame loop: each frame's tracked mask of every target, and the
decoder's own confidence (predicted IoU, object score) put on the frame.

The one place where SAM 2 turns frames into masks: ``--model sam2-matte`` (its guided edge reads
them), ``--tracker sam2`` (RVM's gate, VideoMaMa), ``vmatte track`` (written as PNGs) and the web
app's tracking preview all take them from :class:`Sam2Masks`, and the one place where a keyframe
(a mask, or clicks given to SAM 2 as its own point prompts: a ``clicks`` TargetMask) becomes SAM 2
prompts (:func:`prompt_frame`).
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import VmatteError
from ...io.masks import TargetMask, add_keyframe, fit_to_frame, schedule_ids
from ...io.pixels import to_uint8
from ...io.source import Frame
from ...models.sam2 import Sam2Video
from .tracker import Prompt, Sam2VideoTracker


def prompt_frame(tracker: Sam2VideoTracker, frame: int, mask: TargetMask, shape: tuple[int, int]) -> None:
    """Every target of the keyframe ``mask`` prompted at ``frame``: by its clicks when the TargetMask
    holds ``points`` (SAM 2's own point prompts), else by its mask fitted to the frame ``shape``."""
    points = mask.points or {}
    for i, m in fit_to_frame(mask, shape).targets.items():
        if i in points:
            xy, labels = points[i]
            tracker.add_prompt(frame, i, Prompt(points=xy, labels=labels))
        else:
            tracker.add_prompt(frame, i, Prompt(mask=m > 127))


def start_tracker(
    model: Sam2Video, schedule: dict, shape: tuple[int, int], device, num_frames: int | None = None
) -> Sam2VideoTracker:
    """A tracker for a video of ``shape`` with every keyframe of ``schedule`` (``{frame: TargetMask}``)
    prompted at its frame. ``num_frames``: the video's length when known and wanted (the official
    predictor caps its object pointers on videos under 16 frames; None: a stream of unknown length)."""
    tracker = Sam2VideoTracker(model, shape, num_frames=num_frames, device=device)
    for frame, mask in sorted(schedule.items()):
        prompt_frame(tracker, frame, mask, shape)
    return tracker


def rgb8(image: np.ndarray) -> np.ndarray:
    """SAM 2 sees 8 bits: a >8-bit source is shifted down."""
    return np.ascontiguousarray(to_uint8(image))


class Sam2Masks:
    """SAM 2's tracked mask of each target of ``schedule`` (``{frame: TargetMask}``), frame by frame
    (:class:`~vmatte.engine.matter.MaskSource`): ``frame.masks`` is ``{id: 0/1 float32}`` (a target not
    started yet: empty), ``frame.mask_scores`` ``{id: {"iou", "object_score"}}``. Resumable: its state
    is the tracker's memory bank (bounded: :mod:`.memory`); the prompts come from the schedule."""

    resumable = True

    def __init__(
        self, model: Sam2Video, schedule: dict, device, description: str, num_frames: int | None = None
    ) -> None:
        self.model, self.device, self.num_frames = model, torch.device(device), num_frames
        self.description = description
        self.label = f"the tracker ({description})"
        self.set_schedule(schedule)

    def set_schedule(self, schedule: dict) -> None:
        """New targets (takes effect at the next video)."""
        self.schedule = dict(sorted(schedule.items()))
        self.ids = schedule_ids(self.schedule)
        self.reset()

    def reset(self) -> None:
        self._tracker: Sam2VideoTracker | None = None

    def add_keyframe(self, index: int, mask) -> None:
        """A correction at frame ``index`` (not tracked yet) of targets this run has, e.g. after
        :meth:`load_state`: prompted there as a keyframe of the schedule would have been."""
        at = self._tracker.next_frame if self._tracker is not None else 0
        self.schedule = add_keyframe(self.schedule, index, mask, self.ids, at)
        if self._tracker is not None:
            prompt_frame(self._tracker, int(index), self.schedule[int(index)], self._tracker.video_size)

    def _start(self, shape: tuple[int, int]) -> Sam2VideoTracker:
        return start_tracker(self.model, self.schedule, shape, self.device, self.num_frames)

    def annotate(self, frame: Frame) -> Frame:
        rgb = rgb8(frame.image)
        if self._tracker is None:
            self._tracker = self._start(rgb.shape[:2])
        if frame.index != self._tracker.next_frame:  # frames are tracked in order, from a reset or a saved state
            raise VmatteError(
                f"internal: frame {frame.index} reached the SAM 2 tracker, which is at frame {self._tracker.next_frame}"
            )
        r = self._tracker.step(rgb)
        hard = (r.logits > 0).cpu().numpy().astype(np.float32)
        frame.masks = {i: hard[k] for k, i in enumerate(r.obj_ids)}
        iou, score = r.ious.tolist(), r.object_scores.tolist()
        frame.mask_scores = {i: {"iou": iou[k], "object_score": score[k]} for k, i in enumerate(r.obj_ids)}
        return frame

    def finish(self, frames: int | None = None) -> None:
        pass

    def state(self):
        if self._tracker is None:
            return {"shape": None}
        return {"shape": list(self._tracker.video_size), "tracker": self._tracker.state()}

    def load_state(self, state) -> None:
        if state["shape"] is not None:  # the prompts come from the schedule, the memory from the state
            self._tracker = self._start(tuple(state["shape"]))
            self._tracker.load_state(state["tracker"])
