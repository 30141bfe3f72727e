"""Pixel fusion: the memory readout plus the sensory memory and the last mask, fused with the
current pixel feature (Cutie's PixelFeatureFuser, single-target layout: 256 + 1 -> 256)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import FeatureFusionBlock


class PixelFeatureFuser(nn.Module):
    def __init__(
        self, pixel_dim: int = 256, value_dim: int = 256, sensory_dim: int = 256, embed_dim: int = 256
    ) -> None:
        super().__init__()
        self.fuser = FeatureFusionBlock(pixel_dim, value_dim, embed_dim)
        self.sensory_compress = nn.Conv2d(sensory_dim + 1, value_dim, 1)

    def forward(self, pix_feat: Tensor, readout: Tensor, sensory: Tensor, last_alpha: Tensor) -> Tensor:
        """``last_alpha`` at full resolution [B,1,H,W]; area-downsampled to the sensory grid."""
        last_alpha = F.interpolate(last_alpha, size=sensory.shape[-2:], mode="area")
        p16 = readout + self.sensory_compress(torch.cat([sensory, last_alpha], 1))
        return self.fuser(pix_feat, p16)
