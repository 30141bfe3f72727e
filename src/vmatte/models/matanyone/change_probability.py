"""The change-probability head U_t of region-adaptive memory fusion (MatAnyone, Sec. 3.2).

It predicts, per stride-16 token, how likely the target changed since the previous frame: where
it did, the memory readout is trusted; where it did not, the previous frame's value is kept.
Input: [previous pixel feature (256), current pixel feature (256), previous alpha (1),
readout - previous value (256)] = 769 channels. Output: logits [B,1,h,w].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChangeProbabilityHead(nn.Module):
    def __init__(self, pixel_dim: int = 256, value_dim: int = 256) -> None:
        super().__init__()
        self.conv1x1_v2 = nn.Conv2d(pixel_dim * 2 + 1 + value_dim, 64, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv3x3 = nn.Conv2d(64, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3x3_out = nn.Conv2d(32, 1, 3, padding=1, bias=False)

    def forward(self, last_pix_feat: Tensor, pix_feat: Tensor, last_alpha: Tensor, value_diff: Tensor) -> Tensor:
        """``last_alpha`` at full resolution [B,1,H,W]; it is area-downsampled here."""
        last_alpha = F.interpolate(last_alpha, size=last_pix_feat.shape[-2:], mode="area")
        x = torch.cat([last_pix_feat, pix_feat, last_alpha, value_diff], 1)
        x = F.relu(self.bn1(self.conv1x1_v2(x)))
        x = F.relu(self.bn2(self.conv3x3(x)))
        return self.conv3x3_out(x)
