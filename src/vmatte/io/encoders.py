"""Per-format writers used by :class:`vmatte.io.writers.OutputSet`.

Each writer writes into a temporary path (chosen by OutputSet) and never touches the final name;
OutputSet renames temporaries once every writer has finished. Writers are driven from one thread.

Pixel conversions shared by several writers (alpha to 8/16 bit, foreground to 8 bit, the
composite) are done at most once per frame in :class:`FrameData`, with OpenCV's saturating
``addWeighted`` as the fast float -> integer path (one multithreaded pass, rounds to nearest).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from vmatte.errors import InputError

from .audio import AudioCarrier
from .background import Background
from .reader import SWS_THREADS, VideoInfo

log = logging.getLogger("vmatte.io")

__all__ = [
    "AlphaH264Writer",
    "AlphaPng16Writer",
    "AlphaPngWriter",
    "CompH264Writer",
    "FgrH264Writer",
    "FrameData",
    "ProResWriter",
    "RgbaPngWriter",
    "WebmWriter",
    "Writer",
    "WriterOptions",
]

#: Container comment of the grey alpha mp4, so readers (probe.read_rgba) know Y is a matte.
ALPHA_MP4_COMMENT = "vmatte alpha matte: Y = alpha (BT.709 limited range), chroma neutral"

_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # level 1: ~3x faster than the default 3, ~10% bigger

# BT.709, limited ("TV") range: what editors and players assume for HD H.264/VP9/ProRes.
_BT709 = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709
_RANGE_TV = 1  # AVCOL_RANGE_MPEG


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, rounded and saturated in one OpenCV pass."""
    return cv2.addWeighted(a, 255.0, a, 0.0, 0.0, dtype=cv2.CV_8U)


