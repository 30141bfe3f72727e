"""First-frame target masks: read a mask image into one 0..255 map per target id.

What a mask file can be (``--mask PATH``):

* grey 8- or 16-bit, binary: any non-zero pixel is the target (255, 1, 65535 ... all work), id 1;
* grey with soft values (an existing matte): kept as a soft 0..255 map, id 1;
* an integer label mask (grey 8/16-bit, ids 1..N, 0 = background; at most :data:`MAX_IDS` ids,
  all below 128): one target per id;
* a palette (indexed) PNG, as DAVIS/YouTube-VOS annotations: the palette *index* is the id
  (0 = background), whatever colours the palette gives them;
* RGB(A): non-black pixels are the target (a grey image stored as RGB is read as grey; an RGBA
  image whose alpha is not fully opaque uses the alpha).

:func:`fit_to_frame` brings the masks to the frame size (nearest neighbour, so ids and binary
edges stay exact) with a warning on stderr; an empty mask is a one-line :class:`InputError`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .imagefile import imread
from .source import Frame

MAX_IDS = 64  # an integer mask with more distinct values than this is a soft grey mask
_LABEL_LIMIT = 128  # label ids are small integers; larger values mean a grey (soft/binary) mask
# A mask "a few pixels off" the frame (each side within 2 %, or less than a 16-px codec pad, as a
# 1920x1080 mask on a 1920x1088 video) is resized with a warning; a farther one with a stronger one.
CLOSE_FRACTION = 0.02
CLOSE_PIXELS = 16


class MaskSizeWarning(UserWarning):
    """The mask is not the size of the frame and was resized (nearest neighbour)."""


@dataclass(frozen=True)
class TargetMask:
    """Targets of the first frame: ``targets[id]`` is HxW uint8, 0 = background, 255 = target."""

    targets: dict[int, np.ndarray]
    source: str = "mask"
    kind: str = "binary"  # binary, soft, labels, palette, rgb, clicks
    # kind "clicks" (clicks given straight to the SAM 2 video tracker): per target id, the points
    # (N x 2 float32 (x, y) in frame pixels) and their labels (N: 1 on the target, 0 off it); the
    # masks are then empty placeholders of the frame's size, read by nothing
    points: dict[int, tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(self.targets)

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.targets.values())).shape[:2]


def _empty(source: str) -> InputError:
    return InputError(
        f"the mask {source} has no target pixel (it is all background/black); "
        f"paint the target white (or give it a label id > 0) on the first frame"
    )


def _from_grey(a: np.ndarray, source: str, kind: str | None = None) -> TargetMask:
    """Classify an integer HxW array: binary, label ids, or soft grey."""
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0:
            raise InputError(f"the mask {source} has negative or non-finite values; give 0..1 or 0..255")
        scale = 255.0 if a.max() <= 1.0 else 1.0
        a = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    values = np.unique(a)
    ids = [int(v) for v in values if v != 0]
    if not ids:
        raise _empty(source)
    if len(ids) == 1 and kind == "palette":
        return TargetMask({ids[0]: np.where(a != 0, 255, 0).astype(np.uint8)}, source, kind)
    if len(ids) == 1:
        return TargetMask({1: np.where(a != 0, 255, 0).astype(np.uint8)}, source, kind or "binary")
    if kind == "palette" or (len(ids) <= MAX_IDS and max(ids) < _LABEL_LIMIT):
        return TargetMask({i: np.where(a == i, 255, 0).astype(np.uint8) for i in ids}, source, kind or "labels")
    if a.dtype == np.uint8:
        soft = a
    else:  # 16-bit (or wider): scale to 0..255 from the type's range
        top = 65535.0 if a.max() <= 65535 else float(a.max())
        soft = np.clip(np.rint(a.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    if not soft.any():
        raise _empty(source)
    return TargetMask({1: soft}, source, "soft")


def _from_colour(img: np.ndarray, source: str) -> TargetMask:
    """HxWx3 or HxWx4 (any channel order): non-black = target; grey-as-RGB and alpha as grey."""
    if img.shape[2] == 4:
        alpha = img[..., 3]
        full = np.iinfo(alpha.dtype).max if np.issubdtype(alpha.dtype, np.integer) else 1.0
        if (alpha != full).any():
            return _from_grey(alpha, source)
        img = img[..., :3]
    if (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all():
        return _from_grey(img[..., 0], source)
    target = img.any(axis=2)
    if not target.any():
        raise _empty(source)
    return TargetMask({1: np.where(target, 255, 0).astype(np.uint8)}, source, "rgb")


def _palette_indices(path: Path) -> np.ndarray | None:
    """The index plane of a palette PNG (None for any other image)."""
    if path.suffix.lower() != ".png":
        return None
    try:
        import av

        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            if frame.format.name != "pal8":
                return None
            indices, _palette = frame.to_ndarray()
            return np.ascontiguousarray(indices)
    except Exception:  # noqa: BLE001 - not decodable by PyAV: OpenCV reads it below (or fails clearly)
        return None


def read_mask(path: str | os.PathLike, labels: bool = False) -> TargetMask:
    """Read a mask image file into its targets (see the module docstring).

    ``labels=True`` (keyframe masks of a masks folder): a grey integer mask is a label mask even
    with a single id, so ``00005.png`` holding only id 2 is target 2, not target 1.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"mask not found: {path}; give the first-frame mask image with --mask PATH")
    source = str(path)
    indices = _palette_indices(path)
    if indices is not None:
        return _from_grey(indices, source, kind="palette")
    img = imread(path)
    if img is None or img.size == 0:
        raise InputError(f"cannot read the mask {path}; give a PNG (grey, palette/label or RGB) of the first frame")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        if labels and np.issubdtype(img.dtype, np.integer):
            ids = [int(v) for v in np.unique(img) if v != 0]
            if ids and max(ids) < _LABEL_LIMIT:
                return _from_grey(img, source, kind="palette")  # "palette": the value is the id
        return _from_grey(img, source)
    return _from_colour(img, source)


