"""Colour models of the targets, for finding a lost target again (re-identification).

RVM's features say "person", not *which* person; clothes colour tells people apart. Each
target gets a hue-saturation histogram from its given mask; the people outside every target in
that frame give a "someone else" histogram. A person region is the lost target when it looks
more like the target than like anyone else (Bhattacharyya coefficients).
"""

from __future__ import annotations

import cv2
import numpy as np

BINS = (16, 8)  # hue, saturation: coarse enough to be stable under light changes


def histogram(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """Normalised H-S histogram of the pixels of ``mask`` (None if too few to say anything)."""
    m = mask.astype(np.uint8)
    if int(m.sum()) < 30:
        return None
    h = cv2.calcHist([hsv], [0, 1], m, list(BINS), [0, 180, 0, 256])
    return (h / max(float(h.sum()), 1.0)).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray | None) -> float:
    """Bhattacharyya coefficient in [0, 1] (1: same colours); 0 against nothing."""
    if b is None:
        return 0.0
    return float(np.sqrt(a * b).sum())


def combine(hists: list[np.ndarray | None]) -> np.ndarray | None:
    """One "anyone of these" histogram: the normalised sum (None if there is none)."""
    present = [h for h in hists if h is not None]
    if not present:
        return None
    total = np.sum(present, axis=0)
    return (total / max(float(total.sum()), 1e-12)).astype(np.float32)


def find_by_colour(
    hsv: np.ndarray,
    candidates: np.ndarray,
    reference: np.ndarray,
    others: np.ndarray | None,
    min_area: float,
    min_similarity: float,
) -> np.ndarray:
    """The candidate region (connected, >= ``min_area`` px) most like ``reference`` and more
    like it than like ``others``; an empty mask when none is."""
    count, regions, stats, _ = cv2.connectedComponentsWithStats(candidates.astype(np.uint8), connectivity=8)
    best, best_score = 0, 0.0
    for r in range(1, count):
        if stats[r, cv2.CC_STAT_AREA] < min_area:
            continue
        h = histogram(hsv, regions == r)
        if h is None:
            continue
        own, other = similarity(h, reference), similarity(h, others)
        if own >= min_similarity and own > other and own - other > best_score:
            best, best_score = r, own - other
    return regions == best if best else np.zeros_like(candidates, bool)


def drop_lookalikes(
    hsv: np.ndarray, target: np.ndarray, reference: np.ndarray | None, others: np.ndarray | None, margin: float = 0.02
) -> np.ndarray:
    """``target`` without its side regions that look like someone else (a bystander's arm taken
    while people touched, another target who came out from behind it). The body always stays:
    of the pieces at least a quarter the size of the largest, the one most like the target."""
    if reference is None or others is None:
        return target
    count, regions, stats, _ = cv2.connectedComponentsWithStats(target.astype(np.uint8), connectivity=8)
    if count <= 2:
        return target
    areas = stats[1:, cv2.CC_STAT_AREA]
    scores = {}
    for r in range(1, count):
        h = histogram(hsv, regions == r)
        scores[r] = -np.inf if h is None else similarity(h, reference) - similarity(h, others)
    body = max((r for r in scores if areas[r - 1] >= 0.25 * areas.max()), key=lambda r: scores[r])
    for r in range(1, count):
        if r != body and scores[r] < -margin:
            target = target & ~(regions == r)
    return target
