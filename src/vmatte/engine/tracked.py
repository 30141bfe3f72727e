"""A target followed by a tracker, handed to a per-frame-mask model as one mask per frame.

``--model videomama --mask M`` (or ``--click``): VideoMaMa is defined on one coarse mask per frame,
and its authors make them with SAM 2. Here the tracker runs *inside* the frame loop: each frame is
tracked just before the model reads its mask (:class:`TrackedMatter` feeds the frames through
:class:`TrackedMasks`, which stands where a ``--masks`` folder would), so nothing is written to
disk and the tracker's memory stays bounded (:mod:`vmatte.engine.sam2video.memory`). The run is
resumable when the model is (its state and the tracker's are saved together).

``rvm-target --tracker sam2`` goes the same way into ``--masks``' path for RVM: RVM's alpha
(every person, its own edges) kept inside SAM 2's dilated mask of the target.

Trackers (``MatterOptions.tracker``, the registry's docstring): ``sam2`` or a SAM 2 checkpoint
(name or file), ``rvm`` (``rvm-target``'s alpha >= 0.5: people only), ``auto`` (SAM 2 when a SAM 2
checkpoint is cached, else ``rvm``). One target per run: the tracker's mask of one id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..errors import VmatteError
from ..io.reader import Frame
from .matter import State

__all__ = ["MatterMaskSource", "TrackedMasks", "TrackedMatter", "load_tracked", "tracker_kind"]


class MatterMaskSource:
    """A target matter (``rvm-target``) as a mask source: its alpha >= 0.5 (every target's union)."""

    def __init__(self, matter) -> None:
        self.matter = matter
        self.description = matter.description

    def reset(self) -> None:
        self.matter.reset()

    def state(self) -> State:
        return self.matter.state()

    def load_state(self, state: State) -> None:
        self.matter.load_state(state)

    def mask(self, image: np.ndarray) -> np.ndarray:
        _, alphas = self.matter.step_all(image, False)
        return (np.maximum.reduce(list(alphas.values())) >= 0.5).astype(np.float32)


class TrackedMasks:
    """What :class:`~vmatte.io.masks.FrameMasks` offers (``mask(index, shape)``, ``finish``), made by a
    tracker from the frames :meth:`feed` gives it (each frame is fed before its mask is read)."""

    def __init__(self, source) -> None:
        self.source = source  # reset() and mask(image) -> HxW float32 in [0, 1]
        self.folder = f"the tracker ({source.description})"  # what the gate's description names
        self._masks: dict[int, np.ndarray] = {}
        self._fed = 0

    def reset(self) -> None:
        self.source.reset()
        self._masks.clear()
        self._fed = 0

    def feed(self, frame: Frame) -> None:
        self._masks[self._fed] = self.source.mask(frame.image)
        self._fed += 1

    def mask(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        try:
            m = self._masks.pop(index)  # read once: only the frames in flight are held
        except KeyError:
            raise VmatteError(f"internal: frame {index}'s mask was read before the tracker saw the frame") from None
        if m.shape != tuple(shape):
            raise VmatteError(f"internal: the tracker's mask is {m.shape}, the frame {shape}")
        return m

    def finish(self, frames: int) -> None:
        pass

    def state(self) -> State:
        return {"fed": self._fed, "masks": dict(self._masks), "source": self.source.state()}

    def load_state(self, state: State) -> None:
        self._fed = int(state["fed"])
        self._masks = {int(k): v for k, v in state["masks"].items()}
        self.source.load_state(state["source"])

    def __str__(self) -> str:
        return f"per-frame masks from {self.folder}"


class TrackedMatter:
    """``inner`` (a model reading :class:`TrackedMasks`) with the tracker fed the same frames first.
    Resumable when the inner model is (RVM gated by the masks; VideoMaMa is not): the state is the
    inner model's and the tracker's."""

    targets = (None,)

    def __init__(self, inner, masks: TrackedMasks, description: str) -> None:
        self.inner = inner
        self.masks = masks
        self.description = description

    def reset(self, concurrent_io: bool = False) -> None:
        self.inner.reset(concurrent_io)
        self.masks.reset()

    def run(self, frames: Iterable[Frame], foreground: bool = True) -> Iterator[tuple[Frame, np.ndarray | None, dict]]:
        def fed() -> Iterator[Frame]:
            for frame in frames:
                self.masks.feed(frame)
                yield frame

        for frame, fgr, alphas in self.inner.run(fed(), foreground):
            yield frame, fgr, {None: next(iter(alphas.values()))}

    @property
    def resumable(self) -> bool:
        return bool(getattr(self.inner, "resumable", False))

    def state(self) -> State:
        return {"inner": self.inner.state(), "masks": self.masks.state()}

    def load_state(self, state: State) -> None:
        self.inner.load_state(state["inner"])
        self.masks.load_state(state["masks"])


def tracker_kind(tracker: str) -> str:
    """``sam2`` or ``rvm`` (the registry's TRACKER_*) for ``--tracker`` (``auto``: SAM 2 when a SAM 2
    checkpoint is cached)."""
    from .registry import AUTO, TRACKER_RVM, TRACKER_SAM2

    if tracker == AUTO:
        from ..weights import cached

        return TRACKER_SAM2 if cached(TRACKER_SAM2) else TRACKER_RVM
    return TRACKER_RVM if tracker == TRACKER_RVM else TRACKER_SAM2


def load_tracked(spec, options, note: str = ""):
    """The registry's route for a target given to a model that reads per-frame masks (see module)."""
    from ..io.masks import mask_schedule, schedule_ids
    from .device import resolve_device
    from .registry import TRACKER_SAM2, TRACKERS, load_person_tracker

    schedule = mask_schedule(options.mask, options.keyframes)  # a bad mask fails before any weights load
    ids = schedule_ids(schedule)
    if len(ids) > 1:
        raise VmatteError(f"--model {spec.name} with a tracker mattes one target per run; the masks hold ids "
                          f"{', '.join(map(str, ids))}: give a mask of one target (or run once per id)")
    kind = tracker_kind(options.tracker)
    if kind == TRACKER_SAM2:
        from .sam2video import masks as sam2_masks
        from .sam2video.matter import Sam2MaskSource

        dev = resolve_device(options.device)
        checkpoint = options.tracker if options.tracker not in TRACKERS else "auto"
        model, description = sam2_masks.load_video_model(checkpoint, dev)
        source = Sam2MaskSource(model, schedule, dev, description)
    else:
        source = MatterMaskSource(load_person_tracker(options.replace(mask=None, keyframes=schedule)))
    masks = TrackedMasks(source)
    inner = spec.load(options.replace(mask=None, keyframes=None, masks=masks, tracker=TRACKERS[0]), note)
    return TrackedMatter(inner, masks, inner.description)
