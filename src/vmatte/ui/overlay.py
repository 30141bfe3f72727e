"""Pictures the web app shows: target masks tinted over a frame, click markers, the result viewer.

Pure NumPy/OpenCV so they are unit-tested without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..io.pixels import to_uint8

# Distinct colours for targets 1, 2, ... (RGB); wraps around past the end.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 64, 96),
    (64, 160, 255),
    (255, 200, 0),
    (140, 90, 255),
    (0, 210, 140),
    (255, 128, 32),
)
TINT = 0.45  # opacity of the tint inside a mask: the subject stays visible under it
INCLUDE_COLOUR = (40, 220, 60)
EXCLUDE_COLOUR = (240, 40, 40)


def target_colour(target_id: int) -> tuple[int, int, int]:
    return PALETTE[(target_id - 1) % len(PALETTE)]


def colour_hex(rgb: Sequence[int]) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in rgb[:3])


@dataclass(frozen=True)
class Marker:
    """A click drawn on the frame: green + for include, red x for exclude."""

    x: int
    y: int
    negative: bool = False


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any decoded frame (RGB uint8/uint16, grey) as contiguous RGB uint8."""
    img = to_uint8(image)
    if img.ndim == 2:
        img = np.dstack([img] * 3)
    return np.ascontiguousarray(img[..., :3])


def draw_overlay(
    image: np.ndarray, masks: Sequence[tuple[np.ndarray, Sequence[int]]] = (), markers: Sequence[Marker] = ()
) -> np.ndarray:
    """``image`` with each ``(mask, colour)`` tinted (soft masks tint in proportion) and outlined,
    and the click ``markers`` on top. Masks are HxW uint8 (0..255) or float (0..1)."""
    out = to_rgb8(image).astype(np.float32)
    h, w = out.shape[:2]
    outlines = []
    for mask, colour in masks:
        m = np.asarray(mask)
        if m.shape[:2] != (h, w):
            raise ValueError(f"mask {m.shape[1]}x{m.shape[0]} does not match the frame {w}x{h}")
        a = m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else np.clip(m.astype(np.float32), 0, 1)
        weight = (TINT * a)[..., None]
        out = out * (1 - weight) + np.asarray(colour[:3], np.float32) * weight
        outlines.append(((a >= 0.5).astype(np.uint8), colour))
    result = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    thickness = max(1, round(max(h, w) / 400))
    for binary, colour in outlines:
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(result, contours, -1, tuple(int(c) for c in colour[:3]), thickness)
    size = max(4, round(max(h, w) / 60))
    for mk in markers:
        colour = EXCLUDE_COLOUR if mk.negative else INCLUDE_COLOUR
        marker = cv2.MARKER_TILTED_CROSS if mk.negative else cv2.MARKER_CROSS
        # a dark halo first so the marker reads on light and dark pictures alike
        cv2.drawMarker(result, (mk.x, mk.y), (0, 0, 0), marker, 2 * size + 2, thickness + 2)
        cv2.drawMarker(result, (mk.x, mk.y), colour, marker, 2 * size, thickness)
    return result


def checkerboard(h: int, w: int, cell: int = 12) -> np.ndarray:
    """The usual grey checkerboard behind transparent pixels, HxWx3 float32 in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w]
    light = (yy // cell + xx // cell) % 2 == 0
    return np.where(light[..., None], 0.8, 0.6).astype(np.float32) * np.ones(3, np.float32)


def mask_from_layers(layers: Sequence[np.ndarray]) -> np.ndarray | None:
    """The painted mask of an image editor's layers (RGBA arrays over the frame): any painted
    pixel in any layer is the subject. None when nothing is painted."""
    painted = None
    for layer in layers:
        a = np.asarray(layer)
        if a.ndim != 3 or a.shape[2] != 4:
            continue  # a layer without alpha has no strokes to tell apart from the background
        hit = a[..., 3] > 0
        painted = hit if painted is None else painted | hit
    if painted is None or not painted.any():
        return None
    return np.where(painted, 255, 0).astype(np.uint8)


# --- the result viewer -----------------------------------------------------------------------

VIEWS = ("Side by side", "Alpha", "Composite", "Checkerboard")
ZOOMS = ("Fit", "2x", "4x")


def zoom_crop(image: np.ndarray, zoom: str, centre: tuple[float, float] | None) -> np.ndarray:
    """``image`` cropped to 1/2 or 1/4 of its size around ``centre`` (fractions of width and
    height; None = the middle) and scaled back up with nearest neighbour, so single pixels of hair
    stay visible as pixels."""
    factor = {"2x": 2, "4x": 4}.get(zoom, 1)
    if factor == 1:
        return image
    h, w = image.shape[:2]
    cw, ch = max(1, w // factor), max(1, h // factor)
    cx, cy = centre if centre is not None else (0.5, 0.5)
    x0 = int(np.clip(round(cx * w - cw / 2), 0, w - cw))
    y0 = int(np.clip(round(cy * h - ch / 2), 0, h - ch))
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    return cv2.resize(crop, (cw * factor, ch * factor), interpolation=cv2.INTER_NEAREST)


def result_view(
    foreground: np.ndarray,
    alpha: np.ndarray,
    view: str,
    background: Sequence[float] = (0, 0.69, 0.25),
    zoom: str = "Fit",
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """One frame of the run as the viewer shows it (RGB uint8): the alpha in grey, the subject over
    the run's background colour, over a checkerboard, or alpha and checkerboard side by side.
    ``foreground`` is RGB uint8, ``alpha`` uint8 (0..255), same size; zoom as :func:`zoom_crop`."""
    h, w = alpha.shape[:2]
    a = (alpha.astype(np.float32) / 255.0)[..., None]
    fg = foreground.astype(np.float32) / 255.0
    grey = np.repeat(a, 3, axis=2)
    if view == "Alpha":
        out = grey
    elif view == "Composite":
        out = fg * a + np.asarray(background[:3], np.float32) * (1 - a)
    else:
        out = fg * a + checkerboard(h, w, max(6, max(h, w) // 60)) * (1 - a)
    out = zoom_crop(np.clip(np.rint(out * 255), 0, 255).astype(np.uint8), zoom, centre)
    if view == "Side by side":
        out = np.concatenate(
            [zoom_crop(np.clip(np.rint(grey * 255), 0, 255).astype(np.uint8), zoom, centre), out], axis=1
        )
    return np.ascontiguousarray(out)
