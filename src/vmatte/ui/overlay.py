"""Pictures the web app shows: target masks tinted over a frame, click markers, preview panels.

Pure NumPy/OpenCV so they are unit-tested without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Distinct colours for targets 1, 2, ... (RGB); wraps around past the end.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 64, 96), (64, 160, 255), (255, 200, 0), (140, 90, 255), (0, 210, 140), (255, 128, 32),
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
    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(np.rint(img.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.dstack([img] * 3)
    return np.ascontiguousarray(img[..., :3])


def draw_overlay(image: np.ndarray, masks: Sequence[tuple[np.ndarray, Sequence[int]]] = (),
                 markers: Sequence[Marker] = ()) -> np.ndarray:
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
    light = ((yy // cell + xx // cell) % 2 == 0)
    return np.where(light[..., None], 0.8, 0.6).astype(np.float32) * np.ones(3, np.float32)


def preview_panels(image: np.ndarray, foreground: np.ndarray | None, alpha: np.ndarray,
                   width: int) -> np.ndarray:
    """One preview frame: the alpha (grey) beside the composite over a checkerboard, each panel
    ``width`` px wide (even sizes, so 4:2:0 video keeps every pixel), RGB uint8.

    Without a foreground (alpha-only runs) the source colours stand in for it: close enough to
    judge the cut-out, and no extra model work."""
    h0, w0 = alpha.shape[:2]
    width = max(2, width - width % 2)
    height = max(2, round(h0 * width / w0 / 2) * 2)
    size = (width, height)
    a = cv2.resize(np.asarray(alpha, np.float32), size, interpolation=cv2.INTER_AREA)
    fg_src = foreground if foreground is not None else to_rgb8(image).astype(np.float32) / 255.0
    fg = cv2.resize(np.asarray(fg_src, np.float32), size, interpolation=cv2.INTER_AREA)
    a3 = np.clip(a, 0, 1)[..., None]
    comp = fg * a3 + checkerboard(height, width) * (1 - a3)
    grey = np.repeat(a3, 3, axis=2)
    panels = np.concatenate([grey, comp], axis=1)
    return np.clip(np.rint(panels * 255.0), 0, 255).astype(np.uint8)


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
