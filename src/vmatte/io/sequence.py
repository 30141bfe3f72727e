"""VFX plate sequences (OpenEXR, DPX): naming, frame ranges, and the source that streams them.

Names, as compositors write them (parsed with ``fileseq``):

- ``shot.####.exr``: one ``#`` per digit (Nuke's convention), ``shot.%04d.exr`` (printf),
- ``shot.1001-1100#.exr``: fileseq's own syntax, a frame range and ``#`` = 4 digits,
- a folder holding one EXR/DPX sequence, or one ``.exr``/``.dpx`` file (a one-frame plate).

Frame numbers are kept: ``Frame.index`` still counts 0, 1, 2 ... (the engine's clock) and
:class:`PlateInfo` maps each index to the plate's frame number, which the EXR/DPX writers use in
their file names. Frames missing inside the range (gaps) are reported in one warning and
skipped; the outputs have the same gaps.

Each frame reaches the engine as the network's display-referred image (uint16 RGB, see
:mod:`vmatte.io.colour`) and carries the plate itself (``Frame.plate``, float32 in the plate's
space) for the writers that return to it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vmatte.errors import InputError

from .colour import DPX_DEFAULT_ROLE, EXR_DEFAULT_SPACE, PlateColour, plate_colour
from .source import Frame, VideoInfo, VideoSource, _to_fraction

__all__ = ["PLATE_EXTENSIONS", "PlateInfo", "PlateSource", "find_plate", "is_plate_input"]

PLATE_EXTENSIONS = (".exr", ".dpx")
DEFAULT_PLATE_FPS = 24  # film/VFX rate, when neither --fps nor the EXR header says


@dataclass(frozen=True)
class PlateInfo:
    """What the writers need to give a plate's outputs back in its own terms."""

    kind: str  # "exr" or "dpx"
    colour: PlateColour
    frame_numbers: tuple[int, ...]  # plate frame number of each index
    padding: int  # digits of the frame numbers in the plate's names
    files: tuple[Path, ...]
    stem: str = "plate"  # the name before the frame number (shot.1001.exr -> shot): the outputs' default stem

    def number(self, index: int) -> int:
        return self.frame_numbers[index]


def is_plate_input(path: str | os.PathLike) -> bool:
    """True for an EXR/DPX file, a sequence pattern, or a folder whose frames are EXR/DPX."""
    text = os.fspath(path)
    p = Path(text).expanduser()
    try:
        if p.is_dir():
            return any(os.path.splitext(n)[1].lower() in PLATE_EXTENSIONS for n in os.listdir(p) if n[0] != ".")
    except OSError:  # a name too long, a folder we may not read: the reader says what is wrong
        return False
    return p.suffix.lower() in PLATE_EXTENSIONS  # a file, or a pattern such as shot.####.exr


def _fileseq_pattern(name: str) -> str:
    """Our accepted spellings -> a fileseq pattern. ``%04d`` and ``####`` without a range mean
    exactly that many digits (``@`` is one digit in fileseq); a range keeps fileseq's syntax."""
    name = re.sub(r"%0?(\d*)d", lambda m: "@" * max(1, int(m.group(1) or 1)), name)
    if re.search(r"\d+(-\d+)?(x\d+)?#", name):  # fileseq range syntax, e.g. shot.1001-1100#.exr
        return name
    return re.sub(r"#+", lambda m: "@" * len(m.group(0)), name)


