"""What every input source gives: :class:`VideoInfo`, :class:`Frame` and the :class:`VideoSource` base.

Apart from :mod:`vmatte.io.reader` (video files, image folders) so that the plate source
(:mod:`vmatte.io.sequence`), which the reader opens, builds on them without an import cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Frame", "VideoInfo", "VideoSource"]


@dataclass(frozen=True)
class VideoInfo:
    """What the engine and the writers need to know about an input."""

    path: Path
    width: int  # display width, AFTER applying rotation
    height: int  # display height, after rotation
    fps: Fraction  # average frame rate (image folders: the fps the user gave, default 25)
    num_frames: int | None  # best estimate (container header or count of images); None if unknown
    rotation: int  # clockwise degrees (0/90/180/270) applied to the stored frames to make them upright
    bit_depth: int  # 8 for 8-bit sources, 10/12/16 for high-bit-depth ones
    has_audio: bool
    is_image_sequence: bool
    codec: str  # e.g. "h264", or "png" for image folders
    # Time (s) of the first video frame in the source's own timeline. Frame.time is relative to
    # it; the writers use it to line the source's audio up with the output video (which starts
    # at 0). Extra field with a default, so positional construction with the fields above works.
    start_time: float = 0.0
    # EXR/DPX plates: colour space, frame numbers, files (a vmatte.io.sequence.PlateInfo); None otherwise.
    plate: Any = None  # a PlateInfo (not imported here: the plate source imports this module)

    @property
    def dtype(self) -> np.dtype:
        """dtype of ``Frame.image``: uint8 for 8-bit sources, uint16 otherwise."""
        return np.dtype(np.uint8 if self.bit_depth <= 8 else np.uint16)


@dataclass
class Frame:
    """One decoded frame, and what the run's mask source says about it (:mod:`vmatte.engine.loop`)."""

    index: int  # position in the source, from 0 (a plate's frame numbers are in VideoInfo.plate)
    image: np.ndarray  # HxWx3 RGB, uint8 for 8-bit sources, uint16 (full 0..65535 scale) for >8-bit
    time: float  # seconds from the first frame
    plate: np.ndarray | None = None  # EXR/DPX: HxWx3 float32 in the plate's own colour space (image: for the network)
    # The targets' masks on this frame (target id -> HxW float32 in [0, 1]), put here by the run's mask
    # source (a --masks folder, the SAM 2 tracker, rvm-target) before the model sees the frame.
    masks: dict[int, np.ndarray] | None = None
    # The mask source's confidence per target, where it has one: SAM 2's {"iou": its predicted IoU,
    # "object_score": its object-score logit (> 0: the target is in the frame; NaN: not started yet)}.
    mask_scores: dict[int, dict[str, float]] | None = None


def _to_fraction(fps: float | Fraction | None) -> Fraction | None:
    if fps is None:
        return None
    if isinstance(fps, Fraction):
        return fps
    # Recognise the NTSC rates people type as decimals.
    for ntsc in (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)):
        if abs(float(fps) - float(ntsc)) < 5e-3:
            return ntsc
    return Fraction(fps).limit_denominator(1001)


class VideoSource:
    """A validated input. Context manager; iterate once to get :class:`Frame` objects in order."""

    info: VideoInfo

    def __init__(self) -> None:
        self._iterated = False
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise RuntimeError("VideoSource is closed")
        if self._iterated:
            raise RuntimeError("a VideoSource streams its frames once; open the input again to re-read it")
        self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info!r})"
