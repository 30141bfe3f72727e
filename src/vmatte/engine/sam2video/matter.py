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

import cv2
import numpy as np
import torch

from ...models.sam2 import Sam2Video
from .tracker import Prompt, Sam2VideoTracker


def fast_guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3,
                       scale: int = 4) -> np.ndarray:
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


class Sam2Matter:
    """A FrameMatter (``reset`` / ``step`` / ``step_all``) over :class:`Sam2VideoTracker`."""

    def __init__(self, model: Sam2Video, schedule: dict, device: torch.device, description: str,
                 radius: int | None = None, eps: float = 1e-3) -> None:
        self.model = model
        self.device = device
        self.description = description
        self.radius, self.eps = radius, eps  # radius None: 1% of the frame's short side (5 px at 480p), >= 2
        self.set_schedule(schedule)

    def set_schedule(self, schedule: dict) -> None:
        """``{frame: TargetMask}``: each target id starts (or is re-prompted) at the frames it appears in."""
        self.schedule = dict(schedule)
        ids: list[int] = []
        for m in self.schedule.values():
            ids += [i for i in m.ids if i not in ids]
        self.targets = tuple(ids)
        self.reset()

    def set_mask(self, mask) -> None:
        from ...io.masks import as_target_mask

        self.set_schedule({0: as_target_mask(mask)})

    def reset(self, concurrent_io: bool = False) -> None:
        self._tracker: Sam2VideoTracker | None = None

    def _start(self, shape: tuple[int, int]) -> Sam2VideoTracker:
        from ...io.masks import fit_to_frame

        tracker = Sam2VideoTracker(self.model, shape, device=self.device)
        for frame, mask in sorted(self.schedule.items()):
            mask = fit_to_frame(mask, shape)
            for i, m in mask.targets.items():
                tracker.add_prompt(frame, i, Prompt(mask=m > 127))
        return tracker

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        rgb = image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)
        if self._tracker is None:
            self._tracker = self._start(rgb.shape[:2])
        r = self._tracker.step(np.ascontiguousarray(rgb))
        guide = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        alphas = {}
        for k, obj_id in enumerate(r.obj_ids):
            hard = (r.logits[k] > 0).cpu().numpy().astype(np.float32)
            radius = self.radius or max(2, min(rgb.shape[:2]) // 100)
            alphas[obj_id] = fast_guided_filter(guide, hard, radius, self.eps) if hard.any() else hard
        for i in self.targets:  # a target not started yet: nothing
            alphas.setdefault(i, np.zeros(rgb.shape[:2], np.float32))
        fgr = rgb.astype(np.float32) / 255.0 if foreground else None
        return fgr, {i: alphas[i] for i in self.targets}

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        fgr, alphas = self.step_all(image, foreground)
        return fgr, np.maximum.reduce(list(alphas.values()))
