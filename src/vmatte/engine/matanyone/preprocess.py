"""Input preparation for MatAnyone: padding to a multiple of 16 and first-frame mask clean-up."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...io.pixels import code_max

Pad = tuple[int, int, int, int]  # (left, right, top, bottom), F.pad order


def pad_divide_by(x: Tensor, d: int = 16) -> tuple[Tensor, Pad]:
    """Zero-pad H and W up to a multiple of ``d``; the smaller half of the pad goes left/top."""
    h, w = x.shape[-2:]
    new_h = h + (-h) % d
    new_w = w + (-w) % d
    lh, lw = (new_h - h) // 2, (new_w - w) // 2
    pad = (lw, new_w - w - lw, lh, new_h - h - lh)
    return F.pad(x, pad), pad


def unpad(x: Tensor, pad: Pad) -> Tensor:
    left, right, top, bottom = pad
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


def _ellipse(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def prepare_mask(mask: np.ndarray, r_erode: int = 10, r_dilate: int = 10) -> np.ndarray:
    """The official first-frame mask clean-up: dilate the non-zero area, then erode the 255 area.

    ``mask`` is HxW uint8/float in 0..255. With ``r_dilate``/``r_erode`` 0 that step is skipped
    (both 0: the mask is returned unchanged, as float32). Kernels are ``r``x``r`` ellipses.
    Returns float32 in {0, 255} (or the input values when nothing was applied).
    """
    m = np.asarray(mask, dtype=np.float32)
    if r_dilate > 0:
        m = _morph(cv2.dilate, (m != 0).astype(np.float32), r_dilate) * 255.0
    if r_erode > 0:
        m = _morph(cv2.erode, (m == 255).astype(np.float32), r_erode) * 255.0
    return m.astype(np.float32)


def _morph(op, binary: np.ndarray, size: int) -> np.ndarray:
    """``op`` (cv2.dilate / cv2.erode) with a ``size`` ellipse. A kernel reaching across the whole
    frame from every pixel gives the max (min) of the frame everywhere: computed so, without a
    kernel of size**2 bytes (``--dilate 100000`` would ask OpenCV for 10 GB)."""
    h, w = binary.shape[:2]
    if size // 2 >= h + w:
        return np.full_like(binary, binary.max() if op is cv2.dilate else binary.min())
    return op(binary, _ellipse(size), iterations=1)


def image_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """HxWx3 uint8 (or uint16) RGB -> [3,H,W] float32 in [0,1].

    uint8 is divided by 255 in float32, exactly as upstream does (not multiplied by 1/255).
    """
    scale = code_max(image.dtype)
    if image.dtype == np.uint16:
        image = image.astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device)  # uint8 moves as bytes
    return t.permute(2, 0, 1).float() / scale


def mask_to_tensor(mask: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """HxW in 0..255 -> [1,H,W] float32 in [0,1]."""
    return torch.from_numpy(np.asarray(mask, dtype=np.float32)).to(device).unsqueeze(0) / 255.0
