"""The ``vmatte`` command."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import EXIT_USER_ERROR, InputError, VmatteError


def _add_matte(sub: argparse._SubParsersAction) -> None:
    from .engine import registry
    from .io.formats import DEFAULT_FORMATS, FORMATS

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
    from .engine.refine import DESPILL
    from .io.exr import COMPRESSIONS

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
    from .engine.refine import RefineSettings

    settings = RefineSettings(
        choke=args.choke,
        feather=args.feather,
        shift_edge=args.shift_edge,
        reduce_chatter=args.reduce_chatter,
        despill=args.despill,
    )
    return settings if settings.active else None


def _run_matte(args: argparse.Namespace) -> int:
    from .outfile import plan_output

    if args.stray is not None:
        raise VmatteError(f"the output is named with -o; use -o: vmatte matte {args.input} -o {args.stray}")
    if args.output is None:
        raise VmatteError(
            "no output given: add -o OUTDIR (a folder for the outputs) or -o FILE "
            "(out.mov, out.webm or out.mp4: one file)"
        )
    plan = plan_output(args.output, args.formats)
    plan.check_free(args.overwrite)
    from .engine.runtime import tune_allocator
    from .matte import matte

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
    from .engine.segment.clicks import parse_point

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
    from .io.masks import parse_mask_at, read_masks_dir

    keyframes: dict[int, str] = {}
    if args.masks_dir:
        keyframes.update({k: str(v) for k, v in read_masks_dir(args.masks_dir).items()})
    for spec in args.mask_at or ():
        index, path = parse_mask_at(spec)
        if index in keyframes:
            raise VmatteError(f"two masks given for frame {index} (--mask-at/--masks-dir); give one")
        keyframes[index] = path
    return keyframes


def _add_batch(sub: argparse._SubParsersAction) -> None:
    from .engine.registry import BACKENDS, help_lines
    from .io.formats import DEFAULT_FORMATS

    p = sub.add_parser(
        "batch",
        help="matte many shots from a manifest, on this machine or a Ray cluster",
        description="Matte every shot of MANIFEST (CSV or JSONL: one shot per row with id, input and optionally "
        "model, mask, mask_at, masks_dir, masks, click, exclude, formats, bg and any `vmatte matte` "
        "option; or a folder of videos, NAME.png beside NAME.mp4 being its mask) into ROOT/<id>/, with "
        "ROOT/<id>/report.json per shot and ROOT/batch.json + batch.md at the end. Shots already done are "
        "skipped, interrupted ones resume. Exit code 0: all done; 1: some failed; 2: bad manifest.",
    )
    p.add_argument("manifest", metavar="MANIFEST", help="CSV/JSONL manifest, or a folder of videos")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="ROOT",
        help="output root (created if missing); with --ray, a folder every node sees at this path",
    )
    p.add_argument(
        "-m", "--model", default="auto", choices=list(help_lines()), help="model of rows without one (default: auto)"
    )
    p.add_argument("-f", "--formats", default=",".join(DEFAULT_FORMATS), help="formats of rows without any")
    p.add_argument("--device", default="auto", help="device of rows without one (default: auto)")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="runtime of rows without one (default: auto)")
    p.add_argument(
        "-j",
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes on this machine, each loading its model once (default 1)",
    )
    p.add_argument("--threads", type=int, metavar="T", help="threads per worker (default: cores / workers)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on Ray, one task per shot: alone, join the Ray on this machine or start one; with "
        "HOST:PORT, that cluster (needs vmatte[cluster])",
    )
    p.add_argument(
        "--cpus-per-shot",
        type=float,
        default=1,
        metavar="C",
        help="with --ray: CPUs each shot reserves and uses as threads (default 1); GPU shots also take 1 GPU",
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="run only the I-th of N slices of the manifest (I from 0); N alone reads I from "
        "SLURM_ARRAY_TASK_ID (for farm arrays); merge with --summary afterwards",
    )
    p.add_argument(
        "--summary", action="store_true", help="run nothing: merge the shots' reports into ROOT/batch.json and batch.md"
    )
    p.add_argument("--redo", action="store_true", help="matte shots again even if their report says done")
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        metavar="K",
        help="tries again for a shot whose worker or node was lost (default 3)",
    )
    p.add_argument("--chunk-frames", type=int, help=argparse.SUPPRESS)  # journal chunk length (tests)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    from .batch import BatchOptions, Defaults, parse_shard, run_batch, summary_only

    defaults = Defaults(model=args.model, formats=args.formats, device=args.device, backend=args.backend)
    if args.summary:
        result = summary_only(args.manifest, args.output, defaults)
    else:
        options = BatchOptions(
            workers=args.workers,
            threads=args.threads,
            ray=args.ray is not None,
            ray_address=args.ray or None,
            cpus_per_shot=args.cpus_per_shot,
            shard=parse_shard(args.shard) if args.shard else None,
            redo=args.redo,
            chunk_frames=args.chunk_frames,
            retries=args.retries,
            progress=not args.quiet,
        )
        result = run_batch(args.manifest, args.output, defaults, options)
    s = result.summary
    for r in s["reports"]:
        if r["status"] != "done":
            kind = "retryable" if r.get("retryable") else "bad input" if r["status"] == "failed" else r["status"]
            print(f"vmatte: shot {r['id']} {r['status']} ({kind}): {r.get('error')}", file=sys.stderr)
    rate = f", {s['frames_per_s']:.1f} frames/s" if s.get("frames_per_s") else ""
    print(
        f"{s['done']}/{s['shots']} shots done ({s['skipped']} already done), {s['failed']} failed"
        f"{', ' + str(s['missing']) + ' not run' if s['missing'] else ''}; {s['frames']} frames{rate}",
        file=sys.stderr,
    )
    print(result.paths["md"])
    return result.exit_code


def _add_formats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("formats", help="list output formats")
    p.set_defaults(run=_run_formats)


def _run_formats(args: argparse.Namespace) -> int:
    from .io.formats import DEFAULT_FORMATS, FORMATS

    for name, spec in FORMATS.items():
        mark = "*" if name in DEFAULT_FORMATS else " "
        print(f"{mark} {name:<12} {spec.description}")
    print("(* = default)")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="make a sample clip, matte it, print where the outputs are")
    p.add_argument("--output", default="demo-out", help="folder for the sample and its outputs (default: demo-out)")
    p.add_argument("--frames", type=int, default=72, help="length of the sample clip in frames")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.output), frames=args.frames)
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from .engine import registry

    p = sub.add_parser(
        "bench",
        help="evaluation: make benchmark clips with exact alpha, score models on them",
        description="Evaluation tools (see vmatte.eval).",
    )
    bench = p.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")
    c = bench.add_parser(
        "compose",
        help="VideoMatte-style clips: foregrounds with alpha moved over backgrounds",
        description="Composite foregrounds with exact alpha over backgrounds with a smooth random affine motion; "
        "writes ROOT/NNNN/{com,fgr,pha}/00000.png and clip.json per clip.",
    )
    c.add_argument(
        "--fg",
        nargs="+",
        required=True,
        metavar="PATH",
        help="foregrounds: NAME.jpg with NAME.png alpha, RGBA PNGs, folders of those, "
        "or a folder with fgr/ and pha/ videos or image folders (VideoMatte240K layout)",
    )
    c.add_argument(
        "--bg",
        nargs="+",
        required=True,
        metavar="PATH",
        help="backgrounds: images, videos, image folders (each image one background), "
        "or folders of videos/frame folders",
    )
    c.add_argument("-o", "--output", required=True, metavar="ROOT", help="output folder (created if missing)")
    c.add_argument(
        "--size", default="512x288", help="WIDTHxHEIGHT (default 512x288; the other published size is 1920x1080)"
    )
    c.add_argument("--frames", type=int, default=100, help="frames per clip (default 100)")
    c.add_argument("--clips", type=int, help="number of clips (default: one per foreground)")
    c.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same clips (default 0)")
    c.add_argument(
        "--overwrite", action="store_true", help="replace existing clips (each once its new one is complete)"
    )
    c.add_argument("-q", "--quiet", action="store_true", help="do not list clips as they are made")
    c.set_defaults(run=_run_bench_compose)

    q = bench.add_parser(
        "quality",
        help="score models on benchmark clips against their exact alpha",
        description="Matte ROOT/*/com with each model and compare with ROOT/*/pha (and fgr/): MAD, MSE, Grad, "
        "Conn, dtSSD, core-region and fgr errors, J and F. Writes per_frame.csv, per_clip.csv, "
        "results.json, report.md, and report.html with error curves, per-clip bars and contact "
        "sheets (plots/*.png; needs matplotlib).",
    )
    q.add_argument("root", metavar="ROOT", help="folder of clips from `vmatte bench compose` (or one clip)")
    q.add_argument(
        "-m", "--models", default=registry.BASELINE, help=f"comma-separated models (default: {registry.BASELINE})"
    )
    q.add_argument("-o", "--output", metavar="OUTDIR", help="where the results go (default: ROOT/quality)")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    q.add_argument("--max-frames", type=int, metavar="N", help="score only the first N frames of each clip")
    q.add_argument(
        "--grad-raw",
        action="store_true",
        help="Grad on the mattes as they are (default: min-max normalise each, as the published VideoMatte tables do)",
    )
    q.add_argument("--no-html", action="store_true", help="no report.html and plots (no matplotlib needed)")
    q.add_argument(
        "--contact-rows", type=int, default=4, metavar="N", help="frames per clip in the contact sheets (default 4)"
    )
    q.add_argument("-q", "--quiet", action="store_true", help="do not print scores as clips finish")
    q.set_defaults(run=_run_bench_quality)

    sp = bench.add_parser(
        "speed",
        help="frames/s and peak memory per model, resolution and video length",
        description="Model-only and file-to-file frames/s and peak RSS (and peak GPU memory on CUDA) for each "
        "model and size, and peak RSS against video length; each measurement in its own process. "
        "Input clips are made from --clip (or a synthetic clip), resized and looped. Writes "
        "speed.json, speed.md, fps_vs_resolution.png and rss_vs_length.png.",
    )
    sp.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="where the results go (created if missing)")
    sp.add_argument(
        "-m", "--models", default=registry.BASELINE, help=f"comma-separated models (default: {registry.BASELINE})"
    )
    sp.add_argument(
        "--sizes", default="512x288,1920x1080", help="comma-separated WIDTHxHEIGHT (default: 512x288,1920x1080)"
    )
    sp.add_argument(
        "--lengths",
        default="100,2000",
        help="comma-separated clip lengths in frames for peak RSS vs length, at the first size "
        "(default: 100,2000; 'none' skips it)",
    )
    sp.add_argument("--frames", type=int, default=100, help="frames per model-only run (default 100)")
    sp.add_argument("--file-frames", type=int, default=100, help="frames of the file-to-file clip (default 100)")
    sp.add_argument("--rounds", type=int, default=3, help="speed figures are the best of this many runs (default 3)")
    sp.add_argument("--clip", metavar="VIDEO", help="video to resize and loop as input (default: a synthetic clip)")
    sp.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    sp.add_argument("--backend", default="auto", help="auto, torch or onnx (default: auto)")
    sp.add_argument(
        "--max-size", type=int, metavar="PX", help="long side of the internal resolution (default: automatic)"
    )
    sp.add_argument("--downsample-ratio", type=float, metavar="R", help="RVM downsample ratio (overrides --max-size)")
    sp.add_argument("-q", "--quiet", action="store_true", help="do not print figures as they are measured")
    sp.set_defaults(run=_run_bench_speed)


def _run_bench_compose(args: argparse.Namespace) -> int:
    from .eval.compose import ComposeSettings, compose_clips, parse_size

    settings = ComposeSettings(
        size=parse_size(args.size), frames=args.frames, clips=args.clips, seed=args.seed, overwrite=args.overwrite
    )
    clips = compose_clips(args.fg, args.bg, args.output, settings, progress=not args.quiet)
    print(f"{len(clips)} clips in {args.output}", file=sys.stderr)
    return 0


def _run_bench_quality(args: argparse.Namespace) -> int:
    from .eval.metrics import MetricSettings
    from .eval.quality import QualitySettings, evaluate

    if args.max_frames is not None and args.max_frames < 1:
        raise VmatteError(f"--max-frames must be at least 1, got {args.max_frames}")
    settings = QualitySettings(
        metrics=MetricSettings(grad_minmax=not args.grad_raw), device=args.device, max_frames=args.max_frames
    )
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    result = evaluate(
        args.root,
        models,
        args.output,
        settings,
        progress=not args.quiet,
        html=not args.no_html,
        contact_rows=args.contact_rows,
    )
    print(result.output / ("report.md" if args.no_html else "report.html"))
    return 0


def _int_list(text: str, option: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise VmatteError(f"bad {option} {text!r}; give comma-separated whole numbers such as 100,2000") from None


def _run_bench_speed(args: argparse.Namespace) -> int:
    from .eval.compose import parse_size
    from .eval.speed import SpeedSettings, run_speed

    settings = SpeedSettings(
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        sizes=tuple(parse_size(s) for s in args.sizes.split(",") if s.strip()),
        lengths=_int_list(args.lengths, "--lengths"),
        model_frames=args.frames,
        file_frames=args.file_frames,
        rounds=args.rounds,
        device=args.device,
        backend=args.backend,
        downsample_ratio=args.downsample_ratio,
        max_size=args.max_size,
        source=args.clip,
    )
    run_speed(args.output, settings, progress=not args.quiet)
    print(Path(args.output) / "speed.md")
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from .engine import registry

    p = sub.add_parser(
        "eval",
        help="evaluation on public benchmarks (VOS: J and F on the DAVIS layout)",
        description="Score models on public benchmark folders (see vmatte.eval).",
    )
    ev = p.add_subparsers(dest="eval_command", required=True, metavar="EVAL_COMMAND")
    v = ev.add_parser(
        "vos",
        help="video object segmentation: J, F and J&F per sequence on the DAVIS layout",
        description="Matte ROOT/JPEGImages/<seq>/ with each model and compare alpha >= 0.5 with "
        "ROOT/Annotations/<seq>/*.png (binary, palette or label PNGs). Target models get frame 0's "
        "annotation as their mask; models without a mask (rvm) are scored against all objects "
        "together. Frame 0 is not scored. Prints a table; with --output also writes vos.json "
        "and vos.md there.",
    )
    v.add_argument("root", metavar="ROOT", help="DAVIS-layout folder (JPEGImages/ and Annotations/)")
    v.add_argument("-s", "--sequences", help="comma-separated sequence names (default: every folder in JPEGImages/)")
    v.add_argument(
        "-m", "--models", default=registry.BASELINE, help=f"comma-separated models (default: {registry.BASELINE})"
    )
    v.add_argument("-o", "--output", metavar="DIR", help="write vos.json and vos.md here (default: no files)")
    v.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    v.add_argument(
        "--max-size", type=int, metavar="PX", help="long side of the network's input (default: each model's own choice)"
    )
    v.add_argument(
        "--max-frames",
        type=int,
        metavar="N",
        help="score only each sequence's first N frames (quick runs; default: every frame)",
    )
    v.add_argument(
        "--sheet-frames",
        type=int,
        default=8,
        metavar="N",
        help="frames per sequence on the contact sheets written with --output (default 8, 0: none)",
    )
    v.add_argument(
        "--tracker",
        default="auto",
        metavar="sam2|rvm|auto|NAME|PATH",
        help="as vmatte matte --tracker, for "
        + ", ".join(registry.tracker_models())
        + " (e.g. -m rvm-target --tracker sam2: SAM 2's identity, RVM's edge)",
    )
    v.add_argument("-q", "--quiet", action="store_true", help="do not print scores as sequences finish")
    v.set_defaults(run=_run_eval_vos)


def _run_eval_vos(args: argparse.Namespace) -> int:
    from .eval.vos import evaluate_vos
    from .eval.vos_report import output_folder, table, write_vos

    sequences = None if args.sequences is None else [s.strip() for s in args.sequences.split(",") if s.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.output is not None:
        output_folder(args.output)  # a bad --output fails before the models run
    if args.sheet_frames < 0:
        raise InputError(f"--sheet-frames must be 0 or more, got {args.sheet_frames}")
    result = evaluate_vos(
        args.root,
        sequences,
        models,
        device=args.device,
        max_size=args.max_size,
        progress=not args.quiet,
        max_frames=args.max_frames,
        tracker=args.tracker,
        thumbs=args.sheet_frames if args.output is not None else 0,
    )
    print(table(result))
    if args.output is not None:
        paths = write_vos(result, args.output)
        print(f"wrote {paths['json']} and {paths['md']} ({result.seconds:.1f} s)", file=sys.stderr)
    return 0


def _add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ui",
        help="start the local web app: upload, click the subject, preview, export",
        description="Serve the vmatte web app (needs vmatte[ui]); open the printed address "
        "in a browser. Runs offline; files stay in the working folder.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the "
        "network, with a warning: the app has no login)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--workdir",
        metavar="DIR",
        help="folder for uploads and results, the only one the app serves files from "
        "(default: a new temporary folder, removed on exit)",
    )
    p.add_argument("--max-upload-mb", type=int, default=500, metavar="MB", help="largest upload (default 500 MB)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument(
        "--segmenter",
        default="auto",
        metavar="NAME|PATH",
        help="what turns clicks into masks by default: auto (a cached SAM / SAM 2, else RVM's person "
        "regions), rvm, a name from `vmatte weights list`, or a SAM / SAM 2 checkpoint file",
    )
    p.set_defaults(run=_run_ui)


def _run_ui(args: argparse.Namespace) -> int:
    from .ui.serve import ServeOptions, serve

    serve(
        ServeOptions(
            host=args.host,
            port=args.port,
            workdir=Path(args.workdir) if args.workdir else None,
            max_upload_mb=args.max_upload_mb,
            device=args.device,
            segmenter=args.segmenter,
        )
    )
    return 0


def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "weights",
        help="list and download model weights (MatAnyone, SAM / SAM 2 for clicks)",
        description="Weights vmatte can download into its cache ($VMATTE_CACHE, else "
        "~/.cache/vmatte), with their licences and whether they are there.",
    )
    w = p.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    ls = w.add_parser("list", help="every named weight file: cached or not, size, licence")
    ls.set_defaults(run=_run_weights_list)
    f = w.add_parser("fetch", help="download named weights into the cache (resumable, checked by sha256)")
    f.add_argument("names", nargs="+", metavar="NAME", help="names from `vmatte weights list`")
    f.set_defaults(run=_run_weights_fetch)


def _named_weights() -> dict[str, tuple]:
    """name -> (RemoteFile, cache path, what it is for)."""
    from . import weights as w

    out = {
        name: (remote, w.matanyone_cache_paths(name)[0], "--model " + name)
        for name, remote in w.MATANYONE_REMOTE.items()
    }
    out.update(
        {
            name: (s.remote, w.segmenter_cache_path(name), "--segmenter " + name + " (clicks)")
            for name, s in w.SEGMENTERS.items()
        }
    )
    return out


def _run_weights_list(args: argparse.Namespace) -> int:
    from .engine import registry
    from .weights import RVM_LICENSE

    rows = [
        (name, f"cached {path.stat().st_size / 2**20:.0f} MB" if path.is_file() else "not cached", use, remote.license)
        for name, (remote, path, use) in _named_weights().items()
    ]
    shipped = [registry.BASELINE] + [
        s.name for s in registry.SPECS.values() if s.weights is None and s.name != registry.BASELINE
    ]
    rows.append((registry.BASELINE, "ships with vmatte", "--model " + " / ".join(shipped) + " / clicks", RVM_LICENSE))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths + [0])).rstrip())
    return 0


def _run_weights_fetch(args: argparse.Namespace) -> int:
    from .weights import download, offline, verify_cached

    named = _named_weights()
    unknown = [n for n in args.names if n not in named]
    if unknown:
        raise VmatteError(f"unknown weights {', '.join(unknown)}; names are: {', '.join(named)}")
    if offline():
        raise VmatteError("VMATTE_OFFLINE/HF_HUB_OFFLINE is set: downloads are off; unset it to fetch weights")
    for name in args.names:
        remote, path, _ = named[name]
        if path.is_file():
            verify_cached(path, remote)
        else:
            download(remote, path)
        print(f"{name}\t{path}\t{remote.license}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="vmatte", description="Alpha mattes of a chosen subject from any video.")
    parser.add_argument("--version", action="version", version=f"vmatte {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_matte(sub)
    _add_batch(sub)
    _add_formats(sub)
    _add_demo(sub)
    _add_bench(sub)
    _add_eval(sub)
    _add_ui(sub)
    _add_weights(sub)
    _add_track(sub)
    return parser


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
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--fps", type=float, help="frame rate of an image-folder input (default 25)")
    p.add_argument("--overwrite", action="store_true", help="replace masks already in OUTDIR")
    p.set_defaults(run=_run_track)


def _run_track(args: argparse.Namespace) -> int:
    from .engine.device import resolve_device
    from .engine.sam2video.masks import load_video_model
    from .engine.sam2video.track import track_masks
    from .engine.segment.clicks import parse_point

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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``vmatte: warning: ...`` line on stderr (no source location), never on the
    progress bar's line."""
    from .progress import write_line

    write_line(f"vmatte: warning: {message}")


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as the one line every other error is (not usage + error)."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"vmatte: error: {' '.join(message.split())}; see {self.prog} --help\n")


def _stop_on_signals():
    """SIGTERM and SIGHUP stop a run as Ctrl-C does (outputs removed, journal kept); returns a
    function restoring the previous handlers. Only the main thread may set handlers."""
    import signal
    import threading

    from .errors import Stopped

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    wanted = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {s: signal.getsignal(s) for s in wanted}

    def handler(signum, frame):
        for s in wanted:  # a second signal must not cut the clean-up short
            signal.signal(s, signal.SIG_IGN)
        raise Stopped(signum, signal.Signals(signum).name)

    for s in wanted:
        signal.signal(s, handler)

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    restore = _stop_on_signals()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.run(args)
    except VmatteError as e:
        for line in getattr(e, "lines", None) or [str(e)]:  # a manifest: one line per bad row
            print(f"vmatte: error: {line}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        name = getattr(e, "name", "")
        print(
            f"vmatte: {'stopped by ' + name if name else 'interrupted'}; incomplete outputs were removed",
            file=sys.stderr,
        )
        return getattr(e, "exit_code", 130)
    except MemoryError:
        print("vmatte: error: out of memory; use a smaller --max-size or --device cpu", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
