"""Build :class:`Sam` from a state_dict, reading every size from the tensors' shapes.

The official ``sam_vit_{b,l,h}_*.pth`` files are bare state dicts without a config; the shapes
say everything except the head counts of the decoder (fixed at 8 by the paper) and, with no
relative position tables, of the encoder. The model is built on the meta device and the
checkpoint's tensors are assigned into it, so a 2.5 GB ViT-H is never held twice.
"""

from __future__ import annotations

import re

import torch

from ...errors import WeightsError
from ..loading import load_into
from .config import SAM_CONFIGS, SamConfig
from .sam import Sam

# Keys every SAM v1 checkpoint has; their absence means some other network.
_REQUIRED = (
    "image_encoder.patch_embed.proj.weight",
    "image_encoder.pos_embed",
    "image_encoder.neck.0.weight",
    "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
    "prompt_encoder.mask_downscaling.3.weight",
    "mask_decoder.mask_tokens.weight",
    "mask_decoder.transformer.layers.0.mlp.lin1.weight",
    "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight",
    "mask_decoder.iou_prediction_head.layers.0.weight",
)


def _count(sd: dict[str, torch.Tensor], prefix: str) -> int:
    """Number of consecutive indexed children ``prefix.<i>.`` in the keys."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    found = {int(m.group(1)) for k in sd if (m := pattern.match(k))}
    return max(found) + 1 if found else 0


def _not_sam(sd: dict[str, torch.Tensor], source: str, what: str) -> WeightsError:
    if any(k.startswith("image_encoder.trunk.") for k in sd):
        hint = "it looks like a SAM 2 checkpoint (Hiera trunk); use the SAM 2 predictor"
    else:
        hint = f"its keys start with e.g. {', '.join(list(sd)[:2]) or 'nothing (empty)'}"
    return WeightsError(
        f"{source} is not a Segment Anything (SAM v1) checkpoint: {what}; {hint}; "
        f"use sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth or sam_vit_h_4b8939.pth"
    )


def config_from_state_dict(sd: dict[str, torch.Tensor], source: str = "the checkpoint") -> SamConfig:
    """The :class:`SamConfig` whose module shapes are those of ``sd`` (an official one when equal)."""
    missing = [k for k in _REQUIRED if k not in sd]
    if missing:
        more = f" (and {len(missing) - 1} more SAM keys)" if len(missing) > 1 else ""
        raise _not_sam(sd, source, f"no {missing[0]}{more}")
    patch = sd["image_encoder.patch_embed.proj.weight"]
    pos = sd["image_encoder.pos_embed"]
    if patch.ndim != 4 or patch.shape[1] != 3 or pos.ndim != 4 or pos.shape[1] != pos.shape[2]:
        raise _not_sam(
            sd, source, f"patch embedding {tuple(patch.shape)} / position embedding {tuple(pos.shape)} are not a ViT's"
        )
    dim, patch_size, grid = patch.shape[0], patch.shape[-1], pos.shape[1]
    depth = _count(sd, "image_encoder.blocks")
    if depth == 0:
        raise _not_sam(sd, source, "no image_encoder.blocks")

    use_rel_pos = "image_encoder.blocks.0.attn.rel_pos_h" in sd
    official = next((c for c in SAM_CONFIGS.values() if c.encoder_embed_dim == dim), None)
    heads = official.encoder_num_heads if official else max(1, dim // 64)
    window, global_idx = 14, []
    if use_rel_pos:
        heads = dim // sd["image_encoder.blocks.0.attn.rel_pos_h"].shape[1]
        for i in range(depth):
            side = (sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0] + 1) // 2
            if side == grid:
                global_idx.append(i)  # a table spanning the whole grid: global attention
            else:
                window = side
    elif official:
        window, global_idx = official.window_size, list(official.encoder_global_attn_indexes)
    mlp_hidden = sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0]

    prompt_dim = sd["image_encoder.neck.0.weight"].shape[0]
    q_proj = sd["mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight"]
    iou_hidden = sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]
    cfg = SamConfig(
        encoder_embed_dim=dim,
        encoder_depth=depth,
        encoder_num_heads=heads,
        encoder_global_attn_indexes=tuple(global_idx),
        image_size=grid * patch_size,
        patch_size=patch_size,
        window_size=window,
        encoder_mlp_ratio=mlp_hidden / dim,
        use_rel_pos=use_rel_pos,
        prompt_embed_dim=prompt_dim,
        mask_in_chans=sd["prompt_encoder.mask_downscaling.3.weight"].shape[0],
        decoder_depth=_count(sd, "mask_decoder.transformer.layers"),
        decoder_mlp_dim=sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0],
        attention_downsample_rate=prompt_dim // q_proj.shape[0],
        num_multimask_outputs=sd["mask_decoder.mask_tokens.weight"].shape[0] - 1,
        iou_head_depth=_count(sd, "mask_decoder.iou_prediction_head.layers"),
        iou_head_hidden_dim=iou_hidden,
    )
    return next((c for c in SAM_CONFIGS.values() if c == cfg), cfg)


def sam_from_state_dict(sd: dict[str, torch.Tensor], source: str = "the checkpoint") -> Sam:
    """A :class:`Sam` holding ``sd``'s tensors (assigned, not copied), in eval mode."""
    cfg = config_from_state_dict(sd, source)
    with torch.device("meta"):
        model = Sam(cfg)
    load_into(model, sd, source, assign=True)
    model.reset_pixel_stats()
    return model.eval()
