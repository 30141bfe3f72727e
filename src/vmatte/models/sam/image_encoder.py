"""SAM's image encoder: a plain ViT (ViTDet recipe) with a convolutional neck.

16x16 patches plus a learned absolute position embedding, then ``depth`` pre-norm blocks; most
attend within non-overlapping ``window_size`` windows (the token grid is zero-padded up to a
multiple of the window first), a few (``global_attn_indexes``) attend over the whole grid. Every
attention adds decomposed relative position biases (MViTv2): one learned table per axis, read
with the query, so the bias of query (i, j) to key (k, l) is ``q . Rh[i - k] + q . Rw[j - l]``.
The neck maps the ViT width to the 256-channel embedding (1x1 conv, LN, 3x3 conv, LN).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .common import LayerNorm2d, MLPBlock
from .config import SamConfig

# Attention-bias elements computed at once (fp32: 256 MiB), whatever the number of heads.
_BIAS_BUDGET = 1 << 26


def relative_table(size: int, rel_pos: Tensor) -> Tensor:
    """``[size, size, d]``: the embedding of offset ``i - j`` for query i and key j on one axis.

    A table trained for another size is linearly resampled to ``2 * size - 1`` entries first, as
    upstream does (only reached when a block runs on a grid other than the one it was built for).
    """
    n = 2 * size - 1
    if rel_pos.shape[0] != n:
        rel_pos = F.interpolate(rel_pos.t()[None], size=n, mode="linear")[0].t()
    pos = torch.arange(size, device=rel_pos.device)
    return rel_pos[pos[:, None] - pos[None, :] + (size - 1)]


def decomposed_rel_pos_bias(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor, h: int, w: int) -> Tensor:
    """Attention bias ``[..., h*w, h*w]`` from queries ``q [..., h*w, d]`` (unscaled, as upstream)."""
    rh = relative_table(h, rel_pos_h)  # [h, h, d]
    rw = relative_table(w, rel_pos_w)  # [w, w, d]
    lead = q.shape[:-2]
    q = q.reshape(*lead, h, w, q.shape[-1])
    bias_h = torch.einsum("...hwc,hkc->...hwk", q, rh)  # query row vs key row
    bias_w = torch.einsum("...hwc,wkc->...hwk", q, rw)  # query column vs key column
    bias = bias_h[..., :, None] + bias_w[..., None, :]  # [..., h, w, kh, kw]
    return bias.reshape(*lead, h * w, h * w)


class Attention(nn.Module):
    """Multi-head self-attention over a ``[B, H, W, C]`` token grid, with relative positions."""

    def __init__(self, dim: int, num_heads: int, grid: int, use_rel_pos: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            # One entry per offset -(grid-1)..(grid-1) on each axis; ``grid`` is the window side.
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, HW, d]
        if not self.use_rel_pos:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            # The bias is (HW)^2 per head: 4096^2 in a global block, 64 MiB each. Heads go through
            # in groups so it is never held for all of them at once (16 heads: 1 GiB).
            q, k, v = (t.flatten(0, 1) for t in (q, k, v))
            group = max(1, _BIAS_BUDGET // (h * w) ** 2)
            out = torch.cat(
                [
                    # The default scale is head_dim ** -0.5, as upstream; the bias is added after it.
                    F.scaled_dot_product_attention(
                        q[i : i + group],
                        k[i : i + group],
                        v[i : i + group],
                        attn_mask=decomposed_rel_pos_bias(q[i : i + group], self.rel_pos_h, self.rel_pos_w, h, w),
                    )
                    for i in range(0, q.shape[0], group)
                ]
            ).view(b, self.num_heads, h * w, -1)
        return self.proj(out.transpose(1, 2).reshape(b, h, w, c))


def window_partition(x: Tensor, window: int) -> tuple[Tensor, tuple[int, int]]:
    """``[B, H, W, C]`` -> ``[B * nWindows, window, window, C]``, zero-padding H and W up first."""
    b, h, w, c = x.shape
    pad_h, pad_w = -h % window, -w % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c).transpose(2, 3)
    return x.reshape(-1, window, window, c), (hp, wp)


def window_unpartition(windows: Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Inverse of :func:`window_partition`, dropping the padding."""
    hp, wp = padded
    h, w = size
    c = windows.shape[-1]
    x = windows.view(-1, hp // window, wp // window, window, window, c).transpose(2, 3)
    x = x.reshape(-1, hp, wp, c)
    return x[:, :h, :w, :].contiguous() if (hp, wp) != (h, w) else x


class Block(nn.Module):
    """Pre-norm ViT block; ``window_size`` 0 means global attention over the whole grid."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, window_size: int, grid: int, use_rel_pos: bool
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, window_size or grid, use_rel_pos)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, round(dim * mlp_ratio))  # 4x: 3072 for ViT-B
        self.window_size = window_size

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            size = (x.shape[1], x.shape[2])
            x, padded = window_partition(x, self.window_size)
            x = window_unpartition(self.attn(x), self.window_size, padded, size)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # tokens channel-last: [B, H, W, C]


class ImageEncoderViT(nn.Module):
    def __init__(self, cfg: SamConfig) -> None:
        super().__init__()
        self.img_size = cfg.image_size
        grid = cfg.embedding_size
        dim = cfg.encoder_embed_dim
        self.patch_embed = PatchEmbed(cfg.patch_size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, dim))
        self.blocks = nn.ModuleList(
            Block(
                dim,
                cfg.encoder_num_heads,
                cfg.encoder_mlp_ratio,
                0 if i in cfg.encoder_global_attn_indexes else cfg.window_size,
                grid,
                cfg.use_rel_pos,
            )
            for i in range(cfg.encoder_depth)
        )
        out = cfg.prompt_embed_dim
        self.neck = nn.Sequential(
            nn.Conv2d(dim, out, kernel_size=1, bias=False),
            LayerNorm2d(out),
            nn.Conv2d(out, out, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``[B, 3, S, S]`` normalised, padded image -> ``[B, C, S/16, S/16]`` embedding."""
        if x.shape[-2:] != (self.img_size, self.img_size):
            # The absolute position embedding is added as is (no resampling), as upstream.
            raise ValueError(
                f"SAM's image encoder takes {self.img_size}x{self.img_size} inputs, got {tuple(x.shape[-2:])}"
            )
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
