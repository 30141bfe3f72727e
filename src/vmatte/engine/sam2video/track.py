"""``vmatte track``: clicks -> one SAM 2 mask per frame, written as PNGs (``--masks DIR`` reads them).

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

import torch

from ...errors import InputError
from ...models.sam2 import Sam2Video


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

    ``clicks`` / ``excludes``: ``(x, y, frame)`` points on / off the object (video pixels), checked
    and made into SAM 2 point prompts as ``vmatte matte --click`` makes them. The frame loop runs
    the tracker (:class:`~.source.Sam2Masks`, the mask source) and writes its masks with the
    ``mask-png`` writer. Returns the number of frames written.
    """
    from ...io.encoders import FrameData, MaskPngWriter, WriterOptions
    from ...io.reader import open_source
    from ..loop import run
    from ..mask_to_matte import MasksAsMattes
    from ..segment.clicks import as_clicks, point_prompts
    from .source import Sam2Masks

    pos, neg = as_clicks(clicks), as_clicks(excludes, negative=True)
    if not pos:
        raise InputError("vmatte track needs at least one --click on the object")
    schedule = point_prompts(input, pos, neg, fps)  # one object (id 1): its clicks at each frame
    out = Path(output_dir)
    with open_source(input, fps=fps) as src:
        info = src.info
        out.mkdir(parents=True, exist_ok=True)
        clash = sorted(p.name for p in out.glob("[0-9][0-9][0-9][0-9][0-9].png"))
        if clash and not overwrite:
            raise InputError(f"{out} already holds masks ({clash[0]} ...); give another folder or --overwrite")
        # the video's length caps SAM 2's object pointers on short clips, as the official predictor does
        source = Sam2Masks(model, schedule, device, "SAM 2", num_frames=info.num_frames)
        tmp = Path(tempfile.mkdtemp(prefix=".vmatte-track-", dir=out))
        try:
            writer = MaskPngWriter(out, tmp / "masks", info, WriterOptions(background=None, audio=False))
            writer.open()
            count = run(
                MasksAsMattes(source, (1,)),
                src,
                lambda r: writer.write(FrameData(r.index, r.image, None, r.alpha, None)),
                foreground=False,
            )
            writer.finish()
            for i in range(count):  # complete: the masks take their names
                os.replace(tmp / "masks" / f"{i:05d}.png", out / f"{i:05d}.png")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return count
