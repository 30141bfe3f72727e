"""Contact sheets of a VOS evaluation: one PNG per sequence, looked at before trusting a number.

Top: the per-frame J curve of every model (0..100, one colour per model). Below: one row per
model of evenly spaced scored frames, the prediction drawn on the frame:
green = predicted and in the ground truth, red = predicted on someone else (a person region
outside the ground truth: bystander leak), orange = predicted elsewhere outside the ground truth,
blue = ground truth missed. The ground truth's outline is white.
"""

from __future__ import annotations

import cv2
import numpy as np

from .vos import VosResult
from .vos_thumb import THUMB_WIDTH

__all__ = ["sheet"]

CURVE_HEIGHT = 140
LABEL_WIDTH = 110
# One colour per model (RGB), in the order the models ran.
PALETTE = [(255, 255, 255), (80, 200, 255), (255, 200, 60), (200, 120, 255), (120, 255, 120)]


def _text(img: np.ndarray, text: str, xy: tuple[int, int], colour=(255, 255, 255), scale: float = 0.4) -> None:
    cv2.putText(img, text, xy, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def _curves(result: VosResult, sequence: str, width: int) -> np.ndarray:
    panel = np.zeros((CURVE_HEIGHT, width, 3), np.uint8)
    x0, x1, y0, y1 = LABEL_WIDTH, width - 10, 10, CURVE_HEIGHT - 20
    for level in (0, 50, 100):
        y = round(y1 - (y1 - y0) * level / 100)
        cv2.line(panel, (x0, y), (x1, y), (70, 70, 70), 1)
        _text(panel, f"J {level}", (x0 - 40, y + 4), (160, 160, 160))
    frames = max((max(s.scored, default=0) for s in result.scores if s.sequence == sequence), default=1)
    for i, model in enumerate(result.models):
        s = result.score(model, sequence)
        colour = PALETTE[i % len(PALETTE)]
        curve = s.j_curve
        if curve:
            pts = np.array(
                [[x0 + (x1 - x0) * f / max(frames, 1), y1 - (y1 - y0) * j / 100.0] for f, j in zip(s.scored, curve)],
                np.float32,
            )
            cv2.polylines(panel, [np.rint(pts).astype(np.int32)], False, colour, 1, cv2.LINE_AA)
        _text(panel, model, (5, 20 + 16 * i), colour)
    _text(panel, f"{sequence}: per-frame J (x: frame 1..{frames})", (x0, CURVE_HEIGHT - 5), (160, 160, 160))
    return panel


def sheet(result: VosResult, sequence: str) -> np.ndarray | None:
    """The contact sheet of ``sequence`` as an RGB uint8 array (None when no frames were kept)."""
    rows = []
    for i, model in enumerate(result.models):
        s = result.score(model, sequence)
        if not s.thumbs:
            continue
        pics = [s.thumbs[k] for k in sorted(s.thumbs)]
        height = max(p.shape[0] for p in pics)
        row = np.zeros((height + 16, LABEL_WIDTH + THUMB_WIDTH * len(pics), 3), np.uint8)
        for c, (k, p) in enumerate(zip(sorted(s.thumbs), pics)):
            x = LABEL_WIDTH + c * THUMB_WIDTH
            row[16 : 16 + p.shape[0], x : x + p.shape[1]] = p
            _text(row, f"frame {k}", (x + 4, 12), (200, 200, 200))
        colour = PALETTE[i % len(PALETTE)]
        _text(row, model, (5, 30), colour)
        _text(row, f"J&F {s.jf:.1f}", (5, 48), colour)
        _text(row, f"P {s.precision:.2f} R {s.recall:.2f}", (5, 66), colour)
        _text(row, f"leak {s.leak:.2f}", (5, 84), colour)
        rows.append(row)
    if not rows:
        return None
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate([_curves(result, sequence, width), *rows])
