"""Training data on disk: where frames are and how to read a few of them.

Layouts (all read lazily; only the frames a sample needs are decoded):

- video matting: a folder with ``fgr/`` and ``pha/`` holding clips (VideoMatte240K: videos or
  frame folders of the same name, found by :func:`vmatte.eval.compose.find_foregrounds`), a
  single clip folder with ``fgr/*.png`` + ``pha/*.png`` (what ``vmatte bench compose`` writes),
  or a folder of such clip folders.
- image matting: NAME.jpg + NAME.png (alpha) pairs or RGBA PNGs (foreground colour estimated
  once by the compose helper), or a folder with ``fgr/`` + ``pha/`` images of the same names.
- segmentation: images ``images/`` + ``masks/`` (same stems, any non-zero pixel is the
  target), videos ``JPEGImages/<seq>/`` + ``Annotations/<seq>/`` (DAVIS / YouTube-VIS exports).
- backgrounds: image files, folders of images (stills), frame folders or video files (videos).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vmatte.errors import InputError
from vmatte.eval.compose import VIDEO_EXTENSIONS, find_foregrounds, load_still
from vmatte.io.pixels import code_max
from vmatte.io.reader import IMAGE_EXTENSIONS, natural_key, open_source


def _images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )


def _unit(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / np.float32(code_max(img.dtype))


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}; give a valid PNG/JPEG")
    return _unit(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def read_grey(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read mask/alpha {path}; give an 8- or 16-bit grey PNG")
    if img.ndim == 3:
        img = img[:, :, 3] if img.shape[2] == 4 else img[:, :, 0]
    return _unit(img)


@dataclass(frozen=True)
class FrameSequence:
    """Frames of a folder of images or of a video file (``grey``: the first channel)."""

    path: Path
    grey: bool = False

    @functools.cached_property
    def frames(self) -> list[Path] | None:
        return _images(self.path) if self.path.is_dir() else None

    def __len__(self) -> int:
        if self.frames is not None:
            return len(self.frames)
        return _video_length(str(self.path))

    def read(self, indices: Sequence[int]) -> list[np.ndarray]:
        if self.frames is not None:
            reader = read_grey if self.grey else read_rgb
            return [reader(self.frames[i]) for i in indices]
        # A video file: decode up to the last frame asked for (training clips are short and
        # VideoMatte clips are a few hundred frames; a seek index would not pay here).
        wanted = set(indices)
        got: dict[int, np.ndarray] = {}
        with open_source(self.path) as src:
            for f in src:
                if f.index in wanted:
                    img = _unit(f.image)
                    got[f.index] = img[:, :, 0] if self.grey else img
                if len(got) == len(wanted):
                    break
        return [got[i] for i in indices]


@functools.lru_cache(maxsize=4096)
def _video_length(path: str) -> int:
    with open_source(path) as src:
        return sum(1 for _ in src)


@dataclass(frozen=True)
class MattingClip:
    fgr: FrameSequence
    pha: FrameSequence

    def __len__(self) -> int:
        return min(len(self.fgr), len(self.pha))


@dataclass(frozen=True)
class Still:
    """An image-matting sample: (foreground, alpha) loaded on first use and kept (small)."""

    image: Path
    alpha: Path | None
    fgr_known: bool  # fgr/ + pha/ layout: the image is the foreground colour
    max_side: int

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return _load_still_cached(self)


@functools.lru_cache(maxsize=256)
def _load_still_cached(s: Still) -> tuple[np.ndarray, np.ndarray]:
    if s.fgr_known:
        fgr, alpha = read_rgb(s.image), read_grey(s.alpha)
        f = min(1.0, s.max_side / max(alpha.shape))
        if f < 1.0:
            size = (max(1, round(alpha.shape[1] * f)), max(1, round(alpha.shape[0] * f)))
            fgr = cv2.resize(fgr, size, interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        return fgr, alpha
    from vmatte.eval.compose import ForegroundSource

    h, w = cv2.imread(str(s.image), cv2.IMREAD_UNCHANGED).shape[:2]
    # Shrink before estimating the foreground colour: the estimator's cost grows with pixels.
    return load_still(ForegroundSource(s.image.stem, "still", s.image, s.alpha), min(1.0, s.max_side / max(h, w)))


def _paired(fgr_dir: Path, pha_dir: Path) -> bool:
    return fgr_dir.is_dir() and pha_dir.is_dir() and bool(_images(fgr_dir)) and bool(_images(pha_dir))


def find_matting_clips(paths: Sequence[str | os.PathLike]) -> list[MattingClip]:
    out: list[MattingClip] = []
    for raw in paths:
        p = Path(os.fspath(raw)).expanduser()
        if not p.is_dir():
            raise InputError(f"video matting data {p} is not a folder; give a folder with fgr/ and pha/")
        if _paired(p / "fgr", p / "pha"):
            out.append(MattingClip(FrameSequence(p / "fgr"), FrameSequence(p / "pha", grey=True)))
        elif (p / "fgr").is_dir() and (p / "pha").is_dir():
            out += [
                MattingClip(FrameSequence(s.image), FrameSequence(s.alpha, grey=True))
                for s in find_foregrounds([p])
                if s.kind == "video"
            ]
        else:
            subs = [
                c
                for c in sorted(p.iterdir(), key=lambda e: natural_key(e.name))
                if c.is_dir() and _paired(c / "fgr", c / "pha")
            ]
            if not subs:
                raise InputError(f"{p} holds no clips; give fgr/ + pha/ folders (VideoMatte240K layout)")
            out += [MattingClip(FrameSequence(c / "fgr"), FrameSequence(c / "pha", grey=True)) for c in subs]
    return out


def find_stills(paths: Sequence[str | os.PathLike], max_side: int) -> list[Still]:
    out: list[Still] = []
    for raw in paths:
        p = Path(os.fspath(raw)).expanduser()
        if p.is_dir() and _paired(p / "fgr", p / "pha"):
            alphas = {a.stem: a for a in _images(p / "pha")}
            out += [Still(f, alphas[f.stem], True, max_side) for f in _images(p / "fgr") if f.stem in alphas]
        else:
            out += [Still(s.image, s.alpha, False, max_side) for s in find_foregrounds([p]) if s.kind == "still"]
    return out


@dataclass(frozen=True)
class SegmentationItem:
    """A segmentation image (one frame) or video: frames and binary masks."""

    image: FrameSequence
    mask: FrameSequence

    def __len__(self) -> int:
        return min(len(self.image), len(self.mask))


def find_segmentation(paths: Sequence[str | os.PathLike]) -> list[SegmentationItem]:
    out: list[SegmentationItem] = []
    for raw in paths:
        p = Path(os.fspath(raw)).expanduser()
        if (p / "JPEGImages").is_dir() and (p / "Annotations").is_dir():
            for seq in sorted((p / "JPEGImages").iterdir(), key=lambda e: natural_key(e.name)):
                ann = p / "Annotations" / seq.name
                if seq.is_dir() and ann.is_dir():
                    out.append(SegmentationItem(FrameSequence(seq), FrameSequence(ann, grey=True)))
        elif (p / "images").is_dir() and (p / "masks").is_dir():
            masks = {m.stem: m for m in _images(p / "masks")}
            out += [
                SegmentationItem(_Single(i), _Single(masks[i.stem], grey=True))
                for i in _images(p / "images")
                if i.stem in masks
            ]
        else:
            raise InputError(f"{p} is not segmentation data; give images/ + masks/ or JPEGImages/ + Annotations/")
    return out


@dataclass(frozen=True)
class _Single(FrameSequence):
    """One image as a one-frame sequence (image segmentation)."""

    def __len__(self) -> int:
        return 1

    def read(self, indices: Sequence[int]) -> list[np.ndarray]:
        img = (read_grey if self.grey else read_rgb)(self.path)
        return [img for _ in indices]


def find_background_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Still backgrounds: image files and folders of images."""
    out: list[Path] = []
    for raw in paths:
        p = Path(os.fspath(raw)).expanduser()
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += _images(p)
        else:
            raise InputError(f"background image {p} not found; check the path")
    return out


def find_background_videos(paths: Sequence[str | os.PathLike]) -> list[FrameSequence]:
    """Video backgrounds: video files, frame folders, or folders holding those."""
    out: list[FrameSequence] = []
    for raw in paths:
        p = Path(os.fspath(raw)).expanduser()
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            out.append(FrameSequence(p))
        elif p.is_dir() and _images(p):
            out.append(FrameSequence(p))
        elif p.is_dir():
            out += [
                FrameSequence(c)
                for c in sorted(p.iterdir(), key=lambda e: natural_key(e.name))
                if (c.is_dir() and _images(c)) or c.suffix.lower() in VIDEO_EXTENSIONS
            ]
        else:
            raise InputError(f"background video {p} not found; give a video file or a frame folder")
    return out
