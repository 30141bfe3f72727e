"""Which person pixels belong to which target: region-adaptive fusion, then RVM's regions.

``probs`` are per-label maps [L, h, w] (label 0: nobody we track; 1..K: the targets) at the
working size. The previous frame's maps, warped by optical flow, are right wherever nothing
changed (the target's core) and lag where the target moves (its boundary); there the
appearance memory's readout is the better guess. :func:`region_adaptive_fusion` blends the
two per pixel with a change probability, MatAnyone's idea (3.2) on pixels instead of tokens.

The blend only says roughly where each target is. RVM's alpha says exactly where people are;
:func:`assign_regions` gives each connected person region to the target that holds it, whole
(RVM's shape fixes the warp's lag and blur), or split per pixel where several targets, or a
target and someone else, share one region.
"""

from __future__ import annotations

import cv2
import numpy as np


def change_probability(warped: np.ndarray, band: int) -> np.ndarray:
    """High in a band of ~``band`` px around every label's boundary, 0 in the interiors. [h, w]"""
    blurred = cv2.blur(warped[1:].max(0) if warped.shape[0] > 1 else warped[0], (band, band))
    return np.clip(1.0 - np.abs(2.0 * blurred - 1.0), 0.0, 1.0).astype(np.float32)


def region_adaptive_fusion(readout: np.ndarray, last_value: np.ndarray, change_prob: np.ndarray) -> np.ndarray:
    """p * readout + (1 - p) * last: memory where the target changed, the previous value elsewhere."""
    return readout * change_prob + last_value * (1.0 - change_prob)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def assign_regions(
    person: np.ndarray,
    probs: np.ndarray,
    others: np.ndarray,
    keep_fraction: float,
    min_fraction: float,
    size: np.ndarray | None = None,
    merge_growth: float = 1.6,
    reach: int = 6,
    inside_fraction: float = 0.5,
    split_reach: int = 24,
    cut: np.ndarray | None = None,
    recalled: np.ndarray | None = None,
) -> np.ndarray:
    """``person`` [h, w] bool (RVM alpha >= 0.5), ``probs`` [L, h, w] target maps (label 0: no
    target), ``others`` [h, w] where people who are no target were (warped) -> [K, h, w] bool.

    Each target's *predicted position* is its core (``probs >= 0.5``, from motion + memory)
    widened by ``reach`` px; its *predicted extent* is ``size`` (its area when last seen whole,
    0 = unknown). Per connected person region, the targets present (mean probability >=
    ``min_fraction``):
    - one target, no one else's core in it, at most ``merge_growth`` times the predicted extent,
      and either mean >= ``keep_fraction`` with at least ``inside_fraction`` of the region
      inside the predicted position, or about the target's extent (within 25%), holding most of
      its core and lying mostly where the appearance memory alone recalls the target
      (``recalled`` [K, h, w] bool, widened by ``reach``: it stretched out again after a curl,
      faster than the warp could follow, and the memory knows the stretched body): the whole
      region (RVM's shape fixes the warp's lag: a limb that moved is still attached). Without
      ``recalled`` (no memory yet) only the first test applies;
    - one target but a region much larger than the target or mostly away from where it should
      be (it merged with a crowd, a person who walked in, someone nobody tracks): the target
      keeps only the part of the region in its predicted position; the rest stays free (for a
      lost target to be found in again, or a new bystander);
    - several targets, or a target and someone else's core (people touching): the region is
      split, every pixel going to the nearest core (each target's ``probs >= 0.5``, the others'
      ``others >= 0.5``) if that core is within ``split_reach`` px, so a moved limb follows the
      body it is attached to and what is far from every core goes to no one.
    ``cut`` ([K] bool, optional) is set where a target kept only part of a region it was alone
    in: its area then says nothing about its size.
    """
    labels = probs.shape[0]
    count, regions = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
    out = np.zeros((labels - 1,) + person.shape, bool)
    if count <= 1:
        return out
    flat = regions.ravel()
    area = np.maximum(np.bincount(flat, minlength=count).astype(np.float64), 1.0)
    frac = np.stack([np.bincount(flat, weights=probs[k].ravel(), minlength=count) for k in range(1, labels)]) / area
    frac[:, 0] = 0.0  # region 0 is "no person"
    present = frac >= min_fraction  # [K, regions]
    cores = np.zeros(person.shape, np.int32)  # 0: no core, k: target k, labels: someone else
    other_core = person & (others >= 0.5)
    cores[other_core] = labels
    near = np.zeros((labels - 1,) + person.shape, bool)  # each target's predicted position
    disk = _disk(reach)
    for k in range(1, labels):
        core = probs[k] >= 0.5
        cores[person & core] = k
        near[k - 1] = cv2.dilate(core.view(np.uint8), disk) > 0
    inside = np.stack([np.bincount(flat, weights=near[k].ravel(), minlength=count) for k in range(labels - 1)]) / area
    has_other = np.bincount(flat, weights=other_core.ravel(), minlength=count) > 0
    shared = (present.sum(0) > 1) | (has_other & present.any(0))
    alone = present & ~shared
    whole = alone & (frac >= keep_fraction) & (inside >= inside_fraction)
    if size is not None and recalled is not None:
        known = size[:, None] > 0
        core_mass = np.stack(
            [np.bincount(flat, weights=(probs[k] >= 0.5).ravel(), minlength=count) for k in range(1, labels)]
        )
        holds_core = core_mass >= 0.5 * np.maximum(core_mass.sum(1, keepdims=True), 1.0)
        remembered = (
            np.stack(
                [
                    np.bincount(
                        flat,
                        weights=((cv2.dilate(recalled[k].astype(np.uint8), disk) > 0) | near[k]).ravel(),
                        minlength=count,
                    )
                    for k in range(labels - 1)
                ]
            )
            / area
        )
        whole |= alone & known & (area[None, :] <= 1.25 * size[:, None]) & holds_core & (remembered >= inside_fraction)
    if size is not None:
        known = size[:, None] > 0
        whole &= ~(known & (area[None, :] > merge_growth * size[:, None]))
    partial = alone & ~whole
    if cut is not None:  # a crumb cut off says nothing; the body (a quarter of the target or more) does
        big = area[None, :] >= 0.25 * (size[:, None] if size is not None else 0.0)
        cut[:] = (partial & big).any(1)
    out[:] = whole[:, regions]
    for k in np.flatnonzero(partial.any(1)):
        out[k] |= partial[k][regions] & near[k]
    if shared.any():
        nearest = _nearest_core(cores, split_reach)
        split = shared[regions]
        for k in range(1, labels):
            out[k - 1] |= split & (nearest == k)
    return out


def _nearest_core(cores: np.ndarray, limit: float = np.inf) -> np.ndarray:
    """Label of the nearest non-zero pixel of ``cores`` at every pixel (0 where there is none
    within ``limit`` px)."""
    if not cores.any():
        return cores
    dist, index = cv2.distanceTransformWithLabels(
        (cores == 0).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    seeds = cores[cores != 0]  # DIST_LABEL_PIXEL numbers the zero pixels 1.. in row-major order
    return np.where(dist <= limit, seeds[index - 1], 0)
