"""Per-frame coarse masks (``--masks DIR``): one mask per frame, and RVM as a mask-to-matte model.

:class:`FrameMasks` reads a folder of masks named by frame number (as ``--masks-dir`` names
keyframes: the last run of digits is the number). The lowest number is the first frame, so
``00000.png`` and ``00001.png`` numberings both work; numbers must then be contiguous. A mask is any
image :func:`~vmatte.io.masks.read_mask` reads; every non-zero id of a label mask is the target,
a soft grey mask stays soft. A frame without a mask is a one-line error when it is reached (the
outputs are atomic, so nothing is left behind); masks left over at the end are a warning.

:class:`MaskGatedMatter` turns RVM (every person) into a mask-to-matte model: RVM's alpha is
multiplied by the frame's mask, dilated and feathered, so people outside the mask vanish while
RVM keeps its own edges (hair, motion blur) inside the dilated band. :func:`carried` is a mask's
core, which ``rvm-target --tracker sam2`` also keeps opaque (:mod:`vmatte.engine.tracked`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..io.masks import FrameMasks
from .matter import IndexedWrapper

__all__ = ["FrameMasks", "GateSettings", "MaskGatedMatter", "gate", "load_gated"]


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


class MaskGatedMatter(IndexedWrapper):
    """A per-frame matter whose alpha is kept only where the frame's mask is."""

    def __init__(self, inner, masks: FrameMasks, settings: GateSettings = GateSettings(), description: str = ""):
        super().__init__(inner)
        self.masks = masks
        self.settings = settings
        self.description = description or f"{inner.description}, gated by per-frame masks"

    def step(self, image: np.ndarray, foreground: bool = True):
        m = self.masks.mask(self._index, image.shape[:2])  # a missing mask fails before the network runs
        fgr, alpha = self.inner.step(image, foreground)
        self._index += 1
        return fgr, alpha * gate(m, self.settings)


def load_gated(spec, options, note: str = "") -> MaskGatedMatter:
    """An RVM model of the registry fed one coarse mask per frame (``options.masks``): every person's
    alpha, kept inside each frame's mask. rvm-target has nothing to track here: plain RVM is gated."""
    from .rvm import load_rvm

    frame_masks = options.masks if hasattr(options.masks, "mask") else FrameMasks(options.masks)
    inner = load_rvm(spec, options.replace(masks=None, dilate=None))
    return MaskGatedMatter(
        inner,
        frame_masks,
        GateSettings(options.dilate),
        description=f"{inner.description}{note}; alpha kept inside the per-frame masks of "
        f"{frame_masks.folder} (dilated)",
    )
