"""SAM 2 video models by name (a checkpoint of ``vmatte weights list``, a file, or ``auto``)."""

from __future__ import annotations

import torch

from ...errors import WeightsError
from ...models.sam2 import Sam2Video


def load_video_model(
    spec: str, device: torch.device | str = "cpu", allow_download: bool = True
) -> tuple[Sam2Video, str]:
    """(model, description) of a SAM 2 / 2.1 checkpoint: a name of ``vmatte weights list`` or a file;
    ``auto``: the first SAM 2 checkpoint in the cache. ``allow_download=False``: a name not cached is
    an error (the web app never starts a download)."""
    from ...models.sam2 import sam2_video_from_state_dict
    from ...weights import SAM_LICENSE, SEGMENTERS, cached_segmenters, resolve_segmenter

    if spec == "auto":
        cached = [n for n in cached_segmenters(prefer_gpu=torch.device(device).type == "cuda") if n.startswith("sam2")]
        if not cached:
            names = ", ".join(n for n in SEGMENTERS if n.startswith("sam2"))
            raise WeightsError(
                f"no SAM 2 checkpoint in the cache; run `vmatte weights fetch sam2.1-hiera-tiny` "
                f"(or {names}) or pass the checkpoint (--tracker / --weights / --segmenter PATH)"
            )
        spec = cached[0]
    sd, source, label = resolve_segmenter(spec, allow_download=allow_download)
    if "image_encoder.trunk.patch_embed.proj.weight" not in sd:
        raise WeightsError(f"--segmenter {spec}: video tracking needs a SAM 2 / 2.1 checkpoint (sam2*_hiera_*.pt)")
    model = sam2_video_from_state_dict(sd, source).to(device)
    return model, f"{label} video tracker (weights: {source}, {SAM_LICENSE})"
