"""Robust Video Matting (Lin, Yang, Saleemi, Sengupta: "Robust High-Resolution Video Matting
with Temporal Guidance", WACV 2022), as plain PyTorch modules.

Pipeline: downsample the frame -> encoder (MobileNetV3-Large or ResNet-50) -> LR-ASPP ->
recurrent decoder (ConvGRU states carried between frames) -> 1x1 projection to a foreground
residual and alpha -> Deep Guided Filter back to full resolution.

The module tree matches the official release so its state_dicts load with ``strict=True``.
No file I/O here; see ``from_onnx`` for building weights from the official ONNX export.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones import MobileNetV3LargeEncoder, ResNet50Encoder
from .decoder import RecurrentDecoder
from .fuse import fuse_conv_bn_
from .guided_filter import DeepGuidedFilterRefiner
from .lraspp import LRASPP

Variant = Literal["mobilenetv3", "resnet50"]

# Per variant: (LR-ASPP in, LR-ASPP out, decoder feature channels, decoder channels).
_VARIANTS: dict[str, tuple[int, int, tuple[int, int, int, int], tuple[int, int, int, int]]] = {
    "mobilenetv3": (960, 128, (16, 24, 40, 128), (80, 40, 32, 16)),
    "resnet50": (2048, 256, (64, 256, 512, 256), (128, 64, 32, 16)),
}

# Long side, in pixels, of the frame the network actually sees when the ratio is chosen
# automatically. RVM was trained at 256-512 px; the paper recommends e.g. 0.25 for HD.
_AUTO_TARGET_LONG_SIDE = 480
_NATIVE_MAX_LONG_SIDE = 512


def auto_downsample_ratio(height: int, width: int, max_size: int | None = None) -> float:
    """Downsample ratio that brings the frame's long side into RVM's working range.

    - ``max_size`` given: ``min(1, max_size / long_side)``.
    - otherwise: 1.0 when the long side is <= 512 px, else 480 / long_side
      (1920x1080 -> 0.25, 3840x2160 -> 0.125).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    long_side = max(height, width)
    if max_size is not None:
        if max_size <= 0:
            raise ValueError(f"max_size must be positive, got {max_size}")
        return min(1.0, max_size / long_side)
    if long_side <= _NATIVE_MAX_LONG_SIDE:
        return 1.0
    return _AUTO_TARGET_LONG_SIDE / long_side


