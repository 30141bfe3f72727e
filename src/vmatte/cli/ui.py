"""`vmatte ui`: the local web app."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import common


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
    common.device(p)
    common.add(
        p,
        "segmenter",
        help="what turns clicks into masks by default: auto (a cached SAM / SAM 2, else RVM's person "
        "regions), rvm, a name from `vmatte weights list`, or a SAM / SAM 2 checkpoint file",
    )
    p.set_defaults(run=_run_ui)


def _run_ui(args: argparse.Namespace) -> int:
    from ..ui.serve import ServeOptions, serve

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
