"""A plain H.264 clip (crf 18, yuv420p) from RGB frames, optionally with a tone track: the demo's
sample and the speed benchmark's inputs. Written under a temporary name beside ``path`` and renamed
when complete, so a clip at ``path`` is always whole."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 48000


def write_h264(
    path: str | Path, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int, *, tone_hz: float | None = None
) -> Path:
    """Encode RGB uint8 ``frames`` (``size`` = width, height) at ``fps`` into ``path``; ``tone_hz``: a
    stereo AAC sine of that pitch as long as the video (an audio track to carry over)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.vmatte-{secrets.token_hex(6)}.partial.mp4")
    try:
        with av.open(str(tmp), "w") as out:
            video = out.add_stream("libx264", rate=fps)
            video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
            video.options = {"crf": "18", "preset": "veryfast"}
            audio = None
            if tone_hz is not None:
                audio = out.add_stream("aac", rate=AUDIO_RATE)
                audio.layout = "stereo"
            count = 0
            for i, rgb in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                vf.pts, vf.time_base = i, Fraction(1, fps)
                out.mux(video.encode(vf))
                count = i + 1
            out.mux(video.encode())
            if audio is not None:
                _tone(out, audio, tone_hz, int(count / fps * AUDIO_RATE))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _tone(out, audio, hz: float, total: int, chunk: int = 1024) -> None:
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (start + np.arange(n)) / AUDIO_RATE
        tone = (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        af.sample_rate, af.pts = AUDIO_RATE, start
        out.mux(audio.encode(af))
    out.mux(audio.encode())
