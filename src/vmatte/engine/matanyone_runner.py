"""MatAnyone as a :class:`~vmatte.engine.rvm.FrameMatter`: frames in, (fgr, alpha) out.

The targets are given once, as a mask on the first frame of each video: one HxW map (0 =
background, 255 = target), or several targets (``{id: HxW}``, a label mask, a
:class:`~vmatte.io.masks.TargetMask`). A mask of another size is resized to the first frame
with a warning. The first :meth:`step` after :meth:`reset` runs the mask step and the warm-up,
later steps are one network pass per target.

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

from ..io.masks import TargetMask, as_target_mask, fit_to_frame
from ..models.matanyone import MatAnyone
from .matanyone import InferenceCore, MatAnyoneSettings, start
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
    def __init__(self, network: MatAnyone, mask, settings: MatAnyoneSettings | None = None,
                 device: torch.device | str = "cpu", description: str = "MatAnyone (PyTorch)",
                 max_size: int | None = None) -> None:
        self.network = SharedImageEncoding(network.to(device).eval())
        self.settings = copy.copy(settings) if settings is not None else MatAnyoneSettings()
        self.max_size = max_size  # long side the network sees (None: full resolution)
        self.description = description
        self.set_mask(mask)

    @property
    def targets(self) -> tuple[int, ...]:
        """The target ids, in output order."""
        return self.mask.ids

    def set_mask(self, mask) -> None:
        """New targets (path, HxW array, ``{id: HxW}`` or TargetMask); takes effect at the next video."""
        self.mask: TargetMask = as_target_mask(mask)
        self.cores = {i: InferenceCore(self.network, self.settings) for i in self.mask.ids}
        self.reset()

    def reset(self, concurrent_io: bool = False) -> None:
        """Start a new video (the next frame is its first and gets the mask)."""
        self._started = False
        self.network.clear()

    def _internal_short_side(self, h: int, w: int) -> int:
        if self.max_size is None or max(h, w) <= self.max_size:
            return -1
        return max(16, int(round(self.max_size * min(h, w) / max(h, w))))

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        """``(fgr HxWx3 or None, {id: alpha HxW})`` float32 for one frame."""
        if not self._started:
            h, w = image.shape[:2]
            if self.max_size is not None:  # per video: the long side the network sees
                self.settings.max_internal_size = self._internal_short_side(h, w)
            fitted = fit_to_frame(self.mask, (h, w))
            outs = {i: start(core, image, fitted.targets[i]) for i, core in self.cores.items()}
            self._started = True
        else:
            tensor = image_to_tensor(image, self.network.pixel_mean.device)
            outs = {i: core.step(tensor) for i, core in self.cores.items()}
        alphas = {i: out.alpha[0].float().cpu().numpy() for i, out in outs.items()}
        fgr = None
        if foreground:
            scale = 1.0 / 65535.0 if image.dtype == np.uint16 else 1.0 / 255.0
            fgr = image.astype(np.float32) * np.float32(scale)
        return fgr, alphas

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        fgr, alphas = self.step_all(image, foreground)
        return fgr, alphas[self.targets[0]]
