"""VideoMaMa's weights: the fine-tuned UNet (SammyLim/VideoMaMa) and the SVD VAE, in the hub layout.

Licences: the VideoMaMa model card (non-commercial) and Stability AI's SVD licence.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError
from .store import CatalogueEntry, cache_dir, load_checkpoint, offline, record_path, sha256_file

VIDEOMAMA_REPO = "SammyLim/VideoMaMa"  # the fine-tuned 12-channel UNet: unet/
SVD_REPO = "stabilityai/stable-video-diffusion-img2vid-xt"  # the base model: only vae/ is used
VIDEOMAMA_LICENSE = (
    "VideoMaMa UNet: see the SammyLim/VideoMaMa model card; SVD VAE: Stability AI's "
    "stable-video-diffusion-img2vid-xt licence"
)
_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
_SVD_VAE = ["vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"]  # only the VAE of SVD is used


@dataclass(frozen=True)
class HubModel:
    """One diffusers model folder (``config.json`` + safetensors) read into memory."""

    config: dict
    state_dict: dict[str, torch.Tensor]
    source: str


@dataclass(frozen=True)
class ResolvedVideoMaMa:
    unet: HubModel
    vae: HubModel
    license: str = VIDEOMAMA_LICENSE


def videomama_cache_paths() -> tuple[Path, Path]:
    """Hub snapshots in the cache: ``CACHE/videomama/SammyLim--VideoMaMa`` and ``.../stabilityai--...``."""
    root = cache_dir() / "videomama"
    return root / VIDEOMAMA_REPO.replace("/", "--"), root / SVD_REPO.replace("/", "--")


def _weights_file(folder: Path) -> Path | None:
    return next((folder / n for n in _DIFFUSERS_WEIGHTS if (folder / n).is_file()), None)


def load_diffusers_folder(folder: str | os.PathLike, what: str) -> HubModel:
    """A diffusers model folder (``unet/`` or ``vae/``): its config and its safetensors (never pickles);
    a file whose sha256 was recorded at download is checked against the record."""
    folder = Path(folder).expanduser()
    weights = _weights_file(folder)
    if not (folder / "config.json").is_file() or weights is None:
        raise WeightsError(
            f"{folder} is not a diffusers {what} folder (config.json + "
            f"diffusion_pytorch_model[.fp16].safetensors); see docs/videomama.md"
        )
    try:
        config = json.loads((folder / "config.json").read_text())
    except (ValueError, OSError):
        raise WeightsError(f"{folder / 'config.json'} is not valid JSON; download the folder again") from None
    record = record_path(weights)
    if record.is_file() and sha256_file(weights) != json.loads(record.read_text())["sha256"]:
        raise WeightsError(f"{weights} changed since download (sha256 mismatch); delete it to download again")
    return HubModel(config, load_checkpoint(weights), str(folder))


def _snapshot(repo: str, dest: Path, patterns: list[str]) -> None:
    """Download ``patterns`` of hub ``repo`` into ``dest``; record each safetensors' sha256 (trust on first use)."""
    if offline():
        raise WeightsError(
            f"VMATTE_OFFLINE/HF_HUB_OFFLINE is set, so {repo} is not downloaded; put it at {dest}, "
            f"pass --weights, or unset VMATTE_OFFLINE"
        )
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo, local_dir=str(dest), allow_patterns=patterns)
    except Exception as e:  # noqa: BLE001 - network, auth (SVD is gated), disk: one line with the fix
        raise WeightsError(
            f"cannot download {repo} from the Hugging Face hub ({type(e).__name__}); offline, or "
            f"the licence not accepted on its page (huggingface-cli login)? Download it elsewhere "
            f"and pass --weights DIR (see docs/videomama.md)"
        ) from None
    for f in dest.rglob("*.safetensors"):
        if not record_path(f).is_file():
            record_path(f).write_text(json.dumps({"repo": repo, "size": f.stat().st_size, "sha256": sha256_file(f)}))


def _present() -> bool:
    mama, svd = videomama_cache_paths()
    return (mama / "unet" / "config.json").is_file() and (svd / "vae" / "config.json").is_file()


def fetch_videomama() -> list[Path]:
    """The two hub snapshots into the cache (what is there already is kept): the UNet, the SVD VAE."""
    mama_dir, svd_dir = videomama_cache_paths()
    if _weights_file(mama_dir / "unet") is None:
        _snapshot(VIDEOMAMA_REPO, mama_dir, ["unet/*"])
    if _weights_file(svd_dir / "vae") is None:
        _snapshot(SVD_REPO, svd_dir, _SVD_VAE)
    return [mama_dir, svd_dir]


# `vmatte weights list/fetch`: two Hugging Face hub folders (sha256 recorded at download).
CATALOGUE = (
    CatalogueEntry(
        "videomama",
        "videomama",
        VIDEOMAMA_LICENSE,
        f"https://huggingface.co/{VIDEOMAMA_REPO} + https://huggingface.co/{SVD_REPO}",
        paths=videomama_cache_paths,
        present=_present,
        fetcher=fetch_videomama,
    ),
)


def resolve_videomama(weights: str | os.PathLike | None = None, allow_download: bool = True) -> ResolvedVideoMaMa:
    """VideoMaMa's UNet and VAE: ``weights`` DIR (``unet/`` and, optionally, ``vae/``) > the cache's hub
    snapshots > a download of both (``weights="download"`` or nothing cached). A DIR without ``vae/``
    takes the VAE from the cached SVD snapshot (downloaded when missing)."""
    mama_dir, svd_dir = videomama_cache_paths()
    if weights is not None and str(weights) != "download":
        root = Path(weights).expanduser()
        if not (root / "unet").is_dir():
            raise WeightsError(
                f"--weights {root}: expected a folder with unet/ (the {VIDEOMAMA_REPO} hub layout) "
                f"and optionally vae/; see docs/videomama.md"
            )
        unet = load_diffusers_folder(root / "unet", "UNet")
        if (root / "vae").is_dir():
            return ResolvedVideoMaMa(unet, load_diffusers_folder(root / "vae", "VAE"))
    else:
        unet = None
    can_download = allow_download and not offline()
    if unet is None:
        if _weights_file(mama_dir / "unet") is None:
            if not can_download:
                raise WeightsError(
                    f"VideoMaMa weights not found; put the {VIDEOMAMA_REPO} hub folder at {mama_dir} "
                    f"(unet/) or pass --weights DIR"
                )
            _snapshot(VIDEOMAMA_REPO, mama_dir, ["unet/*"])
        unet = load_diffusers_folder(mama_dir / "unet", "UNet")
    if _weights_file(svd_dir / "vae") is None:
        if not can_download:
            raise WeightsError(
                f"the SVD VAE was not found; put {SVD_REPO}'s vae/ folder at {svd_dir / 'vae'} or in the --weights DIR"
            )
        _snapshot(SVD_REPO, svd_dir, _SVD_VAE)
    return ResolvedVideoMaMa(unet, load_diffusers_folder(svd_dir / "vae", "VAE"))
