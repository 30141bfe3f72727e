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
from .mask_to_matte import GateSettings, carried, gate
from .matter import IndexedWrapper, State

__all__ = ["MatterMaskSource", "TrackedGate", "TrackedMasks", "TrackedMatter", "load_tracked"]


class MatterMaskSource:
    """A target matter (``rvm-target``) as a mask source: each target's alpha >= 1/2."""

    def __init__(self, matter) -> None:
        self.matter = matter
        self.description = matter.description

    def reset(self) -> None:
        self.matter.reset()

    def state(self) -> State:
        return self.matter.state()

    def load_state(self, state: State) -> None:
        self.matter.load_state(state)

    def masks(self, image: np.ndarray) -> dict[int, np.ndarray]:
        _, alphas = self.matter.step_all(image, False)
        return {i: (a >= 0.5).astype(np.float32) for i, a in alphas.items()}


class TrackedMasks:
    """What :class:`~vmatte.io.masks.FrameMasks` offers (``mask(index, shape)``, ``finish``), made by a
    tracker from the frames :meth:`feed` gives it (each frame is fed before its mask is read)."""

    def __init__(self, source) -> None:
        self.source = source  # reset(), state(), load_state() and masks(image) -> {id: HxW float32 in [0, 1]}
        self.folder = f"the tracker ({source.description})"  # what the gate's description names
        self._masks: dict[int, np.ndarray] = {}
        self._fed = 0

    def reset(self) -> None:
        self.source.reset()
        self._masks.clear()
        self._fed = 0

    def feed(self, frame: Frame) -> None:
        self._masks[self._fed] = self.source.masks(frame.image)
        self._fed += 1

    def targets(self, index: int, shape: tuple[int, int]) -> dict[int, np.ndarray]:
        """Each target's mask at frame ``index`` (read once: only the frames in flight are held)."""
        try:
            masks = self._masks.pop(index)
        except KeyError:
            raise VmatteError(f"internal: frame {index}'s mask was read before the tracker saw the frame") from None
        if any(m.shape != tuple(shape) for m in masks.values()):
            raise VmatteError(f"internal: the tracker's masks are not of the frame's size {shape}")
        return masks

    def mask(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """The union of the targets' masks (what a per-frame-mask model reads)."""
        return np.maximum.reduce(list(self.targets(index, shape).values()))

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

    def __init__(self, inner, masks: TrackedMasks, description: str) -> None:
        self.inner = inner
        self.masks = masks
        self.description = description
        self.targets = tuple(inner.targets)

    def reset(self, concurrent_io: bool = False) -> None:
        self.inner.reset(concurrent_io)
        self.masks.reset()

    def run(self, frames: Iterable[Frame], foreground: bool = True) -> Iterator[tuple[Frame, np.ndarray | None, dict]]:
        def fed() -> Iterator[Frame]:
            for frame in frames:
                self.masks.feed(frame)
                yield frame

        yield from self.inner.run(fed(), foreground)

    @property
    def resumable(self) -> bool:
        return bool(getattr(self.inner, "resumable", False))

    def state(self) -> State:
        return {"inner": self.inner.state(), "masks": self.masks.state()}

    def load_state(self, state: State) -> None:
        self.inner.load_state(state["inner"])
        self.masks.load_state(state["masks"])


class TrackedGate(IndexedWrapper):
    """RVM's alpha (every person) per target: kept inside that target's tracked mask, dilated and
    feathered (:func:`~vmatte.engine.mask_to_matte.gate`), with the mask's core kept opaque
    (:func:`~vmatte.engine.mask_to_matte.carried`: what the tracker says is the target where RVM sees
    no person, e.g. a held object). One RVM pass for every target."""

    def __init__(self, inner, masks: TrackedMasks, ids: tuple, settings: GateSettings, description: str) -> None:
        super().__init__(inner)
        self.masks, self.settings = masks, settings
        self.targets = tuple(ids)
        self.description = description

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, dict]:
        masks = self.masks.targets(self._index, image.shape[:2])
        fgr, alpha = self.inner.step(image, foreground)
        self._index += 1
        zero = np.zeros(image.shape[:2], np.float32)
        return fgr, {
            i: np.maximum(alpha * gate(m, self.settings), carried(m, self.settings))
            for i in self.targets
            for m in [masks.get(i, zero)]
        }


def load_tracked(spec, options, note: str = "", *, person_tracker):
    """The registry's route for a target given to a model that reads per-frame masks (see module);
    ``person_tracker(options)``: the registry's rvm-target, ``--tracker rvm``'s mask source."""
    from ..io.masks import mask_schedule, schedule_ids
    from .device import resolve_device
    from .options import FRAME_MASKS, TRACKER_SAM2, TRACKERS, tracker_kind

    schedule = mask_schedule(options.mask, options.keyframes)  # a bad mask fails before any weights load
    ids = schedule_ids(schedule)
    if spec.takes == FRAME_MASKS and len(ids) > 1:
        raise VmatteError(
            f"--model {spec.name} with a tracker mattes one target per run; the masks hold ids "
            f"{', '.join(map(str, ids))}: give a mask of one target (or run once per id)"
        )
    kind = tracker_kind(options.tracker)
    if kind == TRACKER_SAM2:
        from .sam2video import masks as sam2_masks
        from .sam2video.matter import Sam2MaskSource

        dev = resolve_device(options.device)
        checkpoint = options.tracker if options.tracker not in TRACKERS else "auto"
        model, description = sam2_masks.load_video_model(checkpoint, dev)
        source = Sam2MaskSource(model, schedule, dev, description)
    else:
        source = MatterMaskSource(person_tracker(options.replace(mask=None, keyframes=schedule)))
    masks = TrackedMasks(source)
    if spec.takes == FRAME_MASKS:
        inner = spec.load(options.replace(mask=None, keyframes=None, masks=masks, tracker=TRACKERS[0]), note)
    else:  # RVM gated per target by the tracker's masks
        from .rvm import load_rvm

        rvm = load_rvm(spec, options.replace(mask=None, keyframes=None, dilate=None, tracker=TRACKERS[0]))
        who = f"{len(ids)} targets (ids {', '.join(map(str, ids))})" if len(ids) > 1 else "1 target"
        inner = TrackedGate(
            rvm,
            masks,
            ids,
            GateSettings(options.dilate),
            f"{rvm.description}{note}, {who}: alpha kept inside the masks of {masks.folder} "
            f"(dilated), their core kept opaque",
        )
    return TrackedMatter(inner, masks, inner.description)
