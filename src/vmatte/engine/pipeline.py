"""Decode -> compute -> encode, overlapped.

Decoding (PyAV) and encoding run in their own threads and talk to the compute loop through
bounded queues: PyAV, the codecs and PyTorch release the GIL in their heavy parts, so the three
stages overlap, and RAM stays flat however long the video is (at most ``maxsize`` frames wait in
each queue).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.1


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetcher(Generic[T]):
    """Iterate ``source`` in a background thread, at most ``maxsize`` items ahead of the consumer."""

    def __init__(self, source: Iterable[T], maxsize: int = 4, name: str = "vmatte-decode"):
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _offer(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not self._offer(item):
                    return
            self._offer(_END)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread
            self._offer(_Failure(e))

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop the producer (it may be blocked on a full queue) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(_POLL_S)


class BackgroundConsumer(Generic[T]):
    """Feed items to ``consume`` in a background thread through a bounded queue.

    An exception in ``consume`` is re-raised in the producer's thread by the next ``put`` or by
    ``finish``, so a failing encoder (disk full, ...) stops the run promptly.
    """

    def __init__(self, consume: Callable[[T], None], maxsize: int = 4, name: str = "vmatte-encode"):
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END or self._stop.is_set():
                return
            try:
                self._consume(item)
            except BaseException as e:  # noqa: BLE001 - handed to the producer
                self._error = e
                return

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        while True:
            self._raise_if_failed()
            if not self._thread.is_alive():
                raise RuntimeError("encoder thread stopped unexpectedly")
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every queued item is consumed; re-raise the consumer's error if any."""
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise_if_failed()

    def abort(self) -> None:
        """Drop what is queued and stop; never raises."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                try:
                    self._queue.put_nowait(_END)
                except queue.Full:
                    pass
                self._thread.join(_POLL_S)
