"""The checks and defaults both point predictors (SAM, SAM 2) apply to an image and a prompt."""

from __future__ import annotations

import numpy as np


def prompt_arrays(points, labels, multimask: bool | None, dtype) -> tuple[np.ndarray, np.ndarray, bool]:
    """``points`` as an N x 2 array of ``dtype``, ``labels`` as N values, and whether to ask for three
    masks: ``multimask=None`` means three for a single click (which is ambiguous: a shirt, the
    person, the group), one for several, as the SAM authors advise."""
    points = np.asarray(points, dtype=dtype).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    if len(points) == 0 or len(labels) != len(points):
        raise ValueError(f"predict needs N >= 1 points and N labels, got {len(points)} and {len(labels)}")
    return points, labels, len(points) == 1 if multimask is None else multimask


def rgb_image(rgb) -> np.ndarray:
    """``rgb`` as an HxWx3 uint8 array, or a ValueError saying what it is instead."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"set_image takes an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    return rgb
