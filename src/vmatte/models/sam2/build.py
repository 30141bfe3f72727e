"""Build :class:`Sam2` from an official SAM 2 / SAM 2.1 state_dict, its size read from the tensors.

The trunk's width (``patch_embed``) and its blocks per stage (a stage starts where a block
widens: ``blocks.i.proj``) pick the official size; heads, windows and global blocks cannot be
read from shapes, so only the official sizes are accepted. SAM 2.1 checkpoints are told apart
by keys SAM 2 lacks (``no_obj_embed_spatial``, ``obj_ptr_tpos_proj``); the image path is the
same for both.

For the image path (:func:`sam2_from_state_dict`) the keys of the video-memory modules are
dropped by name (:data:`VIDEO_ONLY_PREFIXES`); everything else must match exactly
(:func:`vmatte.models.loading.load_into`). The video path (:func:`sam2_video_from_state_dict`) loads
every key of the checkpoint, strictly.
"""

from __future__ import annotations

import re

import torch

from ...errors import WeightsError
from ..loading import load_into
from .config import SAM2_CONFIGS, Sam2Config
from .sam2 import Sam2
from .video import Sam2Video

# Modules and parameters of SAM2Base that only the video predictor uses.
VIDEO_ONLY_PREFIXES = (
    "memory_attention.",
    "memory_encoder.",
    "mask_downsample.",  # mask prompt -> object pointer
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "no_obj_embed_spatial",
)
_SAM21_MARKERS = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight")
_PATCH = "image_encoder.trunk.patch_embed.proj.weight"
_BLOCK = re.compile(r"image_encoder\.trunk\.blocks\.(\d+)\.")


def _is_video_only(key: str) -> bool:
    # "x." names a module (any key under it); a name without the dot is one parameter, matched
    # whole so that e.g. "no_mem_pos_enc" can never swallow the image path's "no_mem_embed".
    return any(key.startswith(p) if p.endswith(".") else key == p for p in VIDEO_ONLY_PREFIXES)


def image_path_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``sd`` without the video-memory keys."""
    return {k: v for k, v in sd.items() if not _is_video_only(k)}


def _not_sam2(sd: dict[str, torch.Tensor]) -> str:
    if "image_encoder.patch_embed.proj.weight" in sd or any(k.startswith("mask_decoder.") for k in sd):
        return (
            "this looks like a SAM (v1) checkpoint (ViT image_encoder.patch_embed / mask_decoder keys), "
            "not SAM 2; use sam2_hiera_*.pt or sam2.1_hiera_*.pt"
        )
    some = ", ".join(list(sd)[:3]) or "none"
    return f"no SAM 2 Hiera image encoder key {_PATCH} (keys start: {some}); use sam2_hiera_*.pt or sam2.1_hiera_*.pt"


def infer_config(sd: dict[str, torch.Tensor]) -> Sam2Config:
    """The official config whose trunk fits ``sd`` (SAM 2 vs 2.1 from the keys that differ)."""
    if _PATCH not in sd:
        raise WeightsError(f"not a SAM 2 checkpoint: {_not_sam2(sd)}")
    embed_dim = int(sd[_PATCH].shape[0])
    blocks = sorted({int(m.group(1)) for k in sd if (m := _BLOCK.match(k))})
    if not blocks or blocks != list(range(len(blocks))):
        raise WeightsError(
            "SAM 2 checkpoint without a complete list of image_encoder.trunk.blocks.*; the file is truncated?"
        )
    starts = [i for i in blocks if f"image_encoder.trunk.blocks.{i}.proj.weight" in sd]
    bounds = [0, *starts, len(blocks)]
    stages = tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))
    version = "2.1" if any(k in sd for k in _SAM21_MARKERS) else "2"
    for cfg in SAM2_CONFIGS.values():
        if cfg.version == version and cfg.embed_dim == embed_dim and cfg.stages == stages:
            return cfg
    raise WeightsError(
        f"SAM 2 trunk of width {embed_dim} with stages {stages} matches no official size "
        f"(tiny, small, base_plus, large); use an official sam2(.1)_hiera_*.pt checkpoint"
    )


def sam2_from_state_dict(
    sd: dict[str, torch.Tensor], source: str = "the SAM 2 checkpoint", config: Sam2Config | None = None
) -> Sam2:
    """A :class:`Sam2` holding ``sd``'s tensors (no copy); ``config`` overrides the inferred size."""
    cfg = config or infer_config(sd)
    with torch.device("meta"):
        model = Sam2(cfg)
    load_into(model, image_path_state_dict(sd), source, assign=True)
    return model.eval()


def sam2_video_from_state_dict(
    sd: dict[str, torch.Tensor], source: str = "the SAM 2 checkpoint", config: Sam2Config | None = None
) -> Sam2Video:
    """A :class:`Sam2Video` holding every tensor of the official checkpoint ``sd`` (strict: nothing dropped)."""
    cfg = config or infer_config(sd)
    with torch.device("meta"):
        model = Sam2Video(cfg)
    load_into(model, sd, source, assign=True)
    return model.eval()
