"""Query/memory key projection with XMem's shrinkage and selection terms (Cheng & Schwing, 2022).

From the stride-16 image feature: a 1x1 projection, then 3x3 heads for the key (64 ch), the
shrinkage ``s = d^2 + 1`` (1 ch; sharpens a memory token's similarity) and the selection
``e = sigmoid(.)`` (64 ch; weights the query's key channels in the anisotropic L2 distance).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class KeyProjection(nn.Module):
    def __init__(self, in_dim: int = 1024, mid_dim: int = 256, key_dim: int = 64) -> None:
        super().__init__()
        self.pix_feat_proj = nn.Conv2d(in_dim, mid_dim, 1)
        self.key_proj = nn.Conv2d(mid_dim, key_dim, 3, padding=1)
        self.d_proj = nn.Conv2d(mid_dim, 1, 3, padding=1)
        self.e_proj = nn.Conv2d(mid_dim, key_dim, 3, padding=1)

    def forward(self, f16: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> (key, shrinkage, selection)."""
        x = self.pix_feat_proj(f16)
        shrinkage = self.d_proj(x) ** 2 + 1
        selection = torch.sigmoid(self.e_proj(x))
        return self.key_proj(x), shrinkage, selection
