"""`vmatte track`: one SAM 2 mask per frame of a clicked object."""

from __future__ import annotations

import argparse
import sys

from . import common


def _add_track(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track",
        help="track a clicked object (any kind) with SAM 2: one mask PNG per frame",
        description="Track the object under --click through INPUT with SAM 2 / 2.1 (Apache-2.0 "
        "weights) and write OUTDIR/00000.png ... (255 = object), the masks that "
        "`vmatte matte INPUT --masks OUTDIR --model videomama` (or rvm) turns into mattes.",
    )
    p.add_argument("input", help="video file or folder of images")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the masks (created if missing)")
    p.add_argument(
        "--click",
        action="append",
        required=True,
        metavar="X,Y[@FRAME]",
        help="a point on the object (repeatable; clicks at a later frame correct the track there)",
    )
    p.add_argument("--exclude", action="append", metavar="X,Y[@FRAME]", help="a point NOT on the object")
    p.add_argument(
        "--segmenter",
        default="auto",
        metavar="NAME|PATH",
        help="SAM 2 checkpoint: auto (the first cached), a name from `vmatte weights list` or a file",
    )
    common.device(p)
    common.add(p, "fps")
    p.add_argument("--overwrite", action="store_true", help="replace masks already in OUTDIR")
    p.set_defaults(run=_run_track)


def _run_track(args: argparse.Namespace) -> int:
    from ..engine.device import resolve_device
    from ..engine.sam2video.masks import load_video_model
    from ..engine.sam2video.track import track_masks
    from ..engine.segment.clicks import parse_point

    clicks = [parse_point(s) for s in args.click]
    excludes = [parse_point(s, negative=True) for s in args.exclude or ()]
    device = resolve_device(args.device)
    model, description = load_video_model(args.segmenter, device)
    print(f"model: {description}", file=sys.stderr)
    n = track_masks(
        args.input, args.output, clicks, excludes, model=model, fps=args.fps, overwrite=args.overwrite, device=device
    )
    print(f"{n} masks in {args.output}", file=sys.stderr)
    return 0
