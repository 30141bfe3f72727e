"""One frame of a VOS contact sheet: the prediction drawn on the picture (see vos_sheet.py for the colours'
meaning). Kept apart from vos_sheet.py because the scoring loop (vos.py) draws these while it scores, and
the sheet itself reads vos.py's results."""

from __future__ import annotations

import cv2
import numpy as np

from vmatte.io.pixels import to_uint8

__all__ = ["THUMB_WIDTH", "thumbnail"]

THUMB_WIDTH = 240
GREEN, RED, ORANGE, BLUE = (
    np.array(c, np.float32) for c in ((40, 220, 40), (255, 30, 30), (255, 150, 0), (40, 90, 255))
)


def thumbnail(image: np.ndarray, pred: np.ndarray, true: np.ndarray, person: np.ndarray | None) -> np.ndarray:
    """A THUMB_WIDTH-wide RGB uint8 picture of one frame with the prediction drawn in."""
    img = to_uint8(image)
    h, w = img.shape[:2]
    size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
    pic = cv2.resize(img[..., :3], size, interpolation=cv2.INTER_AREA).astype(np.float32) * 0.55

    def small(m: np.ndarray) -> np.ndarray:
        return cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0

    p, t = small(pred), small(true)
    on_person = small(person) if person is not None else np.zeros_like(p)
    for where, colour in ((p & t, GREEN), (p & ~t & on_person, RED), (p & ~t & ~on_person, ORANGE), (~p & t, BLUE)):
        pic[where] = 0.45 * pic[where] / 0.55 + 0.55 * colour
    out = np.clip(pic, 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(t.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    return out