def as_target_mask(mask: str | os.PathLike | np.ndarray | dict[int, np.ndarray] | TargetMask) -> TargetMask:
    """Accept a path, an HxW array (binary, soft or labels, as a file would be read), an HxWx3/4
    array, a ``{id: HxW}`` dict, or a :class:`TargetMask`."""
    if isinstance(mask, TargetMask):
        return mask
    if isinstance(mask, (str, os.PathLike)):
        return read_mask(mask)
    if isinstance(mask, dict):
        if not mask:
            raise InputError("no targets given: the mask dict is empty")
        targets = {}
        for i, m in mask.items():
            one = _from_grey(np.asarray(m), f"for id {i}")
            if len(one.targets) != 1:  # a dict entry is one target whatever its values
                one = TargetMask({1: np.where(np.asarray(m) != 0, 255, 0).astype(np.uint8)})
            targets[int(i)] = one.targets[1]
        return TargetMask(targets, "mask dict", "labels" if len(targets) > 1 else "binary")
    a = np.asarray(mask)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return _from_grey(a, "array")
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return _from_colour(a, "array")
    raise InputError(f"a mask must be HxW (or HxWx3/4), got shape {a.shape}")


def same_aspect(mask: tuple[int, int], frame: tuple[int, int]) -> bool:
    """Whether a ``mask`` (h, w) is the ``frame``'s (h, w) scaled, up to rounding: each side within one
    mask pixel, or 1 % of it (a codec's 1080/1088 padding), of the frame's shape at the mask's scale."""
    (mh, mw), (h, w) = mask, frame
    return all(
        abs(m - f * other_m / other_f) <= max(1.0, 0.01 * m)
        for m, f, other_m, other_f in ((mh, h, mw, w), (mw, w, mh, h))
    )


def fit_to_frame(mask: TargetMask, shape: tuple[int, int]) -> TargetMask:
    """``mask`` at the frame size ``shape`` (h, w): resized with nearest neighbour and a warning
    when the sizes differ; an error when a target vanishes."""
    h, w = int(shape[0]), int(shape[1])
    mh, mw = mask.shape
    if (mh, mw) == (h, w):
        return mask
    close = all(abs(m - f) <= CLOSE_FRACTION * f or abs(m - f) < CLOSE_PIXELS for m, f in ((mh, h), (mw, w)))
    if close:
        msg = (
            f"the mask {mask.source} is {mw}x{mh} but the video is {w}x{h}; resized it to the frame (nearest neighbour)"
        )
    elif not same_aspect((mh, mw), (h, w)):
        raise InputError(
            f"the mask {mask.source} is {mw}x{mh} ({mw / mh:.3g}:1) but the video is {w}x{h} "
            f"({w / h:.3g}:1): another shape, so it cannot be this video's mask; give a mask made on "
            f"this video's frames"
        )
    else:
        msg = (
            f"the mask {mask.source} is {mw}x{mh} but the video is {w}x{h}, a very different size; "
            f"resized it to the frame (nearest neighbour): check that the mask belongs to this video"
        )
    targets = {}
    for i, m in mask.targets.items():
        r = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
        if not r.any():
            raise InputError(
                f"target id {i} of the mask {mask.source} vanished when the mask was resized "
                f"from {mw}x{mh} to {w}x{h}; give a mask at the video size"
            )
        targets[i] = r
    warnings.warn(msg, MaskSizeWarning, stacklevel=2)  # after the checks: an error comes alone, on one line
    return TargetMask(targets, mask.source, mask.kind)


