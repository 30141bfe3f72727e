"""Shots on a Ray cluster: one Ray task per shot, outputs on the filesystem given as ROOT.

Why tasks and not a fixed set of actors: Ray retries a task whose worker or node was lost
(``max_retries``) on whatever node has room, while an actor that died with its node can only be
restarted where its resources are free, which in a full cluster is never. The model is still
loaded once per worker: Ray reuses its worker processes across tasks (``max_calls=0``, also
for GPU tasks, whose default would start a fresh process per task), and a worker keeps the
models it loaded (:mod:`vmatte.batch.shot`), as an actor would keep its state.

Resources per task: ``num_cpus`` (``--cpus-per-shot``, also the threads the shot's model
uses) and ``num_gpus=1`` when the shot runs on a GPU (``device`` cuda, or auto on a cluster
that has GPUs). A retried shot continues from its journal, so a lost node costs at most the
chunk it was writing. ROOT must be a folder every node sees at the same path (NFS, Lustre, a
mounted bucket).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import VmatteError
from .manifest import Shot
from .shot import FAILED, run_shot, set_threads

INSTALL_HINT = "pip install 'vmatte[cluster]' (or pip install 'ray[default]')"
_threads_set: int | None = None


def import_ray():
    try:
        import ray
    except ImportError:
        raise VmatteError(f"--ray needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def _shot_task(shot: Shot, root: str, redo: bool, chunk_frames: int | None, threads: int) -> dict:
    """Runs in a Ray worker process (reused across tasks, so loaded models are kept)."""
    global _threads_set
    if _threads_set != threads:
        from ..engine.runtime import tune_allocator

        tune_allocator()
        set_threads(threads)
        _threads_set = threads
    import ray

    return run_shot(
        shot, root, redo=redo, chunk_frames=chunk_frames, extra={"ray_node": ray.get_runtime_context().get_node_id()}
    )


def _wants_gpu(shot: Shot, cluster_gpus: float) -> bool:
    device = str(shot.options.get("device", "auto"))
    return device.startswith("cuda") or (device == "auto" and cluster_gpus > 0)


def connect(address: str | None):
    """Join the cluster at ``address``; ``None``: join a Ray running on this machine, or start one."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": True}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            try:
                ray.init(address="auto", **quiet)
            except ConnectionError:
                ray.init(include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as e:  # unreachable, wrong address, version mismatch
        why = " ".join(str(e).split())[:300]
        raise VmatteError(
            f"cannot join the Ray cluster at {address or 'this machine'} ({why}); start it with "
            f"`ray start --head` (the same Ray version everywhere) or give its address as "
            f"--ray HOST:PORT"
        ) from None
    return ray


def run_ray(
    shots: Sequence[Shot],
    root: Path,
    *,
    address: str | None = None,
    cpus_per_shot: float = 1,
    redo: bool = False,
    chunk_frames: int | None = None,
    retries: int = 3,
    on_report: Callable[[Shot, dict], None] = lambda s, r: None,
) -> dict[str, dict]:
    """Run ``shots`` as Ray tasks; returns id -> report (``on_report`` is called as each ends)."""
    if cpus_per_shot <= 0:
        raise VmatteError(f"--cpus-per-shot must be above 0, got {cpus_per_shot}")
    ray = connect(address)
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        threads = max(1, int(cpus_per_shot))
        task = ray.remote(max_calls=0)(_shot_task)  # max_calls=0: workers (and their models) are reused
        futures = {}
        for shot in shots:
            options = {
                "num_cpus": cpus_per_shot,
                "num_gpus": 1 if _wants_gpu(shot, gpus) else 0,
                "max_retries": retries,
            }
            futures[task.options(**options).remote(shot, str(root), redo, chunk_frames, threads)] = shot
        reports: dict[str, dict] = {}
        remaining = list(futures)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            for ref in done:
                shot = futures[ref]
                try:
                    reports[shot.id] = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - a worker/node lost more often than the retries
                    reports[shot.id] = {
                        "id": shot.id,
                        "input": shot.input,
                        "model": shot.model,
                        "status": FAILED,
                        "retryable": True,
                        "error": " ".join(
                            f"lost on the cluster after {retries} retries "
                            f"({type(e).__name__}: {e}); run the batch again to "
                            f"resume it".split()
                        )[:500],
                    }
                on_report(shot, reports[shot.id])
        return reports
    finally:
        ray.shutdown()
