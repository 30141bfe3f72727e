"""SAM 2's image encoder: the Hiera trunk plus a light FPN neck (keys ``image_encoder.trunk/neck``).

The neck projects each trunk level to ``d_model`` with a 1x1 conv (``convs[0]`` takes the
*lowest* resolution level) and adds top-down features (upsampled x2) only on the levels listed
in ``fpn_top_down_levels`` (the two coarsest in every official config); the finer levels keep
their lateral projection alone. ``scalp`` then drops the coarsest level: it only feeds the
top-down path.

Upstream's neck also returns a sine position encoding per level; the image predictor discards
it (only the video memory uses it) and it holds no weights, so it is not computed here.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .config import Sam2Config
from .hiera import Hiera


class _Lateral(nn.Module):
    """One 1x1 projection; a module of its own so the key reads ``convs.i.conv.weight``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class FpnNeck(nn.Module):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        if cfg.fpn_interp not in ("nearest", "bilinear"):
            raise ValueError(f"fpn_interp must be nearest or bilinear, not {cfg.fpn_interp!r}")
        self.convs = nn.ModuleList(_Lateral(c, cfg.d_model) for c in reversed(cfg.trunk_channels))
        self.top_down_levels = tuple(cfg.fpn_top_down_levels)
        self.interp = cfg.fpn_interp

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        n = len(self.convs) - 1
        out: list[Tensor] = [xs[0]] * len(xs)
        prev = None
        for i in range(n, -1, -1):  # coarse to fine
            lateral = self.convs[n - i](xs[i])
            if prev is not None and i in self.top_down_levels:
                up = F.interpolate(
                    prev.float(),
                    scale_factor=2.0,
                    mode=self.interp,
                    align_corners=None if self.interp == "nearest" else False,
                )
                prev = lateral + up
            else:
                prev = lateral
            out[i] = prev
        return out


class ImageEncoder(nn.Module):
    """Trunk + neck; returns the FPN levels SAM 2 keeps (strides 4, 8, 16 with ``scalp=1``)."""

    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        self.trunk = Hiera(cfg)
        self.neck = FpnNeck(cfg)
        self.scalp = cfg.scalp

    def forward(self, x: Tensor) -> list[Tensor]:
        levels = self.neck(self.trunk(x))
        return levels[: len(levels) - self.scalp]
