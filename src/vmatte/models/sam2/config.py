"""SAM 2 / SAM 2.1 sizes (Ravi et al., 2024): the Hiera trunk of each official checkpoint.

The four official sizes share everything but the trunk; SAM 2 and SAM 2.1 differ only in
video-memory settings (SAM 2.1 adds ``no_obj_embed_spatial`` and signed, projected temporal
encodings of the object pointers, ``obj_ptr_tpos_proj``), so a 2.0 and a 2.1 checkpoint of one
size run the same image path.

Defaults follow the official yaml configs plus what upstream's ``build_sam2`` applies by default
(``apply_postprocessing=True``): dynamic multimask via stability (delta 0.05, threshold 0.98)
for *every* variant, 2.0 included. The decoder sizes (two-way transformer of depth 2, 8 heads,
MLP 2048, IoU head 3x256, mask encoder 16 channels) are hard-coded upstream; they are fields so
a tiny test model can be built, not because checkpoints vary them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Sam2Config:
    name: str = "SAM 2.1 Hiera-T"
    version: str = "2.1"
    # Hiera trunk (Ryali et al., ICML 2023) with the windowed absolute position embedding of
    # Bolya et al. (2023): a background embedding interpolated to the feature size plus a
    # window-sized embedding tiled over it.
    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (1, 2, 7, 2)
    global_att_blocks: tuple[int, ...] = (5, 7, 9)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)
    q_pool: int = 3  # the first q_pool stage changes halve the resolution (query pooling)
    q_stride: tuple[int, int] = (2, 2)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    mlp_ratio: float = 4.0
    # FPN neck
    d_model: int = 256
    fpn_top_down_levels: tuple[int, ...] = (2, 3)  # levels 0 and 1 keep their lateral features only
    fpn_interp: str = "nearest"
    scalp: int = 1  # the stride-32 level feeds the top-down path, then is dropped
    # SAM heads
    image_size: int = 1024
    backbone_stride: int = 16
    use_high_res_features: bool = True
    directly_add_no_mem_embed: bool = True
    pred_obj_scores: bool = True
    pred_obj_scores_mlp: bool = True
    iou_prediction_use_sigmoid: bool = True
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
    num_multimask_outputs: int = 3
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    # --- video memory (the same in every official size; SAM 2 and 2.1 differ in the last group) ---
    # memory encoder: the mask downsampled by stride-2 convs to the feature stride, added to the
    # projected pixel features, two ConvNeXt blocks (the "fuser"), projected to ``mem_dim``
    mem_dim: int = 64
    mask_downsampler_kernel: int = 3
    mask_downsampler_stride: int = 2
    mask_downsampler_padding: int = 1
    fuser_layers: int = 2
    fuser_kernel: int = 7
    # memory attention: self-attention on the frame, cross-attention to memories (both RoPE)
    mem_attn_layers: int = 4
    mem_attn_ffn: int = 2048
    mem_attn_heads: int = 1
    rope_theta: float = 10000.0
    # memory bank: the prompted frames + the last ``num_maskmem - 1`` frames
    num_maskmem: int = 7
    memory_temporal_stride_for_eval: int = 1
    max_cond_frames_in_attn: int = -1  # -1: every prompted frame
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    # build_sam2_video_predictor sets this: prompted frames are remembered as the hard mask the user saw
    binarize_mask_from_pts_for_mem_enc: bool = True
    use_mask_input_as_output_without_sam: bool = True
    multimask_output_in_sam: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True
    use_multimask_token_for_obj_ptr: bool = True
    # object pointers: the decoder's output token, projected, one per past frame
    max_obj_ptrs_in_encoder: int = 16
    only_obj_ptrs_in_the_past_for_eval: bool = True
    fixed_no_obj_ptr: bool = True
    # SAM 2.1 only: temporal encodings of the pointers (signed, projected), an embedding marking
    # memories of frames where the object is absent
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    no_obj_embed_spatial: bool = True

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding (64 for 1024 input)."""
        return self.image_size // self.backbone_stride

    @property
    def trunk_channels(self) -> tuple[int, ...]:
        """Channels of the trunk's outputs, highest resolution first."""
        dims, dim = [], self.embed_dim
        for i in range(len(self.stages)):
            if i:
                dim = int(dim * self.dim_mul)
            dims.append(dim)
        return tuple(dims)


_SIZES = {
    # size: (short name, embed_dim, num_heads, stages, global_att_blocks, window_spec, pos_embed_bkg)
    "tiny": ("T", 96, 1, (1, 2, 7, 2), (5, 7, 9), (8, 4, 14, 7), (7, 7)),
    "small": ("S", 96, 1, (1, 2, 11, 2), (7, 10, 13), (8, 4, 14, 7), (7, 7)),
    "base_plus": ("B+", 112, 2, (2, 3, 16, 3), (12, 16, 20), (8, 4, 14, 7), (14, 14)),
    "large": ("L", 144, 2, (2, 6, 36, 4), (23, 33, 43), (8, 4, 16, 8), (7, 7)),
}


def _official(version: str, size: str) -> Sam2Config:
    short, dim, heads, stages, glob, windows, bkg = _SIZES[size]
    v21 = version == "2.1"
    return replace(
        Sam2Config(),
        name=f"SAM {version} Hiera-{short}",
        version=version,
        embed_dim=dim,
        num_heads=heads,
        stages=stages,
        global_att_blocks=glob,
        window_spec=windows,
        window_pos_embed_bkg_spatial_size=bkg,
        add_tpos_enc_to_obj_ptrs=v21,
        proj_tpos_enc_in_obj_ptrs=v21,
        use_signed_tpos_enc_to_obj_ptrs=v21,
        no_obj_embed_spatial=v21,
    )


# Keyed like the official checkpoint files: sam2_hiera_tiny(.pt) ... sam2.1_hiera_large(.pt).
SAM2_CONFIGS: dict[str, Sam2Config] = {
    f"{prefix}_hiera_{size}": _official(version, size)
    for prefix, version in (("sam2", "2"), ("sam2.1", "2.1"))
    for size in _SIZES
}
