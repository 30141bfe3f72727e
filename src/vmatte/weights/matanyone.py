"""MatAnyone / MatAnyone2 weights: a release .pth or a Hugging Face hub folder.

Licence: S-Lab License 1.0 (non-commercial), not vmatte's Apache-2.0.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import WeightsError
from .store import (
    CatalogueEntry,
    RemoteFile,
    ResolvedWeights,
    cache_dir,
    download,
    load_checkpoint,
    load_hub_folder,
    offline,
    verify_cached,
)

MATANYONE_LICENSE = "S-Lab License 1.0 (non-commercial)"
MATANYONE_REMOTE = {
    "matanyone": RemoteFile(
        "matanyone.pth",
        "https://github.com/pq-yang/MatAnyone/releases/download/v1.0.0/matanyone.pth",
        None,
        MATANYONE_LICENSE,
    ),
    "matanyone2": RemoteFile(
        "matanyone2.pth",
        "https://github.com/pq-yang/MatAnyone2/releases/download/v1.0.0/matanyone2.pth",
        None,
        MATANYONE_LICENSE,
    ),
}
_HUB_REPOS = {"matanyone": "PeiqingYang/MatAnyone", "matanyone2": "PeiqingYang/MatAnyone2"}


def _load_matanyone_path(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    p = Path(path).expanduser()
    return load_hub_folder(p) if p.is_dir() else load_checkpoint(p)


def matanyone_cache_paths(name: str) -> tuple[Path, Path]:
    """Where the cache is searched for ``name``: ``CACHE/<name>.pth`` and the hub folder ``CACHE/<name>/``."""
    remote = MATANYONE_REMOTE[name]
    return cache_dir() / remote.filename, cache_dir() / name


def _entry(name: str) -> CatalogueEntry:
    def present() -> bool:
        file, folder = matanyone_cache_paths(name)
        return file.is_file() or (folder / "model.safetensors").is_file()

    remote = MATANYONE_REMOTE[name]
    paths = lambda: (matanyone_cache_paths(name)[0],)  # noqa: E731 - the cache folder is read when asked
    return CatalogueEntry(name, name, MATANYONE_LICENSE, remote.url, 141, files=(remote,), paths=paths, present=present)


# `vmatte weights list/fetch`: the release .pth of each (a hub folder in the cache counts as cached).
CATALOGUE = tuple(_entry(name) for name in MATANYONE_REMOTE)


def resolve_matanyone(
    name: str = "matanyone", weights: str | os.PathLike | None = None, allow_download: bool = True
) -> ResolvedWeights:
    """Weights for ``name`` (matanyone / matanyone2): ``weights`` (a .pth/.safetensors file or a hub
    folder) > cache (``CACHE/<name>.pth`` or ``CACHE/<name>/model.safetensors``) > download of the
    official release file (no published checksum: size and sha256 recorded on first download).

    ``weights="download"`` always uses the official release file (downloaded once into the cache).
    Downloads are skipped when ``allow_download`` is false or ``VMATTE_OFFLINE=1``.
    """
    if name not in MATANYONE_REMOTE:
        raise WeightsError(f"unknown MatAnyone model {name!r}; use one of: {', '.join(MATANYONE_REMOTE)}")
    remote = MATANYONE_REMOTE[name]
    if weights is not None and str(weights) != "download":
        return ResolvedWeights(_load_matanyone_path(weights), str(weights), MATANYONE_LICENSE)
    cached_file, cached_folder = matanyone_cache_paths(name)
    if cached_file.is_file():
        verify_cached(cached_file, remote)
        return ResolvedWeights(load_checkpoint(cached_file), str(cached_file), MATANYONE_LICENSE)
    if weights is None and (cached_folder / "model.safetensors").is_file():
        return ResolvedWeights(load_hub_folder(cached_folder), str(cached_folder), MATANYONE_LICENSE)
    if not allow_download or offline():
        raise WeightsError(
            f"{name} weights not found; download {remote.url} and put it at {cached_file} "
            f"(or the hub folder {_HUB_REPOS[name]} at {cached_folder}), or pass --weights PATH"
        )
    path = download(remote)
    return ResolvedWeights(load_checkpoint(path), str(path), MATANYONE_LICENSE)
