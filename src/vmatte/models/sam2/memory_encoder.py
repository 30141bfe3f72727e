"""SAM 2's memory encoder (keys ``memory_encoder``): a frame's features + its mask -> one memory.

The mask (full input resolution, already squashed to ~[-10, 10] by the caller) is brought down to
the feature stride by strided 3x3 convs that each quadruple the channels (1 -> 4 -> 16 -> 64 ->
256 for stride 16), each followed by a channel LayerNorm and GELU, then a 1x1 conv. It is added
to the 1x1-projected stride-16 pixel features, mixed by two ConvNeXt blocks (the "fuser") and
projected to ``mem_dim`` (64) channels, 4x smaller than the image features: memories are many.

The sine position encoding of the memory map (DETR style, normalised, 64 features) is computed
here too; it depends only on the map's size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..sam.common import LayerNorm2d
from .config import Sam2Config


def sine_position_encoding(
    channels: int, h: int, w: int, device: torch.device | None = None, temperature: float = 10000.0
) -> Tensor:
    """``[1, channels, h, w]``: DETR's normalised 2-D sine encoding (y features first, then x)."""
    half = channels // 2
    scale, eps = 2 * math.pi, 1e-6
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device)
    y = y / (y[-1:] + eps) * scale
    x = x / (x[-1:] + eps) * scale
    dim_t = torch.arange(half, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * (dim_t // 2) / half)

    def interleave(v: Tensor) -> Tensor:  # [n] -> [n, half]: sin on even, cos on odd features
        p = v[:, None] / dim_t
        return torch.stack((p[:, 0::2].sin(), p[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = interleave(y)[:, None, :].expand(h, w, half)
    pos_x = interleave(x)[None, :, :].expand(h, w, half)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)[None]


class MaskDownSampler(nn.Module):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        stride, total = cfg.mask_downsampler_stride, cfg.backbone_stride
        n = round(math.log(total) / math.log(stride))
        if stride**n != total:
            raise ValueError(f"mask downsampler stride {stride} does not reach the feature stride {total}")
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(n):
            c_out = c_in * stride**2
            layers += [
                nn.Conv2d(c_in, c_out, cfg.mask_downsampler_kernel, stride, cfg.mask_downsampler_padding),
                LayerNorm2d(c_out),
                nn.GELU(),
            ]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, cfg.d_model, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, mask: Tensor) -> Tensor:
        return self.encoder(mask)


class CXBlock(nn.Module):
    """ConvNeXt block: depth-wise conv, LayerNorm, 4x MLP (as linears on channels-last), layer scale."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=kernel, padding=kernel // 2, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(cfg.d_model, cfg.fuser_kernel) for _ in range(cfg.fuser_layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(cfg)
        self.pix_feat_proj = nn.Conv2d(cfg.d_model, cfg.d_model, kernel_size=1)
        self.fuser = Fuser(cfg)
        self.out_proj = nn.Conv2d(cfg.d_model, cfg.mem_dim, kernel_size=1)
        self.mem_dim = cfg.mem_dim

    def forward(self, pix_feat: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``pix_feat [B, C, h, w]`` (the frame's stride-16 features, no memory), ``mask [B, 1, 16h, 16w]``
        (already through the caller's sigmoid/scale) -> (memory ``[B, mem_dim, h, w]``, its position
        encoding ``[1, mem_dim, h, w]``)."""
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(mask)
        x = self.out_proj(self.fuser(x))
        pos = sine_position_encoding(self.mem_dim, x.shape[-2], x.shape[-1], x.device).to(x.dtype)
        return x, pos


def mask_for_memory(high_res_logits: Tensor, cfg: Sam2Config, binarize: bool) -> Tensor:
    """What the memory encoder sees of a mask: the hard mask (a prompted frame, when
    ``binarize_mask_from_pts_for_mem_enc``) or the sigmoid, then scaled and shifted (x20 - 10)."""
    m = (high_res_logits > 0).float() if binarize else torch.sigmoid(high_res_logits)
    if cfg.sigmoid_scale_for_mem_enc != 1.0:
        m = m * cfg.sigmoid_scale_for_mem_enc
    if cfg.sigmoid_bias_for_mem_enc != 0.0:
        m = m + cfg.sigmoid_bias_for_mem_enc
    return m
