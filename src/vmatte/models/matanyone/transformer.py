"""Cutie's object transformer, as used by MatAnyone (the "object-level memory" read).

16 object queries, initialised from the object summaries, alternate with the pixel features:
queries cross-attend to pixels (the first 8 queries only to foreground pixels, the last 8 only
to background, from an auxiliary mask predicted before each block), self-attend, run an FFN,
then every pixel cross-attends to all queries (unmasked), followed by a residual pixel FFN.

Attention layers are pre-norm with the residual taken *after* the norm; the query FFN keeps the
un-normalised residual (each choice checked against the numeric fixture). Pixel positional
encoding: 2-D sine (scale 32, temperature 128) plus a learned 1x1 projection of the pixel
feature; query embeddings: learned plus projected summaries.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import CAResBlock
from .positional_encoding import PositionalEncoding


class CrossAttention(nn.Module):
    """Pre-norm cross attention; PE added to queries and keys, not to values."""

    def __init__(self, dim: int, num_heads: int, norm: bool = True) -> None:
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()

    def forward(self, x: Tensor, mem: Tensor, x_pe: Tensor, mem_pe: Tensor, attn_mask: Tensor | None) -> Tensor:
        x = self.norm(x)
        out = self.cross_attn(x + x_pe, mem + mem_pe, mem, attn_mask=attn_mask, need_weights=False)[0]
        return x + out


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pe: Tensor) -> Tensor:
        x = self.norm(x)
        qk = x + pe
        return x + self.self_attn(qk, qk, x, need_weights=False)[0]


class FFN(nn.Module):
    def __init__(self, dim: int, ff_dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear2(torch.relu(self.linear1(self.norm(x))))


class PixelFFN(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = CAResBlock(dim)

    def forward(self, pixel: Tensor) -> Tensor:
        return self.conv(pixel)


class ObjectTransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, ff_dim: int) -> None:
        super().__init__()
        self.read_from_pixel = CrossAttention(dim, num_heads)
        self.self_attn = SelfAttention(dim, num_heads)
        self.ffn = FFN(dim, ff_dim)
        self.read_from_query = CrossAttention(dim, num_heads, norm=False)
        self.pixel_ffn = PixelFFN(dim)

    def forward(
        self, query: Tensor, pixel: Tensor, query_pe: Tensor, pixel_pe: Tensor, attn_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        b, c, h, w = pixel.shape
        pixel_flat = pixel.flatten(2).transpose(1, 2)  # [B, HW, C]
        query = self.read_from_pixel(query, pixel_flat, query_pe, pixel_pe, attn_mask)
        query = self.self_attn(query, query_pe)
        query = self.ffn(query)
        # every pixel reads every query: the auxiliary mask only restricts the query side
        pixel_flat = self.read_from_query(pixel_flat, query, pixel_pe, query_pe, None)
        pixel = pixel_flat.transpose(1, 2).reshape(b, c, h, w)
        return query, self.pixel_ffn(pixel)


class ObjectTransformer(nn.Module):
    def __init__(
        self,
        dim: int = 256,
        num_queries: int = 16,
        num_heads: int = 8,
        num_blocks: int = 3,
        ff_dim: int = 2048,
        pe_scale: float = 32.0,
        pe_temperature: float = 128.0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_queries = num_queries
        self.query_init = nn.Embedding(num_queries, dim)
        self.query_emb = nn.Embedding(num_queries, dim)
        self.summary_to_query_init = nn.Linear(dim, dim)
        self.summary_to_query_emb = nn.Linear(dim, dim)
        self.pixel_init_proj = nn.Conv2d(dim, dim, 1)
        self.pixel_emb_proj = nn.Conv2d(dim, dim, 1)
        self.spatial_pe = PositionalEncoding(dim, pe_scale, pe_temperature)
        self.blocks = nn.ModuleList(ObjectTransformerBlock(dim, num_heads, ff_dim) for _ in range(num_blocks))
        # the auxiliary mask heads: one before the first block and one after each block
        self.mask_pred = nn.ModuleList(nn.Sequential(nn.ReLU(), nn.Conv2d(dim, 1, 1)) for _ in range(num_blocks + 1))

    def _aux_mask(self, logits: Tensor) -> Tensor:
        """True = attention blocked. [B*heads, Q, HW]; first half of queries sees foreground."""
        prob = logits.sigmoid()
        # the official soft aggregation of [background, foreground] into clamped logits
        new_prob = torch.cat([1 - prob, prob], 1).clamp(1e-7, 1 - 1e-7)
        agg = torch.log(new_prob / (1 - new_prob))
        fg = (agg[:, 1:] >= agg.max(dim=1, keepdim=True)[0]).flatten(2)  # [B,1,HW]
        half = self.num_queries // 2
        block_fg = (~fg).unsqueeze(2).repeat(1, self.num_heads, half, 1).flatten(0, 1)
        block_bg = fg.unsqueeze(2).repeat(1, self.num_heads, half, 1).flatten(0, 1)
        mask = torch.cat([block_fg, block_bg], 1)
        # a query that would see no pixel at all sees every pixel instead
        mask[torch.where(mask.sum(-1) == mask.shape[-1])] = False
        return mask

    def forward(self, pixel: Tensor, obj_memory: Tensor) -> Tensor:
        """``pixel`` [B,C,h,w], ``obj_memory`` [B,Q,C+1] summed summaries -> [B,C,h,w]."""
        b, c, h, w = pixel.shape
        obj_values = obj_memory[..., :-1] / (obj_memory[..., -1:] + 1e-4)
        query = self.query_init.weight.unsqueeze(0).expand(b, -1, -1) + self.summary_to_query_init(obj_values)
        query_pe = self.query_emb.weight.unsqueeze(0).expand(b, -1, -1) + self.summary_to_query_emb(obj_values)

        pixel_emb = self.pixel_emb_proj(pixel).flatten(2).transpose(1, 2)
        pixel_pe = self.spatial_pe(h, w, c).flatten(0, 1).unsqueeze(0) + pixel_emb
        pixel = self.pixel_init_proj(pixel)

        attn_mask = self._aux_mask(self.mask_pred[0](pixel))
        for i, block in enumerate(self.blocks):
            query, pixel = block(query, pixel, query_pe, pixel_pe, attn_mask)
            if i + 1 < len(self.blocks):  # the last auxiliary head only matters in training
                attn_mask = self._aux_mask(self.mask_pred[i + 1](pixel))
        return pixel
