"""Tables and files of a VOS evaluation: an aligned table (stdout), ``vos.json``, ``vos.md`` and a
contact sheet per sequence (``sheets/<sequence>.png``, see vos_sheet.py)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2

from vmatte.errors import OutputError

from .results import atomic_write, nan_to_none
from .vos import UNION_ID, VosResult

__all__ = ["PROTOCOL", "markdown", "output_folder", "table", "to_json", "write_vos"]

PROTOCOL = (
    "frame 0's annotation is the target models' mask; prediction = alpha >= 0.5; frame 0 not scored; "
    "J and F (x100) averaged over frames, objects, then sequences; maskless models (rvm) are scored "
    "against all objects together; P = precision, R = recall, leak = share of the predicted pixels on "
    "RVM person regions outside the ground truth, RVM P = precision of RVM's person regions that touch the "
    "ground truth (the most a people-only mode on RVM's alpha can reach); pixels pooled over the scored frames"
)

HEADER = ["model", "sequence", "frames", "objects", "J", "F", "J&F", "P", "R", "leak", "RVM P"]


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _rows(result: VosResult) -> list[list[str]]:
    rows = []
    for model in result.models:
        for s in (s for s in result.scores if s.model == model):
            objects = "all" if s.objects[0].id == UNION_ID else str(len(s.objects))
            rows.append(
                [
                    model,
                    s.sequence,
                    str(s.frames),
                    objects,
                    f"{s.j:.1f}",
                    f"{s.f:.1f}",
                    f"{s.jf:.1f}",
                    _share(s.precision),
                    _share(s.recall),
                    _share(s.leak),
                    _share(s.rvm_precision),
                ]
            )
        m = result.mean(model)
        rows.append(
            [
                model,
                "mean",
                "",
                "",
                f"{m.j:.1f}",
                f"{m.f:.1f}",
                f"{m.jf:.1f}",
                *(_share(result.mean_of(model, k)) for k in ("precision", "recall", "leak", "rvm_precision")),
            ]
        )
    return rows


def _compare(result: VosResult) -> tuple[list[str], list[list[str]]]:
    """J&F with one column per model: sequences down, models across (several models only)."""
    header = ["J&F", *result.models]
    rows = [[seq, *(f"{result.score(m, seq).jf:.1f}" for m in result.models)] for seq in result.sequences]
    rows.append(["mean", *(f"{result.mean(m).jf:.1f}" for m in result.models)])
    return header, rows


def _aligned(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        # Names left, numbers right: the decimals line up.
        cells = (c.ljust(w) if i < text_columns else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def table(result: VosResult) -> str:
    """The aligned plain-text table printed by ``vmatte eval vos``."""
    text = _aligned(HEADER, _rows(result), text_columns=2)
    if len(result.models) > 1:
        text += "\n\n" + _aligned(*_compare(result))
    return text


def _md(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    rule = "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(header))) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _worst(result: VosResult) -> tuple[list[str], list[list[str]]]:
    """Per model and sequence: the frame with the lowest J (where to look on the curve)."""
    header = ["model", "sequence", "lowest J", "at frame", "frames with J < 50"]
    rows = []
    for s in result.scores:
        curve = s.j_curve
        if curve:
            i = int(min(range(len(curve)), key=curve.__getitem__))
            rows.append([s.model, s.sequence, f"{curve[i]:.1f}", str(s.scored[i]), str(sum(j < 50 for j in curve))])
    return header, rows


def markdown(result: VosResult, sheets: dict[str, str] | None = None) -> str:
    parts = [
        f"# VOS evaluation: {result.root}",
        "",
        f"Protocol: {PROTOCOL}.",
        "",
        _md(HEADER, _rows(result), text_columns=2),
    ]
    if len(result.models) > 1:
        parts += ["", _md(*_compare(result))]
    parts += [
        "",
        "Per-frame J (full curves in vos.json and on the contact sheets):",
        "",
        _md(*_worst(result), text_columns=2),
    ]
    if sheets:
        parts += [
            "",
            "Contact sheets (green: right, red: someone else, orange: other wrong pixels, blue: missed):",
            "",
        ] + [f"- {seq}: ![{seq}]({path})" for seq, path in sheets.items()]
    parts += ["", "Models:", ""] + [f"- `{m}`: {d}" for m, d in result.descriptions.items()]
    return "\n".join(parts) + "\n"


def to_json(result: VosResult) -> dict:
    models = {}
    for model in result.models:
        mine = [s for s in result.scores if s.model == model]
        m = result.mean(model)
        models[model] = {
            "description": result.descriptions.get(model, model),
            "mean": {
                "j": m.j,
                "f": m.f,
                "jf": m.jf,
                **{k: result.mean_of(model, k) for k in ("precision", "recall", "leak", "rvm_precision")},
            },
            "sequences": {
                s.sequence: {
                    "frames": s.frames,
                    "seconds": round(s.seconds, 3),
                    "j": s.j,
                    "f": s.f,
                    "jf": s.jf,
                    "precision": s.precision,
                    "recall": s.recall,
                    "leak": s.leak,
                    "rvm_precision": s.rvm_precision,
                    "scored_frames": s.scored,
                    # id 0: a maskless model scored against every object together
                    "objects": {
                        str(o.id): {
                            "j": o.j_mean,
                            "f": o.f_mean,
                            "precision": o.precision,
                            "recall": o.recall,
                            "leak": o.leak,
                            "rvm_precision": o.rvm_precision,
                            "per_frame": {"j": o.j, "f": o.f},
                        }
                        for o in s.objects
                    },
                }
                for s in mine
            },
        }
    return nan_to_none(
        {
            "root": str(result.root),
            "sequences": result.sequences,
            "protocol": PROTOCOL,
            "seconds": round(result.seconds, 3),
            "models": models,
        }
    )


def output_folder(output: str | os.PathLike) -> Path:
    """Create ``output`` (called before a run too: a bad path should not cost a full evaluation)."""
    out = Path(output).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {out}: {e.strerror}; choose another --output") from None
    return out


def write_vos(result: VosResult, output: str | os.PathLike) -> dict[str, Path]:
    """Write ``vos.json``, ``vos.md`` and (when frames were kept) ``sheets/<sequence>.png`` into
    ``output`` (created if missing); returns their paths (sheets under ``sheet:<sequence>``)."""
    from .vos_sheet import sheet

    out = output_folder(output)
    paths = {"json": out / "vos.json", "md": out / "vos.md"}
    sheets: dict[str, str] = {}
    for seq in result.sequences:
        picture = sheet(result, seq)
        if picture is None:
            continue
        path = out / "sheets" / f"{seq}.png"
        path.parent.mkdir(exist_ok=True)
        ok, data = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OutputError(f"cannot encode the contact sheet of {seq}")
        atomic_write(path, data.tobytes())
        paths[f"sheet:{seq}"] = path
        sheets[seq] = f"sheets/{seq}.png"
    atomic_write(paths["json"], json.dumps(to_json(result), indent=1) + "\n")
    atomic_write(paths["md"], markdown(result, sheets))
    return paths
