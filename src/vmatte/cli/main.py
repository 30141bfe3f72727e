"""The ``vmatte`` command: the parser of every subcommand (one module each) and ``main``."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import EXIT_USER_ERROR, VmatteError
from .batch import _add_batch
from .bench import _add_bench
from .demo import _add_demo
from .eval import _add_eval
from .formats import _add_formats
from .matte import _add_matte
from .track import _add_track
from .ui import _add_ui
from .weights import _add_weights


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``vmatte: warning: ...`` line on stderr (no source location), never on the
    progress bar's line."""
    from ..progress import write_line

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

    from ..errors import Stopped

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
