"""MobileNetV3-Large encoder as used by Robust Video Matting (RVM).

Follows Howard et al., "Searching for MobileNetV3" (ICCV 2019), with the RVM change that the
last three inverted-residual blocks are dilated (dilation 2, stride 1) so the encoder's output
stride is 16 instead of 32: the matting decoder needs spatial detail more than receptive field.

The module tree mirrors the widely used torchvision layout (``features.N.block.K...``) so the
official RVM state_dicts load with ``strict=True``. Written from the paper and the key layout;
no third-party code is copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# The backbone was trained with these BatchNorm settings; eps matters for exact inference.
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01

# ImageNet statistics: the backbone was pre-trained on normalised ImageNet images.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channel counts to a multiple of ``divisor`` (hardware friendly), never dropping
    more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BlockConfig:
    """One row of the MobileNetV3-Large table (paper, Table 1), plus RVM's dilation."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    activation: str  # "RE" (ReLU) or "HS" (hard-swish)
    stride: int
    dilation: int


# MobileNetV3-Large, paper Table 1, with the last three blocks dilated for output stride 16.
LARGE_CONFIG: tuple[BlockConfig, ...] = (
    BlockConfig(16, 3, 16, 16, False, "RE", 1, 1),
    BlockConfig(16, 3, 64, 24, False, "RE", 2, 1),
    BlockConfig(24, 3, 72, 24, False, "RE", 1, 1),
    BlockConfig(24, 5, 72, 40, True, "RE", 2, 1),
    BlockConfig(40, 5, 120, 40, True, "RE", 1, 1),
    BlockConfig(40, 5, 120, 40, True, "RE", 1, 1),
    BlockConfig(40, 3, 240, 80, False, "HS", 2, 1),
    BlockConfig(80, 3, 200, 80, False, "HS", 1, 1),
    BlockConfig(80, 3, 184, 80, False, "HS", 1, 1),
    BlockConfig(80, 3, 184, 80, False, "HS", 1, 1),
    BlockConfig(80, 3, 480, 112, True, "HS", 1, 1),
    BlockConfig(112, 3, 672, 112, True, "HS", 1, 1),
    BlockConfig(112, 5, 672, 160, True, "HS", 2, 2),
    BlockConfig(160, 5, 960, 160, True, "HS", 1, 2),
    BlockConfig(160, 5, 960, 160, True, "HS", 1, 2),
)
LAST_CHANNELS = 960  # 1x1 expansion after the last block (6 x 160)


def _activation(kind: str) -> nn.Module:
    if kind == "RE":
        return nn.ReLU(inplace=True)
    if kind == "HS":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {kind!r}")


class ConvBNActivation(nn.Sequential):
    """conv -> BatchNorm -> optional activation; indices 0/1/2 match the official key names."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: str | None = "RE",
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation  # "same" padding for odd kernels
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,  # the BatchNorm right after supplies the shift
            ),
            nn.BatchNorm2d(out_channels, eps=_BN_EPS, momentum=_BN_MOMENTUM),
        ]
        if activation is not None:
            layers.append(_activation(activation))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al.) with MobileNetV3's hard-sigmoid gate: a per-channel
    attention computed from the globally pooled feature map."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        # fc1/fc2 are stored as 1x1 convs (the official key layout), but on a 1x1 pooled map
        # they are plain matrix products; F.linear skips the convolution dispatch, which
        # dominates at this size on CPU.
        scale = x.mean(dim=(2, 3))
        scale = F.relu(F.linear(scale, self.fc1.weight.flatten(1), self.fc1.bias), inplace=True)
        scale = F.hardsigmoid(F.linear(scale, self.fc2.weight.flatten(1), self.fc2.bias), inplace=True)
        return x * scale[:, :, None, None]


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: 1x1 expand -> depthwise KxK -> (SE) -> 1x1 linear projection,
    with an identity shortcut when the shape is preserved."""

    def __init__(self, cfg: BlockConfig) -> None:
        super().__init__()
        self.use_residual = cfg.stride == 1 and cfg.in_channels == cfg.out_channels
        layers: list[nn.Module] = []
        if cfg.expanded != cfg.in_channels:
            layers.append(ConvBNActivation(cfg.in_channels, cfg.expanded, 1, activation=cfg.activation))
        # A dilated block keeps its resolution: dilation replaces the stride (output stride 16).
        depthwise_stride = 1 if cfg.dilation > 1 else cfg.stride
        layers.append(
            ConvBNActivation(
                cfg.expanded,
                cfg.expanded,
                cfg.kernel,
                stride=depthwise_stride,
                groups=cfg.expanded,
                dilation=cfg.dilation,
                activation=cfg.activation,
            )
        )
        if cfg.use_se:
            layers.append(SqueezeExcitation(cfg.expanded, make_divisible(cfg.expanded // 4, 8)))
        # Linear bottleneck: no activation after the projection (it would destroy information
        # in the low-dimensional space, MobileNetV2 paper).
        layers.append(ConvBNActivation(cfg.expanded, cfg.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_residual:
            out = out + x
        return out


class MobileNetV3LargeEncoder(nn.Module):
    """Returns four feature maps for the RVM decoder:
    f1 (16 ch, 1/2), f2 (24 ch, 1/4), f3 (40 ch, 1/8), f4 (960 ch, 1/16).

    Input: RGB in [0, 1], shape [N, 3, H, W]; ImageNet normalisation happens inside.
    """

    # Indices of ``features`` after which a feature map is tapped.
    TAPS = (1, 3, 6, 16)
    CHANNELS = (16, 24, 40, LAST_CHANNELS)

    def __init__(self) -> None:
        super().__init__()
        first = LARGE_CONFIG[0].in_channels
        layers: list[nn.Module] = [ConvBNActivation(3, first, 3, stride=2, activation="HS")]
        layers += [InvertedResidual(cfg) for cfg in LARGE_CONFIG]
        layers.append(ConvBNActivation(LARGE_CONFIG[-1].out_channels, LAST_CHANNELS, 1, activation="HS"))
        self.features = nn.Sequential(*layers)
        # Non-persistent: they follow .to(device) but stay out of the state_dict, so the
        # official weights (which have no such keys) still load strictly.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = (x - self.mean) / self.std
        taps: list[Tensor] = []
        start = 0
        for tap in self.TAPS:
            for index in range(start, tap + 1):
                x = self.features[index](x)
            taps.append(x)
            start = tap + 1
        f1, f2, f3, f4 = taps
        return f1, f2, f3, f4
