"""VideoMaMa over whole videos: overlapping chunks, cross-faded, aspect kept, memory bounded.

The network mattes a chunk of ``chunk_frames`` frames at once (its UNet and VAE decoder mix the
frames of a chunk). A video of any length is cut into chunks that overlap by ``overlap`` frames;
in an overlap the two chunks' mattes are cross-faded linearly (weights ``j+1 / overlap+1`` for
the later chunk, the rest for the earlier one: they sum to 1), so there is no jump at a chunk
boundary. Frames are read as a stream: at most one chunk of frames is held at any time (the
overlap frames wait with the earlier chunk's mattes for the next chunk), whatever the length.
The last chunk, when shorter, is filled up by repeating its last frame (the released code does
the same for short clips), and the filler's mattes are dropped.

Each frame is scaled to fit the network's canvas (1024x576, or 576x1024 for portrait video)
without changing its aspect ratio, centred and padded (black frame, empty mask), and its matte
is cut out of the same rectangle and scaled back to the frame's size: no stretching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import torch

from ..io.masks import FrameMasks
from ..io.pixels import code_max
from ..io.reader import Frame
from .matter import MaskSource, State, frame_masks, to_float, union

T = TypeVar("T")


@dataclass(frozen=True)
class VideoMaMaSettings:
    size: tuple[int, int] = (1024, 576)  # canvas (width, height) for landscape video; transposed for portrait
    chunk_frames: int = 16
    overlap: int = 4  # frames shared by consecutive chunks, cross-faded

    def check(self, multiple: int) -> None:
        w, h = self.size
        if w % multiple or h % multiple or w <= 0 or h <= 0:
            raise ValueError(f"the VideoMaMa canvas must be a multiple of {multiple} px, got {w}x{h}")
        if self.chunk_frames < 1 or not 0 <= self.overlap < self.chunk_frames:
            raise ValueError(
                f"need chunk_frames >= 1 and 0 <= overlap < chunk_frames, got {self.chunk_frames}, {self.overlap}"
            )


def canvas_for(long_side: int, multiple: int) -> tuple[int, int]:
    """A 16:9 canvas (the SVD training shape) with the given long side, both sides multiples of ``multiple``."""
    long_side = max(multiple, long_side // multiple * multiple)
    return long_side, max(multiple, int(long_side * 9 / 16 / multiple + 0.5) * multiple)  # half up


@dataclass(frozen=True)
class Placement:
    """Where a ``height x width`` frame sits on the canvas: scaled to ``inner`` (w, h) at ``offset`` (x, y)."""

    frame: tuple[int, int]  # (h, w)
    canvas: tuple[int, int]  # (w, h)
    inner: tuple[int, int]  # (w, h)
    offset: tuple[int, int]  # (x, y)

    @classmethod
    def fit(cls, h: int, w: int, size: tuple[int, int]) -> Placement:
        cw, ch = size if w >= h else (size[1], size[0])  # portrait video: portrait canvas
        scale = min(cw / w, ch / h)
        iw, ih = min(cw, max(1, round(w * scale))), min(ch, max(1, round(h * scale)))
        return cls((h, w), (cw, ch), (iw, ih), ((cw - iw) // 2, (ch - ih) // 2))

    def _place(self, img: np.ndarray, fill: float) -> np.ndarray:
        cw, ch = self.canvas
        iw, ih = self.inner
        x, y = self.offset
        shrink = iw < self.frame[1]
        inner = cv2.resize(img, (iw, ih), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out = np.full((ch, cw) + img.shape[2:], fill, np.float32)
        out[y : y + ih, x : x + iw] = inner
        return out

    def image(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8/uint16 HxWx3 -> canvas float32 3xHxW in [-1, 1] (padding black)."""
        scale = 2.0 / code_max(image.dtype)
        return (self._place(image.astype(np.float32) * scale - 1.0, -1.0)).transpose(2, 0, 1)

    def mask(self, mask: np.ndarray) -> np.ndarray:
        """HxW float32 in [0, 1] -> canvas 1xHxW (padding empty)."""
        return self._place(mask, 0.0)[None]

    def back(self, matte: np.ndarray) -> np.ndarray:
        """A canvas matte -> the frame's matte (the frame's rectangle, scaled back)."""
        iw, ih = self.inner
        x, y = self.offset
        h, w = self.frame
        inner = np.ascontiguousarray(matte[y : y + ih, x : x + iw])
        return np.clip(cv2.resize(inner, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def crossfade_weights(overlap: int) -> np.ndarray:
    """Weight of the *later* chunk on each overlap frame (the earlier chunk gets 1 minus it)."""
    return (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)


def chunked(
    items: Iterable[T], run: Callable[[Sequence[T]], Sequence[np.ndarray]], chunk: int, overlap: int
) -> Iterator[tuple[T, np.ndarray]]:
    """``(item, result)`` for every item, in order: ``run`` sees windows of at most ``chunk`` items
    overlapping by ``overlap``; results of overlapping windows are cross-faded. At most ``chunk``
    items are held at any time."""
    later = crossfade_weights(overlap)
    held: list[T] = []  # the window: the previous window's last `overlap` items, then new ones
    pending: list[np.ndarray] = []  # the previous window's results for the first len(pending) held items
    source = iter(items)
    while True:
        fresh = 0
        for item in source:
            held.append(item)
            fresh += 1
            if len(held) == chunk:
                break
        if not fresh:  # nothing after the overlap: those items were in one window only
            yield from zip(held, pending)
            return
        results = list(run(held))
        for j, earlier in enumerate(pending):
            results[j] = (1.0 - later[j]) * earlier + later[j] * results[j]
        if len(held) < chunk:  # the source ended inside this window
            yield from zip(held, results)
            return
        keep = overlap
        yield from zip(held[: len(held) - keep], results[: len(held) - keep])
        held, pending = held[len(held) - keep :], results[len(held) - keep :]


class VideoMaMaMatter:
    """A windowed :class:`~vmatte.engine.matter.Matter`: frames in, ``(frame, fgr, {None: alpha})`` out
    (:meth:`run`); each frame's mask is on the frame (``frame.masks``, their union), put there by the
    loop from ``mask_source`` (a ``--masks`` folder or a tracker).

    MatAnyone-style ``fgr``: VideoMaMa predicts alpha only, so the foreground colour is the frame's.
    Not resumable: the windows in flight at a journal's chunk boundary are not saved."""

    resumable = False
    targets = (None,)

    def __init__(
        self,
        model,
        mask_source: MaskSource,
        device: torch.device,
        settings: VideoMaMaSettings = VideoMaMaSettings(),
        dtype: torch.dtype = torch.float32,
        description: str = "VideoMaMa",
    ):
        settings.check(model.shape.multiple)
        self.model = model.eval().to(device=device, dtype=dtype)
        self.mask_source = mask_source
        self.device = device
        self.settings = settings
        self.description = description

    def reset(self, concurrent_io: bool = False) -> None:
        self.mask_source.reset()  # no state across chunks besides what run() holds

    def state(self) -> State:
        raise NotImplementedError("VideoMaMa runs are not journaled")

    def load_state(self, state: State) -> None:
        raise NotImplementedError("VideoMaMa runs are not journaled")

    def step(self, image, foreground: bool = True):
        raise TypeError("VideoMaMa mattes chunks of frames: use run(frames)")

    @torch.inference_mode()
    def run_chunk(self, frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Canvas frames [T, 3, H, W] and masks [T, 1, H, W] -> canvas mattes [T, H, W] (a short chunk is
        filled up to ``chunk_frames`` by repeating its last frame)."""
        t = len(frames)
        fill = self.settings.chunk_frames - t
        if fill > 0:
            frames = np.concatenate([frames, np.repeat(frames[-1:], fill, axis=0)])
            masks = np.concatenate([masks, np.repeat(masks[-1:], fill, axis=0)])
        f = torch.from_numpy(frames).to(self.device)
        m = torch.from_numpy(masks).to(self.device)
        return self.model(f, m)[:t].float().cpu().numpy()

    def run(self, frames: Iterable[Frame], foreground: bool = True) -> Iterator[tuple[Frame, np.ndarray | None, dict]]:
        placement: Placement | None = None

        def prepared() -> Iterator[tuple[Frame, np.ndarray, np.ndarray]]:
            nonlocal placement
            for frame in frames:
                h, w = frame.image.shape[:2]
                if placement is None or placement.frame != (h, w):
                    placement = Placement.fit(h, w, self.settings.size)
                mask = union(frame_masks(frame), (h, w))
                yield frame, placement.image(frame.image), placement.mask(mask)

        def run(window):
            return list(self.run_chunk(np.stack([c for _, c, _ in window]), np.stack([m for _, _, m in window])))

        s = self.settings
        for (frame, _, _), matte in chunked(prepared(), run, s.chunk_frames, s.overlap):
            yield frame, to_float(frame.image) if foreground else None, {None: placement.back(matte)}


def load_videomama(spec, options, note: str = "") -> VideoMaMaMatter:
    """The registry's loader: VideoMaMa from its hub folders (see :func:`vmatte.weights.resolve_videomama`).

    Precision: fp16 on a GPU (as the authors run it), fp32 on the CPU; ``precision="bf16"`` for bf16.
    ``max_size``: the canvas' long side (16:9, multiples of the network's 64 px), default 1024."""
    from ..errors import VmatteError, WeightsError
    from ..models.loading import load_into
    from ..models.videomama import VideoMaMa
    from ..weights import resolve_videomama
    from .device import check_precision, resolve_device

    if options.masks is None:
        raise VmatteError(
            f"--model {spec.name} turns one coarse mask per frame into mattes: give them with --masks DIR"
        )
    # a folder, FrameMasks, or a tracker's masks made as the frames come (vmatte.engine.mask_source.load_tracked)
    masks = options.masks if hasattr(options.masks, "annotate") else FrameMasks(options.masks)
    dev = resolve_device(options.device)
    check_precision(options.precision, dev)
    precision = options.precision
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(
        precision, torch.float16 if dev.type == "cuda" else torch.float32
    )
    resolved = resolve_videomama(options.weights)
    try:
        model = VideoMaMa.from_config(resolved.unet.config, resolved.vae.config, empty=True)
    except (ValueError, TypeError) as e:
        raise WeightsError(f"the UNet/VAE configs in {resolved.unet.source} do not build VideoMaMa ({e})") from None
    load_into(model.unet, resolved.unet.state_dict, resolved.unet.source, assign=True)
    load_into(model.vae, resolved.vae.state_dict, resolved.vae.source, assign=True)
    multiple = model.shape.multiple
    settings = VideoMaMaSettings()
    max_size = options.max_size
    if max_size is not None:
        if max_size < multiple:
            raise VmatteError(
                f"--max-size for VideoMaMa must be at least {multiple} px (the canvas is a multiple "
                f"of {multiple}), got {max_size}"
            )
        settings = VideoMaMaSettings(canvas_for(max_size, multiple), settings.chunk_frames, settings.overlap)
    w, h = settings.size
    description = (
        f"VideoMaMa{note} on PyTorch/{dev.type} {str(dtype).removeprefix('torch.')}, canvas {w}x{h} "
        f"(aspect kept), chunks of {settings.chunk_frames} frames overlapping by {settings.overlap}, "
        f"{f'{len(masks)} per-frame masks' if isinstance(masks, FrameMasks) else f'per-frame masks from {masks.label}'} (weights: {resolved.unet.source} + {resolved.vae.source}; "
        f"{resolved.license})"
    )
    return VideoMaMaMatter(model, masks, dev, settings, dtype=dtype, description=description)
