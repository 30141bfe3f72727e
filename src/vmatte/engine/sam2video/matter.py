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

from ...io.pixels import to_float, to_uint8
from ...models.sam2 import Sam2Video
from ..matter import PerFrameMatter
from .tracker import Prompt, Sam2VideoTracker


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


def start_tracker(model: Sam2Video, schedule: dict, shape: tuple[int, int], device) -> Sam2VideoTracker:
    """A tracker for a video of ``shape`` with every target of ``schedule`` (``{frame: TargetMask}``)
    prompted at its frames: by its clicks when the TargetMask holds ``points`` (``--click`` with the SAM 2
    tracker: SAM 2's own point prompts), else by its mask."""
    from ...io.masks import fit_to_frame

    tracker = Sam2VideoTracker(model, shape, device=device)
    for frame, mask in sorted(schedule.items()):
        points = mask.points or {}
        for i, m in fit_to_frame(mask, shape).targets.items():
            if i in points:
                xy, labels = points[i]
                tracker.add_prompt(frame, i, Prompt(points=xy, labels=labels))
            else:
                tracker.add_prompt(frame, i, Prompt(mask=m > 127))
    return tracker


def _rgb8(image: np.ndarray) -> np.ndarray:
    """SAM 2 sees 8 bits: a >8-bit source is shifted down."""
    return np.ascontiguousarray(to_uint8(image))


class Sam2MaskSource:
    """SAM 2's tracked mask of each target, frame by frame: the masks :mod:`vmatte.engine.tracked`
    hands to a per-frame-mask model (their union) or RVM's gate (one per target)."""

    def __init__(self, model: Sam2Video, schedule: dict, device: torch.device, description: str) -> None:
        self.model, self.schedule, self.device = model, dict(schedule), device
        self.description = description
        self._tracker: Sam2VideoTracker | None = None

    def reset(self) -> None:
        self._tracker = None

    def state(self):
        if self._tracker is None:
            return {"shape": None}
        return {"shape": list(self._tracker.video_size), "tracker": self._tracker.state()}

    def load_state(self, state) -> None:
        if state["shape"] is not None:  # the prompts come from the schedule, the memory from the state
            self._tracker = start_tracker(self.model, self.schedule, tuple(state["shape"]), self.device)
            self._tracker.load_state(state["tracker"])

    def masks(self, image: np.ndarray) -> dict[int, np.ndarray]:
        """Each target's tracked mask (0/1 float32); a target not started yet: none."""
        rgb = _rgb8(image)
        if self._tracker is None:
            self._tracker = start_tracker(self.model, self.schedule, rgb.shape[:2], self.device)
        r = self._tracker.step(rgb)
        hard = (r.logits > 0).cpu().numpy().astype(np.float32)
        out = {i: hard[k] for k, i in enumerate(r.obj_ids)}
        return out or {0: np.zeros(rgb.shape[:2], np.float32)}  # no target yet: an empty mask


class Sam2Matter(PerFrameMatter):
    """A per-frame :class:`~vmatte.engine.matter.Matter` over :class:`Sam2VideoTracker`; resumable (its
    state is the tracker's memory bank, bounded: :mod:`.memory`)."""

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

    state = Sam2MaskSource.state
    load_state = Sam2MaskSource.load_state

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        rgb = _rgb8(image)
        if self._tracker is None:
            self._tracker = start_tracker(self.model, self.schedule, rgb.shape[:2], self.device)
        r = self._tracker.step(rgb)
        guide = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        alphas = {}
        for k, obj_id in enumerate(r.obj_ids):
            hard = (r.logits[k] > 0).cpu().numpy().astype(np.float32)
            radius = self.radius or max(2, min(rgb.shape[:2]) // 100)
            alphas[obj_id] = fast_guided_filter(guide, hard, radius, self.eps) if hard.any() else hard
        for i in self.targets:  # a target not started yet: nothing
            alphas.setdefault(i, np.zeros(rgb.shape[:2], np.float32))
        fgr = to_float(image) if foreground else None
        return fgr, {i: alphas[i] for i in self.targets}


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
