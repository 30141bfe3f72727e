"""Lite Reduced Atrous Spatial Pyramid Pooling (LR-ASPP), from the MobileNetV3 paper.

RVM puts it between the encoder and the recurrent decoder: a cheap segmentation head whose
global-pooled branch gates the per-pixel branch channel-wise, injecting image-level context.
"""

from __future__ import annotations

from torch import Tensor, nn


class LRASPP(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # Per-pixel branch: 1x1 projection.
        self.aspp1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        # Global branch: image-level context as a channel attention in (0, 1).
        self.aspp2 = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.aspp1(x) * self.aspp2(x)