# --- keyframe masks ----------------------------------------------------------------------

MaskLike = "str | os.PathLike | np.ndarray | dict[int, np.ndarray] | TargetMask"


def read_masks_dir(folder: str | os.PathLike) -> dict[int, Path]:
    """``{frame index: path}`` of the mask images in ``folder``, named by frame number
    (``00000.png``, ``5.png``, ``frame_00013.png``: the last run of digits in the name)."""
    import re

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(
            f"masks folder not found: {root}; give a folder of masks named by frame number (00000.png, 00005.png ...)"
        )
    found: dict[int, Path] = {}
    for p in sorted(root.iterdir()):
        if p.suffix.lower() not in (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".webp") or not p.is_file():
            continue
        digits = re.findall(r"\d+", p.stem)
        if not digits:
            continue
        index = int(digits[-1])
        if index in found:
            raise InputError(f"two masks for frame {index} in {root}: {found[index].name} and {p.name}")
        found[index] = p
    if not found:
        raise InputError(f"no mask images named by frame number (00000.png ...) in {root}")
    return found


def parse_mask_at(spec: str) -> tuple[int, str]:
    """``FRAME:PATH`` (``--mask-at 5:masks/00005.png``) -> (5, path)."""
    frame, sep, path = spec.partition(":")
    try:
        index = int(frame)
    except ValueError:
        index = -1
    if not sep or not path or index < 0:
        raise InputError(f"bad --mask-at {spec!r}; give FRAME:PATH with a frame number from 0, e.g. 5:mask_00005.png")
    return index, path


def mask_schedule(mask=None, keyframes=None) -> dict[int, TargetMask]:
    """The targets' masks by frame index, sorted: ``mask`` is frame 0's, ``keyframes`` maps frame
    indices to masks (paths, arrays, dicts or TargetMasks). Paths in ``keyframes`` are read as
    label masks (a grey file holding only id 3 is target 3). At least one mask is needed."""
    schedule: dict[int, TargetMask] = {}
    if mask is not None:
        schedule[0] = as_target_mask(mask)
    for frame, m in (keyframes or {}).items():
        index = int(frame)
        if index < 0:
            raise InputError(f"keyframe masks need a frame index from 0, got {frame}")
        if index in schedule:
            raise InputError(f"two masks given for frame {index} (--mask is frame 0's); give one")
        if isinstance(m, (str, os.PathLike)):
            schedule[index] = read_mask(m, labels=True)
        else:
            schedule[index] = as_target_mask(m)
    if not schedule:
        raise InputError("no target mask given; give the first frame's with --mask PATH (or --mask-at / --masks-dir)")
    return dict(sorted(schedule.items()))


def add_keyframe(
    schedule: dict[int, TargetMask], index: int, mask, ids: tuple, next_frame: int
) -> dict[int, TargetMask]:
    """``schedule`` with ``mask`` (as :func:`mask_schedule` reads one) at frame ``index``: a correction
    given to a run already under way (e.g. resumed from a saved state), so at a frame it has not run
    yet (``next_frame`` on) and of targets it already has (``ids``: its outputs are made)."""
    index = int(index)
    if index < next_frame:
        raise InputError(
            f"a keyframe at frame {index}, but the run is at frame {next_frame}: a keyframe goes on a frame not run yet"
        )
    if index in schedule:
        raise InputError(f"two masks given for frame {index}; give one")
    m = read_mask(mask, labels=True) if isinstance(mask, (str, os.PathLike)) else as_target_mask(mask)
    new = [i for i in m.ids if i not in ids]
    if new:
        raise InputError(
            f"the keyframe at frame {index} holds target id(s) {', '.join(map(str, new))}, which this run "
            f"does not have (ids {', '.join(map(str, ids))}); a new target needs a new run"
        )
    return dict(sorted({**schedule, index: m}.items()))


