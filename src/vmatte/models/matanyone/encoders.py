"""MatAnyone's two encoders: the query (pixel) encoder and the mask (value) encoder.

- :class:`PixelEncoder`: ResNet-50 up to layer3 on the normalised frame; returns the multi-scale
  features ``[f16, f8, f4, f2, f1]`` the decoder skips from (f1 is the normalised image itself).
- :class:`MaskEncoder`: ResNet-18 up to layer3 on [image, alpha] (4 channels), fused with the
  pixel feature into the memory value; optionally deep-updates the sensory memory.

BatchNorm is frozen (eval mode): the official model never updates its statistics.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..backbones.resnet import Bottleneck
from ..backbones.resnet_basic import basic_stage
from .blocks import FeatureFusionBlock, SensoryDeepUpdater, weight_layout


def _bottleneck_stage(in_channels: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    out_channels = width * Bottleneck.expansion
    downsample = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )
    layers = [Bottleneck(in_channels, width, stride, downsample=downsample)]
    layers += [Bottleneck(out_channels, width) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class PixelEncoder(nn.Module):
    """ResNet-50 conv1..layer3 (layer1 is named ``res2`` in the official key layout)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res2 = _bottleneck_stage(64, 64, 3, stride=1)
        self.layer2 = _bottleneck_stage(256, 128, 4, stride=2)
        self.layer3 = _bottleneck_stage(512, 256, 6, stride=2)

    def forward(self, x: Tensor) -> list[Tensor]:
        f1 = x
        f2 = self.relu(self.bn1(self.conv1(x)))
        f4 = self.res2(self.maxpool(f2))
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return [f16, f8, f4, f2, f1]


class MaskEncoder(nn.Module):
    """Encodes a frame and its alpha into the 256-channel memory value at stride 16."""

    def __init__(self, pixel_dim: int = 256, value_dim: int = 256, sensory_dim: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = basic_stage(64, 64, 2, stride=1)
        self.layer2 = basic_stage(64, 128, 2, stride=2)
        self.layer3 = basic_stage(128, 256, 2, stride=2)
        self.fuser = FeatureFusionBlock(pixel_dim, 256, value_dim)
        self.sensory_update = SensoryDeepUpdater(value_dim, sensory_dim)

    def forward(
        self, image: Tensor, pix_feat: Tensor, sensory: Tensor, alpha: Tensor, deep_update: bool = True
    ) -> tuple[Tensor, Tensor]:
        """``image`` normalised [B,3,H,W], ``alpha`` [B,1,H,W] -> (value, new sensory)."""
        g = torch.cat([image, alpha], 1).contiguous(memory_format=weight_layout(self.conv1))
        g = self.relu(self.maxpool(self.bn1(self.conv1(g))))
        g = self.layer3(self.layer2(self.layer1(g)))
        value = self.fuser(pix_feat, g)
        new_sensory = self.sensory_update(value, sensory) if deep_update else sensory
        return value, new_sensory
