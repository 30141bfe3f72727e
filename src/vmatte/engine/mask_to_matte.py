"""Per-frame coarse masks (``--masks DIR``): one mask per frame, and RVM as a mask-to-matte model.

:class:`FrameMasks` reads a folder of masks named by frame number (as ``--masks-dir`` names
keyframes: the last run of digits is the number). The lowest number is the first frame, so
``00000.png`` and ``00001.png`` numberings both work; numbers must then be contiguous. A mask is any
image :func:`~vmatte.io.masks.read_mask` reads; every non-zero id of a label mask is the target,
a soft grey mask stays soft. A frame without a mask is a one-line error when it is reached (the
outputs are atomic, so nothing is left behind); masks left over at the end are a warning.

:class:`MaskGate` turns RVM (every person) into a mask-to-matte model: RVM's alpha is
multiplied by the frame's mask, dilated and feathered, so people outside the mask vanish while
RVM keeps its own edges (hair, motion blur) inside the dilated band. The same gate serves
``rvm-target --tracker sam2`` (:func:`~vmatte.engine.mask_source.load_tracked`), one alpha per
target, where :func:`carried`, the mask's core, is also kept opaque. Either way the masks are the
frame's own (``frame.masks``): the run's mask source (the folder, or the tracker) puts them there in
the frame loop. :class:`MasksAsMattes` is the masks themselves as the mattes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError, VmatteError
from ..io.masks import FrameMasks
from ..io.source import Frame
from .matter import PerFrameMatter, State, frame_masks, to_float, union

__all__ = [
    "FrameMasks",
    "GateSettings",
    "MaskGate",
    "MasksAsMattes",
    "carried",
    "gate",
    "load_gated",
    "union",
]


@dataclass(frozen=True)
class GateSettings:
    dilate: int | None = None  # px the mask is grown by; None: 2 % of the frame's long side (at least 3 px)


def carried(mask: np.ndarray, settings: GateSettings) -> np.ndarray:
    """The mask's core: shrunk by half the gate's radius, then feathered over that half inwards, so it
    ends inside the mask and the target's own edge stays RVM's."""
    h, w = mask.shape
    r = settings.dilate if settings.dilate is not None else max(3, round(0.02 * max(h, w)))
    e = max(1, r // 2)
    core = cv2.erode((mask >= 0.5).astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * e + 1,) * 2))
    k = e | 1
    return cv2.GaussianBlur(core, (k, k), 0) if k > 1 else core


def gate(mask: np.ndarray, settings: GateSettings) -> np.ndarray:
    """The mask (HxW in [0, 1]) grown by ``dilate`` px and feathered over half that: 1 on the mask itself."""
    h, w = mask.shape
    r = settings.dilate if settings.dilate is not None else max(3, round(0.02 * max(h, w)))
    binary = (mask >= 0.5).astype(np.float32)
    if r <= 0:
        return binary
    if r > h + w:  # over the whole frame from any pixel: surely a typo (and a 2r+1 kernel would not fit in memory)
        raise InputError(
            f"--dilate {r} px is larger than the {w}x{h} frame; give at most {h + w} px "
            f"(about 2% of the frame, the default, is usual)"
        )
    grown = cv2.dilate(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    k = r | 1  # odd kernel about r px wide: the feather stays outside the original mask
    return np.minimum(cv2.GaussianBlur(grown, (k, k), 0) * 2.0, 1.0) if k > 1 else grown


class MaskGate(PerFrameMatter):
    """RVM (every person, ``inner``) kept inside each frame's masks (the one gate): ``targets`` (None,):
    the masks' union gates one alpha (``--masks DIR``); else one alpha per target id, gated by that
    target's mask, its core kept opaque when ``carry`` (a tracker's mask: what it says is the target
    where RVM sees no person, e.g. a held object). One RVM pass for every target. The masks come from
    ``mask_source`` (put on the frames by the loop); state is RVM's and the source's."""

    def __init__(self, inner, mask_source, targets: tuple, settings: GateSettings, carry: bool, description: str):
        self.inner, self.mask_source = inner, mask_source
        self.targets = tuple(targets)
        self.settings, self.carry = settings, carry
        self.description = description

    @property
    def resumable(self) -> bool:
        return bool(self.inner.resumable and self.mask_source.resumable)

    def reset(self, concurrent_io: bool = False) -> None:
        self.inner.reset(concurrent_io)
        self.mask_source.reset()

    def state(self) -> State:
        return {"inner": self.inner.state(), "masks": self.mask_source.state()}

    def load_state(self, state: State) -> None:
        self.inner.load_state(state["inner"])
        self.mask_source.load_state(state["masks"])

    def add_keyframe(self, index: int, mask) -> None:
        """A correction at a frame not run yet: the tracker's (a folder of masks takes none)."""
        if not hasattr(self.mask_source, "add_keyframe"):
            raise VmatteError(f"the masks of {self.mask_source.label} are fixed: a keyframe cannot change them")
        self.mask_source.add_keyframe(index, mask)

    def step_all(self, image: np.ndarray, foreground: bool = True):
        raise TypeError("the mask gate reads the masks of each frame: run it over frames (loop.results)")

    def run(self, frames: Iterable[Frame], foreground: bool = True) -> Iterator[tuple[Frame, np.ndarray | None, dict]]:
        step, settings = self.inner.step, self.settings
        for frame in frames:
            masks = frame_masks(frame)
            fgr, alpha = step(frame.image, foreground)
            if self.targets == (None,):
                yield frame, fgr, {None: alpha * gate(union(masks, alpha.shape), settings)}
                continue
            zero = np.zeros(alpha.shape, np.float32)
            alphas = {}
            for i in self.targets:
                m = masks.get(i, zero)
                alphas[i] = alpha * gate(m, settings)
                if self.carry:
                    alphas[i] = np.maximum(alphas[i], carried(m, settings))
            yield frame, fgr, alphas


class MasksAsMattes(PerFrameMatter):
    """The source's masks themselves as the mattes (``vmatte track``, the app's tracking preview):
    one per target id of ``targets``; the foreground is the frame."""

    def __init__(self, mask_source, targets: tuple) -> None:
        self.mask_source, self.targets = mask_source, tuple(targets)
        self.description = mask_source.description

    @property
    def resumable(self) -> bool:
        return bool(self.mask_source.resumable)

    def reset(self, concurrent_io: bool = False) -> None:
        self.mask_source.reset()

    def state(self) -> State:
        return self.mask_source.state()

    def load_state(self, state: State) -> None:
        self.mask_source.load_state(state)

    def run(self, frames: Iterable[Frame], foreground: bool = True) -> Iterator[tuple[Frame, np.ndarray | None, dict]]:
        for frame in frames:
            masks = frame_masks(frame)
            zero = np.zeros(frame.image.shape[:2], np.float32)
            yield frame, to_float(frame.image) if foreground else None, {i: masks.get(i, zero) for i in self.targets}


def load_gated(spec, options, note: str = "") -> MaskGate:
    """An RVM model of the registry fed one coarse mask per frame (``options.masks``: a folder, or a
    mask source): every person's alpha, kept inside each frame's mask. rvm-target has nothing to track
    here: plain RVM is gated."""
    from .rvm import load_rvm

    source = options.masks if hasattr(options.masks, "annotate") else FrameMasks(options.masks)
    inner = load_rvm(spec, options.replace(masks=None, dilate=None))
    return MaskGate(
        inner,
        source,
        (None,),
        GateSettings(options.dilate),
        carry=False,
        description=f"{inner.description}{note}; alpha kept inside the per-frame masks of {source.label} (dilated)",
    )
