"""``vmatte batch``: validate the manifest, skip what is done, run the rest, summarise.

Exit codes: 0 every shot is done; 1 some failed (each listed with its one-line error);
2 the manifest or an option is bad (nothing ran).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .manifest import Defaults, Shot, load_manifest, shard
from .shot import DONE, FAILED, is_done, read_report

EXIT_OK, EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class BatchOptions:
    workers: int = 1
    threads: int | None = None  # per worker (default: cores // workers)
    ray: bool = False
    ray_address: str | None = None  # None with ray=True: join or start a Ray on this machine
    cpus_per_shot: float = 1
    shard: tuple[int, int] | None = None  # (index, count)
    redo: bool = False
    chunk_frames: int | None = None
    retries: int = 3
    progress: bool = True


@dataclass
class BatchResult:
    exit_code: int
    reports: dict[str, dict]
    summary: dict
    paths: dict[str, Path] = field(default_factory=dict)


def _summary_names(options: BatchOptions) -> tuple[str, str]:
    if options.shard is None:
        return "batch.json", "batch.md"
    i, n = options.shard
    return f"batch-shard-{i}-of-{n}.json", f"batch-shard-{i}-of-{n}.md"


def run_batch(
    manifest: str | os.PathLike,
    root: str | os.PathLike,
    defaults: Defaults | None = None,
    options: BatchOptions | None = None,
) -> BatchResult:
    """Run (or resume) every shot of ``manifest`` into ``ROOT/<id>/``; see the module doc."""
    from ..errors import VmatteError
    from ..io.writers import prepare_output_dir

    defaults, options = defaults or Defaults(), options or BatchOptions()

    if options.workers < 1:
        raise VmatteError(f"--workers must be at least 1, got {options.workers}")
    if options.threads is not None and options.threads < 1:
        raise VmatteError(f"--threads must be at least 1, got {options.threads}")
    if options.chunk_frames is not None and options.chunk_frames < 1:
        raise VmatteError(f"--chunk-frames must be at least 1, got {options.chunk_frames}")
    if options.ray and options.workers != 1:
        raise VmatteError(
            "--workers is for runs on this machine; with --ray each shot is a task: size them with --cpus-per-shot"
        )
    if options.ray:
        from .cluster import import_ray

        import_ray()  # a missing extra is one line before any work
    shots = load_manifest(manifest, defaults)
    if options.shard is not None:
        shots = shard(shots, *options.shard)
    root = Path(os.fspath(root)).expanduser()
    prepare_output_dir(root, "batch output folder", "-o ROOT")
    start = time.time()
    reports: dict[str, dict] = {}
    todo: list[Shot] = []
    for shot in shots:
        done = None if options.redo else is_done(root / shot.id)
        if done is not None:
            reports[shot.id] = {**done, "skipped": True}
        else:
            todo.append(shot)
    bar = _Progress(len(shots), len(shots) - len(todo), options.progress)

    def on_report(shot: Shot, report: dict) -> None:
        reports[shot.id] = report
        bar.update(report)

    try:
        if options.ray:
            from .cluster import run_ray

            run_ray(
                todo,
                root,
                address=options.ray_address,
                cpus_per_shot=options.cpus_per_shot,
                redo=options.redo,
                chunk_frames=options.chunk_frames,
                retries=options.retries,
                on_report=on_report,
            )
        else:
            from .local import run_local

            run_local(
                todo,
                root,
                workers=options.workers,
                threads=options.threads,
                redo=options.redo,
                chunk_frames=options.chunk_frames,
                retries=min(options.retries, 2),
                on_report=on_report,
            )
    finally:
        bar.close()
    runner = (
        f"ray {options.ray_address or '(this machine)'}, {options.cpus_per_shot:g} CPU per shot"
        if options.ray
        else f"local, {options.workers} worker{'s' if options.workers > 1 else ''}"
    )
    summary = summarise(
        shots,
        reports,
        root,
        manifest=str(manifest),
        runner=runner,
        started=start,
        seconds=time.time() - start,
        shard=options.shard,
    )
    paths = write_summary(root, summary, *_summary_names(options))
    return BatchResult(EXIT_FAILED if summary["failed"] or summary["missing"] else EXIT_OK, reports, summary, paths)


def summary_only(manifest: str | os.PathLike, root: str | os.PathLike, defaults: Defaults | None = None) -> BatchResult:
    """Merge the shots' reports (e.g. after a Slurm array of ``--shard`` runs) into batch.json/md."""
    shots = load_manifest(manifest, defaults or Defaults())
    root = Path(os.fspath(root)).expanduser()
    reports = {s.id: r for s in shots if (r := read_report(root / s.id)) is not None}
    summary = summarise(
        shots,
        reports,
        root,
        manifest=str(manifest),
        runner="summary of the shots' reports",
        started=None,
        seconds=None,
        shard=None,
    )
    paths = write_summary(root, summary, "batch.json", "batch.md")
    return BatchResult(EXIT_FAILED if summary["failed"] or summary["missing"] else EXIT_OK, reports, summary, paths)


