"""Code values of decoded images: uint8 for 8-bit sources, uint16 (full 0..65535 scale) above.

One place for "what does white read as": every conversion to [0, 1] floats asks :func:`code_max`
(each keeps its own arithmetic, divide or multiply, since results are compared bit for bit)."""

from __future__ import annotations

import numpy as np


def code_max(dtype) -> float:
    """255.0 for uint8 images, 65535.0 for uint16 ones."""
    return 65535.0 if np.dtype(dtype) == np.uint16 else 255.0


def image_scale(image: np.ndarray) -> float:
    """The factor that maps an image's code values to [0, 1]."""
    return 1.0 / code_max(image.dtype)


def to_float(image: np.ndarray) -> np.ndarray:
    """An RGB uint8/uint16 image as float32 in [0, 1] (the foreground of alpha-only models)."""
    return image.astype(np.float32) * np.float32(image_scale(image))
