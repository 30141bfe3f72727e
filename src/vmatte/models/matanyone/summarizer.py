"""Object summaries (Cutie's object memory): 16 weighted poolings of the memory value.

Half the summaries pool over the target (alpha), half over the background (1 - alpha); each
token's weight is a learned sigmoid. A summary is stored as [weighted sum (256), area (1)], so
summaries of several memory frames add up and are averaged later (sum / area).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .positional_encoding import PositionalEncoding


class ObjectSummarizer(nn.Module):
    def __init__(
        self,
        value_dim: int = 256,
        embed_dim: int = 256,
        num_summaries: int = 16,
        pe_scale: float = 32.0,
        pe_temperature: float = 128.0,
    ) -> None:
        super().__init__()
        self.num_summaries = num_summaries
        self.pos_enc = PositionalEncoding(embed_dim, pe_scale, pe_temperature)
        self.input_proj = nn.Linear(value_dim, embed_dim)
        self.feature_pred = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True), nn.Linear(embed_dim, embed_dim)
        )
        self.weights_pred = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True), nn.Linear(embed_dim, num_summaries)
        )

    def forward(self, alpha: Tensor, value: Tensor) -> Tensor:
        """``alpha`` [B,1,H,W] full resolution, ``value`` [B,C,h,w] -> [B, 16, C+1]."""
        h, w = value.shape[-2:]
        m = F.interpolate(alpha, size=(h, w), mode="area").permute(0, 2, 3, 1)  # [B,h,w,1]
        half = self.num_summaries // 2
        masks = torch.cat([m.expand(-1, -1, -1, half), (1 - m).expand(-1, -1, -1, half)], -1)
        v = self.input_proj(value.permute(0, 2, 3, 1))
        v = v + self.pos_enc(h, w, v.shape[-1])
        feature = self.feature_pred(v)
        weights = self.weights_pred(v).sigmoid() * masks  # [B,h,w,Q]
        sums = torch.einsum("bhwq,bhwc->bqc", weights, feature)
        area = weights.flatten(1, 2).sum(1).unsqueeze(-1)
        return torch.cat([sums, area], -1)
