"""Hiera trunk of SAM 2 (Ryali et al., "Hiera", ICML 2023), in the official key layout.

Four stages of transformer blocks on a ``[B, H, W, C]`` token map (stride 4 after the 7x7
patch embedding). The first block of each later stage doubles the width (and the heads) and
halves the resolution by max-pooling its *queries* (q-pooling), so the block's attention output
is already at the new resolution; its shortcut is a pooled linear projection.

Attention is local in windows except in a few global blocks. The window size "lags by a block":
the first block of a stage still uses the previous stage's window (pooled with the queries), so
the windows of a q-pooling block tile the *input* map before pooling. Maps that do not divide
into windows are zero-padded at the bottom/right and cropped back after attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..sam.common import MLP
from .config import Sam2Config


def _pad_to(size: int, window: int) -> int:
    return size + (-size % window)


def window_partition(x: Tensor, window: int) -> Tensor:
    """``[B, H, W, C]`` -> ``[B * nWindows, window, window, C]``, zero-padding H and W up to a multiple."""
    b, h, w, c = x.shape
    hp, wp = _pad_to(h, window), _pad_to(w, window)
    if (hp, wp) != (h, w):
        x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h))
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def window_unpartition(windows: Tensor, window: int, hw: tuple[int, int]) -> Tensor:
    """Inverse of :func:`window_partition` for an (unpadded) map of size ``hw``."""
    h, w = hw
    hp, wp = _pad_to(h, window), _pad_to(w, window)
    b = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.reshape(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :w] if (hp, wp) != (h, w) else x


def _max_pool_hw(x: Tensor, stride: tuple[int, int]) -> Tensor:
    """Max-pool a ``[B, H, W, C]`` map (kernel = stride, floor)."""
    return F.max_pool2d(x.permute(0, 3, 1, 2), kernel_size=stride, stride=stride).permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention whose queries may be max-pooled (the stage's downsampling)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_stride: tuple[int, int] | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_stride = q_stride
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).unbind(2)
        if self.q_stride is not None:
            q = _max_pool_hw(q.reshape(b, h, w, -1), self.q_stride)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    def __init__(
        self, dim: int, dim_out: int, num_heads: int, mlp_ratio: float, q_stride: tuple[int, int] | None, window: int
    ) -> None:
        super().__init__()
        self.window = window
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_stride)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, num_layers=2, act=nn.GELU)
        # Width change: the shortcut is projected (from the *normalised* tokens) and pooled.
        self.proj = nn.Linear(dim, dim_out) if dim != dim_out else None

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.proj is not None:
            shortcut = self.proj(x)
            if self.q_stride is not None:
                shortcut = _max_pool_hw(shortcut, self.q_stride)
        if self.window > 0:
            x = self.attn(window_partition(x, self.window))
            # q-pooling shrank each window by the stride; the output map is the shortcut's size.
            window = self.window // self.q_stride[0] if self.q_stride is not None else self.window
            x = window_unpartition(x, window, shortcut.shape[1:3])
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    """Returns the four stage outputs as ``[B, C, H, W]``, highest resolution (stride 4) first."""

    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        if len(cfg.stages) != len(cfg.window_spec):
            raise ValueError("Hiera: one window size per stage")
        self.patch_embed = PatchEmbed(cfg.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.embed_dim, *cfg.window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, cfg.embed_dim, cfg.window_spec[0], cfg.window_spec[0]))

        ends = [sum(cfg.stages[: i + 1]) - 1 for i in range(len(cfg.stages))]
        self.stage_ends = ends
        q_pool_blocks = [e + 1 for e in ends[:-1]][: cfg.q_pool]
        dim, heads, stage = cfg.embed_dim, cfg.num_heads, 0
        self.blocks = nn.ModuleList()
        for i in range(sum(cfg.stages)):
            window = 0 if i in cfg.global_att_blocks else cfg.window_spec[stage]  # before the stage step: the lag
            dim_out = dim
            if i - 1 in ends:
                dim_out, heads, stage = int(dim * cfg.dim_mul), int(heads * cfg.head_mul), stage + 1
            q_stride = cfg.q_stride if i in q_pool_blocks else None
            self.blocks.append(MultiScaleBlock(dim, dim_out, heads, cfg.mlp_ratio, q_stride, window))
            dim = dim_out

    def _pos_embed(self, hw: tuple[int, int]) -> Tensor:
        pos = F.interpolate(self.pos_embed, size=hw, mode="bicubic")
        win = self.pos_embed_window
        pos = pos + win.tile(1, 1, hw[0] // win.shape[2], hw[1] // win.shape[3])
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.patch_embed(x)
        x = x + self._pos_embed(tuple(x.shape[1:3]))
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outs.append(x.permute(0, 3, 1, 2))
        return outs
