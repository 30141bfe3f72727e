"""`vmatte bench`: benchmark clips with exact alpha, quality and speed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine.options import MODEL
from ..errors import VmatteError
from . import common


def _add_bench(sub: argparse._SubParsersAction) -> None:
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
    common.models(q)
    q.add_argument("-o", "--output", metavar="OUTDIR", help="where the results go (default: ROOT/quality)")
    common.device(q)
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
    common.models(sp)
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
    common.device(sp)
    common.add(sp, "backend")
    common.add(sp, "max_size")
    common.add(sp, "downsample_ratio")
    sp.add_argument("-q", "--quiet", action="store_true", help="do not print figures as they are measured")
    sp.set_defaults(run=_run_bench_speed)


def _run_bench_compose(args: argparse.Namespace) -> int:
    from ..eval.compose import ComposeSettings, compose_clips, parse_size

    settings = ComposeSettings(
        size=parse_size(args.size), frames=args.frames, clips=args.clips, seed=args.seed, overwrite=args.overwrite
    )
    clips = compose_clips(args.fg, args.bg, args.output, settings, progress=not args.quiet)
    print(f"{len(clips)} clips in {args.output}", file=sys.stderr)
    return 0


def _run_bench_quality(args: argparse.Namespace) -> int:
    from ..eval.metrics import MetricSettings
    from ..eval.quality import QualitySettings, evaluate

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
    from ..eval.compose import parse_size
    from ..eval.speed import SpeedSettings, run_speed

    settings = SpeedSettings(
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        sizes=tuple(parse_size(s) for s in args.sizes.split(",") if s.strip()),
        lengths=_int_list(args.lengths, "--lengths"),
        model_frames=args.frames,
        file_frames=args.file_frames,
        rounds=args.rounds,
        device=args.device,
        options={k: v for k, v in common.given(args, MODEL).items() if k != "device"},
        source=args.clip,
    )
    run_speed(args.output, settings, progress=not args.quiet)
    print(Path(args.output) / "speed.md")
    return 0
