"""RVM's recurrent decoder (Lin et al., WACV 2022, section 3.1).

The decoder upsamples the encoder features back to the (downsampled) input resolution. At the
bottleneck and after each of the three upsampling stages, half of the channels pass through a
ConvGRU: this is where temporal information lives (what was foreground a moment ago), while the
other half stays purely per-frame. The recurrent states are returned to the caller and fed back
with the next frame.

Tensor layout: every block works on frames flattened into the batch, ``[B*T, C, H, W]``; only
the ConvGRU needs the time axis and rebuilds it from ``num_frames`` (T). With T = 1 this is the
plain per-frame recurrent call.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _upsample2x(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _crop_to(x: Tensor, like: Tensor) -> Tensor:
    # Odd sizes round up on the way down (ceil), so the x2 upsample can overshoot by one pixel.
    return x[:, :, : like.shape[2], : like.shape[3]]


class ConvGRU(nn.Module):
    """Convolutional GRU (Ballas et al. 2016): a GRU whose gates are 3x3 convolutions.

    r, z = sigmoid(conv([x, h])); c = tanh(conv([x, r * h])); h' = (1 - z) * h + z * c.
    """

    def __init__(self, channels: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.channels = channels
        # Reset (r) and update (z) gates in one conv, in that order along the channels.
        self.ih = nn.Sequential(nn.Conv2d(channels * 2, channels * 2, kernel_size, padding=padding), nn.Sigmoid())
        # Candidate state.
        self.hh = nn.Sequential(nn.Conv2d(channels * 2, channels, kernel_size, padding=padding), nn.Tanh())

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        r, z = self.ih(torch.cat([x, h], dim=1)).split(self.channels, dim=1)
        c = self.hh(torch.cat([x, r * h], dim=1))
        return (1 - z) * h + z * c

    def _initial_state(self, x: Tensor, h: Tensor | None) -> Tensor:
        if h is None:
            # No history yet: zeros (the state the network was trained to start from).
            return torch.zeros_like(x)
        if h.shape != x.shape:
            # The ONNX export's convention is a [1, 1, 1, 1] zero tensor broadcast in-graph;
            # accept anything broadcastable, refuse a state from another resolution.
            try:
                return h.expand_as(x)
            except RuntimeError as err:
                raise ValueError(
                    f"recurrent state of shape {tuple(h.shape)} does not fit features of shape "
                    f"{tuple(x.shape)}; pass None to reset the state when the frame size or "
                    "downsample_ratio changes"
                ) from err
        return h

    def forward(self, x: Tensor, h: Tensor | None, num_frames: int = 1) -> tuple[Tensor, Tensor]:
        """x: [B*T, C, H, W]; h: [B, C, H, W] or None. Returns (per-frame states, last state)."""
        if num_frames == 1:
            h = self.step(x, self._initial_state(x, h))
            return h, h
        frames = x.unflatten(0, (-1, num_frames))
        h = self._initial_state(frames[:, 0], h)
        states = []
        for t in range(num_frames):
            h = self.step(frames[:, t], h)
            states.append(h)
        return torch.stack(states, dim=1).flatten(0, 1), h


class BottleneckBlock(nn.Module):
    """decode4: ConvGRU on the second half of the LR-ASPP output, first half passes through."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gru = ConvGRU(channels // 2)

    def forward(self, x: Tensor, r: Tensor | None, num_frames: int = 1) -> tuple[Tensor, Tensor]:
        a, b = x.split(self.channels // 2, dim=1)
        b, r = self.gru(b, r, num_frames)
        return torch.cat([a, b], dim=1), r


class UpsamplingBlock(nn.Module):
    """decode3/2/1: x2 upsample, concat [x, encoder skip, downsampled image], 3x3 conv, then
    ConvGRU on the second half of the channels."""

    def __init__(self, in_channels: int, skip_channels: int, src_channels: int, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels + src_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.gru = ConvGRU(out_channels // 2)

    def forward(self, x: Tensor, f: Tensor, s: Tensor, r: Tensor | None, num_frames: int = 1) -> tuple[Tensor, Tensor]:
        x = _crop_to(_upsample2x(x), s)
        x = self.conv(torch.cat([x, f, s], dim=1))
        a, b = x.split(self.out_channels // 2, dim=1)
        b, r = self.gru(b, r, num_frames)
        return torch.cat([a, b], dim=1), r


class OutputBlock(nn.Module):
    """decode0: x2 upsample to the downsampled-input resolution, concat the image, two 3x3
    convs. No recurrence at full (downsampled) resolution: it would be expensive."""

    def __init__(self, in_channels: int, src_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels + src_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        x = _crop_to(_upsample2x(x), s)
        return self.conv(torch.cat([x, s], dim=1))


class RecurrentDecoder(nn.Module):
    """feature_channels: encoder taps after LR-ASPP (f1, f2, f3, f4);
    decoder_channels: outputs of decode3, decode2, decode1, decode0."""

    def __init__(
        self, feature_channels: tuple[int, int, int, int], decoder_channels: tuple[int, int, int, int]
    ) -> None:
        super().__init__()
        # The image itself, pooled to each stage's stride, is concatenated at every stage so
        # the decoder can recover edges the encoder has blurred. ceil_mode keeps odd sizes
        # aligned with the encoder's strided convs; count_include_pad=False averages only real
        # pixels at the border.
        self.avgpool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
        self.decode4 = BottleneckBlock(feature_channels[3])
        self.decode3 = UpsamplingBlock(feature_channels[3], feature_channels[2], 3, decoder_channels[0])
        self.decode2 = UpsamplingBlock(decoder_channels[0], feature_channels[1], 3, decoder_channels[1])
        self.decode1 = UpsamplingBlock(decoder_channels[1], feature_channels[0], 3, decoder_channels[2])
        self.decode0 = OutputBlock(decoder_channels[2], 3, decoder_channels[3])

    def forward(
        self,
        s0: Tensor,
        f1: Tensor,
        f2: Tensor,
        f3: Tensor,
        f4: Tensor,
        r1: Tensor | None,
        r2: Tensor | None,
        r3: Tensor | None,
        r4: Tensor | None,
        num_frames: int = 1,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Returns (hidden 16-ch features at s0's resolution, r1, r2, r3, r4)."""
        s1 = self.avgpool(s0)
        s2 = self.avgpool(s1)
        s3 = self.avgpool(s2)
        x4, r4 = self.decode4(f4, r4, num_frames)
        x3, r3 = self.decode3(x4, f3, s3, r3, num_frames)
        x2, r2 = self.decode2(x3, f2, s2, r2, num_frames)
        x1, r1 = self.decode1(x2, f1, s1, r1, num_frames)
        x0 = self.decode0(x1, s0)
        return x0, r1, r2, r3, r4
