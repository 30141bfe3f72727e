"""Shots on this machine: in this process (one worker) or in N worker processes.

Each worker process loads a model once and mattes many shots with it
(:mod:`vmatte.batch.shot` keeps it). Threads are split so that N workers do not
oversubscribe the cores: each gets ``cores // N`` (at least 1) for PyTorch, OpenMP and
onnxruntime. A worker that dies (killed, out of memory) breaks the process pool: the shots it
had not finished are run again on a fresh pool (their journals make that a resume), up to
``retries`` times, then reported as failed and retryable.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .manifest import Shot
from .shot import FAILED, run_shot, set_threads

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def _init_worker(threads: int) -> None:
    from ..engine.runtime import tune_allocator

    tune_allocator()
    set_threads(threads)


def run_local(
    shots: Sequence[Shot],
    root: Path,
    *,
    workers: int = 1,
    threads: int | None = None,
    redo: bool = False,
    chunk_frames: int | None = None,
    retries: int = 2,
    on_report: Callable[[Shot, dict], None] = lambda s, r: None,
) -> dict[str, dict]:
    """Run ``shots``; returns id -> report (``on_report`` is called as each shot ends)."""
    threads = threads or threads_per_worker(workers)
    reports: dict[str, dict] = {}
    if workers <= 1:
        _init_worker(threads)
        for shot in shots:
            reports[shot.id] = run_shot(shot, root, redo=redo, chunk_frames=chunk_frames)
            on_report(shot, reports[shot.id])
        return reports
    pending = list(shots)
    attempt = 1
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update({v: str(threads) for v in _THREAD_VARS})  # read by the workers' OpenMP at start
    try:
        while pending:
            pending = _run_pool(pending, root, workers, threads, redo, chunk_frames, attempt, reports, on_report)
            # --redo applies to the first try only: a retry continues what the lost worker began
            redo = False
            attempt += 1
            if pending and attempt > retries + 1:
                for shot in pending:
                    reports[shot.id] = {
                        "id": shot.id,
                        "input": shot.input,
                        "model": shot.model,
                        "status": FAILED,
                        "retryable": True,
                        "attempt": attempt - 1,
                        "error": f"its worker process died {attempt - 1} times (killed or out of "
                        f"memory); run the batch again to resume it, with fewer --workers",
                    }
                    on_report(shot, reports[shot.id])
                break
    finally:
        for v, value in saved.items():
            if value is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = value
    return reports


def _run_pool(
    shots: list[Shot],
    root: Path,
    workers: int,
    threads: int,
    redo: bool,
    chunk_frames,
    attempt: int,
    reports: dict,
    on_report,
) -> list[Shot]:
    """One process pool over ``shots``; returns those left unfinished by a dead worker."""
    context = multiprocessing.get_context("spawn")  # no forked copies of torch's threads
    lost: list[Shot] = []
    with ProcessPoolExecutor(
        max_workers=min(workers, len(shots)), mp_context=context, initializer=_init_worker, initargs=(threads,)
    ) as pool:
        futures = {
            pool.submit(run_shot, s, root, redo=redo, chunk_frames=chunk_frames, attempt=attempt): s for s in shots
        }
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for f in done:
                shot = futures[f]
                try:
                    reports[shot.id] = f.result()
                except BrokenProcessPool:
                    lost.append(shot)
                    continue
                on_report(shot, reports[shot.id])
    order = {s.id: i for i, s in enumerate(shots)}
    return sorted(lost, key=lambda s: order[s.id])
