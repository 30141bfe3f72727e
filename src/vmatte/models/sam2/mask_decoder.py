"""SAM 2's mask decoder (keys ``sam_mask_decoder``).

Output tokens (an object-score token when ``pred_obj_scores``, the IoU token, 1 + 3 mask
tokens) are prepended to the prompt tokens and run through the two-way transformer with the
image embedding. The image tokens are upscaled x4 by two transposed convs, each followed by the
addition of the matching high-resolution backbone feature (stride 8, then stride 4; their 1x1
projections ``conv_s1``/``conv_s0`` live here but are applied once per image, in
``Sam2.encode_image``). Each mask token becomes, through its own MLP, the weights of a dot
product with every upscaled pixel: the mask logits.

Mask 0 answers "one mask"; masks 1-3 are the ambiguity-aware multimask outputs. When one mask
is asked and ``dynamic_multimask_via_stability`` is set (upstream's ``build_sam2`` sets it), mask 0
is kept only if it is stable (area at logit > +delta over area at logit > -delta, at least
``thresh``); otherwise the multimask output with the best predicted IoU replaces it.

The object score (is the object in the frame at all?) is evaluated only by the video path
(:meth:`MaskDecoder.predict_all`); the image predictor ignores it, though its token still takes
part in attention.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..sam.common import MLP, LayerNorm2d
from ..sam.transformer import TwoWayTransformer, sam2_ffn
from .config import Sam2Config


class MaskDecoder(nn.Module):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__()
        d = cfg.d_model
        self.num_mask_tokens = cfg.num_multimask_outputs + 1
        self.transformer = TwoWayTransformer(cfg.decoder_depth, d, cfg.decoder_heads, cfg.decoder_mlp_dim, ffn=sam2_ffn)
        self.iou_token = nn.Embedding(1, d)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, d)
        self.obj_score_token = nn.Embedding(1, d) if cfg.pred_obj_scores else None
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(d, d // 4, kernel_size=2, stride=2),
            LayerNorm2d(d // 4),
            nn.GELU(),
            nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.use_high_res_features = cfg.use_high_res_features
        if cfg.use_high_res_features:
            self.conv_s0 = nn.Conv2d(d, d // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(d, d // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(d, d, d // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(
            d,
            cfg.iou_head_hidden_dim,
            self.num_mask_tokens,
            cfg.iou_head_depth,
            sigmoid_output=cfg.iou_prediction_use_sigmoid,
        )
        if cfg.pred_obj_scores:
            self.pred_obj_score_head = MLP(d, d, 1, 3) if cfg.pred_obj_scores_mlp else nn.Linear(d, 1)
        self.dynamic_multimask = cfg.dynamic_multimask_via_stability
        self.stability_delta = cfg.dynamic_multimask_stability_delta
        self.stability_thresh = cfg.dynamic_multimask_stability_thresh

    def forward(
        self, image: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor, multimask: bool, high_res: list[Tensor]
    ) -> tuple[Tensor, Tensor]:
        """``image [B, C, h, w]`` (one per prompt set), ``image_pe [1, C, h, w]``, ``sparse [B, N, C]``,
        ``dense [B, C, h, w]``, ``high_res`` = projected [stride 4, stride 8] features
        -> (mask logits ``[B, K, 4h, 4w]``, IoU ``[B, K]``), K = 3 if ``multimask`` else 1."""
        masks, iou = self.predict_masks(image, image_pe, sparse, dense, high_res)
        if multimask:
            return masks[:, 1:], iou[:, 1:]
        if self.dynamic_multimask and not self.training:
            return self._dynamic_single_mask(masks, iou)
        return masks[:, :1], iou[:, :1]

    def predict_masks(
        self, image: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor, high_res: list[Tensor]
    ) -> tuple[Tensor, Tensor]:
        """All 1 + 3 masks and their IoU predictions."""
        masks, iou, _, _ = self.predict_all(image, image_pe, sparse, dense, high_res)
        return masks, iou

    def predict_all(
        self, image: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor, high_res: list[Tensor]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """All 1 + 3 masks, their IoU, the mask tokens ``[B, 4, C]`` after the transformer (the video
        path's object pointers are made from them) and the object-score logits ``[B, 1]`` (or None)."""
        heads = [self.iou_token.weight, self.mask_tokens.weight]
        if self.obj_score_token is not None:
            heads.insert(0, self.obj_score_token.weight)
        first = len(heads) - 2  # index of the IoU token
        b = sparse.shape[0]
        tokens = torch.cat([torch.cat(heads).unsqueeze(0).expand(b, -1, -1), sparse], dim=1)

        src = image + dense
        pos = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)
        iou_out = hs[:, first]
        mask_out = hs[:, first + 1 : first + 1 + self.num_mask_tokens]

        src = src.transpose(1, 2).reshape(b, c, h, w)
        if self.use_high_res_features:
            up1, ln1, act1, up2, act2 = self.output_upscaling
            feat_s0, feat_s1 = high_res
            up = act1(ln1(up1(src) + feat_s1))
            up = act2(up2(up) + feat_s0)
        else:
            up = self.output_upscaling(src)

        hyper = torch.stack([mlp(mask_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        _, uc, uh, uw = up.shape
        masks = (hyper @ up.view(b, uc, uh * uw)).view(b, -1, uh, uw)
        score = self.pred_obj_score_head(hs[:, 0]) if self.obj_score_token is not None else None
        return masks, self.iou_prediction_head(iou_out), mask_out, score

    def _stability(self, logits: Tensor) -> Tensor:
        flat = logits.flatten(-2)
        inner = (flat > self.stability_delta).sum(-1).float()
        outer = (flat > -self.stability_delta).sum(-1).float()
        return torch.where(outer > 0, inner / outer, 1.0)

    def _dynamic_single_mask(self, masks: Tensor, iou: Tensor) -> tuple[Tensor, Tensor]:
        rows = torch.arange(masks.shape[0], device=masks.device)
        best = iou[:, 1:].argmax(-1)
        best_mask = masks[:, 1:][rows, best].unsqueeze(1)
        best_iou = iou[:, 1:][rows, best].unsqueeze(1)
        stable = self._stability(masks[:, :1]) >= self.stability_thresh  # [B, 1]
        return (
            torch.where(stable[..., None, None], masks[:, :1], best_mask),
            torch.where(stable, iou[:, :1], best_iou),
        )
