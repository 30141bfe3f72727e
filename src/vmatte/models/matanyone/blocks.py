"""Small convolutional blocks shared by MatAnyone's encoders, fuser, transformer and decoder.

MatAnyone (Yang et al., CVPR 2025) inherits these from Cutie (Cheng et al., CVPR 2024). vmatte
runs the single-target model, so object-grouped tensors are plain ``[B, C, H, W]`` here: the
object axis of the official code always has length 1 and is dropped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def weight_layout(conv: nn.Conv2d) -> torch.memory_format:
    """The layout ``conv`` stores its weight in (NHWC after ``fuse_for_inference(channels_last=True)``):
    feeding it the same layout spares oneDNN a reorder of the activation in and out."""
    w = conv.weight
    return (
        torch.channels_last
        if w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
        else torch.contiguous_format
    )


class ResBlock(nn.Module):
    """Pre-activation residual block: relu-conv3x3-relu-conv3x3, 1x1 shortcut if widths differ."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.downsample = nn.Conv2d(in_dim, out_dim, 1) if in_dim != out_dim else None
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, padding=1)

    def forward(self, g: Tensor) -> Tensor:
        out = self.conv2(F.relu(self.conv1(F.relu(g))))
        return out + (g if self.downsample is None else self.downsample(g))


class CAResBlock(nn.Module):
    """Residual block with ECA channel attention (Wang et al., CVPR 2020).

    The attention is a Conv1d over the globally pooled channel vector, kernel size chosen from
    the channel count as in ECA-Net (k = 5 for 256 channels). The shortcut is the identity.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        t = int((abs(math.log2(dim)) + 1) // 2)
        k = t if t % 2 else t + 1
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        r = x
        x = self.conv2(F.relu(self.conv1(F.relu(x))))
        b, c = x.shape[:2]
        w = F.adaptive_avg_pool2d(x, 1).view(b, 1, c)
        w = self.conv(w).transpose(-1, -2).unsqueeze(-1).sigmoid()  # [B, C, 1, 1]
        return x * w + r


class Distributor(nn.Module):
    """Adds a (transformed) shared feature ``x`` to a per-target feature ``g``."""

    def __init__(self, x_dim: int, g_dim: int, out_dim: int) -> None:
        super().__init__()
        self.x_transform = nn.Conv2d(x_dim, out_dim, 1)
        self.g_transform = nn.Conv2d(g_dim, out_dim, 1)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        return self.x_transform(x) + self.g_transform(g)


class FeatureFusionBlock(nn.Module):
    """Fuses the pixel feature into a per-target feature: 1x1 transforms added, two CA blocks."""

    def __init__(self, x_dim: int, g_dim: int, out_dim: int) -> None:
        super().__init__()
        self.distributor = Distributor(x_dim, g_dim, out_dim)
        self.block1 = CAResBlock(out_dim)
        self.block2 = CAResBlock(out_dim)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        return self.block2(self.block1(self.distributor(x, g)))


def gru_update(h: Tensor, values: Tensor) -> Tensor:
    """Convolutional GRU step without a reset gate, as in XMem/Cutie's sensory memory.

    ``values`` holds [forget, update, candidate] pre-activations stacked on channels.
    """
    dim = values.shape[1] // 3
    forget_gate = torch.sigmoid(values[:, :dim])
    update_gate = torch.sigmoid(values[:, dim : dim * 2])
    new_value = torch.tanh(values[:, dim * 2 :])
    return forget_gate * h * (1 - update_gate) + update_gate * new_value


class SensoryDeepUpdater(nn.Module):
    """The mask encoder's "deep update" of the sensory memory: GRU on [value, sensory]."""

    def __init__(self, f_dim: int, sensory_dim: int) -> None:
        super().__init__()
        self.transform = nn.Conv2d(f_dim + sensory_dim, sensory_dim * 3, 3, padding=1)

    def forward(self, g: Tensor, h: Tensor) -> Tensor:
        return gru_update(h, self.transform(torch.cat([g, h], 1)))
