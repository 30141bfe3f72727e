"""The run's progress on stderr: a redrawn bar on a terminal, a plain line every few seconds in a
log (CI, render-farm logs, ``2> run.log``), where carriage-return redraws pile up into one
unreadable line. Warnings go through :func:`write_line` so they never land on the bar's line."""

from __future__ import annotations

import sys
import time
from typing import TextIO

LOG_EVERY_S = 5.0  # seconds between lines in a log: often enough to see a run move, rarely enough to read


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """``name: 120/480 frames (25%), 9.8 frames/s, about 37 s left`` every ``every`` seconds and at
    the end; the same calls as the tqdm bar (``update``, ``close``)."""

    def __init__(self, total: int | None, desc: str, stream: TextIO, every: float = LOG_EVERY_S):
        self.total, self.desc, self.stream, self.every = total, desc, stream, every
        self.n = 0
        self._start = self._last = time.monotonic()
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._print(now)

    def _print(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.n / elapsed
        if self.total:
            line = f"{self.desc}: {self.n}/{self.total} frames ({100 * self.n / self.total:.0f}%), {rate:.1f} frames/s"
            if 0 < self.n < self.total and rate > 0:
                line += f", about {(self.total - self.n) / rate:.0f} s left"
        else:
            line = f"{self.desc}: {self.n} frames, {rate:.1f} frames/s"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._print(time.monotonic())


def progress_bar(total: int | None, desc: str, stream: TextIO | None = None):
    """A tqdm bar on a terminal, a :class:`LineProgress` otherwise."""
    stream = stream if stream is not None else sys.stderr
    if not _is_tty(stream):
        return LineProgress(total, desc, stream)
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, file=stream, dynamic_ncols=True)


def write_line(text: str, stream: TextIO | None = None) -> None:
    """``text`` on a line of its own, above a running tqdm bar if there is one."""
    stream = stream if stream is not None else sys.stderr
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is not None and _is_tty(stream):
        tqdm_module.tqdm.write(text, file=stream)
    else:
        print(text, file=stream, flush=True)


def run_progress(total: int | None, desc: str, enabled: bool, on_frame=None):
    """A run's bar (None when not ``enabled``) and the per-frame callback that moves it and then
    calls ``on_frame`` (the caller's, if any). -> (bar, callback or None)."""
    bar = progress_bar(total, desc[:30]) if enabled else None
    if bar is None:
        return None, on_frame
    if on_frame is None:
        return bar, lambda _r: bar.update(1)

    def both(r) -> None:
        bar.update(1)
        on_frame(r)

    return bar, both


def say_fps_assumed(info, fps: float | None, enabled: bool) -> None:
    """An image folder has no frame rate of its own: say which one the outputs get."""
    if enabled and info.is_image_sequence and info.plate is None and fps is None:
        write_line(
            f"{info.path.name}/: {info.num_frames} images, {float(info.fps):g} fps assumed; use --fps to set the "
            f"frame rate"
        )
