"""``vmatte demo``: make a sample clip from a photo that scikit-image ships, matte it, show the outputs.

Nothing is downloaded and nothing outside the installed packages is read: the clip is the
astronaut portrait (public domain, NASA) sliding over a panning background, with a tone track
so the audio carry-over can be heard in the outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from .errors import VmatteError

SIZE = (640, 360)  # width, height
FPS = 24
DEMO_FORMATS = ("alpha", "fgr", "comp", "prores", "webm")


def _photos() -> tuple[np.ndarray, np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        raise VmatteError("the demo needs scikit-image for its sample photo; pip install scikit-image") from None
    return data.astronaut(), data.coffee()


def sample_frames(frames: int):
    """Yield RGB uint8 frames: the portrait moves (slide + slight zoom) over a panning background."""
    w, h = SIZE
    person, backdrop = _photos()
    backdrop = cv2.resize(backdrop, (int(backdrop.shape[1] * h * 1.2 / backdrop.shape[0]), int(h * 1.2)))
    side = int(h * 0.95)
    # Feathered window so the portrait blends into the background instead of a hard rectangle.
    ramp = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32)
    window = np.clip(np.minimum.outer(ramp, ramp) / 24.0, 0, 1)[..., None]
    for t in range(frames):
        phase = t / max(frames - 1, 1)
        x0 = int((backdrop.shape[1] - w) * phase)
        frame = backdrop[:h, x0 : x0 + w].astype(np.float32)
        scale = 1.0 + 0.06 * np.sin(2 * np.pi * phase)
        s = int(side * scale) // 2 * 2
        p = cv2.resize(person, (s, s), interpolation=cv2.INTER_AREA).astype(np.float32)
        a = cv2.resize(window, (s, s))[..., None]
        px = int((w - s) / 2 + 0.3 * w * np.sin(2 * np.pi * phase))
        py = h - s + 8
        # Paste, clipping to the frame.
        fx0, fy0, fx1, fy1 = max(px, 0), max(py, 0), min(px + s, w), min(py + s, h)
        sub_p = p[fy0 - py : fy1 - py, fx0 - px : fx1 - px]
        sub_a = a[fy0 - py : fy1 - py, fx0 - px : fx1 - px]
        frame[fy0:fy1, fx0:fx1] = sub_p * sub_a + frame[fy0:fy1, fx0:fx1] * (1 - sub_a)
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


MAX_FRAMES = 10_000  # 400 s of sample clip: more is a typo


def make_sample(path: Path, frames: int = 72) -> Path:
    """Write the sample clip (H.264 + AAC tone) to ``path`` and return it."""
    from .io.clip import write_h264

    return write_h264(path, sample_frames(frames), SIZE, FPS, tone_hz=440.0)


def run_demo(outdir: Path, frames: int = 72) -> None:
    from .io.writers import prepare_output_dir
    from .matte import matte

    if not 1 <= frames <= MAX_FRAMES:
        raise VmatteError(f"--frames must be 1..{MAX_FRAMES}, got {frames}")
    prepare_output_dir(outdir, "demo folder", "--output")
    sample = make_sample(outdir / "sample.mp4", frames)
    print(f"sample clip: {sample} ({frames} frames, {SIZE[0]}x{SIZE[1]}, {FPS} fps)", file=sys.stderr)
    result = matte(sample, outdir, model="auto", formats=DEMO_FORMATS, overwrite=True, progress=True)
    print(f"matted {result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} frames/s). Outputs:")
    for name, path in result.outputs.items():
        print(f"  {name:<7} {path}")
    print("Next: vmatte matte YOUR_VIDEO -o OUTDIR   (vmatte formats lists the output formats)")
