"""Backgrounds for the ``comp`` output: a colour, an image, or a looping video."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vmatte.errors import VmatteError

from .pixels import code_max
from .reader import IMAGE_EXTENSIONS, open_source, read_image_rgb

__all__ = ["Background", "COLOURS", "DEFAULT_BACKGROUND"]

COLOURS: dict[str, tuple[int, int, int]] = {
    "green": (0, 255, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "blue": (0, 0, 255),
    "red": (255, 0, 0),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
}
DEFAULT_BACKGROUND = "green"

_HINT = "use a colour name (green, black, white, blue), #rrggbb, r,g,b (0-255) or the path of an image or video"


def _to_float_rgb(img: np.ndarray) -> np.ndarray:
    scale = 1.0 / code_max(img.dtype)
    return np.multiply(img, scale, dtype=np.float32)


def _cover(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``img`` to cover ``height`` x ``width`` (keeping its aspect) and centre-crop."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    scale = max(width / w, height / h)
    nw, nh = max(width, math.ceil(w * scale - 1e-6)), max(height, math.ceil(h * scale - 1e-6))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    y, x = (nh - height) // 2, (nw - width) // 2
    return img[y : y + height, x : x + width]


@dataclass
class Background:
    """Parsed ``--bg``: ``kind`` is "colour", "image" or "video"."""

    kind: str
    colour: tuple[float, float, float] | None = None  # RGB in [0, 1] for kind == "colour"
    path: Path | None = None  # for "image" / "video"
    spec: str = ""
    _cache_key: tuple | None = field(default=None, init=False, repr=False, compare=False)
    _cache: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _image: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _video: _LoopingVideo | None = field(default=None, init=False, repr=False, compare=False)

    @staticmethod
    def default() -> Background:
        return Background.parse(DEFAULT_BACKGROUND)

    @staticmethod
    def parse(spec: str) -> Background:
        """Parse a colour name, ``#rrggbb``/``#rgb``, ``r,g,b`` (0-255), an image or a video path.

        Image/video paths are opened now, so a bad file fails before any work is done."""
        if isinstance(spec, Background):
            return spec
        text = str(spec).strip()
        if not text:
            raise VmatteError(f"empty background; {_HINT}")
        colour = Background._colour(text)
        if colour is not None:
            return colour
        path = Path(text).expanduser()
        if path.exists():
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
                img = read_image_rgb(path)
                if img is None:
                    raise VmatteError(f"cannot read background image {path}; give a valid PNG/JPEG/TIFF/BMP")
                bg = Background("image", path=path, spec=text)
                bg._image = _to_float_rgb(img)
                return bg
            # Anything else that exists: a video (or an image folder). open_source validates it
            # and raises InputError (a VmatteError) with the fix if it is unusable.
            with open_source(path):
                pass
            return Background("video", path=path, spec=text)
        if "/" in text or "\\" in text or path.suffix:
            raise VmatteError(f"background file not found: {path}; check the path ({_HINT})")
        raise VmatteError(f"unknown background {text!r}; {_HINT}")

    @staticmethod
    def parse_colour(spec: str) -> Background:
        """A colour only (name, ``#rrggbb``, ``r,g,b``): never looks at the file system, so a caller
        that must not read arbitrary paths (the web app) learns nothing about them from the error."""
        colour = Background._colour(str(spec).strip())
        if colour is None:
            raise VmatteError(
                "the background must be a colour: a name (green, black, ...), #rrggbb or r,g,b; "
                "for a picture or video, upload it"
            )
        return colour

    @staticmethod
    def _colour(text: str) -> Background | None:
        low = text.lower()
        if low in COLOURS:
            return Background("colour", tuple(c / 255.0 for c in COLOURS[low]), spec=text)
        m = re.fullmatch(r"#([0-9a-f]{6}|[0-9a-f]{3})", low)
        if m:
            hx = m.group(1)
            if len(hx) == 3:
                hx = "".join(ch * 2 for ch in hx)
            rgb = tuple(int(hx[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
            return Background("colour", rgb, spec=text)
        if re.fullmatch(r"\s*\d+\s*,\s*\d+\s*,\s*\d+\s*", text):
            vals = [int(v) for v in text.split(",")]
            if any(v > 255 for v in vals):
                raise VmatteError(f"background colour {text!r} has a value above 255; {_HINT}")
            return Background("colour", tuple(v / 255.0 for v in vals), spec=text)
        return None

    def frame(self, index: int, height: int, width: int) -> np.ndarray:
        """Background for output frame ``index``: HxWx3 float32 RGB in [0, 1] (read-only; cached)."""
        if self.kind == "colour":
            key = ("colour", height, width)
            if self._cache_key != key:
                arr = np.empty((height, width, 3), np.float32)
                arr[:] = np.asarray(self.colour, np.float32)
                self._set_cache(key, arr)
            return self._cache
        if self.kind == "image":
            key = ("image", height, width)
            if self._cache_key != key:
                if self._image is None:
                    img = read_image_rgb(self.path)
                    if img is None:
                        raise VmatteError(f"cannot read background image {self.path}; give a valid image")
                    self._image = _to_float_rgb(img)
                self._set_cache(key, np.ascontiguousarray(_cover(self._image, height, width)))
            return self._cache
        if self.kind == "video":
            key = ("video", index, height, width)
            if self._cache_key != key:
                if self._video is None:
                    self._video = _LoopingVideo(self.path)
                img = self._video.get(index)
                self._set_cache(key, np.ascontiguousarray(_cover(_to_float_rgb(img), height, width)))
            return self._cache
        raise ValueError(f"unknown background kind {self.kind!r}")

    def _set_cache(self, key: tuple, arr: np.ndarray) -> None:
        arr.flags.writeable = False
        self._cache_key, self._cache = key, arr

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None


class _LoopingVideo:
    """Frame ``i`` of a video that repeats forever; streams (never holds more than one frame)."""

    def __init__(self, path: Path):
        self._path = path
        self._length: int | None = None  # known after the first full pass
        self._src = None
        self._it = None
        self._pos = 0  # index of the next frame the iterator yields
        self._last: tuple[int, np.ndarray] | None = None
        self._restart()

    def _restart(self) -> None:
        self.close()
        self._src = open_source(self._path)
        self._it = iter(self._src)
        self._pos = 0

    def get(self, index: int) -> np.ndarray:
        target = index % self._length if self._length else index
        if self._last is not None and self._last[0] == target:
            return self._last[1]
        if target < self._pos:
            self._restart()
        while True:
            try:
                frame = next(self._it)
            except StopIteration:
                if self._pos == 0:
                    raise VmatteError(f"background video {self._path} has no frames; choose another --bg") from None
                self._length = self._pos
                target = index % self._length
                self._restart()
                continue
            self._pos += 1
            if self._pos - 1 == target:
                self._last = (target, frame.image)
                return frame.image

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None
            self._it = None