def find_plate(path: str | os.PathLike, frames: str | None = None) -> tuple[list[tuple[int, Path]], list[int], int]:
    """``(frame number, file)`` pairs in order, the missing frame numbers (gaps), and the padding."""
    import fileseq

    text = os.fspath(path)
    p = Path(text).expanduser()
    wanted_range = None
    if p.is_dir():
        seqs = [s for s in fileseq.findSequencesOnDisk(str(p)) if s.extension().lower() in PLATE_EXTENSIONS]
        if len(seqs) != 1:
            found = ", ".join(str(s) for s in seqs) or "none"
            raise InputError(
                f"folder {p} must hold one EXR/DPX sequence (found: {found}); "
                f"give the sequence as a pattern such as {p}/shot.####.exr"
            )
        seq = seqs[0]
    elif p.is_file():
        seq = None
        pairs = [(_number_in(p.name), p)]
        padding = 4
    else:
        pattern = _fileseq_pattern(p.name)
        try:
            parsed = fileseq.FileSequence(str(p.parent / pattern))
            seq = fileseq.findSequenceOnDisk(
                str(p.parent / (parsed.basename() + parsed.padding() + parsed.extension())), strictPadding=True
            )
        except fileseq.FileSeqException:
            raise InputError(
                f"no frames match {text}; check the path and the pattern (shot.####.exr, "
                f"shot.%04d.exr or shot.1001-1100#.exr)"
            ) from None
        except ValueError as e:
            raise InputError(
                f"cannot parse the sequence {text}: {e}; use shot.####.exr, shot.%04d.exr or shot.1001-1100#.exr"
            ) from None
        if parsed.frameSet() is not None:
            wanted_range = parsed.frameSet()
    if seq is not None:
        on_disk = {int(f): Path(seq.frame(f)) for f in seq.frameSet() or ()}
        if not on_disk:
            raise InputError(f"no frames in {seq}; check the path")
        padding = len(seq.frame(seq.start())) - len(seq.basename()) - len(seq.extension()) - len(seq.dirname())
        pairs = sorted(on_disk.items())
    ranges = [r for r in (wanted_range, frame_set(frames)) if r is not None]
    present = {n for n, _ in pairs}
    if ranges:
        numbers = set(ranges[0])
        for r in ranges[1:]:
            numbers &= set(r)
        pairs = [(n, f) for n, f in pairs if n in numbers]
        if not pairs:
            raise InputError(
                f"none of the frames {_describe(sorted(numbers))} of {text} exist "
                f"(on disk: {_describe(sorted(present))}); check --frames"
            )
        lo, hi = min(numbers), max(numbers)
    else:
        lo, hi = pairs[0][0], pairs[-1][0]
    missing = sorted(n for n in range(lo, hi + 1) if n not in present and (not ranges or n in numbers))
    return pairs, missing, padding


def _plate_stem(first: Path, number: int) -> str:
    """``shot.1001.exr`` -> ``shot`` (separators before the number dropped)."""
    name = first.name[: -len(first.suffix)] if first.suffix else first.name
    m = re.match(rf"^(.*?)[._-]?0*{number}$", name)
    stem = (m.group(1) if m else name).rstrip("._-")
    return stem or first.parent.name or "plate"


def _number_in(name: str) -> int:
    m = re.search(r"(\d+)\.[^.]+$", name)
    return int(m.group(1)) if m else 0


def frame_set(frames: str | None):
    """``frames`` ("1001-1100", "1001-1100x2", "1001,1005-1010") as a fileseq FrameSet; None: all."""
    if frames is None:
        return None
    import fileseq

    try:
        return fileseq.FrameSet(frames.strip())
    except Exception:
        raise InputError(
            f"bad --frames {frames!r}; give a range such as 1001-1100 (or 1001-1100x2, 1001,1005-1010)"
        ) from None


def _describe(numbers: list[int]) -> str:
    import fileseq

    return str(fileseq.FrameSet(numbers)) if numbers else "none"


def _read_dpx(path: Path) -> np.ndarray:
    """A DPX frame as HxWx3 float32 code values / max code (0..1), through PyAV's dpx decoder."""
    import av

    try:
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            name = frame.format.name
            if name.startswith("gbrp") and name.endswith("le"):  # 10/12-bit planar: the codes as stored
                bits = frame.format.components[0].bits
                codes = frame.to_ndarray()  # HxWx3 in R, G, B order; no swscale pass (measured 2-4x faster)
                return np.multiply(codes, np.float32(1.0 / (2**bits - 1)), dtype=np.float32)
            # else (8-bit, 16-bit): through rgb48le, where FFmpeg scales by bit replication (/65535 = code/max)
            return frame.to_ndarray(format="rgb48le").astype(np.float32) / 65535.0
    except (av.error.FFmpegError, OSError, StopIteration, ValueError) as e:
        raise InputError(
            f"cannot read DPX {path} ({' '.join(str(e).split()) or type(e).__name__}); re-export it"
        ) from None


