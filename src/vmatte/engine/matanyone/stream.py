"""Run MatAnyone over a stream of frames: the official call sequence, one alpha per frame out.

The first frame is processed ``1 + warmup_frames`` times (the paper's recurrent refinement):
its mask is encoded, then frame 0 is predicted from memory and the memory replaced by that
prediction, ``warmup_frames + 1`` times; only the last prediction is returned. Every later frame
is one normal step. Frames are consumed lazily, so memory use does not grow with the video.

:func:`start` and :func:`reinitialise` take one mask, or a list of masks for a core that tracks
several targets (one per target, in the core's target order).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from .core import InferenceCore, StepOutput
from .preprocess import image_to_tensor, mask_to_tensor, prepare_mask


def first_frame_mask(mask: np.ndarray, shape: tuple[int, int], r_erode: int, r_dilate: int) -> np.ndarray:
    """The mask (HxW, 0..255, or bool) cleaned up as upstream, at the frame size ``shape``.

    A mask of another size (e.g. 1920x1080 for a 1920x1088 video) is resized with nearest
    neighbour instead of failing.
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.dtype == bool:
        m = m.astype(np.uint8) * 255
    if m.shape != tuple(shape):
        m = cv2.resize(m.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return prepare_mask(m, r_erode, r_dilate)


def _mask_tensor(core: InferenceCore, frame: np.ndarray, mask: np.ndarray | Sequence[np.ndarray]) -> Tensor:
    """The cleaned-up mask(s) as [T,H,W] in [0,1]: a list holds one mask per target."""
    s = core.settings
    masks = [mask] if isinstance(mask, np.ndarray) else list(mask)
    return torch.cat(
        [mask_to_tensor(first_frame_mask(m, frame.shape[:2], s.r_erode, s.r_dilate), core.device) for m in masks], 0
    )


def start(core: InferenceCore, frame: np.ndarray, mask: np.ndarray | Sequence[np.ndarray]) -> StepOutput:
    """Clear ``core`` and run the first frame: mask step, then ``warmup_frames + 1`` predictions
    of frame 0. Returns the last one (the first frame's output)."""
    s = core.settings
    core.clear()
    image = image_to_tensor(frame, core.device)
    core.step(image, _mask_tensor(core, frame, mask))
    out = core.step(image, first_frame_pred=True)
    for _ in range(s.warmup_frames):
        out = core.step(image, first_frame_pred=True)
    return out


def reinitialise(core: InferenceCore, frame: np.ndarray, mask: np.ndarray | Sequence[np.ndarray]) -> StepOutput:
    """A keyframe mask for a target ``core`` already tracks: the mask corrects it from here on.

    As the official ``step(image, mask)``: the working and object memory are dropped (the sensory
    memory is kept), the cleaned-up mask is encoded with a deep update as the new permanent
    memory frame, and the mask itself is this frame's output. No warm-up: the output is the mask.
    """
    image = image_to_tensor(frame, core.device)
    target = _mask_tensor(core, frame, mask)
    core.memory.clear()
    return core.step(image, target)


def iter_alpha(core: InferenceCore, frames: Iterable[np.ndarray], mask: np.ndarray) -> Iterator[StepOutput]:
    """Yield one :class:`StepOutput` per frame (HxWx3 uint8 RGB); ``mask`` marks the target on
    the first frame (HxW, 0 = background, 255 = target)."""
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        return
    yield start(core, first, mask)
    for frame in it:
        yield core.step(image_to_tensor(frame, core.device))
