"""What ``bench quality`` produces and how its files are written: the result types, the report's
column titles, and the small writers (atomic files, CSV, Markdown tables) the other reports use too."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vmatte.engine.registry import KEYFRAMES, SPECS
from vmatte.errors import OutputError

from .metrics import MetricSettings

# Column titles of the report, with the scale each reported number carries.
TITLES = {
    "mad": "MAD (x1e3)",
    "mse": "MSE (x1e3)",
    "grad": "Grad (/1e3)",
    "conn": "Conn (/1e3)",
    "dtssd": "dtSSD (x1e2)",
    "fgr_mad": "fgr MAD (x1e3)",
    "fgr_mse": "fgr MSE (x1e3)",
    "core_mad": "core MAD (x1e3)",
    "core_mse": "core MSE (x1e3)",
    "core_dtssd": "core dtSSD (x1e2)",
    "j": "J (x100)",
    "f": "F (x100)",
}


# The models given frame 0's true alpha as their target: the registry's keyframe models.
TARGET_MODELS = tuple(s.name for s in SPECS.values() if s.takes == KEYFRAMES)


@dataclass(frozen=True)
class QualitySettings:
    metrics: MetricSettings = field(default_factory=MetricSettings)
    device: str = "auto"
    max_frames: int | None = None  # score only the first N frames of each clip (quick runs)
    fps: float = 25.0  # for clips without clip.json


@dataclass
class ClipScore:
    model: str
    clip: str
    frames: int
    seconds: float
    mean: dict[str, float]
    per_frame: list[dict[str, float]]


@dataclass
class QualityResult:
    output: Path
    clips: list[ClipScore]
    means: dict[str, dict[str, float]]  # model -> metric -> mean over clips


def atomic_write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {e.strerror}; check free space and permissions") from None


def metric_names(scores: list[ClipScore]) -> list[str]:
    names: list[str] = []
    for s in scores:
        names += [k for k in s.mean if k not in names]
    return names


def fmt(v: float) -> str:
    return "" if v is None or math.isnan(v) else f"{v:.6g}"


def csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def nan_to_none(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_to_none(v) for v in obj]
    return obj


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def shown_metrics(result: QualityResult, models: Sequence[str]) -> list[str]:
    """Metrics with a value for some model (fgr metrics need fgr/, etc.), in column order."""
    return [
        k for k in metric_names(result.clips) if any(not math.isnan(result.means[m].get(k, math.nan)) for m in models)
    ]


def protocol_note(result: QualityResult, settings: QualitySettings) -> str:
    return (
        f"{len({s.clip for s in result.clips})} clips; per-frame values averaged over frames, then clips. "
        f"Grad: sigma {settings.metrics.grad_sigma}, "
        f"{'each matte min-max normalised first' if settings.metrics.grad_minmax else 'mattes as they are'}; "
        f"F: boundary tolerance {settings.metrics.boundary_tolerance} x diagonal. "
        f"Target models ({', '.join(TARGET_MODELS)}) get frame 0's true alpha >= 0.5 as their mask."
    )
