"""Per-frame coarse masks (``--masks DIR``): one mask per frame, and RVM as a mask-to-matte model.

:class:`FrameMasks` reads a folder of masks named by frame number (as ``--masks-dir`` names
keyframes: the last run of digits is the number). The lowest number is the first frame, so
``00000.png`` and ``00001.png`` numberings both work; numbers must then be contiguous. A mask is any
image :func:`~vmatte.io.masks.read_mask` reads; every non-zero id of a label mask is the target,
a soft grey mask stays soft. A frame without a mask is a one-line error when it is reached (the
outputs are atomic, so nothing is left behind); masks left over at the end are a warning.

:class:`MaskGatedMatter` turns RVM (every person) into a mask-to-matte model: RVM's alpha is
multiplied by the frame's mask, dilated and feathered, so people outside the mask vanish while
RVM keeps its own edges (hair, motion blur) inside the dilated band.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..io.masks import fit_to_frame, read_mask, read_masks_dir


class FrameMasks:
    """The folder's masks by frame index (0 = the lowest-numbered file)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = folder
        self._paths = read_masks_dir(folder)
        self._first = min(self._paths)
        last = max(self._paths)
        gaps = [i for i in range(self._first, last + 1) if i not in self._paths]
        if gaps:
            shown = ", ".join(map(str, gaps[:5])) + (f" (+{len(gaps) - 5} more)" if len(gaps) > 5 else "")
            raise InputError(f"--masks {folder}: one mask per frame is needed, but frame number(s) {shown} have "
                             f"no file between {self._first} and {last}")
        self._warned_size = False

    def __len__(self) -> int:
        return len(self._paths)

    def mask(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """Frame ``index``'s mask at ``shape`` (h, w): float32 in [0, 1]."""
        path = self._paths.get(self._first + index)
        if path is None:
            raise InputError(f"--masks {self.folder} has {len(self)} masks but the video has more frames "
                             f"(no mask for frame {index}); give one mask per frame")
        target = read_mask(path)
        maps = list(target.targets.values())  # every id of a label mask is the target; soft stays soft
        union = maps[0] if len(maps) == 1 else np.max(np.stack(maps), axis=0)
        if union.shape[:2] != tuple(shape):
            if not self._warned_size:  # warn once, not once per frame
                union = fit_to_frame(type(target)({1: union}, target.source, target.kind), shape).targets[1]
                self._warned_size = True
            else:
                union = cv2.resize(union, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
        return union.astype(np.float32) / 255.0

    def finish(self, frames: int) -> None:
        """The video had ``frames`` frames: warn about masks that were never used."""
        if len(self) > frames:
            warnings.warn(f"--masks {self.folder} has {len(self)} masks but the video had {frames} frames; "
                          f"the last {len(self) - frames} were not used (check that they belong to this video)")


@dataclass(frozen=True)
class GateSettings:
    dilate: int | None = None  # px the mask is grown by; None: 2 % of the frame's long side (at least 3 px)


def gate(mask: np.ndarray, settings: GateSettings) -> np.ndarray:
    """The mask (HxW in [0, 1]) grown by ``dilate`` px and feathered over half that: 1 on the mask itself."""
    h, w = mask.shape
    r = settings.dilate if settings.dilate is not None else max(3, round(0.02 * max(h, w)))
    binary = (mask >= 0.5).astype(np.float32)
    if r <= 0:
        return binary
    if r > h + w:  # over the whole frame from any pixel: surely a typo (and a 2r+1 kernel would not fit in memory)
        raise InputError(f"--dilate {r} px is larger than the {w}x{h} frame; give at most {h + w} px "
                          f"(about 2% of the frame, the default, is usual)")
    grown = cv2.dilate(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    k = r | 1  # odd kernel about r px wide: the feather stays outside the original mask
    return np.minimum(cv2.GaussianBlur(grown, (k, k), 0) * 2.0, 1.0) if k > 1 else grown


class MaskGatedMatter:
    """A :class:`~vmatte.engine.rvm.FrameMatter` whose alpha is kept only where the frame's mask is."""

    def __init__(self, inner, masks: FrameMasks, settings: GateSettings = GateSettings(), description: str = ""):
        self.inner = inner
        self.masks = masks
        self.settings = settings
        self.description = description or f"{inner.description}, gated by per-frame masks"
        self._index = 0

    def reset(self, concurrent_io: bool = False) -> None:
        self.inner.reset(concurrent_io)
        self._index = 0

    def step(self, image: np.ndarray, foreground: bool = True):
        m = self.masks.mask(self._index, image.shape[:2])  # a missing mask fails before the network runs
        fgr, alpha = self.inner.step(image, foreground)
        self._index += 1
        return fgr, alpha * gate(m, self.settings)


RVM_MODELS = ("rvm", "rvm-target", "rvm-resnet50")


def videomama_ready(weights, device: str) -> bool:
    """``--model auto`` with ``--masks``: VideoMaMa when its weights are given or cached *and* a GPU is
    there (on a CPU it takes minutes per chunk; RVM gated by the masks runs in real time)."""
    from ..matte import resolve_device
    from ..weights import videomama_cache_paths

    if resolve_device(device).type != "cuda":
        return False
    if weights is not None:
        return True
    mama, svd = videomama_cache_paths()
    return (mama / "unet" / "config.json").is_file() and (svd / "vae" / "config.json").is_file()


def load_mask_to_matte(model: str, masks, *, weights=None, device: str = "auto", backend: str = "auto",
                       downsample_ratio=None, max_size=None, mask=None, keyframes=None, warmup_frames=None,
                       erode=None, dilate=None, precision: str = "fp32"):
    """The matter for ``model`` fed one coarse mask per frame (``masks``: a folder or :class:`FrameMasks`)."""
    from ..errors import VmatteError
    from ..matte import MATANYONE_MODELS, load_matter
    from .videomama import load_videomama

    if mask is not None or keyframes:
        raise VmatteError("--masks (one mask per frame) replaces --mask, --mask-at, --masks-dir and --click; "
                          "give only one of them")
    if model in MATANYONE_MODELS:
        raise VmatteError(f"--model {model} tracks a target from first-frame/keyframe masks: give them with --mask or "
                          f"--masks-dir; per-frame masks (--masks) go to --model videomama or rvm")
    if warmup_frames is not None or erode is not None:
        raise VmatteError("--warmup-frames and --erode are MatAnyone settings; with --masks use --dilate only (rvm)")
    frame_masks = masks if isinstance(masks, FrameMasks) else FrameMasks(masks)
    note = ""
    if model == "auto":
        model = "videomama" if videomama_ready(weights, device) else "rvm"
        note = " (--model auto with --masks)"
    if model == "videomama":
        if dilate is not None or backend == "onnx" or downsample_ratio is not None:
            raise VmatteError("--dilate, --backend onnx and --downsample-ratio are not VideoMaMa settings; "
                              "VideoMaMa takes --max-size (canvas long side) and --precision")
        return load_videomama(frame_masks, weights=weights, device=device, max_size=max_size, precision=precision,
                              note=note)
    if model not in RVM_MODELS:
        raise VmatteError(f"--model {model} takes no --masks")
    if dilate is not None and dilate < 0:
        raise VmatteError(f"--dilate must be 0 or more, got {dilate}")
    inner = load_matter("rvm-resnet50" if model == "rvm-resnet50" else "rvm", weights=weights, device=device,
                        backend=backend, downsample_ratio=downsample_ratio, max_size=max_size, precision=precision)
    return MaskGatedMatter(inner, frame_masks, GateSettings(dilate),
                           description=f"{inner.description}{note}; alpha kept inside the per-frame masks of "
                                       f"{frame_masks.folder} (dilated)")
