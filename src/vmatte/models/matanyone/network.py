"""The MatAnyone network (Yang et al., "MatAnyone: Stable Video Matting with Consistent Memory
Propagation", CVPR 2025), single-target layout, official state_dict key names.

A plain ``nn.Module`` with no state across frames: the memory (working memory, sensory memory,
object summaries, last mask and value) lives in :mod:`vmatte.engine.matanyone`, which calls the
per-stage functions below in the official order. Images are RGB in [0, 1], already padded to a
multiple of 16; normalisation happens here (and again for the mask encoder, as upstream does).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .change_probability import ChangeProbabilityHead
from .decoder import MaskDecoder
from .encoders import MaskEncoder, PixelEncoder
from .key_projection import KeyProjection
from .pixel_fuser import PixelFeatureFuser
from .summarizer import ObjectSummarizer
from .transformer import ObjectTransformer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _SensoryAux(nn.Module):
    def __init__(self, sensory_dim: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(sensory_dim, sensory_dim + 1, 1)


class AuxComputer(nn.Module):
    """Training-only auxiliary head (kept so official checkpoints load strictly; never run)."""

    def __init__(self, sensory_dim: int = 256) -> None:
        super().__init__()
        self.sensory_aux = _SensoryAux(sensory_dim)


class MatAnyone(nn.Module):
    def __init__(self, with_aux: bool = True) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(3, 1, 1), persistent=False)
        self.pixel_encoder = PixelEncoder()
        self.pix_feat_proj = nn.Conv2d(1024, 256, 1)
        self.key_proj = KeyProjection(1024, 256, 64)
        self.mask_encoder = MaskEncoder(256, 256, 256)
        self.mask_decoder = MaskDecoder()
        self.pixel_fuser = PixelFeatureFuser()
        self.object_transformer = ObjectTransformer()
        self.object_summarizer = ObjectSummarizer()
        if with_aux:
            self.aux_computer = AuxComputer()
        self.temp_sparity = ChangeProbabilityHead()
        # The layout activations are kept in: NCHW as upstream, NHWC after fuse_for_inference(channels_last=True)
        self.memory_format = torch.contiguous_format

    def fuse_for_inference(self, channels_last: bool = False) -> MatAnyone:
        """Fold every frozen BatchNorm (encoders, change-probability head) into its convolution,
        in place, for inference; ``channels_last`` stores conv weights NHWC (a CPU speed-up).
        The state_dict is no longer the official layout afterwards: load weights first."""
        from ..rvm.fuse import fuse_conv_bn_

        fuse_conv_bn_(self)
        if channels_last:  # every convolution, and the inputs follow (see memory_format)
            self.memory_format = torch.channels_last
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
        return self

    def normalise(self, image: Tensor) -> Tensor:
        return (image - self.pixel_mean) / self.pixel_std

    def encode_image(self, image: Tensor) -> tuple[list[Tensor], Tensor]:
        """[B,3,H,W] in [0,1] -> (multi-scale features [f16, f8, f4, f2, f1], pixel feature)."""
        ms_feat = self.pixel_encoder(self.normalise(image).contiguous(memory_format=self.memory_format))
        return ms_feat, self.pix_feat_proj(ms_feat[0])

    def transform_key(self, f16: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> (key, shrinkage, selection) at stride 16."""
        return self.key_proj(f16)

    def encode_mask(
        self,
        image: Tensor,
        pix_feat: Tensor,
        sensory: Tensor,
        alpha: Tensor,
        deep_update: bool = True,
        summarize: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """-> (memory value, sensory (updated if ``deep_update``), object summary [B,16,257]).

        ``summarize=False`` skips the object summary (None): off memory frames only the value is
        used, to refresh the previous-frame value."""
        value, sensory = self.mask_encoder(self.normalise(image), pix_feat, sensory, alpha, deep_update)
        return value, sensory, self.object_summarizer(alpha, value) if summarize else None

    def change_probability(
        self, last_pix_feat: Tensor, pix_feat: Tensor, last_alpha: Tensor, value_diff: Tensor
    ) -> Tensor:
        """The paper's U_t as a probability [B,1,h,w]."""
        return torch.sigmoid(self.temp_sparity(last_pix_feat, pix_feat, last_alpha, value_diff))

    def pixel_fusion(self, pix_feat: Tensor, readout: Tensor, sensory: Tensor, last_alpha: Tensor) -> Tensor:
        return self.pixel_fuser(pix_feat, readout, sensory, last_alpha)

    def readout_query(self, pixel_readout: Tensor, obj_memory: Tensor) -> Tensor:
        return self.object_transformer(pixel_readout, obj_memory)

    def segment(
        self, ms_feat: list[Tensor], memory_readout: Tensor, sensory: Tensor, update_sensory: bool = True
    ) -> tuple[Tensor, Tensor, Tensor]:
        """-> (new sensory, matting logits, alpha = clamp(logits, 0, 1)), all [B,.,H,W]."""
        sensory, logits = self.mask_decoder(ms_feat, memory_readout, sensory, update_sensory)
        return sensory, logits, logits.clamp(0.0, 1.0)