def _to_uint16(a: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(a, 65535.0, a, 0.0, 0.0, dtype=cv2.CV_16U)


class FrameData:
    """The arrays of one output frame, with lazily computed (and cached) conversions."""

    def __init__(
        self,
        index: int,
        image: np.ndarray,
        fgr: np.ndarray | None,
        alpha: np.ndarray,
        background: Background,
        alpha_buf: np.ndarray | None = None,
    ):
        self.index = index
        self.image = image
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[:, :, 0]
        if alpha.ndim != 2:
            raise ValueError(f"alpha must be HxW, got shape {alpha.shape}")
        # fgr may be None when every requested format is alpha-only (the engine then skips it).
        if fgr is not None and (fgr.ndim != 3 or fgr.shape[2] != 3 or fgr.shape[:2] != alpha.shape):
            raise ValueError(f"fgr must be HxWx3 matching alpha {alpha.shape}, got {fgr.shape}")
        # Clip alpha once (models can overshoot [0, 1] slightly); everything below relies on it.
        if alpha_buf is None or alpha_buf.shape != alpha.shape:
            alpha_buf = np.empty(alpha.shape, np.float32)
        self.alpha = np.clip(alpha, 0.0, 1.0, out=alpha_buf)
        self.fgr = None if fgr is None else np.ascontiguousarray(fgr, dtype=np.float32)
        self.height, self.width = alpha.shape
        self._bg = background
        self._cache: dict[str, np.ndarray] = {}

    def _get(self, key: str, make) -> np.ndarray:
        arr = self._cache.get(key)
        if arr is None:
            arr = self._cache[key] = make()
        return arr

    @property
    def alpha_u8(self) -> np.ndarray:
        return self._get("alpha_u8", lambda: _to_uint8(self.alpha))

    @property
    def alpha_u16(self) -> np.ndarray:
        return self._get("alpha_u16", lambda: _to_uint16(self.alpha))

    @property
    def alpha_y(self) -> np.ndarray:
        """Alpha as limited-range luma: 0 -> 16, 1 -> 235."""
        return self._get("alpha_y", lambda: cv2.addWeighted(self.alpha, 219.0, self.alpha, 0.0, 16.0, dtype=cv2.CV_8U))

    @property
    def fgr_u8(self) -> np.ndarray:
        return self._get("fgr_u8", lambda: _to_uint8(self.fgr))

    @property
    def fgr_u16(self) -> np.ndarray:
        return self._get("fgr_u16", lambda: _to_uint16(self.fgr))

    @property
    def comp_u8(self) -> np.ndarray:
        def make() -> np.ndarray:
            bg = self._bg.frame(self.index, self.height, self.width)
            # fgr*a + bg*(1-a) == bg + a*(fgr-bg): two float passes, then one saturating cast.
            diff = cv2.subtract(self.fgr, bg)
            diff *= self.alpha[:, :, None]
            return cv2.addWeighted(diff, 255.0, bg, 255.0, 0.0, dtype=cv2.CV_8U)

        return self._get("comp_u8", make)

    @property
    def rgba_u8(self) -> np.ndarray:
        def make() -> np.ndarray:
            out = np.empty((self.height, self.width, 4), np.uint8)
            out[:, :, :3] = self.fgr_u8
            out[:, :, 3] = self.alpha_u8
            return out

        return self._get("rgba_u8", make)


@dataclass
class WriterOptions:
    background: Background
    audio: bool  # carry the source's audio (video-container outputs only)
    exr_compression: str = "zip"  # EXR outputs: zip, piz, dwaa or none (see vmatte.io.exr.COMPRESSIONS)
    metadata: dict = field(default_factory=dict)  # EXR header attributes (vmatte:model ...), set once known


class Writer:
    """Base class. ``final`` is where OutputSet will put the result; ``temp`` is where to write."""

    is_dir = False

    def __init__(self, final: Path, temp: Path, info: VideoInfo, options: WriterOptions):
        self.final = final
        self.temp = temp
        self.info = info
        self.options = options
        self.frames = 0

    def open(self) -> None:
        raise NotImplementedError

    def write(self, data: FrameData) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Flush everything: afterwards ``temp`` holds the complete output."""
        raise NotImplementedError

    def discard(self) -> None:
        """Release resources and delete ``temp``; never raises."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# PNG folders
# --------------------------------------------------------------------------------------------


class _PngWriter(Writer):
    is_dir = True

    def open(self) -> None:
        os.mkdir(self.temp)

    def _array(self, data: FrameData) -> np.ndarray:
        raise NotImplementedError

    def write(self, data: FrameData) -> None:
        ok, buf = cv2.imencode(".png", self._array(data), _PNG_PARAMS)
        if not ok:  # pragma: no cover - OpenCV only fails on unsupported arrays
            raise RuntimeError(f"OpenCV could not encode frame {data.index} as PNG")
        # Plain file I/O (not cv2.imwrite) so a full disk raises OSError(ENOSPC) we can report.
        with open(self.temp / f"{data.index:05d}.png", "wb") as f:
            f.write(buf)
        self.frames += 1

    def finish(self) -> None:
        pass

    def discard(self) -> None:
        import shutil

        shutil.rmtree(self.temp, ignore_errors=True)


class AlphaPngWriter(_PngWriter):
    def _array(self, data: FrameData) -> np.ndarray:
        return data.alpha_u8


class AlphaPng16Writer(_PngWriter):
    def _array(self, data: FrameData) -> np.ndarray:
        return data.alpha_u16


class MaskPngWriter(_PngWriter):
    """A hard mask per frame (255 where alpha >= 1/2, else 0): what a tracker made of the target, in the
    layout ``--masks DIR`` and other tools read."""

    def _array(self, data: FrameData) -> np.ndarray:
        return np.where(data.alpha >= 0.5, np.uint8(255), np.uint8(0))


class RgbaPngWriter(_PngWriter):
    def _array(self, data: FrameData) -> np.ndarray:
        return cv2.cvtColor(data.rgba_u8, cv2.COLOR_RGBA2BGRA)  # OpenCV writes BGRA order


# --------------------------------------------------------------------------------------------
# Video containers
# --------------------------------------------------------------------------------------------


class _AVWriter(Writer):
    container = "mp4"
    codec = "libx264"
    pix_fmt = "yuv420p"
    codec_options: dict[str, str] = {}
    even = False  # pad to even width/height (4:2:0 H.264)

    def open(self) -> None:
        info = self.info
        self._w, self._h = info.width, info.height
        if self.even:
            self._w += self._w % 2
            self._h += self._h % 2
        fps = Fraction(info.fps)
        self._fps = fps
        self._tb = Fraction(fps.denominator, fps.numerator)
        self._out = av.open(str(self.temp), "w", format=self.container)
        try:
            vs = self._out.add_stream(self.codec, rate=fps)
            vs.width, vs.height, vs.pix_fmt = self._w, self._h, self.pix_fmt
            vs.time_base = self._tb
            vs.options = dict(self.codec_options)
            cc = vs.codec_context
            cc.color_primaries = _BT709
            cc.color_trc = _BT709
            cc.colorspace = _BT709
            cc.color_range = _RANGE_TV
            self._vs = vs
            self._last_index = -1
            self._reformatter = VideoReformatter()
            self._audio: AudioCarrier | None = None
            if self.options.audio:
                try:
                    self._audio = AudioCarrier(info.path, self._out, self.container, info.start_time)
                except InputError:
                    raise
                except Exception as e:  # keep the matte even if the audio cannot be carried
                    log.warning("not copying audio from %s into %s: %s", info.path, self.final.name, e)
                    self._audio = None
        except BaseException:
            self._out.close()
            raise

    def _frame(self, data: FrameData) -> av.VideoFrame:
        raise NotImplementedError

    def _pad(self, arr: np.ndarray) -> np.ndarray:
        """H.264 4:2:0 needs even dimensions: replicate the last row/column when odd."""
        h, w = arr.shape[:2]
        if (h, w) == (self._h, self._w):
            return arr
        out = np.empty((self._h, self._w) + arr.shape[2:], arr.dtype)
        out[:h, :w] = arr
        if self._h > h:
            out[h:, :w] = arr[h - 1 : h]
        if self._w > w:
            out[:, w:] = out[:, w - 1 : w]
        return out

    def _rgb_frame(self, rgb: np.ndarray, fmt: str = "rgb24") -> av.VideoFrame:
        frame = av.VideoFrame.from_ndarray(self._pad(rgb), format=fmt)
        return self._reformatter.reformat(
            frame, format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG", threads=SWS_THREADS
        )

    def write(self, data: FrameData) -> None:
        frame = self._frame(data)
        frame.pts = data.index
        frame.time_base = self._tb
        self._out.mux(self._vs.encode(frame))
        self.frames += 1
        self._last_index = data.index
        if self._audio is not None:
            self._audio.pump((data.index + 1) / float(self._fps))

    def finish(self) -> None:
        self._out.mux(self._vs.encode(None))
        if self._audio is not None:
            end = (self._last_index + 1) / float(self._fps)
            self._audio.finish(end)
        self._out.close()

    def discard(self) -> None:
        audio = getattr(self, "_audio", None)
        if audio is not None:
            audio.close()
        out = getattr(self, "_out", None)
        if out is not None:
            try:
                out.close()
            except Exception:
                pass
        try:
            os.unlink(self.temp)
        except OSError:
            pass


class _H264Writer(_AVWriter):
    container = "mp4"
    codec = "libx264"
    pix_fmt = "yuv420p"  # 4:2:0 8-bit: the H.264 flavour every editor, browser and phone decodes
    even = True
    # preset "veryfast": on 2 cores a textured 1080p stream encodes at ~12 fps with "medium",
    # ~19 with "faster" and ~32 with "veryfast", and the default outputs run three H.264 encoders
    # side by side. CRF keeps the quality constant; the faster preset only costs some file size.
    # CRF 18 is the usual "visually lossless" point for the colour outputs.
    codec_options = {"crf": "18", "preset": "veryfast"}


class AlphaH264Writer(_H264Writer):
    # CRF 14 (vs 18 for colour) so the matte survives the lossy codec: a matte is mostly flat 0/1
    # areas that cost a few KB per frame at any CRF, so the lower CRF is nearly free. Measured on
    # a 720p moving soft-edged matte: flat areas within 2 levels at CRF 14 (3 at 18, 6 at 23),
    # mean error 0.03 levels, and edge errors growing with the CRF.
    codec_options = {"crf": "14", "preset": "veryfast"}

    def open(self) -> None:
        super().open()
        self._out.metadata["comment"] = ALPHA_MP4_COMMENT
        # Grey in yuv420p: Y carries the matte (limited range, 16..235), chroma fixed at 128.
        self._buf = np.full((self._h * 3 // 2, self._w), 128, np.uint8)

    def _frame(self, data: FrameData) -> av.VideoFrame:
        self._buf[: self._h] = self._pad(data.alpha_y)
        frame = av.VideoFrame.from_ndarray(self._buf, format="yuv420p")
        frame.colorspace = _BT709
        frame.color_range = _RANGE_TV
        return frame


class FgrH264Writer(_H264Writer):
    def _frame(self, data: FrameData) -> av.VideoFrame:
        return self._rgb_frame(data.fgr_u8)


class CompH264Writer(_H264Writer):
    def _frame(self, data: FrameData) -> av.VideoFrame:
        return self._rgb_frame(data.comp_u8)


class ProResWriter(_AVWriter):
    container = "mov"
    codec = "prores_ks"
    pix_fmt = "yuva444p10le"
    # profile 4444 is the ProRes flavour with an alpha channel; vendor apl0 makes Apple's own
    # tools (Final Cut, QuickTime) accept the stream without complaint.
    codec_options = {"profile": "4444", "vendor": "apl0"}

    def _frame(self, data: FrameData) -> av.VideoFrame:
        rgba = np.empty((data.height, data.width, 4), np.uint16)
        rgba[:, :, :3] = data.fgr_u16
        rgba[:, :, 3] = data.alpha_u16
        return self._rgb_frame(rgba, "rgba64le")


class WebmWriter(_AVWriter):
    container = "webm"
    codec = "libvpx-vp9"
    pix_fmt = "yuva420p"  # libvpx-vp9 encodes A as a second stream, stored as Matroska BlockAdditional
    # Constant quality (b=0 + crf 20); "good" deadline with cpu-used 5 and row-mt is the fast end
    # of libvpx's quality modes (~15 fps at 1080p on 2 cores with the alpha layer).
    codec_options = {"crf": "20", "b": "0", "deadline": "good", "cpu-used": "5", "row-mt": "1"}

    def _frame(self, data: FrameData) -> av.VideoFrame:
        return self._rgb_frame(data.rgba_u8, "rgba")