class Projection(nn.Module):
    """1x1 conv head (wrapped so the key is ``<name>.conv.weight`` as in the official release)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class RobustVideoMatting(nn.Module):
    """RVM network.

    ``forward`` takes one frame batch ``[B, 3, H, W]`` or a clip ``[B, T, 3, H, W]`` of RGB in
    [0, 1] plus the four recurrent states (``None`` at the start of a video) and returns
    ``(fgr, pha, r1, r2, r3, r4)``: foreground [.., 3, H, W] and alpha [.., 1, H, W] in [0, 1]
    and the states to pass with the next call. A clip runs the per-frame parts batched over
    time and only the ConvGRUs step frame by frame; the result equals calling frame by frame.
    """

    def __init__(self, variant: Variant = "mobilenetv3") -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ValueError(f"unknown RVM variant {variant!r}; expected one of {sorted(_VARIANTS)}")
        self.variant = variant
        aspp_in, aspp_out, feature_channels, decoder_channels = _VARIANTS[variant]
        self.backbone = MobileNetV3LargeEncoder() if variant == "mobilenetv3" else ResNet50Encoder()
        self.aspp = LRASPP(aspp_in, aspp_out)
        self.decoder = RecurrentDecoder(feature_channels, decoder_channels)
        # 3 foreground-residual channels + 1 alpha. Predicting the residual to the input keeps
        # the foreground close to the image where alpha is 1.
        self.project_mat = Projection(decoder_channels[3], 4)
        # Segmentation logits: only used by the segmentation training pass (RVM trains on
        # segmentation data too, to keep the subject/background decision robust).
        self.project_seg = Projection(decoder_channels[3], 1)
        self.refiner = DeepGuidedFilterRefiner(decoder_channels[3])
        self.fused = False
        # Set by fuse_for_inference: feed the network NHWC so no layout conversions are needed
        # between its convolutions and the concatenated image pyramid.
        self._channels_last = False

    def forward(
        self,
        src: Tensor,
        r1: Tensor | None = None,
        r2: Tensor | None = None,
        r3: Tensor | None = None,
        r4: Tensor | None = None,
        downsample_ratio: float = 1.0,
        segmentation_pass: bool = False,
        refine: bool | None = None,
    ) -> tuple[Tensor, ...]:
        """
        downsample_ratio: the encoder/decoder run on ``src`` scaled by this factor (0 < r <= 1);
            see ``auto_downsample_ratio``.
        segmentation_pass: return ``(seg_logits, r1, r2, r3, r4)`` at the downsampled size.
        refine: run the Deep Guided Filter. ``None`` (default, official behaviour): only when
            ``downsample_ratio != 1``. ``True``: always (the official ONNX export does this, even
            at ratio 1). ``False``: never - with ratio < 1 the outputs then stay at the
            downsampled size (a cheap preview).
        """
        if src.dim() == 5:
            batch, num_frames = src.shape[:2]
            frames = src.flatten(0, 1)
        elif src.dim() == 4:
            batch, num_frames = src.shape[0], 1
            frames = src
        else:
            raise ValueError(f"src must be [B, 3, H, W] or [B, T, 3, H, W], got shape {tuple(src.shape)}")
        if frames.shape[1] != 3:
            raise ValueError(f"src must have 3 (RGB) channels, got shape {tuple(src.shape)}")
        ratio = float(downsample_ratio)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"downsample_ratio must be in (0, 1], got {downsample_ratio}")

        # Callers often hand over a permuted HWC buffer; full-resolution elementwise work is
        # much faster on plain NCHW (no-op when already contiguous).
        frames = frames.contiguous()
        src_sm = frames if ratio == 1.0 else self._downsample(frames, ratio)
        if self._channels_last:
            src_sm = src_sm.contiguous(memory_format=torch.channels_last)
        f1, f2, f3, f4 = self.backbone(src_sm)
        f4 = self.aspp(f4)
        hid, r1, r2, r3, r4 = self.decoder(src_sm, f1, f2, f3, f4, r1, r2, r3, r4, num_frames)

        if segmentation_pass:
            seg = self.project_seg(hid)
            return self._unflatten(seg, batch, num_frames, src.dim()), r1, r2, r3, r4

        fgr_residual, pha = self.project_mat(hid).split([3, 1], dim=1)
        if refine is None:
            refine = ratio != 1.0
        if refine:
            # Fused form of clamp(refiner(...) + src) (see DeepGuidedFilterRefiner.matte).
            fgr, pha = self.refiner.matte(frames, src_sm, fgr_residual, pha, hid)
        else:
            fgr = (fgr_residual + src_sm).clamp(0.0, 1.0)
            pha = pha.clamp(0.0, 1.0)
        fgr = self._unflatten(fgr, batch, num_frames, src.dim())
        pha = self._unflatten(pha, batch, num_frames, src.dim())
        return fgr, pha, r1, r2, r3, r4

    @staticmethod
    def _downsample(x: Tensor, ratio: float) -> Tensor:
        # recompute_scale_factor=False: sample positions follow the requested scale, not the
        # rounded output/input size ratio - what the official model and its ONNX export do.
        return F.interpolate(x, scale_factor=ratio, mode="bilinear", align_corners=False, recompute_scale_factor=False)

    @staticmethod
    def _unflatten(x: Tensor, batch: int, num_frames: int, src_dim: int) -> Tensor:
        return x.unflatten(0, (batch, num_frames)) if src_dim == 5 else x

    def fuse_for_inference(self, channels_last: bool = True) -> RobustVideoMatting:
        """Prepare for fast inference, in place: eval mode, every BatchNorm folded into its
        convolution, and (``channels_last``) weights in channels-last (NHWC) memory order.

        Outputs stay within float32 rounding of the unfused model. The state_dict changes
        (BatchNorms become Identity, folded convs gain a bias), so load weights *before*
        fusing, and do not train a fused model. Returns ``self``.

        channels_last: oneDNN's NHWC convolutions were faster on CPU at every size measured
        (2-core x86, ms/frame NCHW -> NHWC: 512x288 @ 0.25 8.3 -> 7.0, 1920x1080 @ 0.25
        ~85 -> 66); full-resolution work stays NCHW regardless. GPU speed with this setting
        was not measured here.
        """
        self.eval()
        if not self.fused:
            fuse_conv_bn_(self)
            self.fused = True
        self.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self._channels_last = channels_last
        return self
