"""Clicks -> one SAM 2 mask per frame, written as label PNGs (``vmatte track``; ``--masks DIR`` reads them).

All clicks (and excludes) belong to one object; the clicks of the earliest frame start it, clicks
at later frames correct it there (keyframes). The masks are ``00000.png, 00001.png ...`` (uint8,
255 = the object, 0 = not), the layout ``vmatte matte --masks DIR`` takes, so the seeds' pipeline
is ``vmatte track clip.mp4 --click X,Y -o masks`` then ``vmatte matte clip.mp4 --masks masks
--model videomama -o out``. Files appear under their names only when every frame is done.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...errors import InputError, WeightsError
from ...io.pixels import to_uint8
from ...models.sam2 import Sam2Video
from .tracker import Prompt, Sam2VideoTracker


def load_video_model(
    spec: str, device: torch.device | str = "cpu", allow_download: bool = True
) -> tuple[Sam2Video, str]:
    """(model, description) of a SAM 2 / 2.1 checkpoint: a name of ``vmatte weights list`` or a file;
    ``auto``: the first SAM 2 checkpoint in the cache. ``allow_download=False``: a name not cached is
    an error (the web app never starts a download)."""
    from ...models.sam2 import sam2_video_from_state_dict
    from ...weights import SAM_LICENSE, SEGMENTERS, cached_segmenters, resolve_segmenter

    if spec == "auto":
        cached = [n for n in cached_segmenters(prefer_gpu=torch.device(device).type == "cuda") if n.startswith("sam2")]
        if not cached:
            names = ", ".join(n for n in SEGMENTERS if n.startswith("sam2"))
            raise WeightsError(
                f"no SAM 2 checkpoint in the cache; run `vmatte weights fetch sam2.1-hiera-tiny` "
                f"(or {names}) or pass the checkpoint (--tracker / --weights / --segmenter PATH)"
            )
        spec = cached[0]
    sd, source, label = resolve_segmenter(spec, allow_download=allow_download)
    if "image_encoder.trunk.patch_embed.proj.weight" not in sd:
        raise WeightsError(f"--segmenter {spec}: video tracking needs a SAM 2 / 2.1 checkpoint (sam2*_hiera_*.pt)")
    model = sam2_video_from_state_dict(sd, source).to(device)
    return model, f"{label} video tracker (weights: {source}, {SAM_LICENSE})"


def track_masks(
    input: str | os.PathLike,
    output_dir: str | os.PathLike,
    clicks: Sequence,
    excludes: Sequence = (),
    *,
    model: Sam2Video,
    fps: float | None = None,
    overwrite: bool = False,
    device: torch.device | str = "cpu",
) -> int:
    """Track the clicked object through ``input``; write one mask per frame into ``output_dir``.

    ``clicks`` / ``excludes``: ``(x, y, frame)`` points on / off the object (video pixels). Returns
    the number of frames written.
    """
    from ...io.reader import open_source

    points: dict[int, list[tuple[float, float, int]]] = {}
    for x, y, f in map(_xyf, clicks):
        points.setdefault(int(f), []).append((x, y, 1))
    for x, y, f in map(_xyf, excludes):
        if int(f) not in points:
            raise InputError(f"--exclude {x},{y}@{f}: no --click at frame {f}; an exclude cuts a clicked object")
        points[int(f)].append((x, y, 0))
    if not points:
        raise InputError("vmatte track needs at least one --click on the object")
    out = Path(output_dir)
    with open_source(input, fps=fps) as src:
        info = src.info
        n = info.num_frames
        out.mkdir(parents=True, exist_ok=True)
        clash = sorted(p.name for p in out.glob("[0-9][0-9][0-9][0-9][0-9].png"))
        if clash and not overwrite:
            raise InputError(f"{out} already holds masks ({clash[0]} ...); give another folder or --overwrite")
        if n and max(points) >= n:
            raise InputError(f"a click at frame {max(points)}, but the video has {n} frames")
        tracker = None
        tmp = Path(tempfile.mkdtemp(prefix=".vmatte-track-", dir=out))
        try:
            count = 0
            for frame in src:
                rgb = to_uint8(frame.image)  # a >8-bit source: SAM 2 sees 8 bits
                if tracker is None:
                    tracker = Sam2VideoTracker(model, rgb.shape[:2], num_frames=n, device=device)
                    for f, pts in sorted(points.items()):
                        xy = np.array([(x, y) for x, y, _ in pts], np.float32)
                        tracker.add_prompt(f, 1, Prompt(points=xy, labels=np.array([lab for *_, lab in pts])))
                r = tracker.step(np.ascontiguousarray(rgb))
                mask = (r.logits[0] > 0).cpu().numpy().astype(np.uint8) * 255
                Image.fromarray(mask).save(tmp / f"{count:05d}.png")
                count += 1
            for i in range(count):  # complete: the masks take their names
                os.replace(tmp / f"{i:05d}.png", out / f"{i:05d}.png")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return count


def _xyf(point) -> tuple[float, float, int]:
    """A :class:`~vmatte.engine.segment.clicks.Click` or an ``(x, y, frame)`` tuple."""
    if hasattr(point, "x"):
        return point.x, point.y, point.frame
    x, y, f = point[:3]
    return x, y, f