def schedule_ids(schedule: dict[int, TargetMask]) -> tuple[int, ...]:
    """Every target id of a schedule, in order of first appearance."""
    ids: list[int] = []
    for m in schedule.values():
        ids += [i for i in m.ids if i not in ids]
    return tuple(ids)


class FrameMasks:
    """The folder's masks by frame index (0 = the lowest-numbered file); a mask source of the frame
    loop (:class:`~vmatte.engine.matter.MaskSource`): each frame gets its file's mask (``{1: union}``,
    every id of a label mask being the target). Nothing streams: its state is empty."""

    resumable = True

    def __init__(self, folder: str | os.PathLike):
        self.folder = folder
        self.label = self.description = str(folder)
        self._last = -1  # the last frame annotated: what finish() compares the number of masks with
        self._paths = read_masks_dir(folder)
        self._first = min(self._paths)
        last = max(self._paths)
        gaps = [i for i in range(self._first, last + 1) if i not in self._paths]
        if gaps:
            shown = ", ".join(map(str, gaps[:5])) + (f" (+{len(gaps) - 5} more)" if len(gaps) > 5 else "")
            raise InputError(
                f"--masks {folder}: one mask per frame is needed, but frame number(s) {shown} have "
                f"no file between {self._first} and {last}"
            )
        self._warned_size = False

    def __len__(self) -> int:
        return len(self._paths)

    def mask(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """Frame ``index``'s mask at ``shape`` (h, w): float32 in [0, 1]."""
        path = self._paths.get(self._first + index)
        if path is None:
            raise InputError(
                f"--masks {self.folder} has {len(self)} masks but the video has more frames "
                f"(no mask for frame {index}); give one mask per frame"
            )
        target = read_mask(path)
        maps = list(target.targets.values())  # every id of a label mask is the target; soft stays soft
        union = maps[0] if len(maps) == 1 else np.max(np.stack(maps), axis=0)
        if union.shape[:2] != tuple(shape):
            if not self._warned_size:  # warn once, not once per frame
                union = fit_to_frame(type(target)({1: union}, target.source, target.kind), shape).targets[1]
                self._warned_size = True
            else:
                union = cv2.resize(union, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
        return union.astype(np.float32) / 255.0

    def reset(self) -> None:
        self._last = -1

    def annotate(self, frame: Frame) -> Frame:
        frame.masks = {1: self.mask(frame.index, frame.image.shape[:2])}
        self._last = max(self._last, frame.index)
        return frame

    def state(self) -> None:
        return None

    def load_state(self, state: None) -> None:
        pass

    def finish(self, frames: int | None = None) -> None:
        """The video had ``frames`` frames (None: up to the last one annotated): warn about masks
        that were never used."""
        frames = self._last + 1 if frames is None else frames
        if len(self) > frames:
            warnings.warn(
                f"--masks {self.folder} has {len(self)} masks but the video had {frames} frames; "
                f"the last {len(self) - frames} were not used (check that they belong to this video)",
                stacklevel=2,
            )


def check_keyframes_inside(last: int, frames: int | None, exact: bool) -> None:
    """A keyframe mask at or past the end of the video: its target would never start (every alpha
    0). ``last``: the last keyframe's index; ``frames`` is exact for a count or an image folder,
    an estimate from a video's header (then only a mask well past it is refused)."""
    if not last or frames is None:
        return
    if last >= frames if exact else last >= frames + max(25, frames // 10):
        raise InputError(
            f"a keyframe mask is at frame {last} but the video has {'' if exact else 'about '}"
            f"{frames} frames (0..{frames - 1}); give --mask-at/--masks-dir/--click frames inside it"
        )


def schedule_options(options: dict) -> tuple:
    """The API's ``mask`` and ``keyframes`` options as one schedule (``{frame: TargetMask}``, read
    and checked now, so a bad mask fails before anything else) in ``options["keyframes"]``, with
    ``options["mask"]`` None. -> the target ids ((None,) when there is no mask)."""
    if options.get("mask") is None and not options.get("keyframes"):
        return (None,)
    schedule = mask_schedule(options.get("mask"), options.get("keyframes"))
    options["mask"], options["keyframes"] = None, schedule
    return schedule_ids(schedule)


def fit_schedule(schedule: dict, shape: tuple[int, int]) -> dict:
    """Every keyframe mask fitted to the frame ``shape`` (h, w) (see :func:`fit_to_frame`)."""
    return {k: fit_to_frame(m, shape) for k, m in schedule.items()}
