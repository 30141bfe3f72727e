"""Bring a matte computed at a low internal resolution back to the frame's resolution.

Fast guided filter (He & Sun, "Fast Guided Filter", arXiv 1505.00996; He et al., "Guided Image
Filtering", TPAMI 2013): the local linear model alpha ~ A * I + b is fitted at low resolution
against the grey frame I, the coefficients A and b are box-averaged and upsampled bilinearly,
and applied to the full-resolution grey frame. Edges follow the full-resolution image instead of
the blur of a plain bilinear upsampling. Same size in and out: the matte is returned unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

RADIUS = 2  # box radius at the low resolution
EPS = 1e-3  # regularisation of A (image in [0, 1]): smaller follows the image more closely


def grey(image: Tensor) -> Tensor:
    """[B,3,H,W] RGB in [0,1] -> [B,1,H,W] luma (BT.601)."""
    w = image.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (image * w).sum(1, keepdim=True)


def _box(x: Tensor, r: int) -> Tensor:
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_upsample(
    alpha_lo: Tensor, guide_lo: Tensor, guide_hi: Tensor, radius: int = RADIUS, eps: float = EPS
) -> Tensor:
    """``alpha_lo`` [B,1,h,w], ``guide_lo`` [B,1,h,w], ``guide_hi`` [B,1,H,W] -> alpha [B,1,H,W]
    in [0, 1]. Returns ``alpha_lo`` itself when (h, w) == (H, W)."""
    size = guide_hi.shape[-2:]
    if alpha_lo.shape[-2:] == size:
        return alpha_lo
    dtype = alpha_lo.dtype
    p, i = alpha_lo.float(), guide_lo.float()
    r = max(1, min(radius, (min(p.shape[-2:]) - 1) // 2))
    mean_i, mean_p = _box(i, r), _box(p, r)
    cov_ip = _box(i * p, r) - mean_i * mean_p
    var_i = _box(i * i, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a = F.interpolate(_box(a, r), size=size, mode="bilinear", align_corners=False)
    mean_b = F.interpolate(_box(b, r), size=size, mode="bilinear", align_corners=False)
    return (mean_a * guide_hi.float() + mean_b).clamp_(0.0, 1.0).to(dtype)
