"""ResNet-50 encoder as used by Robust Video Matting (RVM), heavier variant.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), bottleneck version, with
the stride of the last stage replaced by dilation 2 (output stride 16), as in DeepLabV3: the
matting decoder wants detail more than the extra downsampling.

The module tree follows the common torchvision layout (conv1, bn1, layer1..4 of Bottleneck with
conv1/bn1/conv2/bn2/conv3/bn3/downsample.0/.1, stride on the 3x3 conv) so the official RVM
ResNet-50 state_dict loads strictly. The classifier head (avgpool, fc) is absent. Written from
the paper and the key layout; no third-party code is copied.
"""

from __future__ import annotations

from torch import Tensor, nn


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride / dilation here) -> 1x1 expand x4, plus shortcut."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Encoder(nn.Module):
    """Returns f1 (64 ch, 1/2), f2 (256 ch, 1/4), f3 (512 ch, 1/8), f4 (2048 ch, 1/16).

    Input: RGB in [0, 1], shape [N, 3, H, W]. No normalisation inside: the official RVM
    ResNet-50 weights were trained on the raw [0, 1] input.
    """

    CHANNELS = (64, 256, 512, 2048)
    BLOCKS = (3, 4, 6, 3)

    def __init__(self) -> None:
        super().__init__()
        self._in_channels = 64
        self._dilation = 1
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, self.BLOCKS[0], stride=1)
        self.layer2 = self._make_layer(128, self.BLOCKS[1], stride=2)
        self.layer3 = self._make_layer(256, self.BLOCKS[2], stride=2)
        self.layer4 = self._make_layer(512, self.BLOCKS[3], stride=2, dilate=True)

    def _make_layer(self, width: int, blocks: int, stride: int, dilate: bool = False) -> nn.Sequential:
        # With ``dilate`` the stage trades its stride for dilation; its first block still uses
        # the previous dilation (it sees the pre-stage resolution), the rest the new one.
        previous_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        out_channels = width * Bottleneck.expansion
        downsample = None
        if stride != 1 or self._in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self._in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        layers = [Bottleneck(self._in_channels, width, stride, previous_dilation, downsample)]
        self._in_channels = out_channels
        layers += [Bottleneck(out_channels, width, dilation=self._dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer4(self.layer3(f3))
        return f1, f2, f3, f4
