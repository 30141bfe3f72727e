"""The HTML report of ``vmatte bench quality``: tables, error curves, per-clip bars, contact sheets.

Written next to the CSV/JSON outputs of :mod:`vmatte.eval.quality`::

    OUT/report.html            one self-contained file: every image is embedded (base64 PNG)
    OUT/plots/bars.png         MAD / MSE / Grad / dtSSD per clip, models side by side
    OUT/plots/curves_CLIP.png  MAD and dtSSD against frame, one line per model
    OUT/plots/contact_CLIP.png sampled frames: input | prediction per model | truth | error per model

The PNGs are also kept as files so they can go into issues and docs on their own. Plots use
matplotlib's Agg backend (no display needed); contact sheets are assembled with NumPy/OpenCV so
their pixel layout is exact (see :func:`contact_size`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vmatte.errors import OutputError, VmatteError
from vmatte.io.pixels import to_uint8

from .results import TITLES, ClipScore, QualityResult, QualitySettings, atomic_write, fmt, protocol_note, shown_metrics

__all__ = ["ContactSampler", "contact_size", "fig_png", "new_figure", "require_matplotlib", "write_report"]

CELL_WIDTH = 384  # contact-sheet cells are shrunk to this width at most (never enlarged)
GAP = 2  # pixels between cells
HEADER = 18  # pixels of the column-title band
CURVE_METRICS = ("mad", "dtssd")
BAR_METRICS = ("mad", "mse", "grad", "dtssd")
COMPARE_METRICS = ("mad", "mse", "grad", "conn", "dtssd")  # the side-by-side table


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise VmatteError(
            "the HTML report needs matplotlib; install it with: pip install 'vmatte[eval]' (or pass --no-html)"
        ) from None


# --------------------------------------------------------------------------------------------
# Contact sheets
# --------------------------------------------------------------------------------------------


def sample_indices(frames: int, rows: int) -> list[int]:
    """``rows`` frame indices spread evenly from the first frame to the last (fewer if the clip is short)."""
    if frames <= 0 or rows <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, frames - 1, min(rows, frames))})


def _cell_size(w: int, h: int) -> tuple[int, int]:
    if w <= CELL_WIDTH:
        return w, h
    return CELL_WIDTH, max(1, round(h * CELL_WIDTH / w))


_u8 = to_uint8


class ContactSampler:
    """Keeps thumbnails of a few frames per clip while quality scoring streams (a FrameSampler).

    Memory is rows x (1 + models) small images per clip, whatever the clip's length or size.
    The input and the truth are the same for every model, so they are kept once."""

    def __init__(self, rows: int = 4):
        if rows < 1:
            raise VmatteError(f"--contact-rows must be at least 1, got {rows}")
        self.rows = rows
        self.indices: dict[str, list[int]] = {}
        self.inputs: dict[str, dict[int, np.ndarray]] = {}
        self.truths: dict[str, dict[int, np.ndarray]] = {}
        self.preds: dict[tuple[str, str], dict[int, np.ndarray]] = {}

    def wanted(self, clip: str, frames: int) -> list[int]:
        # --max-frames applies to every model alike, so the indices agree across models.
        self.indices[clip] = sample_indices(frames, self.rows)
        return self.indices[clip]

    def keep(self, model: str, clip: str, index: int, image: np.ndarray, pred: np.ndarray, true: np.ndarray) -> None:
        h, w = true.shape[:2]
        size = _cell_size(w, h)

        def thumb(a: np.ndarray) -> np.ndarray:
            a = _u8(a)
            return a if (a.shape[1], a.shape[0]) == size else cv2.resize(a, size, interpolation=cv2.INTER_AREA)

        self.inputs.setdefault(clip, {}).setdefault(index, thumb(image))
        self.truths.setdefault(clip, {}).setdefault(index, thumb(true))
        self.preds.setdefault((model, clip), {})[index] = thumb(pred)


def contact_size(frame_size: tuple[int, int], rows: int, models: int) -> tuple[int, int]:
    """(width, height) in pixels of a contact sheet: columns input | models | truth | models' errors."""
    cw, ch = _cell_size(*frame_size)
    cols = 2 + 2 * models
    return cols * cw + (cols + 1) * GAP, HEADER + rows * ch + (rows + 1) * GAP


