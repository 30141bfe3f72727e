"""The mask sources a tracker gives (:class:`~vmatte.engine.matter.MaskSource`): what follows a target
of ``--mask`` / ``--click`` through the video for the models that read per-frame masks.

``--tracker`` (``MatterOptions.tracker``, the registry's docstring): ``sam2`` or a SAM 2 checkpoint
(name or file): the streaming SAM 2 tracker (:class:`~vmatte.engine.sam2video.source.Sam2Masks`);
``rvm``: rvm-target's alpha >= 1/2 (:class:`MatterMasks`: people only); ``auto``: SAM 2 when a
SAM 2 checkpoint is cached, else ``rvm``. The third source, a ``--masks`` folder, is
:class:`~vmatte.io.masks.FrameMasks`. :func:`load_tracked` is the registry's route for a target given
to a model that reads per-frame masks: the tracker becomes that model's mask source.
"""

from __future__ import annotations

import numpy as np

from ..errors import VmatteError
from ..io.source import Frame
from .mask_to_matte import GateSettings, MaskGate
from .matter import State


class MatterMasks:
    """A target matter (``rvm-target``) as a mask source: each target's alpha >= 1/2. Its state is the
    matter's; a correction at a later frame goes to the matter's keyframes (:meth:`add_keyframe`)."""

    def __init__(self, matter) -> None:
        self.matter = matter
        self.description = matter.description
        self.label = f"the tracker ({matter.description})"
        self.ids = tuple(matter.targets)

    @property
    def resumable(self) -> bool:
        return bool(getattr(self.matter, "resumable", False))

    def reset(self) -> None:
        self.matter.reset()

    def add_keyframe(self, index: int, mask) -> None:
        self.matter.add_keyframe(index, mask)

    def annotate(self, frame: Frame) -> Frame:
        _, alphas = self.matter.step_all(frame.image, False)
        frame.masks = {i: (a >= 0.5).astype(np.float32) for i, a in alphas.items()}
        return frame

    def finish(self, frames: int | None = None) -> None:
        pass

    def state(self) -> State:
        return self.matter.state()

    def load_state(self, state: State) -> None:
        self.matter.load_state(state)


def tracker_masks(options, schedule: dict, *, person_tracker):
    """The mask source ``options.tracker`` names, following the targets of ``schedule``
    (``{frame: TargetMask}``) on ``options.device``; ``person_tracker(options)``: the registry's
    rvm-target (``--tracker rvm``)."""
    from .device import resolve_device
    from .options import TRACKER_SAM2, TRACKERS, MatterOptions, tracker_kind

    if tracker_kind(options.tracker) == TRACKER_SAM2:
        from .sam2video import masks as sam2_masks
        from .sam2video.source import Sam2Masks

        dev = resolve_device(options.device)
        checkpoint = options.tracker if options.tracker not in TRACKERS else "auto"
        model, description = sam2_masks.load_video_model(checkpoint, dev)
        return Sam2Masks(model, schedule, dev, description)
    return MatterMasks(person_tracker(MatterOptions(device=options.device, keyframes=schedule)))


def load_tracked(spec, options, note: str = "", *, person_tracker):
    """The registry's route for a target given to a model that reads per-frame masks: the tracker of
    ``options.tracker`` is its mask source (:func:`tracker_masks`), run by
    the loop inside the frame loop, so nothing is written and memory stays bounded. A per-frame-mask
    model (VideoMaMa) reads the union of the masks (one target per run); RVM (``rvm-target --tracker
    sam2``) is gated per target, the tracker's core carried (SAM 2 says who, RVM draws the edge)."""
    from ..io.masks import mask_schedule, schedule_ids
    from .options import FRAME_MASKS, TRACKERS

    schedule = mask_schedule(options.mask, options.keyframes)  # a bad mask fails before any weights load
    ids = schedule_ids(schedule)
    if spec.takes == FRAME_MASKS and len(ids) > 1:
        raise VmatteError(
            f"--model {spec.name} with a tracker mattes one target per run; the masks hold ids "
            f"{', '.join(map(str, ids))}: give a mask of one target (or run once per id)"
        )
    source = tracker_masks(options, schedule, person_tracker=person_tracker)
    untracked = options.replace(mask=None, keyframes=None, tracker=TRACKERS[0])
    if spec.takes == FRAME_MASKS:
        return spec.load(untracked.replace(masks=source), note)
    from .rvm import load_rvm

    rvm = load_rvm(spec, untracked.replace(dilate=None))
    who = f"{len(ids)} targets (ids {', '.join(map(str, ids))})" if len(ids) > 1 else "1 target"
    return MaskGate(
        rvm,
        source,
        ids,
        GateSettings(options.dilate),
        carry=True,
        description=f"{rvm.description}{note}, {who}: alpha kept inside the masks of {source.label} "
        f"(dilated), their core kept opaque",
    )
