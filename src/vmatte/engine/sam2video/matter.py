"""``--model sam2-matte``: SAM 2's tracked mask of each target, its edge refined on the frame.

What it is: a *soft mask*, not a matte in the hair-level sense. Each target's mask comes from the
streaming SAM 2 tracker (mask prompts from ``--mask`` / ``--click`` keyframes; any object); its
edge is then snapped to the frame's colour edges by a fast guided filter (He et al., "Guided
Image Filtering", 2010/2013; He and Sun, "Fast Guided Filter", 2015: the linear coefficients are
fitted on a 4x smaller frame and upsampled), which gives a few pixels of soft, image-aligned
transition. Fine hair, motion blur and transparency are not recovered: use MatAnyone (people and
objects, its non-commercial weights) or VideoMaMa on the tracked masks (``vmatte track`` then
``--masks``) for those. Not temporally smoothed beyond what the tracker's memory gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np
import torch

from ...io.pixels import to_float
from ...io.source import Frame
from ...models.sam2 import Sam2Video
from ..matter import PerFrameMatter
from .source import Sam2Masks, rgb8


def fast_guided_filter(
    guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3, scale: int = 4
) -> np.ndarray:
    """``src`` (HxW float32 in [0, 1]) filtered with the grey ``guide`` (HxW float32 in [0, 1])."""
    h, w = src.shape
    scale = max(1, min(scale, radius))  # fitted at most ``radius`` times smaller: the window keeps >= 1 px
    sh, sw = max(1, h // scale), max(1, w // scale)
    g = cv2.resize(guide, (sw, sh), interpolation=cv2.INTER_AREA)
    p = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA)
    r = max(1, radius // scale)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)

    mean_g, mean_p = box(g), box(p)
    var_g = box(g * g) - mean_g * mean_g
    cov_gp = box(g * p) - mean_g * mean_p
    a = cov_gp / (var_g + eps)
    b = mean_p - a * mean_g
    a = cv2.resize(box(a), (w, h), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(box(b), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(a * guide + b, 0.0, 1.0)


class Sam2Matter(PerFrameMatter):
    """SAM 2's tracked mask of each target (its :class:`~.source.Sam2Masks`, the run's mask source: the
    loop puts the masks on each frame) with its edge snapped to the frame by a fast guided filter.
    Resumable: its state is the tracker's (the memory bank, bounded: :mod:`.memory`)."""

    resumable = True

    def __init__(
        self,
        model: Sam2Video,
        schedule: dict,
        device: torch.device,
        description: str,
        radius: int | None = None,
        eps: float = 1e-3,
    ) -> None:
        self.mask_source = Sam2Masks(model, schedule, device, description)
        self.description = description
        self.radius, self.eps = radius, eps  # radius None: 1% of the frame's short side (5 px at 480p), >= 2
        self.targets = self.mask_source.ids

    def set_schedule(self, schedule: dict) -> None:
        """``{frame: TargetMask}``: each target id starts (or is re-prompted) at the frames it appears in."""
        self.mask_source.set_schedule(schedule)
        self.targets = self.mask_source.ids

    def set_mask(self, mask) -> None:
        from ...io.masks import as_target_mask

        self.set_schedule({0: as_target_mask(mask)})

    def add_keyframe(self, index: int, mask) -> None:
        """A correction at a frame not run yet (see :meth:`.source.Sam2Masks.add_keyframe`)."""
        self.mask_source.add_keyframe(index, mask)

    def reset(self, concurrent_io: bool = False) -> None:
        self.mask_source.reset()

    def state(self):
        return self.mask_source.state()

    def load_state(self, state) -> None:
        self.mask_source.load_state(state)

    def step_all(self, image: np.ndarray, foreground: bool = True):
        raise TypeError("sam2-matte reads the masks its tracker puts on each frame: run it over frames (loop.results)")

    def run(self, frames: Iterable[Frame], foreground: bool = True) -> Iterator[tuple[Frame, np.ndarray | None, dict]]:
        for frame in frames:
            rgb = rgb8(frame.image)
            guide = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            radius = self.radius or max(2, min(rgb.shape[:2]) // 100)
            zero = np.zeros(rgb.shape[:2], np.float32)  # a target not started yet: nothing
            alphas = {}
            for i in self.targets:
                hard = frame.masks.get(i, zero)
                alphas[i] = fast_guided_filter(guide, hard, radius, self.eps) if hard.any() else hard
            yield frame, to_float(frame.image) if foreground else None, alphas


def load_sam2_matte(spec, options, note: str = "") -> Sam2Matter:
    """The registry's loader. The SAM 2 checkpoint: ``--weights`` (a file or a name of ``vmatte weights
    list``), else a checkpoint named by ``--tracker``, else the first SAM 2 checkpoint in the cache."""
    from ...errors import VmatteError
    from ...io.masks import mask_schedule
    from ..device import resolve_device
    from ..options import TRACKER_RVM, TRACKERS
    from . import masks

    if not options.has_target:
        raise VmatteError(f"--model {spec.name} follows the target(s) of a mask: give --mask PATH or --click X,Y")
    if options.tracker == TRACKER_RVM:
        raise VmatteError(
            f"--model {spec.name} is SAM 2's tracked mask: --tracker rvm does not apply "
            f"(use --model rvm-target for RVM's own tracking)"
        )
    schedule = mask_schedule(options.mask, options.keyframes)  # a bad mask fails before the weights load
    dev = resolve_device(options.device)
    checkpoint = (
        str(options.weights) if options.weights else (options.tracker if options.tracker not in TRACKERS else "auto")
    )
    model, description = masks.load_video_model(checkpoint, dev)
    return Sam2Matter(
        model, schedule, dev, f"{spec.name}{note}: {description}, edge by a fast guided filter (a soft mask)"
    )
