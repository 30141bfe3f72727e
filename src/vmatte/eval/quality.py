"""Score models on benchmark clips (``vmatte bench compose`` output, or any ROOT/clip/{com,pha}).

For each model and clip the composite (``com/``) is matted with :func:`vmatte.iter_matte`, and each
frame is compared with ``pha/`` (and ``fgr/`` when present) by :mod:`vmatte.eval.metrics`. Written
into the output folder (each file under a temporary name, renamed when complete):

* ``per_frame.csv``  model, clip, frame, one column per metric (reported scales)
* ``per_clip.csv``   model, clip, frames, seconds, mean of each metric over the clip's frames
* ``results.json``   all of the above plus the settings
* ``report.md``      a table per model (mean over clips, as the published tables average)
* ``report.html``    with ``html=True``: the tables, error curves, per-clip bars and contact sheets
  (:mod:`vmatte.eval.report`; needs matplotlib)
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import numpy as np

from vmatte.errors import InputError, OutputError
from vmatte.io.reader import natural_key

from .files import images, read_image
from .metrics import EvalError, MetricAccumulator, mean_over_clips
from .results import (
    TARGET_MODELS,
    TITLES,
    ClipScore,
    QualityResult,
    QualitySettings,
    atomic_write,
    csv_text,
    fmt,
    md_table,
    metric_names,
    nan_to_none,
    protocol_note,
    shown_metrics,
)

__all__ = ["ClipScore", "FrameSampler", "QualityResult", "QualitySettings", "evaluate", "find_clips"]


class FrameSampler(Protocol):
    """Keeps a few frames while a clip streams through scoring (contact sheets).

    Scoring asks once per clip which frame indices are wanted, then hands over only those: the
    sampler decides what to keep (e.g. thumbnails), so no clip is ever held whole in memory."""

    def wanted(self, clip: str, frames: int) -> Collection[int]: ...

    def keep(
        self, model: str, clip: str, index: int, image: np.ndarray, pred: np.ndarray, true: np.ndarray
    ) -> None: ...


def find_clips(root: str | os.PathLike) -> list[Path]:
    """Clip folders under ``root``: those with ``com/`` and ``pha/`` (``root`` itself may be one)."""
    root = Path(os.fspath(root)).expanduser()
    if not root.is_dir():
        raise InputError(f"benchmark folder not found: {root}; make one with `vmatte bench compose`")
    if (root / "com").is_dir() and (root / "pha").is_dir():
        return [root]
    clips = [
        c
        for c in sorted(root.iterdir(), key=lambda e: natural_key(e.name))
        if not c.name.startswith(".") and (c / "com").is_dir() and (c / "pha").is_dir()
    ]
    if not clips:
        raise InputError(f"{root} has no clips (folders with com/ and pha/); make them with `vmatte bench compose`")
    return clips


def _clip_fps(clip: Path, default: float) -> float:
    try:
        return float(json.loads((clip / "clip.json").read_text()).get("fps", default))
    except (OSError, ValueError, AttributeError):
        return default


def score_clip(
    clip: Path, model: str, matter, settings: QualitySettings, sampler: FrameSampler | None = None
) -> ClipScore:
    """Matte ``clip/com`` with ``matter`` and compare every frame with ``clip/pha`` (and ``fgr``).

    ``sampler`` is shown the frames it asks for (input, predicted and true alpha) as they pass."""
    from vmatte.matte import iter_matte

    phas = images(clip / "pha")
    fgrs = images(clip / "fgr") if (clip / "fgr").is_dir() else []
    if fgrs and len(fgrs) != len(phas):
        fgrs = []  # an incomplete fgr/ cannot be matched frame by frame; fgr metrics stay NaN
    n_com = len(images(clip / "com"))
    if n_com != len(phas):
        raise InputError(f"{clip} has {n_com} com frames but {len(phas)} pha frames; re-create the clip")
    limit = len(phas) if settings.max_frames is None else min(settings.max_frames, len(phas))
    acc = MetricAccumulator(settings.metrics)
    keep = set(sampler.wanted(clip.name, limit)) if sampler is not None else set()
    start = time.perf_counter()
    frames = iter_matte(clip / "com", model=matter, fps=_clip_fps(clip, settings.fps))
    try:
        for i, res in enumerate(frames):
            if i >= limit:
                break
            true = read_image(phas[i], grey=True)
            true_fgr = read_image(fgrs[i], grey=False) if fgrs else None
            acc.update(res.alpha, true, res.foreground if true_fgr is not None else None, true_fgr)
            if i in keep:
                sampler.keep(model, clip.name, i, res.image, res.alpha, true)
    finally:
        frames.close()
    seconds = time.perf_counter() - start
    if len(acc.frames) != limit:
        raise EvalError(f"{model} gave {len(acc.frames)} frames for {clip} but pha/ has {limit}; check the clip")
    return ClipScore(model, clip.name, limit, seconds, acc.mean(), acc.per_frame())


# Models that matte the target of a mask: they get each clip's frame-0 true alpha (>= 0.5) as
# the mask, as a user would give the first frame's mask.
def _target_matter(model: str, matter, clip: Path, settings: QualitySettings):
    """``matter`` re-targeted to ``clip``'s first-frame mask (loaded on first use)."""
    first = read_image(images(clip / "pha")[0], grey=True)
    top = np.iinfo(first.dtype).max if np.issubdtype(first.dtype, np.integer) else 1.0
    mask = (first >= 0.5 * top).astype(np.uint8) * 255
    if not mask.any():
        raise InputError(f"{clip}: frame 0 of pha/ is empty, so {model} has no target mask; drop the clip")
    if matter is None:
        from vmatte.matte import load_matter

        return load_matter(model, mask=mask, device=settings.device)
    matter.set_mask(mask)
    return matter


