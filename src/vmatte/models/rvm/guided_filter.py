"""Deep Guided Filter refiner (Wu et al., "Fast End-to-End Trainable Guided Filter", CVPR 2018),
as used by RVM to bring the low-resolution prediction back to full resolution.

A guided filter models the output as locally linear in a guide image: y = A * x + b. RVM
estimates A and b cheaply at the downsampled resolution - with a small learned 1x1 network in
place of the classic closed form cov / (var + eps) - then bilinearly upsamples the smooth
coefficients and applies them to the full-resolution guide. Edges therefore come from the
full-resolution image, not from the upsampled prediction.

Guide x: [R, G, B, mean(RGB)] (4 ch). Target y: [foreground residual (3 ch), alpha (1 ch)].
Each output channel is guided by the matching guide channel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _guide(rgb: Tensor) -> Tensor:
    return torch.cat([rgb, rgb.mean(dim=1, keepdim=True)], dim=1)


class DeepGuidedFilterRefiner(nn.Module):
    def __init__(self, hidden_channels: int = 16) -> None:
        super().__init__()
        # Local mean over a 3x3 window per channel; learnable, initialised to a true box filter.
        self.box_filter = nn.Conv2d(4, 4, kernel_size=3, padding=1, bias=False, groups=4)
        nn.init.constant_(self.box_filter.weight, 1.0 / 9.0)
        # Predicts A from the local statistics plus the decoder's hidden features, which know
        # where the subject's boundary is (the classic filter only sees the statistics).
        self.conv = nn.Sequential(
            nn.Conv2d(4 * 2 + hidden_channels, hidden_channels, 1, bias=False),
            nn.BatchNorm2d(hidden_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, hidden_channels, 1, bias=False),
            nn.BatchNorm2d(hidden_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, 4, 1, bias=True),
        )

    def coefficients(
        self, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """A and b of y = A * x + b at the low resolution, 4 channels each."""
        base_x = _guide(base_src)
        base_y = torch.cat([base_fgr, base_pha], dim=1)
        mean_x = self.box_filter(base_x)
        mean_y = self.box_filter(base_y)
        cov_xy = self.box_filter(base_x * base_y) - mean_x * mean_y
        var_x = self.box_filter(base_x * base_x) - mean_x * mean_x
        a = self.conv(torch.cat([cov_xy, var_x, base_hid], dim=1))
        b = mean_y - a * mean_x
        return a, b

    def forward(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """fine_src: [N, 3, H, W] full-resolution image; base_*: low-resolution image, predicted
        foreground residual (3 ch), alpha (1 ch) and decoder hidden features.
        Returns (foreground residual, alpha) at full resolution, unclamped."""
        a, b = self.coefficients(base_src, base_fgr, base_pha, base_hid)
        # A and b are smooth, so bilinear upsampling loses little; one call for both halves the
        # calls (bilinear works per channel, so this is exact).
        a, b = _upsample_to(torch.cat([a, b], dim=1), fine_src).split(4, dim=1)
        fgr, pha = torch.addcmul(b, a, _guide(fine_src)).split([3, 1], dim=1)
        return fgr, pha

    def matte(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Same inputs as ``forward``, but returns the final clamped (foreground, alpha):
        clamp(residual + fine_src, 0, 1), clamp(alpha, 0, 1).

        This is the inference hot path at full resolution, where memory traffic dominates
        (a 4K frame is 8.3 Mpx), so it is arranged to touch full-resolution memory as little
        as possible: foreground = residual + src = (A + 1) * src + b, with the "+ 1" applied
        at low resolution (bilinear weights sum to 1), so no 4-channel full-resolution guide
        and no separate residual add are materialised; the clamps work in place. Equal to
        ``forward`` followed by the add and clamps up to float rounding.
        """
        a, b = self.coefficients(base_src, base_fgr, base_pha, base_hid)
        coef = torch.cat([a[:, :3] + 1, b[:, :3], a[:, 3:], b[:, 3:]], dim=1)
        up = _upsample_to(coef, fine_src)
        fgr = torch.addcmul(up[:, 3:6], up[:, 0:3], fine_src).clamp_(0.0, 1.0)
        pha = torch.addcmul(up[:, 7:8], up[:, 6:7], fine_src.mean(dim=1, keepdim=True)).clamp_(0.0, 1.0)
        return fgr, pha


def _upsample_to(x: Tensor, like: Tensor) -> Tensor:
    # Plain NCHW for the full-resolution elementwise work: the network may run channels_last,
    # but mixing layouts at full resolution defeats vectorisation.
    return F.interpolate(x.contiguous(), size=like.shape[2:], mode="bilinear", align_corners=False)
