"""`vmatte eval`: scores on public benchmarks (VOS on the DAVIS layout)."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from . import common


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from ..engine import registry

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
    common.models(v)
    v.add_argument("-o", "--output", metavar="DIR", help="write vos.json and vos.md here (default: no files)")
    common.device(v)
    common.add(v, "max_size", help="long side of the network's input (default: each model's own choice)")
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
    common.add(
        v,
        "tracker",
        help="as vmatte matte --tracker, for "
        + ", ".join(registry.tracker_models())
        + " (e.g. -m rvm-target --tracker sam2: SAM 2's identity, RVM's edge)",
    )
    v.add_argument("-q", "--quiet", action="store_true", help="do not print scores as sequences finish")
    v.set_defaults(run=_run_eval_vos)


def _run_eval_vos(args: argparse.Namespace) -> int:
    from ..eval.vos import evaluate_vos
    from ..eval.vos_report import output_folder, table, write_vos

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
