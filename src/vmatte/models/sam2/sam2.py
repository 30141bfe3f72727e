"""SAM 2's image path (Ravi et al., "SAM 2: Segment Anything in Images and Videos", 2024).

Attribute names follow the official ``SAM2Base`` so its checkpoints load as they are, less the
video-memory modules (memory attention / encoder, object pointers), which the image path never
runs; :mod:`.build` drops their keys by name.

``encode_image`` computes what ``SAM2ImagePredictor.set_image`` keeps per image (``forward_image``
and ``_prepare_backbone_features``): the stride-16 embedding with ``no_mem_embed`` added (a
single image is a first video frame without memory) and the stride-4/8 features already
projected by the decoder's ``conv_s0``/``conv_s1``. ``decode`` is ``SAM2ImagePredictor._predict``
for point prompts: the predictor always appends one padding point (label -1) since it passes
no box.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..sam.prompt_encoder import PromptEncoder
from .config import Sam2Config
from .mask_decoder import MaskDecoder
from .neck import ImageEncoder

Features = tuple[Tensor, list[Tensor]]


class Sam2(nn.Module):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        self.config = cfg
        self.image_encoder = ImageEncoder(cfg)
        self.sam_prompt_encoder = PromptEncoder(cfg.d_model, cfg.image_size, cfg.embedding_size, cfg.mask_in_chans)
        self.sam_mask_decoder = MaskDecoder(cfg)
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, cfg.d_model))

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def encode_image(self, x: Tensor) -> Features:
        """``x [B, 3, S, S]`` (resized, ImageNet-normalised) -> (embedding ``[B, C, S/16, S/16]``,
        [stride-4 ``[B, C/8, S/4, S/4]``, stride-8 ``[B, C/4, S/8, S/8]``])."""
        levels = self.image_encoder(x)
        embed = levels[-1]
        if self.config.directly_add_no_mem_embed:
            embed = embed + self.no_mem_embed.view(1, -1, 1, 1)
        if not self.config.use_high_res_features:
            return embed, []
        dec = self.sam_mask_decoder
        return embed, [dec.conv_s0(levels[0]), dec.conv_s1(levels[1])]

    def decode(
        self, features: Features, coords: Tensor, labels: Tensor, multimask: bool, mask_input: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Point prompts -> (low-res mask logits ``[B, K, S/4, S/4]``, IoU ``[B, K]``), K = 3 or 1.

        ``coords [B, N, 2]``: (x, y) in the ``S x S`` input frame; ``labels [B, N]``: 1 positive,
        0 negative, -1 padding; ``mask_input [B, 1, S/4, S/4]``: logits of an earlier prediction.
        ``B`` prompt sets for ``B`` images (or one image shared by all of them).
        """
        embed, high_res = features
        b = coords.shape[0]
        if embed.shape[0] != b:
            if embed.shape[0] != 1:
                raise ValueError(f"{embed.shape[0]} images for {b} prompt sets")
            embed = embed.expand(b, -1, -1, -1)
            high_res = [f.expand(b, -1, -1, -1) for f in high_res]
        prompt = self.sam_prompt_encoder
        sparse = prompt.embed_points(coords, labels)  # appends the padding point
        dense = prompt.embed_mask(mask_input, b)
        return self.sam_mask_decoder(embed, prompt.dense_pe(), sparse, dense, multimask, high_res)
