"""Click segmenters' weights: Segment Anything (SAM) and SAM 2 / 2.1 official checkpoints.

Licence: Apache-2.0 (Meta AI).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError
from .store import CatalogueEntry, RemoteFile, cache_dir, download, load_checkpoint, offline, verified_once

SAM_LICENSE = "Apache-2.0 (Segment Anything / SAM 2 weights, Meta AI)"
_SAM1_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/072824/"
_SAM21_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"


@dataclass(frozen=True)
class SegmenterSource:
    """A point-prompt segmenter's official checkpoint. ``rank_cpu`` / ``rank_gpu``: the order in which
    ``auto`` prefers what is cached (small and fast on a CPU, best quality on a GPU)."""

    name: str
    label: str
    remote: RemoteFile
    rank_cpu: int
    rank_gpu: int
    size_mb: float = 0.0  # about (fp32 tensors of the network)


def _sam(
    name: str, label: str, filename: str, sha256: str | None, base: str, cpu: int, gpu: int, mb: float
) -> SegmenterSource:
    return SegmenterSource(name, label, RemoteFile(filename, base + filename, sha256, SAM_LICENSE), cpu, gpu, mb)


# SAM v1's sha256 values are widely published; SAM 2's release gives none (trust on first use).
SEGMENTERS = {
    s.name: s
    for s in (
        _sam("sam2.1-hiera-tiny", "SAM 2.1 Hiera-T", "sam2.1_hiera_tiny.pt", None, _SAM21_URL, 0, 3, 156),
        _sam("sam2.1-hiera-small", "SAM 2.1 Hiera-S", "sam2.1_hiera_small.pt", None, _SAM21_URL, 1, 2, 184),
        _sam("sam2.1-hiera-base-plus", "SAM 2.1 Hiera-B+", "sam2.1_hiera_base_plus.pt", None, _SAM21_URL, 4, 1, 323),
        _sam("sam2.1-hiera-large", "SAM 2.1 Hiera-L", "sam2.1_hiera_large.pt", None, _SAM21_URL, 7, 0, 898),
        _sam("sam2-hiera-tiny", "SAM 2 Hiera-T", "sam2_hiera_tiny.pt", None, _SAM2_URL, 2, 7, 156),
        _sam("sam2-hiera-small", "SAM 2 Hiera-S", "sam2_hiera_small.pt", None, _SAM2_URL, 3, 6, 184),
        _sam("sam2-hiera-base-plus", "SAM 2 Hiera-B+", "sam2_hiera_base_plus.pt", None, _SAM2_URL, 5, 5, 323),
        _sam("sam2-hiera-large", "SAM 2 Hiera-L", "sam2_hiera_large.pt", None, _SAM2_URL, 8, 4, 898),
        _sam(
            "sam-vit-b",
            "SAM ViT-B",
            "sam_vit_b_01ec64.pth",
            "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            _SAM1_URL,
            6,
            10,
            375,
        ),
        _sam(
            "sam-vit-l",
            "SAM ViT-L",
            "sam_vit_l_0b3195.pth",
            "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            _SAM1_URL,
            9,
            9,
            1250,
        ),
        _sam(
            "sam-vit-h",
            "SAM ViT-H",
            "sam_vit_h_4b8939.pth",
            "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            _SAM1_URL,
            10,
            8,
            2564,
        ),
    )
}


def segmenter_cache_path(name: str) -> Path:
    """Where ``name``'s checkpoint lives in the cache: ``CACHE/segment/<official file name>``."""
    return cache_dir() / "segment" / SEGMENTERS[name].remote.filename


# `vmatte weights list/fetch`: every checkpoint; family "sam2" (any SAM 2 / 2.1: the video tracker's) or "sam".
CATALOGUE = tuple(
    CatalogueEntry(
        s.name,
        "sam2" if s.name.startswith("sam2") else "sam",
        SAM_LICENSE,
        s.remote.url,
        s.size_mb,
        files=(s.remote,),
        paths=lambda name=s.name: (segmenter_cache_path(name),),
        use="--segmenter (clicks)" + (", --tracker" if s.name.startswith("sam2") else ""),
    )
    for s in SEGMENTERS.values()
)


def cached_segmenters(prefer_gpu: bool = False) -> list[str]:
    """Names of the segmenters whose checkpoint is in the cache, most preferred first."""
    have = [s for s in SEGMENTERS.values() if segmenter_cache_path(s.name).is_file()]
    return [s.name for s in sorted(have, key=lambda s: s.rank_gpu if prefer_gpu else s.rank_cpu)]


def resolve_segmenter(spec: str, allow_download: bool = True) -> tuple[dict[str, torch.Tensor], str, str]:
    """``(state_dict, source, label)`` of a SAM / SAM 2 checkpoint: ``spec`` is a file path or a name
    of :data:`SEGMENTERS` (cache, else the official download, checked by sha256)."""
    path = Path(spec).expanduser()
    if spec not in SEGMENTERS:
        if not path.is_file():
            names = ", ".join(SEGMENTERS)
            raise WeightsError(
                f"--segmenter {spec}: no such file and not a segmenter name; give a SAM / SAM 2 "
                f"checkpoint file or one of: rvm, auto, {names}"
            )
        return load_checkpoint(path), str(path), path.name
    source = SEGMENTERS[spec]
    dest = segmenter_cache_path(spec)
    if dest.is_file():
        verified_once(dest, source.remote)
    elif not allow_download or offline():
        raise WeightsError(
            f"{spec} weights not found; download {source.remote.url} and put it at {dest} "
            f"(or run `vmatte weights fetch {spec}`), or pass --segmenter PATH"
        )
    else:
        dest = download(source.remote, dest)
    return load_checkpoint(dest), str(dest), source.label
