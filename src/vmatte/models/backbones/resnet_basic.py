"""ResNet-18 building blocks (basic residual block, two 3x3 convs).

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016). The module names follow
the common torchvision layout (conv1/bn1/conv2/bn2/downsample.0/.1) so checkpoints that embed a
ResNet-18 stem and stages load strictly. Written from the paper and the key layout.
"""

from __future__ import annotations

from torch import Tensor, nn


class BasicBlock(nn.Module):
    """3x3 (stride here) -> 3x3, plus shortcut (1x1 conv + BN when the shape changes)."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def basic_stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    """One ResNet-18/34 stage: the first block changes stride/width, the rest keep it."""
    layers = [BasicBlock(in_channels, out_channels, stride)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(1, blocks)]
    return nn.Sequential(*layers)
