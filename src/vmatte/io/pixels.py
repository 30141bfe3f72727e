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


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An image as uint8, for what sees 8 bits (SAM, the optical flow, pictures on a page or a sheet):
    uint8 as it is, 16-bit by its high byte, float in [0, 1] rounded from x 255 (clipped)."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return (a >> 8).astype(np.uint8)
    return np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def to_float(image: np.ndarray) -> np.ndarray:
    """An RGB uint8/uint16 image as float32 in [0, 1] (the foreground of alpha-only models)."""
    return image.astype(np.float32) * np.float32(image_scale(image))
