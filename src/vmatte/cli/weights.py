"""`vmatte weights`: list and download model weights."""

from __future__ import annotations

import argparse

from ..errors import VmatteError


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
    from .. import weights as w

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
    from ..engine import registry
    from ..weights import RVM_LICENSE

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
    from ..weights import download, offline, verify_cached

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
