"""`vmatte demo`: a sample clip, matted."""

from __future__ import annotations

import argparse
from pathlib import Path


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="make a sample clip, matte it, print where the outputs are")
    p.add_argument("--output", default="demo-out", help="folder for the sample and its outputs (default: demo-out)")
    p.add_argument("--frames", type=int, default=72, help="length of the sample clip in frames")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(Path(args.output), frames=args.frames)
    return 0
