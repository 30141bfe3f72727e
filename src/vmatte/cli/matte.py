"""`vmatte matte`: matte one video (or image folder / plate) into the chosen outputs."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import VmatteError


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
    p.add_argument(
        "-m",
        "--model",
        default="auto",
        choices=registry.names(),
        help="model (default: auto): " + "; ".join(f"{n}: {h}" for n, h in registry.help_lines().items()),
    )
    p.add_argument(
        "--weights",
        help="checkpoint path (.pth/.safetensors, or a hub folder with model.safetensors "
        "for MatAnyone), or 'download' for the official file",
    )
    p.add_argument(
        "--mask",
        metavar="PATH",
        help="MatAnyone: the target on the first frame: grey/binary PNG (non-zero = target), RGB "
        "(non-black = target), or a palette/label PNG (one matte per id, outputs NAME_idN_*)",
    )
    p.add_argument(
        "--mask-at",
        action="append",
        metavar="FRAME:PATH",
        help="MatAnyone: a keyframe mask (repeatable): ids in it start at FRAME (alpha 0 before) or, "
        "if already tracked, are re-initialised from it there; grey files are label masks",
    )
    p.add_argument(
        "--masks-dir",
        metavar="DIR",
        help="MatAnyone: a folder of keyframe (label/palette) masks named by frame number "
        "(00000.png, 00005.png ...), as --mask-at for each",
    )
    p.add_argument(
        "--masks",
        metavar="DIR",
        help="mask-to-matte: ONE coarse mask per frame (e.g. from SAM2), named by frame number "
        "(00000.png, 00001.png ...); --model videomama, or rvm/rvm-target (RVM's alpha kept inside "
        "the dilated masks); auto picks videomama when its weights and a GPU are here, else rvm",
    )
    p.add_argument(
        "--click",
        action="append",
        metavar="X,Y[@FRAME]",
        help="pick the target: the person (or, with a SAM segmenter, the object) under pixel X,Y "
        "(x right, y down) at FRAME (default 0) becomes its mask there, as --mask-at would; "
        "repeatable (points at one frame are one target)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        metavar="X,Y[@FRAME]",
        help="a point on someone/something that is NOT the target, to cut it off the clicked one "
        "(repeatable; needs a --click at the same frame)",
    )
    p.add_argument(
        "--segmenter",
        default="auto",
        metavar="NAME|PATH",
        help="what turns clicks into a mask: auto (a SAM / SAM 2 checkpoint in the cache, else RVM's "
        "person regions), rvm, a name from `vmatte weights list` (downloaded once) or a SAM / "
        "SAM 2 checkpoint file",
    )
    p.add_argument(
        "--tracker",
        default="auto",
        metavar="sam2|rvm|auto|NAME|PATH",
        help="what follows the target through the video for "
        + ", ".join(registry.tracker_models())
        + ": sam2 (any object; a SAM 2 checkpoint in the cache, or give its name/file here), rvm "
        "(rvm-target's person tracking), auto (default: SAM 2 when cached, else rvm; rvm-target "
        "keeps its own tracking unless --tracker sam2)",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "fp16", "bf16"),
        help="MatAnyone: fp32 (default, exact), or bf16/fp16 autocast (fp16 on GPU only)",
    )
    p.add_argument(
        "--warmup-frames", type=int, metavar="N", help="MatAnyone: first-frame refinement passes (default 10)"
    )
    p.add_argument(
        "--erode", type=int, metavar="PX", help="MatAnyone: erode the first-frame mask (kernel px, default 10; 0 = off)"
    )
    p.add_argument(
        "--dilate",
        type=int,
        metavar="PX",
        help="MatAnyone: dilate the first-frame mask (kernel px, default 10; 0 = off)",
    )
    p.add_argument(
        "-f",
        "--formats",
        help=f"comma-separated outputs (default: {','.join(DEFAULT_FORMATS)}, or what -o FILE's extension "
        f"names); one of: {', '.join(FORMATS)}",
    )
    p.add_argument(
        "--bg",
        "--background",
        dest="background",
        metavar="SPEC",
        help="composite background: colour name, #rrggbb, r,g,b, an image or a video (default: green)",
    )
    p.add_argument(
        "--max-size", type=int, metavar="PX", help="long side of the internal resolution (default: automatic)"
    )
    p.add_argument(
        "--downsample-ratio", type=float, metavar="R", help="RVM downsample ratio in (0,1] (overrides --max-size)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument(
        "--backend",
        default="auto",
        choices=registry.BACKENDS,
        help="inference runtime (default: fastest for the device)",
    )
    p.add_argument("--fps", type=float, help="frame rate of an image-folder input (default 25)")
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
    _add_plate_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_matte)


def _add_plate_options(p: argparse.ArgumentParser) -> None:
    """VFX plates (EXR/DPX sequences) and the matte refinement controls (see README, "In a compositing pipeline")."""
    from ..engine.refine import DESPILL
    from ..io.exr import COMPRESSIONS

    g = p.add_argument_group(
        "VFX plates (INPUT: shot.####.exr, shot.%04d.exr, shot.1001-1100#.exr, a .dpx sequence or a folder of one)"
    )
    g.add_argument(
        "--frames",
        metavar="RANGE",
        help="plate frames to matte, e.g. 1001-1100 (default: all); outputs keep the plate's frame numbers",
    )
    g.add_argument(
        "--input-colorspace",
        metavar="NAME",
        help="the plate's OpenColorIO colour space (config: $OCIO, else OCIO's built-in "
        "ocio://default). Default: EXR = 'Linear Rec.709 (sRGB)' (scene-linear), DPX = the config's "
        "compositing_log role (ACEScct in the built-in config). The network sees the plate as "
        "'sRGB Encoded Rec.709 (sRGB)'; exr outputs go back to scene-linear",
    )
    g.add_argument(
        "--exr-compression",
        default="zip",
        choices=list(COMPRESSIONS),
        help="compression of the exr/exr-layers/alpha-exr outputs (default zip; dwaa is lossy)",
    )
    r = p.add_argument_group("matte refinement (after any model)")
    r.add_argument(
        "--choke",
        type=float,
        default=0.0,
        metavar="PX",
        help="shrink (> 0) or grow (< 0) the matte by PX pixels, fractional",
    )
    r.add_argument("--feather", type=float, default=0.0, metavar="PX", help="soften the edge over about PX pixels")
    r.add_argument(
        "--shift-edge",
        type=float,
        default=0.0,
        metavar="PCT",
        help="move the soft edge out (> 0) or in (< 0), -100..100; opaque and clear pixels stay",
    )
    r.add_argument(
        "--reduce-chatter",
        type=int,
        default=0,
        metavar="N",
        help="average the edge over the last N frames where the picture did not change (no motion smear)",
    )
    r.add_argument("--despill", choices=DESPILL, help="remove green or blue screen spill from the foreground")


def _refine_settings(args: argparse.Namespace):
    from ..engine.refine import RefineSettings

    settings = RefineSettings(
        choke=args.choke,
        feather=args.feather,
        shift_edge=args.shift_edge,
        reduce_chatter=args.reduce_chatter,
        despill=args.despill,
    )
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
        background=args.background,
        **({"stem": plan.stem} if plan.stem else {}),
        overwrite=args.overwrite,
        fps=args.fps,
        progress=not args.quiet,
        weights=args.weights,
        device=args.device,
        backend=args.backend,
        downsample_ratio=args.downsample_ratio,
        max_size=args.max_size,
        mask=args.mask,
        warmup_frames=args.warmup_frames,
        erode=args.erode,
        dilate=args.dilate,
        **({"keyframes": keyframes} if keyframes else {}),
        **_clicks(args),
        **({"segmenter": args.segmenter} if args.segmenter != "auto" else {}),
        **({"precision": args.precision} if args.precision != "fp32" else {}),
        **({"tracker": args.tracker} if args.tracker != "auto" else {}),
        **({"masks": args.masks} if args.masks else {}),
        **({"resume": True} if args.resume else {}),
        **({"chunk_frames": args.chunk_frames} if args.chunk_frames else {}),
        frames=args.frames,
        input_colorspace=args.input_colorspace,
        exr_compression=args.exr_compression,
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
