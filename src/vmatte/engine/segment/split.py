"""Split one person region between clicked and excluded points (two people touching in the matte).

Touching people form one region joined through a narrow contact (a hand on a shoulder, an arm
across a body). The region is eroded step by step (thresholds on its distance transform) until
the clicked and the excluded points fall into different cores: the least erosion that does
it cuts at the narrowest contact between them. The cores then grow back over the region with a
watershed on the frame's colours, so the cut follows the visible edge between the two people.
If no erosion separates them (both points on one body), the points themselves are the seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

MAX_LEVELS = 64  # erosion thresholds tried; bounds the work on very large regions
SEED_RADIUS = 2  # px: fallback seeds are small discs around the points

Point = tuple[int, int]  # (y, x)


def _flood(guide: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """Watershed from ``markers`` (int32, 0 = unlabelled); -1 marks lines between labels."""
    out = markers.astype(np.int32).copy()
    cv2.watershed(guide, out)
    return out


def _label_at(labels: np.ndarray, point: Point) -> int:
    """Label at ``point``; on a watershed line (-1), the most common label next to it."""
    y, x = point
    if labels[y, x] > 0:
        return int(labels[y, x])
    near = labels[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
    values, counts = np.unique(near[near > 0], return_counts=True)
    return int(values[np.argmax(counts)]) if len(values) else 0


def split_region(
    region: np.ndarray, positives: Sequence[Point], negatives: Sequence[Point], guide: np.ndarray
) -> np.ndarray:
    """The part of ``region`` (HxW bool) on the side of ``positives`` (points ``(y, x)`` inside
    it), cut from ``negatives``; ``guide`` is an HxWx3 uint8 picture (the frame)."""
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # Work on the region's box with a 1-px margin: OpenCV's watershed marks the image border as
    # lines, which must not touch the region.
    inside = np.pad(region[y0:y1, x0:x1], 1).astype(np.uint8)
    colours = np.pad(guide[y0:y1, x0:x1], ((1, 1), (1, 1), (0, 0)))
    # Inside the region colours span 0..127 and outside is 255: stepping out costs more than any
    # step inside, so the priority flood fills the whole region before it leaks around it.
    picture = np.where(inside[..., None] > 0, colours // 2, 255).astype(np.uint8)
    pos = [(y - y0 + 1, x - x0 + 1) for y, x in positives]
    neg = [(y - y0 + 1, x - x0 + 1) for y, x in negatives]

    markers = _separating_cores(inside, pos, neg, picture)
    if markers is None:  # one body under both kinds of point: grow from the points themselves
        markers = np.zeros(inside.shape, np.int32)
        for points, value in ((pos, 1), (neg, 2)):
            for y, x in points:
                cv2.circle(markers, (int(x), int(y)), SEED_RADIUS, value, -1)
        markers[inside == 0] = 0
        for points, value in ((pos, 1), (neg, 2)):  # the points win over a neighbour's disc
            for y, x in points:
                markers[y, x] = value
    sides = _flood(picture, markers)
    out = np.zeros(region.shape, bool)
    out[y0:y1, x0:x1] = ((sides == 1) & (inside > 0))[1:-1, 1:-1]
    return out


def _separating_cores(inside: np.ndarray, pos: list[Point], neg: list[Point], picture: np.ndarray) -> np.ndarray | None:
    """Markers (1 = clicked cores, 2 = excluded cores) at the least erosion that separates the
    two sets of points, or None."""
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    top = float(dist.max())
    step = max(1.0, top / MAX_LEVELS)
    level = step
    while level < top:
        count, cores = cv2.connectedComponents((dist > level).astype(np.uint8), connectivity=4)
        if count > 2:  # at least two cores
            # Each point belongs to the core it reaches first inside the region.
            reach = _flood(picture, cores)
            pos_cores = {_label_at(reach, p) for p in pos} - {0}
            neg_cores = {_label_at(reach, p) for p in neg} - {0}
            if pos_cores and neg_cores and not pos_cores & neg_cores:
                markers = np.zeros(cores.shape, np.int32)
                markers[np.isin(cores, list(pos_cores))] = 1
                markers[np.isin(cores, list(neg_cores))] = 2
                return markers
        level += step
    return None