def evaluate(
    root: str | os.PathLike,
    models: Sequence[str],
    output: str | os.PathLike | None = None,
    settings: QualitySettings = QualitySettings(),
    matters: Mapping[str, object] | None = None,
    progress: bool = False,
    html: bool = False,
    contact_rows: int = 4,
) -> QualityResult:
    """Score ``models`` on every clip under ``root``; writes CSV/JSON/Markdown into ``output``.

    ``matters`` maps a model name to a ready :class:`~vmatte.engine.rvm.FrameMatter` (tests,
    custom models); other names are loaded with :func:`vmatte.load_matter`. ``html`` also writes
    ``report.html`` with plots and a contact sheet of ``contact_rows`` frames per clip."""
    if not models:
        raise InputError("no models given; pass --models, e.g. --models rvm")
    sampler = None
    if html:
        # Checked before any matting: a missing plotting library should not cost a full run.
        from .report import ContactSampler, require_matplotlib

        require_matplotlib()
        sampler = ContactSampler(contact_rows)
    from vmatte.matte import MODELS

    unknown = [m for m in models if m not in MODELS and not (matters and m in matters)]
    if unknown:
        raise InputError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    clips = find_clips(root)
    root = Path(os.fspath(root)).expanduser()
    out = Path(os.fspath(output)).expanduser() if output is not None else root / "quality"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {out}: {e.strerror}; choose another -o") from None
    scores: list[ClipScore] = []
    for model in models:
        matter = None
        if matters and model in matters:
            matter = matters[model]
        elif model not in TARGET_MODELS:
            from vmatte.matte import load_matter

            matter = load_matter(model, device=settings.device)
        for clip in clips:
            if matter is None or (model in TARGET_MODELS and not (matters and model in matters)):
                matter = _target_matter(model, matter, clip, settings)
            s = score_clip(clip, model, matter, settings, sampler)
            scores.append(s)
            if progress:
                cells = "  ".join(f"{k}={v:.3g}" for k, v in s.mean.items() if not math.isnan(v))
                print(f"{model}\t{clip.name}\t{s.frames} frames\t{cells}", file=sys.stderr, flush=True)
    means = {m: mean_over_clips([s.mean for s in scores if s.model == m]) for m in models}
    result = QualityResult(out, scores, means)
    _write_outputs(result, root, models, settings)
    if sampler is not None:
        from .report import write_report

        write_report(result, root, models, settings, sampler)
    return result


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def _write_outputs(result: QualityResult, root: Path, models: Sequence[str], settings: QualitySettings) -> None:
    names = metric_names(result.clips)
    frame_rows = [
        [s.model, s.clip, i] + [fmt(f.get(k, math.nan)) for k in names]
        for s in result.clips
        for i, f in enumerate(s.per_frame)
    ]
    clip_rows = [
        [s.model, s.clip, s.frames, f"{s.seconds:.3f}"] + [fmt(s.mean.get(k, math.nan)) for k in names]
        for s in result.clips
    ]
    atomic_write(result.output / "per_frame.csv", csv_text(["model", "clip", "frame"] + names, frame_rows))
    atomic_write(result.output / "per_clip.csv", csv_text(["model", "clip", "frames", "seconds"] + names, clip_rows))
    doc = {
        "root": str(root),
        "settings": {"metrics": asdict(settings.metrics), "device": settings.device, "max_frames": settings.max_frames},
        "scales": "reported: MAD/MSE x1e3, Grad/Conn /1e3, dtSSD x1e2, J/F x100",
        "means": result.means,
        "clips": [asdict(s) for s in result.clips],
    }
    atomic_write(result.output / "results.json", json.dumps(nan_to_none(doc), indent=1) + "\n")
    shown = shown_metrics(result, models)
    md = [
        f"# Quality on {root}",
        "",
        protocol_note(result, settings),
        "",
        md_table(
            ["model"] + [TITLES[k] for k in shown],
            [[m] + [fmt(result.means[m].get(k, math.nan)) for k in shown] for m in models],
        ),
    ]
    for m in models:
        rows = [
            [s.clip, str(s.frames), f"{s.frames / s.seconds:.1f}" if s.seconds > 0 else ""]
            + [fmt(s.mean.get(k, math.nan)) for k in shown]
            for s in result.clips
            if s.model == m
        ]
        md += ["", f"## {m}", "", md_table(["clip", "frames", "frames/s"] + [TITLES[k] for k in shown], rows)]
    atomic_write(result.output / "report.md", "\n".join(md) + "\n")