class PlateSource(VideoSource):
    """An EXR or DPX sequence. Use :func:`vmatte.io.reader.open_source` rather than this."""

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | None = None,
        frames: str | None = None,
        colorspace: str | None = None,
    ):
        super().__init__()
        pairs, missing, padding = find_plate(path, frames)
        kinds = {f.suffix.lower() for _, f in pairs}
        if len(kinds) != 1:
            raise InputError(f"{path} mixes {', '.join(sorted(kinds))} frames; give one sequence")
        kind = kinds.pop().lstrip(".")
        if missing:
            warnings.warn(
                f"{len(missing)} frame(s) missing in {path}: {_describe(missing)}; they are skipped "
                f"(the outputs have the same gaps)",
                stacklevel=2,
            )
        self._files = [f for _, f in pairs]
        default = EXR_DEFAULT_SPACE if kind == "exr" else DPX_DEFAULT_ROLE
        colour = plate_colour(colorspace, default)
        first = self._read(0)
        self._first: np.ndarray | None = first
        self._shape = first.shape
        rate = _to_fraction(fps) if fps is not None else self._header_fps or Fraction(DEFAULT_PLATE_FPS)
        if rate is None or rate <= 0:
            raise InputError(f"invalid --fps {fps!r}; give a positive number such as 24")
        self.plate = PlateInfo(
            kind,
            colour,
            tuple(n for n, _ in pairs),
            padding,
            tuple(self._files),
            _plate_stem(self._files[0], pairs[0][0]),
        )
        self.info = VideoInfo(
            path=Path(os.fspath(path)).expanduser(),
            width=first.shape[1],
            height=first.shape[0],
            fps=rate,
            num_frames=len(self._files),
            rotation=0,
            bit_depth=16,
            has_audio=False,
            is_image_sequence=True,
            codec=kind,
            start_time=0.0,
            plate=self.plate,
        )

    _header_fps: Fraction | None = None

    def _read(self, i: int) -> np.ndarray:
        f = self._files[i]
        if not f.exists():
            raise InputError(f"frame {f} disappeared while reading; keep the sequence unchanged during a run")
        if f.suffix.lower() == ".exr":
            img = read_exr_rgb(f, self if i == 0 else None)
        else:
            img = _read_dpx(f)
        if i > 0 and img.shape != self._shape:
            raise InputError(
                f"frame {f} is {img.shape[1]}x{img.shape[0]}, but the first frame is "
                f"{self._shape[1]}x{self._shape[0]}; all frames must have the same size"
            )
        return img

    def _frames(self) -> Iterator[Frame]:
        fps = float(self.info.fps)
        colour = self.plate.colour
        for i in range(len(self._files)):
            if i == 0 and self._first is not None:
                plate, self._first = self._first, None
            else:
                plate = self._read(i)
            display = colour.to_display(plate)
            # The network's input: clipped to [0, 1] and quantised to 16 bits like a 16-bit PNG.
            image = np.rint(np.clip(display, 0.0, 1.0) * 65535.0).astype(np.uint16)
            yield Frame(index=i, image=image, time=i / fps, plate=plate)


def read_exr_rgb(path: Path, source: PlateSource | None = None) -> np.ndarray:
    from .exr import read_exr

    exr = read_exr(path)
    if source is not None:  # first frame: its frame rate, if the renderer wrote one
        rate = exr.header.get("framesPerSecond")
        try:
            source._header_fps = Fraction(int(rate.n), int(rate.d)) if rate is not None else None
        except (AttributeError, ValueError, ZeroDivisionError):
            source._header_fps = None
    return exr.rgb
