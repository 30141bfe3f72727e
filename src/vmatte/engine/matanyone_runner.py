"""MatAnyone as a :class:`~vmatte.engine.rvm.FrameMatter`: frames in, (fgr, alpha) out.

The targets are given as a mask on the first frame of each video: one HxW map (0 =
background, 255 = target), or several targets (``{id: HxW}``, a label mask, a
:class:`~vmatte.io.masks.TargetMask`), plus optional keyframe masks at later frames that add a
target from that frame on or correct one. A mask of another size is resized to the frame with a
warning. A target's first mask runs the mask step and the warm-up; later steps are one network
pass per target.

Several targets: one :class:`InferenceCore` (memory) per id over one shared network, called one
after the other on each frame. The image encoder (ResNet-50 to stride 16, the largest part of a
step) and the key projection run once per frame and are shared by every target through
:class:`SharedImageEncoding`; the mask encoder, memory readout, transformer and decoder run per
target (they depend on the target's own mask and memory). :meth:`step_all` returns every
target's alpha; :meth:`step` (the FrameMatter protocol) the first target's.

MatAnyone predicts alpha only. ``fgr`` is the input frame's colour (the usual straight-colour
approximation; it is exact where alpha is 1 and unused where alpha is 0). The official demo's
"fgr" output is a green composite instead, which is not a foreground.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor

from ..io.masks import TargetMask, fit_to_frame, mask_schedule, schedule_ids
from ..models.matanyone import MatAnyone
from .matanyone import InferenceCore, MatAnyoneSettings, reinitialise, start
from .matanyone.preprocess import image_to_tensor


class SharedImageEncoding:
    """The network, with ``encode_image``/``transform_key`` computed once per distinct frame.

    Every other attribute is the network's. The last input is kept with its features; a call
    with an equal tensor (same shape, same values: one cheap comparison) returns the kept
    features. So the cores of several targets, and the warm-up repeats of frame 0, encode each
    frame once, and the results are bit-identical to encoding it again.
    """

    def __init__(self, network: MatAnyone) -> None:
        self.network = network
        self._image: Tensor | None = None
        self._features: tuple[list[Tensor], Tensor] | None = None
        self._keys: tuple[Tensor, tuple[Tensor, Tensor, Tensor]] | None = None
        self.encodes = 0  # how many times the image encoder really ran (for tests and speed notes)

    def __getattr__(self, name: str):
        try:
            network = self.__dict__["network"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(network, name)

    def eval(self) -> "SharedImageEncoding":
        self.network.eval()
        return self

    def clear(self) -> None:
        self._image = self._features = self._keys = None

    def encode_image(self, image: Tensor) -> tuple[list[Tensor], Tensor]:
        last = self._image
        if last is not None and last.shape == image.shape and last.device == image.device and torch.equal(last, image):
            return self._features
        self._features = self.network.encode_image(image)
        self._image, self._keys = image, None
        self.encodes += 1
        return self._features

    def transform_key(self, f16: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self._keys is not None and self._keys[0] is f16:
            return self._keys[1]
        keys = self.network.transform_key(f16)
        self._keys = (f16, keys)
        return keys


class MatAnyoneMatter:
    """``mask``: frame 0's targets; ``keyframes``: ``{frame index: mask}`` for later frames (or
    frame 0 when ``mask`` is None). A target id first seen at frame k starts there (mask step and
    warm-up, as on a first frame) and has alpha 0 before; an id already tracked is re-initialised
    from its mask at that frame (:func:`~vmatte.engine.matanyone.reinitialise`). Ids a keyframe
    mask does not hold go on untouched."""

    def __init__(self, network: MatAnyone, mask=None, settings: MatAnyoneSettings | None = None,
                 device: torch.device | str = "cpu", description: str = "MatAnyone (PyTorch)",
                 max_size: int | None = None, keyframes: dict | None = None, precision: str = "fp32") -> None:
        self.network = SharedImageEncoding(network.to(device).eval())
        self.device = torch.device(device)
        dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if precision not in dtypes:
            raise ValueError(f"precision must be one of {', '.join(dtypes)}, got {precision!r}")
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("fp16 autocast needs a GPU; use bf16 or fp32 on the CPU")
        self.precision = precision
        self._autocast_dtype = dtypes[precision]
        self.settings = copy.copy(settings) if settings is not None else MatAnyoneSettings()
        self.max_size = max_size  # long side the network sees (None: full resolution)
        self.description = description
        self.set_mask(mask, keyframes)

    @property
    def targets(self) -> tuple[int, ...]:
        """The target ids, in output order (order of first appearance)."""
        return self._ids

    @property
    def mask(self) -> TargetMask:
        """The earliest mask of the schedule (frame 0's when given)."""
        return next(iter(self.schedule.values()))

    def set_mask(self, mask=None, keyframes: dict | None = None) -> None:
        """New targets (path, HxW array, ``{id: HxW}`` or TargetMask, and/or keyframe masks);
        takes effect at the next video."""
        self.schedule: dict[int, TargetMask] = mask_schedule(mask, keyframes)
        self._ids = schedule_ids(self.schedule)
        self.cores = {i: InferenceCore(self.network, self.settings) for i in self._ids}
        self.reset()

    def reset(self, concurrent_io: bool = False) -> None:
        """Start a new video (the next frame is its frame 0)."""
        self._frame = 0
        self._tracked: set[int] = set()
        self.network.clear()

    def _internal_short_side(self, h: int, w: int) -> int:
        if self.max_size is None or max(h, w) <= self.max_size:
            return -1
        return max(16, int(round(self.max_size * min(h, w) / max(h, w))))

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        """``(fgr HxWx3 or None, {id: alpha HxW})`` float32 for one frame."""
        if self._autocast_dtype is None:
            return self._step_all(image, foreground)
        with torch.autocast(self.device.type, dtype=self._autocast_dtype):
            return self._step_all(image, foreground)

    def _step_all(self, image: np.ndarray, foreground: bool) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        h, w = image.shape[:2]
        if self._frame == 0 and self.max_size is not None:  # per video: the long side the network sees
            self.settings.max_internal_size = self._internal_short_side(h, w)
        keyframe = self.schedule.get(self._frame)
        fitted = fit_to_frame(keyframe, (h, w)) if keyframe is not None else None
        tensor = None
        alphas: dict[int, np.ndarray] = {}
        for i, core in self.cores.items():
            if fitted is not None and i in fitted.targets:
                if i in self._tracked:
                    out = reinitialise(core, image, fitted.targets[i])
                else:
                    out = start(core, image, fitted.targets[i])
                    self._tracked.add(i)
            elif i in self._tracked:
                if tensor is None:
                    tensor = image_to_tensor(image, self.network.pixel_mean.device)
                out = core.step(tensor)
            else:  # not seen yet: no matte before the target's first mask
                alphas[i] = np.zeros((h, w), np.float32)
                continue
            alphas[i] = out.alpha[0].float().cpu().numpy()
        self._frame += 1
        fgr = None
        if foreground:
            scale = 1.0 / 65535.0 if image.dtype == np.uint16 else 1.0 / 255.0
            fgr = image.astype(np.float32) * np.float32(scale)
        return fgr, alphas

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        fgr, alphas = self.step_all(image, foreground)
        return fgr, alphas[self.targets[0]]