def summarise(
    shots: Sequence[Shot],
    reports: dict[str, dict],
    root: Path,
    *,
    manifest: str,
    runner: str,
    started: float | None,
    seconds: float | None,
    shard: tuple[int, int] | None,
) -> dict:
    rows = []
    for shot in shots:
        r = reports.get(shot.id)
        if r is None:
            rows.append(
                {
                    "id": shot.id,
                    "status": "missing",
                    "model": shot.model,
                    "error": "no report: the shot has not run (run the batch, or its shard, again)",
                }
            )
            continue
        status = r.get("status")
        if status not in (DONE, FAILED):  # "running": its process died and nothing retried it
            status, r = (
                FAILED,
                {**r, "retryable": True, "error": "interrupted (its worker stopped); run the batch again to resume it"},
            )
        rows.append(
            {
                k: r.get(k)
                for k in (
                    "id",
                    "model",
                    "frames",
                    "seconds",
                    "fps",
                    "attempt",
                    "resumed",
                    "error",
                    "retryable",
                    "weights_sha256",
                    "host",
                )
            }
            | {"status": status, "skipped": bool(r.get("skipped"))}
        )
    done = [r for r in rows if r["status"] == DONE]
    ran = [r for r in done if not r["skipped"]]
    frames = sum(r.get("frames") or 0 for r in ran)
    summary = {
        "manifest": manifest,
        "root": str(root),
        "runner": runner,
        "shard": list(shard) if shard else None,
        "started": started,
        "seconds": None if seconds is None else round(seconds, 3),
        "shots": len(rows),
        "done": len(done),
        "skipped": len(done) - len(ran),
        "failed": sum(r["status"] == FAILED for r in rows),
        "missing": sum(r["status"] == "missing" for r in rows),
        "frames": frames,
    }
    if seconds:
        summary["frames_per_s"] = round(frames / seconds, 3)
        summary["shots_per_hour"] = round(len(ran) * 3600 / seconds, 1)
    summary["reports"] = rows
    return summary


def write_summary(root: Path, summary: dict, json_name: str, md_name: str) -> dict[str, Path]:
    paths = {"json": root / json_name, "md": root / md_name}
    lines = [
        f"# vmatte batch: {summary['done']}/{summary['shots']} shots done",
        "",
        f"Manifest `{summary['manifest']}`; {summary['runner']}.",
    ]
    if summary.get("seconds"):
        lines.append(
            f"{summary['frames']} frames in {summary['seconds']:.1f} s: {summary.get('frames_per_s', 0):.2f} "
            f"frames/s, {summary.get('shots_per_hour', 0):.0f} shots/hour ({summary['skipped']} skipped "
            f"as done)."
        )
    lines += ["", "| id | status | model | frames | seconds | frames/s | error |", "|---|---|---|---:|---:|---:|---|"]
    for r in summary["reports"]:
        status = "done (skipped)" if r.get("skipped") else r["status"]
        if r["status"] == FAILED:
            status += " (retryable)" if r.get("retryable") else " (bad input)"
        error = (r.get("error") or "").replace("|", "\\|")
        cells = [
            r["id"],
            status,
            r.get("model") or "",
            r.get("frames") or "",
            r.get("seconds") or "",
            r.get("fps") or "",
            error,
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    for key, text in (("json", json.dumps(summary, indent=1)), ("md", "\n".join(lines) + "\n")):
        tmp = paths[key].with_name(f".{paths[key].name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, paths[key])
    return paths


class _Progress:
    """One bar over shots, with the frames matted so far and their rate."""

    def __init__(self, total: int, skipped: int, enabled: bool):
        self.frames = 0
        self.t0 = time.perf_counter()
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=skipped, unit="shot", desc="shots", file=sys.stderr, dynamic_ncols=True
            )

    def update(self, report: dict) -> None:
        if report.get("status") == DONE and not report.get("skipped"):
            self.frames += int(report.get("frames") or 0)
        if self.bar is not None:
            rate = self.frames / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.set_postfix_str(f"{self.frames} frames, {rate:.1f} frames/s", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
