"""The target's mask from clicks: ``--click X,Y[@FRAME]`` on a person, ``--exclude X,Y[@FRAME]``
on someone who is not the target.

RVM mattes every person in frame; its alpha at the click frame (after running frames 0..FRAME,
so its recurrent state has settled) is cut at 0.5 into connected regions, and the region(s)
under the clicks are the target. When an excluded point lies in the same region as a click (two
people touching), that region is split between the clicks and the excluded points (see
:func:`split_region`) and the clicked side is kept. The mask keeps RVM's soft alpha (0..255).

When a Segment Anything / SAM 2 checkpoint is present (or named by ``--segmenter``), the clicks
go to it instead and can pick any object, not only people (see :mod:`vmatte.engine.segment.prompts`).

Coordinates are pixels of the frame as vmatte's reader yields it (upright: rotation metadata
applied), x to the right, y down.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ...errors import InputError, VmatteError
from ...io.masks import TargetMask
from ...io.pixels import to_uint8
from .split import split_region

FG_THRESHOLD = 0.5  # alpha at which a pixel belongs to a person (regions are cut here)
# Soft edge kept around the target: RVM's alpha within EDGE_PX of the >= 0.5 region. Values below
# SOFT_FLOOR are dropped: MatAnyone's mask clean-up turns *any* non-zero pixel into target, so
# faint haze far from the person must not reach the mask.
EDGE_PX = 3
SOFT_FLOOR = 0.05
# A click this close to a person (fraction of the frame's long side, at least SNAP_MIN_PX) counts
# as on them: clicks land on hair and edges, where alpha is below 0.5.
SNAP_FRACTION = 0.01
SNAP_MIN_PX = 4


@dataclass(frozen=True)
class Click:
    """One point: a click on the target, or (``negative``) an excluded point."""

    x: int
    y: int
    frame: int = 0
    negative: bool = False

    @property
    def option(self) -> str:
        """How the user wrote it, for messages: ``--click 412,90@5``."""
        at = f"@{self.frame}" if self.frame else ""
        return f"--{'exclude' if self.negative else 'click'} {self.x},{self.y}{at}"


@dataclass(frozen=True)
class TargetBox:
    """Where the chosen target is, printed so the user can check the right person was picked."""

    frame: int
    x0: int
    y0: int
    x1: int  # inclusive
    y1: int  # inclusive
    area: int  # pixels with alpha >= 0.5
    frame_area: int

    def describe(self) -> str:
        share = 100.0 * self.area / max(self.frame_area, 1)
        return (
            f"box x {self.x0}..{self.x1}, y {self.y0}..{self.y1} ({self.x1 - self.x0 + 1}x"
            f"{self.y1 - self.y0 + 1} px), area {self.area} px ({share:.1f}% of the frame)"
        )


def parse_point(spec: str, negative: bool = False) -> Click:
    """``X,Y`` or ``X,Y@FRAME`` (whole pixels, frame from 0) -> :class:`Click`."""
    name = "--exclude" if negative else "--click"
    where, at, frame_text = spec.strip().partition("@")
    try:
        x_text, y_text = where.split(",")
        x, y = int(x_text), int(y_text)
        frame = int(frame_text) if at else 0
    except ValueError:
        raise InputError(
            f"bad {name} {spec!r}; give X,Y or X,Y@FRAME in pixels of the frame "
            f"(x right, y down), e.g. {name} 412,230 or {name} 412,230@40"
        ) from None
    if frame < 0:
        raise InputError(f"bad {name} {spec!r}: the frame number counts from 0")
    return Click(x, y, frame, negative)


def as_clicks(points: Iterable | None, negative: bool = False, frame: int = 0) -> list[Click]:
    """API points as :class:`Click`: a Click, ``(x, y)`` (at ``frame``), ``(x, y, frame)`` or a
    ``"X,Y@FRAME"`` string."""
    out: list[Click] = []
    for p in points or ():
        if isinstance(p, Click):
            out.append(Click(p.x, p.y, p.frame, negative))
        elif isinstance(p, str):
            out.append(parse_point(p, negative))
        else:
            values = tuple(p)
            if len(values) not in (2, 3):
                raise InputError(f"a {'exclude' if negative else 'click'} point is (x, y) or (x, y, frame), got {p!r}")
            x, y = (int(round(float(v))) for v in values[:2])
            f = int(values[2]) if len(values) == 3 else frame
            if f < 0:
                raise InputError(f"a click's frame counts from 0, got {f}")
            out.append(Click(x, y, f, negative))
    return out


def check_inside(point: Click, width: int, height: int) -> None:
    if not (0 <= point.x < width and 0 <= point.y < height):
        raise InputError(
            f"{point.option} is outside the {width}x{height} frame (x 0..{width - 1}, "
            f"y 0..{height - 1}, from the top-left corner)"
        )


def _as_alpha(alpha: np.ndarray) -> np.ndarray:
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise InputError(f"the alpha for clicks must be HxW, got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    return np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0)


def _guide(image: np.ndarray | None, alpha: np.ndarray) -> np.ndarray:
    """An 8-bit RGB picture whose edges steer the split: the frame, else the alpha as grey."""
    if image is None:
        grey = np.rint(alpha * 255).astype(np.uint8)
        return np.dstack([grey] * 3)
    img = np.asarray(image)
    if img.shape[:2] != alpha.shape:
        raise InputError(f"the image is {img.shape[1]}x{img.shape[0]} but the alpha {alpha.shape[1]}x{alpha.shape[0]}")
    img = to_uint8(img)
    if img.ndim == 2:
        img = np.dstack([img] * 3)
    return np.ascontiguousarray(img[..., :3])


def _snap(labels: np.ndarray, point: Click, radius: int) -> tuple[int, int, int]:
    """(label, y, x) of the person under ``point``, or of the nearest one within ``radius``."""
    label = int(labels[point.y, point.x])
    if label:
        return label, point.y, point.x
    h, w = labels.shape
    y0, y1 = max(point.y - radius, 0), min(point.y + radius + 1, h)
    x0, x1 = max(point.x - radius, 0), min(point.x + radius + 1, w)
    ys, xs = np.nonzero(labels[y0:y1, x0:x1])
    if len(ys) == 0:
        return 0, point.y, point.x
    d2 = (ys + y0 - point.y) ** 2 + (xs + x0 - point.x) ** 2
    i = int(np.argmin(d2))
    if d2[i] > radius * radius:
        return 0, point.y, point.x
    y, x = int(ys[i] + y0), int(xs[i] + x0)
    return int(labels[y, x]), y, x


def mask_from_points(
    alpha: np.ndarray, positives: Sequence, negatives: Sequence = (), image: np.ndarray | None = None, *, frame: int = 0
) -> np.ndarray:
    """The target under ``positives`` as an HxW uint8 mask (0 = background, soft edge, 255 = target).

    ``alpha``: HxW person matte (float in [0, 1], or uint8/uint16). ``positives`` / ``negatives``:
    points (x, y) or :class:`Click`; all positives are one target. ``image`` (the frame, RGB):
    its edges place the cut between touching people. ``frame`` is only named in messages.
    """
    a = _as_alpha(alpha)
    h, w = a.shape
    pos = as_clicks(positives, False, frame)
    neg = as_clicks(negatives, True, frame)
    if not pos:
        raise InputError("no --click given: click on the target person (an --exclude alone picks nobody)")
    for p in pos + neg:
        check_inside(p, w, h)
    _, labels = cv2.connectedComponents((a >= FG_THRESHOLD).astype(np.uint8), connectivity=4)
    radius = max(SNAP_MIN_PX, round(SNAP_FRACTION * max(h, w)))
    seeds: dict[int, list[tuple[int, int]]] = {}
    for p in pos:
        label, y, x = _snap(labels, p, radius)
        if not label:
            raise InputError(
                f"no person under {p.option} at frame {p.frame} (RVM alpha there is "
                f"{a[p.y, p.x]:.2f}); click on the subject, or give a --mask"
            )
        seeds.setdefault(label, []).append((y, x))
    # Excluded points snap the same way (an --exclude on the other person's hair still counts);
    # one on the background excludes nothing more.
    excluded_at: dict[int, list[tuple[int, int]]] = {}
    for q in neg:
        label, y, x = _snap(labels, q, radius)
        if label in seeds and (y, x) in seeds[label]:
            raise InputError(f"{q.option} is on the same pixel as a --click; exclude a point on the other person")
        excluded_at.setdefault(label, []).append((y, x))
    target = np.zeros((h, w), bool)
    for label, yx in seeds.items():
        region = labels == label
        excluded = excluded_at.get(label)
        target |= split_region(region, yx, excluded, _guide(image, a)) if excluded else region
    # Soft edge: alpha just outside the target, but never pixels of another person or of the
    # excluded side of a split region.
    others = (labels > 0) & ~target
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_PX + 1, 2 * EDGE_PX + 1))
    edge = cv2.dilate(target.astype(np.uint8), kernel).astype(bool) & (a >= SOFT_FLOOR) & ~others
    keep = target | edge
    return np.where(keep, np.rint(a * 255.0), 0).astype(np.uint8)


def target_box(mask: np.ndarray, frame: int = 0) -> TargetBox:
    core = np.asarray(mask) >= 128
    ys, xs = np.nonzero(core if core.any() else np.asarray(mask) > 0)
    h, w = mask.shape[:2]
    return TargetBox(frame, int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()), int(core.sum()), h * w)


def masks_from_clicks(
    input_path: str | os.PathLike,
    clicks: Iterable,
    excludes: Iterable = (),
    fps: float | None = None,
    device: str = "auto",
    segmenter: str | None = None,
) -> dict[int, np.ndarray]:
    """``{frame: HxW uint8 mask}`` of the target clicked at each click frame.

    With a SAM / SAM 2 segmenter (``segmenter``: see :mod:`vmatte.engine.segment.prompts`; ``auto``
    takes a cached one) each click frame is decoded and prompted with its points. Otherwise the
    shipped RVM runs over frames 0..last click frame (streaming, one frame in memory) and
    :func:`mask_from_points` cuts its alpha at each click frame.
    """
    return _masks_and_segmenter(input_path, clicks, excludes, fps, device, segmenter)[0]


class ClickSegmenter:
    """Clicks -> a target mask, the one way the API (``--click``) and the app make one.

    ``choice`` (``--segmenter``): ``auto`` (a cached SAM / SAM 2, else RVM's person regions),
    ``rvm``, a name of :data:`vmatte.weights.SEGMENTERS` or a checkpoint path. With SAM only the
    click frame is needed; with RVM's person regions the every-person model of the registry runs
    from frame 0 to the click frame (:meth:`person_alphas`, streaming) so its recurrent state has
    settled, and :func:`mask_from_points` cuts its alpha."""

    def __init__(self, choice: str | None = None, device: str = "auto", allow_download: bool = True):
        from ..device import resolve_device
        from .prompts import RVM, RVM_LABEL, FramePrompter, choose_segmenter, load_point_predictor

        self.device = device
        torch_device = resolve_device(device)
        resolved = choose_segmenter(choice, torch_device)
        self.prompter = None
        if resolved != RVM:
            self.prompter = FramePrompter(load_point_predictor(resolved, torch_device, allow_download=allow_download))
        self.name = self.prompter.name if self.prompter else RVM_LABEL
        self.description = self.prompter.description if self.prompter else RVM_LABEL
        self._person = None  # the every-person matter, loaded on first use
        self.person_at = -1  # the last frame the every-person matter has seen (-1: none)

    def new_video(self) -> None:
        """The next :meth:`person_alphas` is for another video: start the every-person model afresh."""
        self.person_at = -1

    @property
    def needs_person_alpha(self) -> bool:
        return self.prompter is None

    def person_alphas(
        self, frames: Iterable, wanted: Iterable[int], on_alpha: Callable[[int, np.ndarray], None] | None = None
    ) -> dict[int, np.ndarray]:
        """``{index: HxW float alpha of every person}`` at the ``wanted`` frames: the every-person
        model runs over ``frames`` (decoded frames from frame 0) up to the last wanted one.

        The model's state is kept between calls (:attr:`person_at`: the last frame it has seen), so
        a later call for frames after that one continues from there instead of from frame 0 (the
        app asks frame by frame); ``on_alpha(index, alpha)`` sees every frame the model runs."""
        from ..registry import load_person_matter

        wanted = set(wanted)
        if self._person is None:
            self._person = load_person_matter(self.device)
        first = self.person_at + 1 if self.person_at < min(wanted) else 0
        if first == 0:
            self._person.reset()
            self.person_at = -1
        out: dict[int, np.ndarray] = {}
        last = max(wanted)
        for f in frames:
            if f.index < first:
                continue  # decoded only: the model's state already holds these frames
            _, alpha = self._person.step(f.image, foreground=False)
            self.person_at = f.index
            if on_alpha is not None:
                on_alpha(f.index, alpha)
            if f.index in wanted:
                out[f.index] = alpha
            if f.index >= last:
                break
        return out

    def mask(
        self,
        image: np.ndarray,
        frame: int,
        positives: Sequence,
        negatives: Sequence = (),
        person_alpha: np.ndarray | None = None,
        key: object = None,
    ) -> np.ndarray:
        """HxW uint8 mask of the target under ``positives`` in ``image`` (frame ``frame``); RVM's
        regions need ``person_alpha`` (from :meth:`person_alphas`). ``key`` names the image for
        SAM's encoder cache (default: the frame index)."""
        if self.prompter is not None:
            return self.prompter.mask(image, frame if key is None else key, positives, negatives)
        return mask_from_points(person_alpha, positives, negatives, image, frame=frame)


def _masks_and_segmenter(input_path, clicks, excludes, fps, device, segmenter) -> tuple[dict[int, np.ndarray], str]:
    """:func:`masks_from_clicks` and the name of what made the masks (for messages)."""
    from ...io.reader import open_source

    pos, neg = as_clicks(clicks, False), as_clicks(excludes, True)
    frames = _click_frames(pos, neg)
    masks: dict[int, np.ndarray] = {}
    count = 0
    with open_source(input_path, fps=fps) as src:
        info = src.info
        for p in pos + neg:  # cheap checks before the model runs
            check_inside(p, info.width, info.height)
        if info.num_frames is not None and frames[-1] >= info.num_frames:
            raise _too_far(frames[-1], info.num_frames)
        segmenter_ = ClickSegmenter(segmenter, device)

        def counted():
            nonlocal count
            for f in src:
                count += 1
                yield f

        if segmenter_.needs_person_alpha:  # one pass: RVM's alpha at every click frame
            images: dict[int, np.ndarray] = {}

            def keep(it):
                for f in it:
                    if f.index in frames:
                        images[f.index] = f.image
                    yield f

            alphas = segmenter_.person_alphas(keep(counted()), frames)
            for index, alpha in alphas.items():
                here = [p for p in pos if p.frame == index], [q for q in neg if q.frame == index]
                masks[index] = segmenter_.mask(images[index], index, *here, person_alpha=alpha)
        else:  # SAM needs only the click frames themselves: no model runs on the others
            for f in counted():
                if f.index in frames:
                    here = [p for p in pos if p.frame == f.index], [q for q in neg if q.frame == f.index]
                    masks[f.index] = segmenter_.mask(f.image, f.index, *here)
                if f.index >= frames[-1]:
                    break
    missing = [i for i in frames if i not in masks]
    if missing:
        raise _too_far(missing[0], count)
    return masks, segmenter_.description


def point_prompts(input_path, pos: list[Click], neg: list[Click], fps) -> dict[int, TargetMask]:
    """The clicks of each frame as a ``clicks`` TargetMask (target 1): the points and their labels,
    over an empty placeholder mask of the frame's size. Checked as the masks would be (inside the
    frame, an exclude only where there is a click, a frame inside the video when its length is known)."""
    from ...io.reader import open_source

    frames = _click_frames(pos, neg)
    with open_source(input_path, fps=fps) as src:
        info = src.info
    for p in pos + neg:
        check_inside(p, info.width, info.height)
    if info.num_frames is not None and frames[-1] >= info.num_frames:
        raise _too_far(frames[-1], info.num_frames)
    out = {}
    for index in frames:
        here = [p for p in pos + neg if p.frame == index]
        xy = np.array([(p.x, p.y) for p in here], np.float32)
        labels = np.array([0 if p.negative else 1 for p in here], np.int32)
        empty = np.zeros((info.height, info.width), np.uint8)
        where = " ".join(p.option for p in here)
        out[index] = TargetMask({1: empty}, source=f"from {where}", kind="clicks", points={1: (xy, labels)})
    return out


def _click_frames(pos: list[Click], neg: list[Click]) -> list[int]:
    """The frames that have clicks, sorted; every exclude must share a frame with a click."""
    if not pos:
        raise InputError("--exclude needs a --click on the target at the same frame")
    frames = sorted({p.frame for p in pos})
    for q in neg:
        if q.frame not in frames:
            raise InputError(
                f"{q.option} is at frame {q.frame}, where no --click is; click on the target at that frame too"
            )
    return frames


def _too_far(frame: int, frames: int) -> InputError:
    return InputError(
        f"--click at frame {frame} but the video has {frames} frames (0..{frames - 1}); give a frame inside the video"
    )


def click_keyframes(
    input_path: str | os.PathLike,
    clicks: Iterable | None,
    excludes: Iterable | None,
    *,
    model,
    mask=None,
    keyframes: dict | None = None,
    fps: float | None = None,
    device: str = "auto",
    progress: bool = False,
    segmenter: str | None = None,
    as_points: bool = False,
) -> dict:
    """``keyframes`` with the clicked targets added (``{frame: TargetMask}``, target id 1), for
    :func:`vmatte.matte` / :func:`vmatte.iter_matte`. A click frame that already has a mask
    (``mask`` is frame 0's) is an error; ``progress`` prints each target's box on stderr.
    ``segmenter``: what turns clicks into masks (see :mod:`vmatte.engine.segment.prompts`).
    ``as_points``: no mask is made; each click frame's TargetMask carries the points themselves
    (kind ``clicks``) for the SAM 2 video tracker, which takes clicks as prompts."""
    if not isinstance(model, str):
        raise VmatteError(
            "clicks choose the target before the model is built: pass model= as a name, or "
            "give load_matter(keyframes=masks_from_clicks(...))"
        )
    from ..registry import AUTO, get

    if model != AUTO and get(model).every_person:
        raise VmatteError(
            f"--click picks one target, but --model {model} mattes every person in frame; use "
            f"--model auto or matanyone with --click"
        )
    pos, neg = as_clicks(clicks, False), as_clicks(excludes, True)
    taken = {0} if mask is not None else set()
    taken |= {int(k) for k in (keyframes or {})}
    for p in pos:
        if p.frame in taken:
            given = "--mask" if p.frame == 0 and mask is not None else "--mask-at/--masks-dir"
            raise InputError(f"{p.option} and {given} both give the target at frame {p.frame}; give one")
    merged = dict(keyframes or {})
    if as_points:
        merged.update(point_prompts(input_path, pos, neg, fps))
        if progress:
            for index, m in sorted(merged.items()):
                if m.kind == "clicks":
                    print(f"target at frame {index} ({m.source}): SAM 2 point prompts", file=sys.stderr)
        return merged
    masks, used = _masks_and_segmenter(input_path, pos, neg, fps, device, segmenter)
    for index, m in masks.items():
        where = " ".join(p.option for p in pos + neg if p.frame == index)
        merged[index] = TargetMask({1: m}, source=f"from {where}", kind="soft")
        if progress:
            print(f"target at frame {index} ({where}, {used}): {target_box(m, index).describe()}", file=sys.stderr)
    return merged


def keyframes_with_clicks(input_path, model, fps, clicks, excludes, options: dict, progress: bool, segmenter) -> dict:
    """:func:`click_keyframes` for the API's keyword options (``mask``, ``keyframes``, ``device``,
    ``tracker``). When the model follows its target with the SAM 2 video tracker (``sam2-matte``, or
    ``--tracker sam2``) and no ``segmenter`` is named, the clicks go to SAM 2 as point prompts."""
    as_points = False
    if segmenter is None and isinstance(model, str):
        from ..registry import MatterOptions, sam2_follows_target

        as_points = sam2_follows_target(model, MatterOptions.from_kwargs(dict(options)))
    return click_keyframes(
        input_path,
        clicks,
        excludes,
        model=model,
        mask=options.get("mask"),
        keyframes=options.get("keyframes"),
        fps=fps,
        device=options.get("device", "auto"),
        progress=progress,
        segmenter=segmenter,
        as_points=as_points,
    )
