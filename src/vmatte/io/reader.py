"""Streaming video / image-folder reader.

``open_source(path)`` validates the input up front (it exists, FFmpeg can demux it, it has a video
stream, it is not truncated as far as the container index can tell, and the first frame decodes)
and returns a :class:`VideoSource`. Iterating the source yields :class:`Frame` objects one at a
time, upright (display rotation applied) and in RGB, without ever loading the whole video.

Every problem the user can fix is raised as :class:`~vmatte.errors.InputError` with a one-line
message; raw PyAV/OS exceptions never escape for bad input.
"""

from __future__ import annotations

import errno
import itertools
import math
import os
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.error
import cv2
import numpy as np

from vmatte.errors import InputError

from .imagefile import imread
from .source import Frame, VideoInfo, VideoSource, _to_fraction  # noqa: F401 - re-exported (the reader's API)

__all__ = [
    "IMAGE_EXTENSIONS",
    "Frame",
    "ImageSequenceSource",
    "VideoFileSource",
    "VideoInfo",
    "VideoSource",
    "natural_key",
    "open_source",
]

#: Extensions recognised as frames in an image folder (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DEFAULT_IMAGE_FPS = 25

# swscale threads. FFmpeg 8's threaded swscale (as bundled with PyAV 18) intermittently corrupted
# rows at its slice boundaries when converting rgba64le -> yuva444p10le (the ProRes writer's input)
# at widths that are not a multiple of 32: e.g. alpha 0.5 written into x=0..7 of rows 16, 32, ...
# of a 66-pixel-wide frame, in anywhere from 1% to 100% of frames depending on machine load.
# Single-threaded conversion was always right and costs < 3 ms per 1080p frame, so every
# pixel-format conversion in vmatte.io (reader included, as a precaution) uses one thread.
SWS_THREADS = 1

# Exceptions PyAV/FFmpeg/the OS raise for unreadable input. av.error.FFmpegError covers the
# av-specific classes; OSError covers plain I/O failures (EIO, permission, ...).
_AV_ERRORS = (av.error.FFmpegError, OSError, EOFError, ValueError, UnicodeDecodeError)