def error_map(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Signed error as colour: red where the prediction has too much alpha, blue where too little.

    Brightness is sqrt(|error|): an error of 0.05 on a soft edge is already visible (~22 %),
    where a linear scale would leave it near black."""
    e = pred.astype(np.float32) / 255.0 - true.astype(np.float32) / 255.0
    v = np.sqrt(np.abs(e))
    out = np.zeros(e.shape + (3,), np.float32)
    over, under = e > 0, e < 0
    out[over, 0] = v[over]
    out[over, 1] = 0.25 * v[over]
    out[under, 1] = 0.45 * v[under]
    out[under, 2] = v[under]
    return _u8(out)


def _label(img: np.ndarray, text: str, x: int, y: int, width: int) -> None:
    """White text clipped to ``width`` pixels, drawn in place (cv2: no font files needed)."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    while text and cv2.getTextSize(text, font, scale, 1)[0][0] > width - 4:
        text = text[:-1]
    cv2.putText(img, text, (x + 2, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def contact_sheet(sampler: ContactSampler, clip: str, models: Sequence[str]) -> np.ndarray:
    """RGB uint8 sheet of the sampled frames of ``clip`` (rows) for ``models`` (see module doc)."""
    indices = [i for i in sampler.indices.get(clip, []) if i in sampler.inputs.get(clip, {})]
    if not indices:
        raise OutputError(f"no frames were sampled for clip {clip}; the contact sheet cannot be made")
    ch, cw = sampler.truths[clip][indices[0]].shape[:2]
    titles = ["input"] + list(models) + ["truth"] + [f"error {m}" for m in models]
    width, height = contact_size((cw, ch), len(indices), len(models))
    # The frame size was already shrunk to a cell, so contact_size sees a cell-sized frame.
    sheet = np.full((height, width, 3), 24, np.uint8)
    for c, t in enumerate(titles):
        _label(sheet, t, GAP + c * (cw + GAP), HEADER - 5, cw)
    grey = lambda a: np.repeat(a[:, :, None], 3, axis=2)  # noqa: E731
    for r, i in enumerate(indices):
        true = sampler.truths[clip][i]
        cells = [sampler.inputs[clip][i]]
        preds = [sampler.preds.get((m, clip), {}).get(i) for m in models]
        cells += [grey(p) if p is not None else np.zeros_like(cells[0]) for p in preds]
        cells.append(grey(true))
        cells += [error_map(p, true) if p is not None else np.zeros_like(cells[0]) for p in preds]
        y = HEADER + GAP + r * (ch + GAP)
        for c, cell in enumerate(cells):
            x = GAP + c * (cw + GAP)
            sheet[y : y + ch, x : x + cw] = cell if cell.ndim == 3 else grey(cell)
        _label(sheet, f"#{i}", GAP, y + 12, cw)
    return sheet


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError("cannot encode a contact sheet as PNG")
    return buf.tobytes()


# --------------------------------------------------------------------------------------------
# Plots (matplotlib, Agg)
# --------------------------------------------------------------------------------------------


def new_figure(width: float, height: float):
    """A matplotlib Figure drawn by the Agg canvas, without pyplot.

    pyplot would switch the process-wide backend and keep every figure alive until closed; a
    bare Figure needs no display, leaves a caller's own matplotlib setup alone and is freed
    with its last reference."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def error_curves(clip: str, scores: Sequence[ClipScore]) -> bytes:
    """MAD and dtSSD against frame for one clip, one line per model (dtSSD has no frame 0)."""
    fig = new_figure(8, 2.2 * len(CURVE_METRICS))
    axes = np.atleast_1d(fig.subplots(len(CURVE_METRICS), 1, sharex=True))
    for ax, k in zip(axes, CURVE_METRICS):
        for s in scores:
            ys = [f.get(k, math.nan) for f in s.per_frame]
            ax.plot(range(len(ys)), ys, label=s.model, linewidth=1.2, marker="." if len(ys) < 60 else None)
        ax.set_ylabel(TITLES[k])
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("frame")
    axes[0].set_title(f"clip {clip}")
    axes[0].legend(loc="upper right", fontsize="small")
    return fig_png(fig)


def clip_bars(scores: Sequence[ClipScore], models: Sequence[str], clips: Sequence[str]) -> bytes:
    """One panel per metric (MAD, MSE, Grad, dtSSD), a group of bars per clip, a bar per model."""
    fig = new_figure(max(6.0, 0.5 * len(clips) * max(1, len(models)) + 2), 9)
    axes = fig.subplots(len(BAR_METRICS), 1, sharex=True)
    by = {(s.model, s.clip): s for s in scores}
    x = np.arange(len(clips))
    width = 0.8 / max(1, len(models))
    for ax, k in zip(axes, BAR_METRICS):
        for j, m in enumerate(models):
            ys = [by[(m, c)].mean.get(k, math.nan) if (m, c) in by else math.nan for c in clips]
            ax.bar(x - 0.4 + width * (j + 0.5), ys, width, label=m)
        ax.set_ylabel(TITLES[k])
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small", ncols=min(len(models), 4))
    axes[-1].set_xticks(x, clips, rotation=45 if len(clips) > 12 else 0)
    axes[-1].set_xlabel("clip")
    return fig_png(fig)


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
td.best { font-weight: bold; background: #e8f4e8; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.3em 0; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, classes=None) -> str:
    h = "".join(
        f'<th class="l">{html.escape(t)}</th>' if i < left else f"<th>{html.escape(t)}</th>"
        for i, t in enumerate(header)
    )
    body = []
    for r, row in enumerate(rows):
        cells = []
        for i, v in enumerate(row):
            cls = ["l"] if i < left else []
            if classes and classes[r][i]:
                cls.append(classes[r][i])
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{h}</tr>\n" + "\n".join(body) + "</table>"


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _clip_caption(root: Path, clip: str) -> str:
    """'sample3 over dog.mp4' from clip.json when the clip was made by `vmatte bench compose`."""
    try:
        meta = json.loads((root / clip / "clip.json").read_text())
        return f"{meta['source']['name']} over {Path(str(meta['background'])).name}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _compare_table(result: QualityResult, models: Sequence[str], clips: Sequence[str]) -> str:
    """Clips as rows, each metric with a column per model; the lowest error of a row is marked."""
    keys = [k for k in COMPARE_METRICS if k in shown_metrics(result, models)]
    by = {(s.model, s.clip): s for s in result.clips}
    head1 = '<th class="l" rowspan="2">clip</th>' + "".join(
        f'<th colspan="{len(models)}">{html.escape(TITLES[k])}</th>' for k in keys
    )
    head2 = "".join(f"<th>{html.escape(m)}</th>" for _ in keys for m in models)
    rows = []
    for c in clips + ["mean"]:
        cells = [f'<td class="l">{html.escape(c)}</td>']
        for k in keys:
            vals = [
                (result.means[m] if c == "mean" else by[(m, c)].mean if (m, c) in by else {}).get(k, math.nan)
                for m in models
            ]
            finite = [v for v in vals if not math.isnan(v)]
            best = min(finite) if len(models) > 1 and finite else None
            cells += [
                f'<td class="best">{fmt(v)}</td>' if best is not None and v == best else f"<td>{fmt(v)}</td>"
                for v in vals
            ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head1}</tr><tr>{head2}</tr>\n" + "\n".join(rows) + "</table>"


def write_report(
    result: QualityResult, root: Path, models: Sequence[str], settings: QualitySettings, sampler: ContactSampler
) -> Path:
    """Write plots/*.png and report.html into ``result.output``; returns the HTML path."""
    plots = result.output / "plots"
    try:
        plots.mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {plots}: {e.strerror}; choose another -o") from None
    clips = list(dict.fromkeys(s.clip for s in result.clips))
    shown = shown_metrics(result, models)

    written: set[str] = set()

    def save(name: str, data: bytes) -> bytes:
        atomic_write(plots / name, data)
        written.add(name)
        return data

    doc = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>vmatte quality: {html.escape(str(root))}</title><style>{CSS}</style></head><body>",
        f"<h1>Quality on {html.escape(str(root))}</h1>",
        f'<p class="note">{html.escape(protocol_note(result, settings))} Scales as published: '
        "MAD/MSE x1e3, Grad/Conn /1e3, dtSSD x1e2, J/F x100; lower is better except J and F.</p>",
        "<h2>Mean over clips</h2>",
        _table(
            ["model"] + [TITLES[k] for k in shown],
            [[m] + [fmt(result.means[m].get(k, math.nan)) for k in shown] for m in models],
        ),
    ]
    doc += [
        "<h2>Per clip, models side by side</h2>",
        '<p class="note">Lowest error per clip in bold when several models are compared.</p>',
        _compare_table(result, models, clips),
        _img(save("bars.png", clip_bars(result.clips, models, clips)), "per-clip bars"),
    ]
    for m in models:
        rows = [
            [s.clip, _clip_caption(root, s.clip), str(s.frames), f"{s.frames / s.seconds:.1f}" if s.seconds > 0 else ""]
            + [fmt(s.mean.get(k, math.nan)) for k in shown]
            for s in result.clips
            if s.model == m
        ]
        doc += [
            f"<h2>{html.escape(m)}: every metric per clip</h2>",
            _table(["clip", "content", "frames", "frames/s"] + [TITLES[k] for k in shown], rows, left=2),
        ]
    doc += [
        "<h2>Clips</h2>",
        '<p class="note">Contact sheets: rows are frames spread over the clip; columns are the input, '
        "each model's alpha, the true alpha, then each model's error (red: too much alpha, "
        "blue: too little; brightness sqrt(|error|)).</p>",
    ]
    for c in clips:
        caption = _clip_caption(root, c)
        doc.append(f"<h3>{html.escape(c)}{' &mdash; ' + html.escape(caption) if caption else ''}</h3>")
        doc.append(
            _img(
                save(f"curves_{c}.png", error_curves(c, [s for s in result.clips if s.clip == c])), f"error curves {c}"
            )
        )
        if sampler.indices.get(c):
            doc.append(_img(save(f"contact_{c}.png", _png(contact_sheet(sampler, c, models))), f"contact sheet {c}"))
    doc.append("</body></html>")
    out = result.output / "report.html"
    atomic_write(out, "\n".join(doc) + "\n")
    # Plots of clips from an earlier run into the same folder would pass for this run's.
    for old in plots.glob("*.png"):
        if old.name not in written and old.name.startswith(("curves_", "contact_")):
            old.unlink(missing_ok=True)
    return out
