"""SAM 2's memory attention (keys ``memory_attention``): condition a frame's features on its memories.

Four pre-norm layers over the frame's stride-16 tokens: self-attention, cross-attention to the
memory tokens, a ReLU FFN (2048). Both attentions use 2-D rotary position encoding (RoPE, Su et
al. 2021; axial, as in RoPE-ViT: half of each complex pair rotates with x, half with y). In the
cross-attention the queries' rotation is tiled over the keys (one copy per memory frame, whose
tokens lie on the same grid: ``rope_k_repeat``); the object-pointer tokens at the end of the
memory carry a temporal encoding instead and are not rotated. The sine position encoding of the
frame is added once to the input (scaled 0.1), that of the memories to the cross-attention keys.

Memory tokens are ``mem_dim`` (64) wide; the cross-attention projects them up to the model width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import Sam2Config


def axial_rope(dim: int, h: int, w: int, theta: float) -> Tensor:
    """``[h * w, dim / 2]`` complex rotations of the row-major token grid: ``dim / 4`` frequencies for x,
    then ``dim / 4`` for y."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    t = torch.arange(h * w, dtype=torch.float32)
    t_x, t_y = t % w, torch.div(t, w, rounding_mode="floor")
    angles = torch.cat([torch.outer(t_x, freqs), torch.outer(t_y, freqs)], dim=-1)
    return torch.polar(torch.ones_like(angles), angles)


def rotate(x: Tensor, freqs: Tensor) -> Tensor:
    """Rotate consecutive feature pairs of ``x [B, heads, N, D]`` by ``freqs [N, D / 2]`` (complex)."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * freqs).flatten(3).type_as(x)


class RoPEAttention(nn.Module):
    def __init__(
        self, dim: int, num_heads: int, theta: float, kv_dim: int | None = None, repeat_k: bool = False
    ) -> None:
        super().__init__()
        kv_dim = kv_dim or dim
        self.num_heads = num_heads
        self.theta = theta
        self.repeat_k = repeat_k
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(kv_dim, dim)
        self.v_proj = nn.Linear(kv_dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self._freqs: dict[tuple[int, int, torch.device], Tensor] = {}

    def _heads(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def freqs(self, hw: tuple[int, int], device: torch.device) -> Tensor:
        key = (hw[0], hw[1], device)
        if key not in self._freqs:  # depends only on the grid: computed once per size
            head_dim = self.q_proj.out_features // self.num_heads
            self._freqs[key] = axial_rope(head_dim, hw[0], hw[1], self.theta).to(device)
        return self._freqs[key]

    def forward(self, q: Tensor, k: Tensor, v: Tensor, hw: tuple[int, int], num_k_exclude_rope: int = 0) -> Tensor:
        """``q [B, h*w, C]`` (the frame's tokens on the ``hw`` grid); ``k``, ``v [B, M, kv_dim]``; the last
        ``num_k_exclude_rope`` keys (object pointers) are not rotated."""
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        freqs = self.freqs(hw, q.device)
        q = rotate(q, freqs)
        n_rope = k.shape[-2] - num_k_exclude_rope
        if n_rope > 0:
            k_freqs = freqs
            if n_rope != q.shape[-2]:
                if not self.repeat_k or n_rope % q.shape[-2]:
                    raise ValueError(f"{n_rope} rotated keys for a grid of {q.shape[-2]} queries")
                k_freqs = freqs.repeat(n_rope // q.shape[-2], 1)  # the same grid, once per memory frame
            k = torch.cat([rotate(k[:, :, :n_rope], k_freqs), k[:, :, n_rope:]], dim=2)
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, -1))


class MemoryAttentionLayer(nn.Module):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        d = cfg.d_model
        self.self_attn = RoPEAttention(d, cfg.mem_attn_heads, cfg.rope_theta)
        self.cross_attn_image = RoPEAttention(d, cfg.mem_attn_heads, cfg.rope_theta, kv_dim=cfg.mem_dim, repeat_k=True)
        self.linear1 = nn.Linear(d, cfg.mem_attn_ffn)
        self.linear2 = nn.Linear(cfg.mem_attn_ffn, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)

    def forward(
        self, x: Tensor, memory: Tensor, memory_pos: Tensor, hw: tuple[int, int], num_ptr_tokens: int
    ) -> Tensor:
        y = self.norm1(x)
        x = x + self.self_attn(y, y, y, hw)
        y = self.norm2(x)
        x = x + self.cross_attn_image(y, memory + memory_pos, memory, hw, num_k_exclude_rope=num_ptr_tokens)
        return x + self.linear2(F.relu(self.linear1(self.norm3(x))))


class MemoryAttention(nn.Module):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MemoryAttentionLayer(cfg) for _ in range(cfg.mem_attn_layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(
        self, feat: Tensor, feat_pos: Tensor, memory: Tensor, memory_pos: Tensor, num_ptr_tokens: int
    ) -> Tensor:
        """``feat``, ``feat_pos [B, C, h, w]``; ``memory``, ``memory_pos [B, M, mem_dim]`` (spatial memory
        tokens first, ``num_ptr_tokens`` pointer tokens last) -> conditioned features ``[B, C, h, w]``."""
        b, c, h, w = feat.shape
        x = (feat + 0.1 * feat_pos).flatten(2).transpose(1, 2)
        for layer in self.layers:
            x = layer(x, memory, memory_pos, (h, w), num_ptr_tokens)
        return self.norm(x).transpose(1, 2).reshape(b, c, h, w)