def natural_key(name: str) -> tuple:
    """Sort key putting ``frame2`` before ``frame10`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name.lower())
    # re.split with a capture group alternates text, number, text, ... so positions line up.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)) + (name,)


MAX_FPS = 1000  # a frame rate above this is a typo; FFmpeg's time bases overflow long before 1e300


def open_source(
    path: str | os.PathLike, fps: float | None = None, *, frames: str | None = None, colorspace: str | None = None
) -> VideoSource:
    """Open a video file, an image folder or an EXR/DPX plate sequence for streaming.

    ``fps`` is the frame rate of an image folder (default 25) or plate (default: the EXR header's,
    else 24); video files use their own rate and ignore it. Plates only (see
    :mod:`vmatte.io.sequence`): ``frames`` a range such as ``"1001-1100"``, ``colorspace`` the
    plate's OCIO colour space. Raises :class:`InputError` with a one-line fix for any unusable input.
    """
    raw = os.fspath(path)
    if isinstance(raw, str) and re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", raw):
        raise InputError(
            f"{raw[:200]} is a URL; vmatte reads local files: download the video first, then give its path"
        )
    from .sequence import PlateSource, is_plate_input

    if is_plate_input(path):
        try:
            import fileseq  # noqa: F401
            import OpenEXR  # noqa: F401
            import PyOpenColorIO  # noqa: F401
        except ImportError as e:
            raise InputError(
                f"EXR/DPX plates need the vfx extra ({e.name} is missing): pip install 'vmatte[vfx]'"
            ) from None
        return PlateSource(path, fps, frames=frames, colorspace=colorspace)
    if frames is not None or colorspace is not None:
        raise InputError(f"--frames and --input-colorspace apply to EXR/DPX sequences; {path} is not one")
    p = Path(raw).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"input not found: {p}; check the path") from None
    except NotADirectoryError:
        raise InputError(f"input not found: {p} (a parent is a file); check the path") from None
    except PermissionError:
        raise InputError(f"cannot access input {p}: permission denied; check its permissions") from None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise InputError(
                f"the input path is too long for this system ({len(os.fsencode(p))} bytes, a name "
                f"over 255); rename the file or folder shorter"
            ) from None
        raise InputError(f"cannot access input {p}: {e.strerror}; check the path") from None
    if p.is_dir():
        return ImageSequenceSource(p, fps)
    if not p.is_file():
        raise InputError(f"input {p} is not a regular file or folder; give a video file or a folder of images")
    if st.st_size == 0:
        raise InputError(f"input {p} is empty (0 bytes); the copy or export failed, re-create the file")
    return VideoFileSource(p)


# --------------------------------------------------------------------------------------------
# Video files
# --------------------------------------------------------------------------------------------


def _parse_hms(text: str) -> float | None:
    """Parse a Matroska ``DURATION`` tag ("HH:MM:SS.nnnnnnnnn") to seconds."""
    m = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*", text or "")
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _bits_per_component(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    try:
        comps = av.VideoFormat(pix_fmt).components
    except Exception:  # unknown/hardware format names
        return 8
    bits = [c.bits for c in comps[:3]] or [8]
    return max(bits)


def _is_attached_picture(stream) -> bool:
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except Exception:
        return False


class VideoFileSource(VideoSource):
    """A video file decoded with PyAV. Use :func:`open_source` rather than this directly."""

    def __init__(self, path: Path):
        super().__init__()
        self._path = path
        self._name = str(path)
        try:
            self._container = av.open(self._name, metadata_errors="ignore")
        except PermissionError:
            raise InputError(f"cannot read input {path}: permission denied; check its permissions") from None
        except _AV_ERRORS as e:
            raise InputError(
                f"cannot read {path}: not a video FFmpeg understands, or the file is truncated/corrupt "
                f"({_reason(e)}); check the file or re-export it"
            ) from None
        try:
            self._setup()
        except BaseException:
            self._container.close()
            raise

    # -- open-time validation ----------------------------------------------------------------
    def _setup(self) -> None:
        c = self._container
        path = self._path
        videos = [s for s in c.streams.video if not _is_attached_picture(s)]
        if not c.streams:
            raise InputError(
                f"{path} contains no audio or video streams: it is not a video, or it is truncated/corrupt; "
                f"check the file or re-export it"
            )
        if not videos:
            if any(_is_attached_picture(s) for s in c.streams.video):
                raise InputError(
                    f"{path} is an audio file: its only picture is cover art, not a video; give a video file"
                )
            kinds = sorted({s.type for s in c.streams}) or ["nothing"]
            raise InputError(f"{path} has no video stream (it contains {', '.join(kinds)}); give a video file")
        self._stream = vs = videos[0]
        vs.thread_type = "AUTO"  # frame+slice threads: the decode keeps up with the model

        self._check_index_against_size()

        fps = vs.average_rate or vs.guessed_rate or vs.base_rate
        self._fps = Fraction(fps) if fps and fps > 0 else Fraction(DEFAULT_IMAGE_FPS)

        # Expected length, from the container header.
        self._header_frames = int(vs.frames or 0)
        self._expected_end: float | None = None  # end time (s) of the video track per the header
        tag = _parse_hms(vs.metadata.get("DURATION", "")) if vs.metadata else None
        if tag is not None:
            self._expected_end = tag
        elif vs.duration and vs.time_base:
            start = vs.start_time or 0
            self._expected_end = float((start + vs.duration) * vs.time_base)
        if self._header_frames > 0:
            est: int | None = self._header_frames
        else:
            secs = None
            if vs.duration and vs.time_base:
                secs = float(vs.duration * vs.time_base)
            elif tag is not None:
                secs = tag - float((vs.start_time or 0) * vs.time_base) if vs.time_base else tag
            elif c.duration and c.duration > 0:
                secs = c.duration / av.time_base  # whole file: may include longer audio
            est = int(round(secs * float(self._fps))) if secs and secs > 0 else None
        self._estimate = est

        # Decode the first frame now: proves the stream decodes, gives rotation and bit depth.
        self._decoded = 0  # frames produced by the decoder so far
        self._max_end = 0.0  # latest end time (s) of a decoded frame
        self._gen = self._decode()
        try:
            first = next(self._gen)
        except StopIteration:
            raise InputError(f"{path} contains no decodable video frames; re-export it") from None
        self._first = first

        pix_fmt = first.format.name if first.format else vs.codec_context.pix_fmt
        self._bit_depth = _bits_per_component(pix_fmt)
        self._ndformat = "rgb48le" if self._bit_depth > 8 else "rgb24"
        ccw = int(round((first.rotation or 0) / 90.0)) * 90 % 360  # counter-clockwise degrees
        self._rot_k = ccw // 90  # np.rot90 turns counter-clockwise too
        self._src_w, self._src_h = first.width, first.height
        w, h = (first.height, first.width) if self._rot_k % 2 else (first.width, first.height)
        self._t0 = first.time if first.time is not None else 0.0
        # HD sources that carry no colour matrix tag are BT.709 in practice (what players assume);
        # swscale would otherwise fall back to BT.601 and shift colours slightly.
        self._src_cs = "ITU709" if (first.colorspace == 2 and first.height >= 720) else None

        audio = [s for s in c.streams.audio]
        self.info = VideoInfo(
            path=path,
            width=w,
            height=h,
            fps=self._fps,
            num_frames=est,
            rotation=(360 - ccw) % 360,
            bit_depth=self._bit_depth,
            has_audio=bool(audio),
            is_image_sequence=False,
            codec=vs.codec_context.name,
            start_time=float(self._t0),
        )

    def _check_index_against_size(self) -> None:
        """Containers with a full sample index (mp4/mov) tell us where every packet lives. If any
        packet lies past the end of the file, the file was cut off (e.g. a faststart mp4 whose
        download stopped): refuse it now, before any work is done."""
        try:
            size = os.path.getsize(self._path)
        except OSError:
            return
        for s in list(self._container.streams.video) + list(self._container.streams.audio):
            try:
                entries = s.index_entries
                n = len(entries)
            except Exception:
                continue
            if n == 0:
                continue
            for e in entries:
                if e.pos >= 0 and e.size > 0 and e.pos + e.size > size:
                    raise InputError(
                        f"{self._path} is truncated (its index refers to data past the end of the "
                        f"file); re-download, re-export or repair it"
                    )

    # -- decoding ----------------------------------------------------------------------------
    def _corrupt(self, e: BaseException) -> InputError:
        return InputError(
            f"{self._path} is corrupt or truncated at frame {self._decoded} ({_reason(e)}); re-export or repair it"
        )

    def _decode(self) -> Iterator[av.VideoFrame]:
        vs = self._stream
        try:
            # demux() ends with an empty packet per stream, whose decode() flushes the decoder.
            for packet in self._container.demux(vs):
                for frame in packet.decode():
                    if frame.time is not None:
                        dur = (
                            float(frame.duration * frame.time_base)
                            if frame.duration and frame.time_base
                            else 1.0 / float(self._fps)
                        )
                        self._max_end = max(self._max_end, float(frame.time) + dur)
                    self._decoded += 1
                    yield frame
        except InputError:
            raise
        except _AV_ERRORS as e:
            raise self._corrupt(e) from None
        self._check_complete()

    def _check_complete(self) -> None:
        """After the last frame: refuse a stream that ended well before its header says."""
        n = self._decoded
        fps = float(self._fps)
        if self._header_frames <= 0 and self._expected_end is not None and n > 0:
            # Matroska/WebM: the header carries the track duration. Allow half a frame of slack
            # (and 2 ms for millisecond timestamps).
            missing = self._expected_end - self._max_end
            if missing > 0.5 / fps + 0.002:
                raise InputError(
                    f"{self._path} is truncated: it ends at {self._max_end:.3f}s but its header says "
                    f"{self._expected_end:.3f}s; re-download, re-export or repair it"
                )
        exp = self._estimate
        if exp and n < 0.9 * exp and exp - n > 2:
            raise InputError(
                f"{self._path} is truncated: only {n} of the {exp} frames in its header decode; "
                f"re-download, re-export or repair it"
            )

    def _to_image(self, frame: av.VideoFrame) -> np.ndarray:
        kw = {"threads": SWS_THREADS}
        if frame.width != self._src_w or frame.height != self._src_h:
            kw.update(width=self._src_w, height=self._src_h)  # mid-stream size change
        if self._src_cs is not None:
            kw["src_colorspace"] = self._src_cs
        try:
            img = frame.to_ndarray(format=self._ndformat, **kw)
        except _AV_ERRORS as e:
            raise self._corrupt(e) from None
        if self._rot_k:
            img = np.ascontiguousarray(np.rot90(img, self._rot_k))
        return img

    def _frames(self) -> Iterator[Frame]:
        fps = float(self._fps)
        first, self._first = self._first, None  # decoded at open: yield it, don't re-seek
        for index, f in enumerate(itertools.chain([first], self._gen)):
            t = float(f.time) - self._t0 if f.time is not None else index / fps
            yield Frame(index=index, image=self._to_image(f), time=t)

    def close(self) -> None:
        if not self._closed:
            super().close()
            try:
                self._gen.close()
            except Exception:
                pass
            self._container.close()


def _reason(e: BaseException) -> str:
    """Short reason text from a PyAV/OS exception (without the file name noise)."""
    msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
    log = getattr(e, "log", None)
    if log and isinstance(log, tuple) and len(log) > 1 and log[1]:
        try:
            detail = str(log[1][2]).strip()
            if detail:
                msg = f"{msg}: {detail}"
        except Exception:
            pass
    return " ".join(str(msg).split())


# --------------------------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------------------------


def read_image_rgb(path: Path) -> np.ndarray | None:
    """Read an image as HxWx3 RGB (uint8 or uint16); None when OpenCV cannot decode it.

    Greyscale is replicated to 3 channels and alpha dropped."""
    img = imread(path)
    if img is None:
        return None
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return None


class ImageSequenceSource(VideoSource):
    """A folder of images, read in natural order. Use :func:`open_source` rather than this."""

    def __init__(self, folder: Path, fps: float | None = None):
        super().__init__()
        self._folder = folder
        try:
            ok = fps is None or (math.isfinite(float(fps)) and 0 < float(fps) <= MAX_FPS)
        except (TypeError, ValueError, OverflowError):
            ok = False
        rate = _to_fraction(fps if fps is not None else DEFAULT_IMAGE_FPS) if ok else None
        if rate is None or not math.isfinite(float(rate)) or rate <= 0:
            raise InputError(
                f"invalid --fps {fps!r} for image folder {folder}; give a number above 0 and at most "
                f"{MAX_FPS} such as 25"
            )
        try:
            names = [
                e.name
                for e in os.scandir(folder)
                if not e.name.startswith(".")
                and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                and e.is_file()
            ]
        except PermissionError:
            raise InputError(f"cannot list folder {folder}: permission denied; check its permissions") from None
        except OSError as e:
            raise InputError(f"cannot list folder {folder}: {e.strerror}; check the path") from None
        if not names:
            raise InputError(
                f"folder {folder} contains no images ({', '.join(IMAGE_EXTENSIONS)}); "
                f"put the frames there or give a video file"
            )
        names.sort(key=natural_key)
        self._files = [folder / n for n in names]
        first = self._read(0)
        self._first: np.ndarray | None = first
        self._shape = first.shape
        self._dtype = first.dtype
        ext = self._files[0].suffix.lower().lstrip(".")
        codec = {"jpg": "jpeg", "jpeg": "jpeg", "tif": "tiff", "tiff": "tiff"}.get(ext, ext)
        self.info = VideoInfo(
            path=folder,
            width=first.shape[1],
            height=first.shape[0],
            fps=rate,
            num_frames=len(self._files),
            rotation=0,
            bit_depth=8 if first.dtype == np.uint8 else 16,
            has_audio=False,
            is_image_sequence=True,
            codec=codec,
            start_time=0.0,
        )

    def _read(self, i: int) -> np.ndarray:
        f = self._files[i]
        try:
            img = read_image_rgb(f)
        except cv2.error:
            img = None
        if img is None:
            if not f.exists():
                raise InputError(
                    f"image {f} (frame {i}) disappeared while reading; keep the folder unchanged during a run"
                )
            raise InputError(
                f"cannot read image {f} (frame {i}): corrupt or not an image; re-export it or remove it from the folder"
            )
        if img.dtype not in (np.uint8, np.uint16):
            raise InputError(f"image {f} has unsupported pixel type {img.dtype}; use 8- or 16-bit PNG/TIFF/JPEG frames")
        if i > 0 and (img.shape != self._shape or img.dtype != self._dtype):
            raise InputError(
                f"image {f} (frame {i}) is {img.shape[1]}x{img.shape[0]} {img.dtype}, but the first image is "
                f"{self._shape[1]}x{self._shape[0]} {self._dtype}; all frames must have the same size and bit depth"
            )
        return img

    def _frames(self) -> Iterator[Frame]:
        fps = float(self.info.fps)
        for i in range(len(self._files)):
            if i == 0 and self._first is not None:
                img, self._first = self._first, None
            else:
                img = self._read(i)
            yield Frame(index=i, image=img, time=i / fps)
