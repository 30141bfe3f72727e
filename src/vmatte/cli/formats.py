"""`vmatte formats`: the output formats."""

from __future__ import annotations

import argparse


def _add_formats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("formats", help="list output formats")
    p.set_defaults(run=_run_formats)


def _run_formats(args: argparse.Namespace) -> int:
    from ..io.formats import DEFAULT_FORMATS, FORMATS

    for name, spec in FORMATS.items():
        mark = "*" if name in DEFAULT_FORMATS else " "
        print(f"{mark} {name:<12} {spec.description}")
    print("(* = default)")
    return 0
