"""`vmatte weights`: list and download model weights."""

from __future__ import annotations

import argparse

from ..errors import VmatteError


def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "weights",
        help="list and download model weights (every model family, SAM / SAM 2 for clicks)",
        description="Weights vmatte can download into its cache ($VMATTE_CACHE, else "
        "~/.cache/vmatte), with their licences and whether they are there.",
    )
    w = p.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    ls = w.add_parser("list", help="every named weight file: cached or not, size, licence")
    ls.set_defaults(run=_run_weights_list)
    f = w.add_parser("fetch", help="download named weights into the cache (resumable, checked by sha256)")
    f.add_argument("names", nargs="+", metavar="NAME", help="names from `vmatte weights list`")
    f.set_defaults(run=_run_weights_fetch)


def _uses(entry) -> str:
    """What reads ``entry``: the models whose weights it is (the registry), then its other uses."""
    from ..engine import registry

    if entry.shipped:
        models = [s.name for s in registry.SPECS.values() if s.weights is None]
    else:
        models = [s.name for s in registry.SPECS.values() if s.weights in (entry.name, entry.family)]
    return ", ".join(filter(None, ["--model " + " / ".join(models) if models else "", entry.use]))


def _state(entry) -> str:
    about = f" (about {entry.size_mb:.0f} MB)" if entry.size_mb else ""
    if entry.shipped and entry.is_cached():
        return "ships with vmatte"
    return f"cached {entry.cached_mb():.0f} MB" if entry.is_cached() else "not cached" + about


def _run_weights_list(args: argparse.Namespace) -> int:
    from ..weights import catalogue

    rows = [(e.name, _state(e), _uses(e), e.license) for e in catalogue().values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths + [0])).rstrip())
    return 0


def _run_weights_fetch(args: argparse.Namespace) -> int:
    from ..weights import catalogue, offline

    named = catalogue()
    unknown = [n for n in args.names if n not in named]
    if unknown:
        raise VmatteError(f"unknown weights {', '.join(unknown)}; names are: {', '.join(named)}")
    if offline():
        raise VmatteError("VMATTE_OFFLINE/HF_HUB_OFFLINE is set: downloads are off; unset it to fetch weights")
    for name in args.names:
        entry = named[name]
        paths = entry.fetch()
        print(f"{name}\t{', '.join(map(str, paths))}\t{entry.license}")
    return 0
