"""2-D sine positional encoding over a feature map (as in Cutie's object transformer).

The first half of the channels encodes x, the second y, each as interleaved (sin, cos) pairs. Positions are
normalised to [0, scale] over the map, so the encoding does not depend on the resolution.
``inv_freq`` is a persistent buffer in the official state_dict, so it is one here too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PositionalEncoding(nn.Module):
    def __init__(self, dim: int = 256, scale: float = 32.0, temperature: float = 128.0) -> None:
        super().__init__()
        self.dim = (dim + 3) // 4 * 2  # channels per axis
        self.scale = scale
        self.eps = 1e-6
        inv_freq = 1.0 / (temperature ** (torch.arange(0, self.dim, 2).float() / self.dim))
        self.register_buffer("inv_freq", inv_freq)

    @staticmethod
    def _emb(sin_inp: Tensor) -> Tensor:
        return torch.stack((sin_inp.sin(), sin_inp.cos()), dim=-1).flatten(-2, -1)

    def forward(self, h: int, w: int, channels: int) -> Tensor:
        """-> [h, w, channels] (channel-last). A constant of the frame size: computed once per
        size (and per state of ``inv_freq``) and reused, not recomputed every frame."""
        f = self.inv_freq
        # inference tensors (made under inference_mode) cannot enter autograd: kept apart
        key = (
            h,
            w,
            channels,
            f.device,
            f.dtype,
            f.data_ptr(),
            f._version,
            torch.is_inference_mode_enabled(),
            torch.is_autocast_enabled(f.device.type),
        )
        cached = self.__dict__.get("_cached")
        if cached is None or cached[0] != key:
            cached = (key, self._compute(h, w, channels))
            self.__dict__["_cached"] = cached
        return cached[1]

    def _compute(self, h: int, w: int, channels: int) -> Tensor:
        pos_y = torch.arange(h, device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        pos_x = torch.arange(w, device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        pos_y = pos_y / (pos_y[-1] + self.eps) * self.scale
        pos_x = pos_x / (pos_x[-1] + self.eps) * self.scale
        emb_y = self._emb(torch.einsum("i,j->ij", pos_y, self.inv_freq)).unsqueeze(1)
        emb_x = self._emb(torch.einsum("i,j->ij", pos_x, self.inv_freq))
        emb = torch.zeros((h, w, self.dim * 2), device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        emb[:, :, : self.dim] = emb_x
        emb[:, :, self.dim :] = emb_y
        return emb[:, :, :channels]
