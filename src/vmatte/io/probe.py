"""Read our outputs back (tests, UI previews): decoded pixels with their alpha, and a summary.

* :func:`read_rgba` yields each frame of an output **with its alpha**: the grey alpha mp4 as HxW
  uint8 (matte values, full 0..255 range), ProRes 4444 as HxWx4 uint16 (full 0..65535 scale),
  VP9 WebM with alpha as HxWx4 uint8, PNG folders as stored (HxW grey, HxWx3 RGB, HxWx4 RGBA,
  uint8 or uint16). Other videos come back as HxWx3 RGB.
* :func:`stream_summary` describes a file or a PNG folder without decoding pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .encoders import ALPHA_MP4_COMMENT
from .imagefile import imread
from .reader import IMAGE_EXTENSIONS, SWS_THREADS, natural_key

__all__ = ["read_rgba", "stream_summary", "ALPHA_MP4_COMMENT"]


# Limited-range luma (16..235) -> full-range 0..255, exactly rounded. swscale's default fast path
# can be off by one level; a matte deserves the exact inverse of what the writer stored.
_TV_TO_PC = np.clip(np.round((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


def _images(folder: Path) -> list[Path]:
    names = [
        n for n in os.listdir(folder) if not n.startswith(".") and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
    ]
    names.sort(key=natural_key)
    return [folder / n for n in names]


def _read_stored(path: Path) -> np.ndarray:
    img = imread(path)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def _alpha_mode(stream) -> bool:
    md = stream.metadata or {}
    return str(md.get("alpha_mode", md.get("ALPHA_MODE", ""))).strip() == "1"


def _has_alpha_fmt(pix_fmt: str | None) -> bool:
    name = pix_fmt or ""
    return any(k in name for k in ("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya8", "ya16"))


def _bits(pix_fmt: str) -> int:
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except Exception:
        return 8


def _is_alpha_mp4(path: Path, container) -> bool:
    comment = str((container.metadata or {}).get("comment", ""))
    return comment == ALPHA_MP4_COMMENT or path.stem.endswith("_alpha")


def _plane(frame: av.VideoFrame, i: int, dtype, w: int, h: int) -> np.ndarray:
    p = frame.planes[i]
    item = np.dtype(dtype).itemsize
    arr = np.frombuffer(p, dtype).reshape(-1, p.line_size // item)
    return arr[:h, :w]


def _rgba_from_frame(frame: av.VideoFrame) -> np.ndarray:
    """RGBA of a frame whose format has alpha, at its bit depth (uint8 or full-scale uint16)."""
    name = frame.format.name
    if _bits(name) <= 8:
        return frame.to_ndarray(format="rgba", threads=SWS_THREADS)
    rgba = frame.to_ndarray(format="rgba64le", threads=SWS_THREADS)
    if name.startswith("yuva"):
        # swscale shifts an N-bit alpha to 16 bits (4095 -> 65520); rescale from the plane itself.
        bits = _bits(name)
        a = _plane(frame, 3, np.uint16, frame.width, frame.height).astype(np.uint32)
        top = (1 << bits) - 1
        rgba[:, :, 3] = (a * 65535 + top // 2) // top
    return rgba


def read_rgba(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yield every frame of one of our outputs with its alpha (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        for f in _images(path):
            yield _read_stored(f)
        return
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        codec = v.codec_context.name
        if codec in ("vp9", "vp8") and _alpha_mode(v):
            # FFmpeg's native VP8/VP9 decoders ignore the alpha layer; libvpx's decoder reads the
            # Matroska BlockAdditional side data and returns yuva420p.
            dec = av.CodecContext.create("libvpx-vp9" if codec == "vp9" else "libvpx", "r")
            for pkt in c.demux(v):
                for frame in dec.decode(pkt if pkt.size else None):
                    yield (
                        _rgba_from_frame(frame)
                        if _has_alpha_fmt(frame.format.name)
                        else frame.to_ndarray(format="rgb24", threads=SWS_THREADS)
                    )
            return
        v.thread_type = "AUTO"
        grey = _is_alpha_mp4(path, c)
        for frame in c.decode(v):
            name = frame.format.name
            if _has_alpha_fmt(name):
                yield _rgba_from_frame(frame)
            elif grey and name in ("yuv420p", "yuvj420p", "yuv444p", "yuv422p", "gray"):
                y = _plane(frame, 0, np.uint8, frame.width, frame.height)
                full = name == "yuvj420p" or frame.color_range == 2
                yield y.copy() if full else _TV_TO_PC[y]
            elif grey:
                yield frame.to_ndarray(format="gray", threads=SWS_THREADS)
            else:
                yield frame.to_ndarray(format="rgb48le" if _bits(name) > 8 else "rgb24", threads=SWS_THREADS)


def stream_summary(path: str | os.PathLike) -> dict:
    """Facts about an output: frames, size, pixel format, codec, alpha, audio, fps, durations.

    For a PNG folder, ``fps`` and the durations are None."""
    path = Path(path)
    if path.is_dir():
        files = _images(path)
        first = _read_stored(files[0]) if files else None
        pix_fmt = None
        if first is not None:
            ch = 1 if first.ndim == 2 else first.shape[2]
            deep = first.dtype == np.uint16
            pix_fmt = {1: ("gray", "gray16le"), 3: ("rgb24", "rgb48le"), 4: ("rgba", "rgba64le")}[ch][deep]
        return {
            "frames": len(files),
            "width": int(first.shape[1]) if first is not None else 0,
            "height": int(first.shape[0]) if first is not None else 0,
            "pix_fmt": pix_fmt,
            "codec": files[0].suffix.lower().lstrip(".") if files else None,
            "has_alpha": bool(first is not None and first.ndim == 3 and first.shape[2] == 4),
            "has_audio": False,
            "fps": None,
            "audio_duration": None,
            "video_duration": None,
        }
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        cc = v.codec_context
        pix_fmt = cc.pix_fmt
        alpha = _has_alpha_fmt(pix_fmt)
        if _alpha_mode(v):
            alpha = True
            if pix_fmt == "yuv420p":
                pix_fmt = "yuva420p"
        frames = 0
        span = {"video": [None, None], "audio": [None, None]}
        streams = (v, a) if a is not None else (v,)
        for pkt in c.demux(*streams):
            if pkt.size == 0 or pkt.dts is None:
                continue
            kind = "video" if pkt.stream.index == v.index else "audio"
            if kind == "video":
                frames += 1
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            start = float(ts * pkt.time_base)
            end = float((ts + (pkt.duration or 0)) * pkt.time_base)
            lo, hi = span[kind]
            span[kind] = [start if lo is None else min(lo, start), end if hi is None else max(hi, end)]
        fps = v.average_rate or v.guessed_rate or v.base_rate
        fps = Fraction(fps) if fps else None
        vlo, vhi = span["video"]
        if vlo is not None and vhi is not None and vhi > vlo:
            vdur = vhi - vlo
        else:
            vdur = frames / float(fps) if fps else 0.0
        alo, ahi = span["audio"]
        adur = (ahi - max(alo, 0.0)) if (alo is not None and ahi is not None) else None
        return {
            "frames": frames,
            "width": cc.width,
            "height": cc.height,
            "pix_fmt": pix_fmt,
            "codec": cc.name,
            "has_alpha": alpha,
            "has_audio": a is not None,
            "fps": fps,
            "audio_duration": adur,
            "video_duration": vdur,
        }
