"""`vmatte batch`: many shots from a manifest, on this machine or a Ray cluster."""

from __future__ import annotations

import argparse
import sys

from . import common


def _add_batch(sub: argparse._SubParsersAction) -> None:
    from ..io.formats import DEFAULT_FORMATS

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
    common.model(p, help="model of rows without one (default: auto)")
    p.add_argument("-f", "--formats", default=",".join(DEFAULT_FORMATS), help="formats of rows without any")
    common.device(p, help="device of rows without one (default: auto)")
    common.add(p, "backend", help="runtime of rows without one, for the models that take it (default: auto)")
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
    common.quiet(p)
    p.set_defaults(run=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    from ..batch import BatchOptions, Defaults, parse_shard, run_batch, summary_only

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
