"""`vmatte matte`: matte one video (or image folder / plate) into the chosen outputs."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..engine.options import MODEL, OUTPUT, PLATE, PROMPT, REFINE, TARGET
from ..errors import VmatteError
from . import common


def _add_matte(sub: argparse._SubParsersAction) -> None:
    from ..engine import registry
    from ..io.formats import DEFAULT_FORMATS, FORMATS

    p = sub.add_parser(
        "matte",
        help="matte a video (or image folder) into alpha/foreground/composite files",
        description="Matte INPUT and write the chosen formats into OUTDIR, or one format into FILE.",
    )
    p.add_argument("input", help="video file (mp4/mov/mkv/webm/avi...) or folder of images")
    p.add_argument("stray", nargs="?", help=argparse.SUPPRESS)  # `vmatte matte in.mp4 out.mp4`: told to use -o
    p.add_argument(
        "-o",
        "--output",
        metavar="OUTDIR|FILE",
        help="output folder (created if missing), or one file: out.mov (ProRes 4444 with alpha), "
        "out.webm (VP9 with alpha) or out.mp4 (the alpha matte; -f comp or fgr for those)",
    )
    common.model(p)
    p.add_argument(
        "-f",
        "--formats",
        help=f"comma-separated outputs (default: {','.join(DEFAULT_FORMATS)}, or what -o FILE's extension "
        f"names); one of: {', '.join(FORMATS)}",
    )
    common.add_group(p, OUTPUT)
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (only once the new ones are complete)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed or interrupted run from its last complete chunk (same input and "
        "options; " + ", ".join(s.name for s in registry.SPECS.values() if s.resumable) + ")",
    )
    p.add_argument("--chunk-frames", type=int, help=argparse.SUPPRESS)  # journal chunk length (tests)
    common.quiet(p)
    targets = p.add_argument_group("the target (what to matte; models that matte every person need none)")
    common.add_group(targets, TARGET)
    common.add_group(targets, PROMPT)
    common.add_group(p.add_argument_group("model settings (each names the models that take it)"), MODEL)
    common.add_group(
        p.add_argument_group(
            "VFX plates (INPUT: shot.####.exr, shot.%04d.exr, shot.1001-1100#.exr, a .dpx sequence or a folder of one)"
        ),
        PLATE,
    )
    common.add_group(p.add_argument_group("matte refinement (after any model)"), REFINE)
    p.set_defaults(run=_run_matte)


def _refine_settings(args: argparse.Namespace):
    from ..engine.refine import RefineSettings

    settings = RefineSettings(**common.given(args, REFINE))
    return settings if settings.active else None


def _run_matte(args: argparse.Namespace) -> int:
    from ..outfile import plan_output

    if args.stray is not None:
        raise VmatteError(f"the output is named with -o; use -o: vmatte matte {args.input} -o {args.stray}")
    if args.output is None:
        raise VmatteError(
            "no output given: add -o OUTDIR (a folder for the outputs) or -o FILE "
            "(out.mov, out.webm or out.mp4: one file)"
        )
    plan = plan_output(args.output, args.formats)
    plan.check_free(args.overwrite)
    from ..engine.runtime import tune_allocator
    from ..matte import matte

    tune_allocator()
    keyframes = _keyframes(args)
    result = matte(
        args.input,
        plan.folder,
        model=args.model,
        formats=list(plan.formats),
        **({"stem": plan.stem} if plan.stem else {}),
        overwrite=args.overwrite,
        progress=not args.quiet,
        **common.given(args, OUTPUT),
        **common.given(args, MODEL),
        **common.given(args, TARGET),
        **({"keyframes": keyframes} if keyframes else {}),
        **_clicks(args),
        **({"segmenter": args.segmenter} if args.segmenter != "auto" else {}),
        **({"resume": True} if args.resume else {}),
        **({"chunk_frames": args.chunk_frames} if args.chunk_frames else {}),
        **common.given(args, PLATE),
        refine=_refine_settings(args),
    )
    print(f"{result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} frames/s)", file=sys.stderr)
    for name, path in plan.finish(result.outputs).items():
        print(f"{name}\t{path}")
    return 0


def _clicks(args: argparse.Namespace) -> dict:
    """``--click`` / ``--exclude`` as the API's ``clicks=`` / ``excludes=`` (nothing when absent)."""
    from ..engine.segment.clicks import parse_point

    if not (args.click or args.exclude):
        if args.segmenter != "auto":
            warnings.warn(
                f"--segmenter {args.segmenter} is ignored: it only turns --click points into a mask", stacklevel=2
            )
        return {}
    return {
        "clicks": [parse_point(s) for s in args.click or ()],
        "excludes": [parse_point(s, negative=True) for s in args.exclude or ()],
    }


def _keyframes(args: argparse.Namespace) -> dict[int, str]:
    """``--masks-dir`` and ``--mask-at`` as ``{frame: path}`` (a frame given twice is an error)."""
    from ..io.masks import parse_mask_at, read_masks_dir

    keyframes: dict[int, str] = {}
    if args.masks_dir:
        keyframes.update({k: str(v) for k, v in read_masks_dir(args.masks_dir).items()})
    for spec in args.mask_at or ():
        index, path = parse_mask_at(spec)
        if index in keyframes:
            raise VmatteError(f"two masks given for frame {index} (--mask-at/--masks-dir); give one")
        keyframes[index] = path
    return keyframes
