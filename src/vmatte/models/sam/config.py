"""Sizes of Segment Anything (Kirillov et al., ICCV 2023): the three official image encoders.

Only the ViT changes between ``vit_b``/``vit_l``/``vit_h``; the prompt encoder and the mask
decoder are the same 256-channel modules for all three. Every size is a field so a tiny test
network (or any checkpoint whose shapes we can read) is the same code path as the official ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ImageNet statistics in 0..255, applied to the uint8 image (upstream's pixel_mean/pixel_std).
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class SamConfig:
    # Image encoder (ViTDet-style plain ViT): windowed attention except in the global blocks.
    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    image_size: int = 1024  # the padded square the encoder sees
    patch_size: int = 16
    window_size: int = 14
    encoder_mlp_ratio: float = 4.0
    use_rel_pos: bool = True
    # Prompt encoder and mask decoder.
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_num_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    pixel_mean: tuple[float, float, float] = SAM_PIXEL_MEAN
    pixel_std: tuple[float, float, float] = SAM_PIXEL_STD
    # A label only: two configs with equal sizes are the same network whatever they are called.
    name: str = field(default="custom", compare=False)

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid (64 for the official 1024 / 16)."""
        return self.image_size // self.patch_size

    @property
    def low_res_size(self) -> int:
        """Side of the decoder's mask logits (and of a ``mask_input``): 4x the embedding grid."""
        return 4 * self.embedding_size


SAM_CONFIGS: dict[str, SamConfig] = {
    "vit_b": SamConfig(768, 12, 12, (2, 5, 8, 11), name="vit_b"),
    "vit_l": SamConfig(1024, 24, 16, (5, 11, 17, 23), name="vit_l"),
    "vit_h": SamConfig(1280, 32, 16, (7, 15, 23, 31), name="vit_h"),
}
