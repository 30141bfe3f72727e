"""MatAnyone's mask decoder: stride 16 -> 1 with image skips, a matting head, a sensory update.

Each upsampling stage is bilinear x2, plus a 1x1-projected encoder skip, then a residual block;
MatAnyone extends Cutie's decoder (which stops at stride 4) down to full resolution, with the
normalised image as the stride-1 skip. Two 3x3 heads read relu(p1): ``pred_seg`` (segmentation,
used in training) and ``pred_mat`` (the matte). The full-scale sensory updater pools every stage
(and the matting logits) to stride 16 and runs the sensory GRU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ResBlock, gru_update


class UpsampleBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.out_conv = ResBlock(in_dim, out_dim)

    def forward(self, g: Tensor, skip: Tensor) -> Tensor:
        g = F.interpolate(g, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out_conv(skip + g)


class DecoderFeatureProcessor(nn.Module):
    """1x1 projections of the encoder skips f8, f4, f2, f1."""

    def __init__(self, in_dims: list[int], out_dims: list[int]) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(nn.Conv2d(i, o, 1) for i, o in zip(in_dims, out_dims))

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        return [t(f) for f, t in zip(feats, self.transforms)]


class SensoryUpdater(nn.Module):
    """Full-scale sensory update: every decoder stage, area-pooled to stride 16, into the GRU."""

    def __init__(self, g_dims: list[int], mid_dim: int, sensory_dim: int) -> None:
        super().__init__()
        self.g16_conv = nn.Conv2d(g_dims[0], mid_dim, 1)
        self.g8_conv = nn.Conv2d(g_dims[1], mid_dim, 1)
        self.g4_conv = nn.Conv2d(g_dims[2], mid_dim, 1)
        self.g2_conv = nn.Conv2d(g_dims[3], mid_dim, 1)
        self.g1_conv = nn.Conv2d(g_dims[4], mid_dim, 1)
        self.transform = nn.Conv2d(mid_dim + sensory_dim, sensory_dim * 3, 3, padding=1)

    def forward(self, g: list[Tensor], h: Tensor) -> Tensor:
        def down(x: Tensor, r: float) -> Tensor:
            return F.interpolate(x, scale_factor=r, mode="area")

        x = (
            self.g16_conv(g[0])
            + self.g8_conv(down(g[1], 1 / 2))
            + self.g4_conv(down(g[2], 1 / 4))
            + self.g2_conv(down(g[3], 1 / 8))
            + self.g1_conv(down(g[4], 1 / 16))
        )
        return gru_update(h, self.transform(torch.cat([x, h], 1)))


class MaskDecoder(nn.Module):
    def __init__(
        self,
        up_dims: tuple[int, ...] = (256, 128, 128, 64, 16),
        skip_dims: tuple[int, ...] = (512, 256, 64, 3),
        sensory_dim: int = 256,
    ) -> None:
        super().__init__()
        g_dims = [up_dims[0], up_dims[1], up_dims[2], up_dims[3], up_dims[4] + 1]
        self.sensory_update = SensoryUpdater(g_dims, sensory_dim, sensory_dim)
        self.decoder_feat_proc = DecoderFeatureProcessor(list(skip_dims), list(up_dims[:-1]))
        self.up_16_8 = UpsampleBlock(up_dims[0], up_dims[1])
        self.up_8_4 = UpsampleBlock(up_dims[1], up_dims[2])
        self.up_4_2 = UpsampleBlock(up_dims[2], up_dims[3])
        self.up_2_1 = UpsampleBlock(up_dims[3], up_dims[4])
        self.pred_seg = nn.Conv2d(up_dims[-1], 1, 3, padding=1)
        self.pred_mat = nn.Conv2d(up_dims[-1], 1, 3, padding=1)

    def forward(
        self, ms_feat: list[Tensor], readout: Tensor, sensory: Tensor, update_sensory: bool = True
    ) -> tuple[Tensor, Tensor]:
        """-> (new sensory, matting logits [B,1,H,W] before the clamp)."""
        f8, f4, f2, f1 = self.decoder_feat_proc(ms_feat[1:])
        p16 = readout
        p8 = self.up_16_8(p16, f8)
        p4 = self.up_8_4(p8, f4)
        p2 = self.up_4_2(p4, f2)
        p1 = self.up_2_1(p2, f1)
        logits = self.pred_mat(F.relu(p1))
        if update_sensory:
            sensory = self.sensory_update([p16, p8, p4, p2, torch.cat([p1, logits], 1)], sensory)
        return sensory, logits
