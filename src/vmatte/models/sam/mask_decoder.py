"""SAM's mask decoder: output tokens + prompt tokens through the two-way transformer, then masks.

Learned output tokens (one IoU token, 1 + ``num_multimask_outputs`` mask tokens) are prepended to
the prompt tokens. After the transformer, the image tokens are upscaled 4x by two transposed
convs; each mask token goes through its own 3-layer MLP (a hypernetwork) to a vector that is
dotted with every upscaled pixel, giving that mask's logits. The IoU token predicts each mask's
quality. Mask 0 is the single-mask output; masks 1..3 are the ambiguity-aware multimask outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .common import MLP, LayerNorm2d
from .config import SamConfig
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    def __init__(self, cfg: SamConfig) -> None:
        super().__init__()
        dim = cfg.prompt_embed_dim
        self.transformer = TwoWayTransformer(
            cfg.decoder_depth, dim, cfg.decoder_num_heads, cfg.decoder_mlp_dim, cfg.attention_downsample_rate
        )
        self.num_mask_tokens = cfg.num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, cfg.iou_head_hidden_dim, self.num_mask_tokens, cfg.iou_head_depth)

    def forward(
        self, image: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor, multimask: bool
    ) -> tuple[Tensor, Tensor]:
        """``image`` ``[B, C, h, w]`` (one per prompt set), ``image_pe`` ``[1, C, h, w]``, ``sparse``
        ``[B, N, C]``, ``dense`` ``[B, C, h, w]`` -> logits ``[B, K, 4h, 4w]``, IoU ``[B, K]``."""
        b = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], dim=1)
        src = image + dense
        pos = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)
        iou_out = hs[:, 0]
        mask_out = hs[:, 1 : 1 + self.num_mask_tokens]

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper = torch.stack([mlp(mask_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        _, cu, hu, wu = upscaled.shape
        masks = (hyper @ upscaled.reshape(b, cu, hu * wu)).reshape(b, -1, hu, wu)
        iou = self.iou_prediction_head(iou_out)

        keep = slice(1, None) if multimask else slice(0, 1)
        return masks[:, keep], iou[:, keep]
