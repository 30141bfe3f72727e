"""MatAnyone as a :class:`~vmatte.engine.rvm.FrameMatter`: frames in, (fgr, alpha) out.

The target is given once, as a mask on the first frame of each video (HxW, 0 = background,
255 = target; another size is resized to the frame). The first :meth:`step` after
:meth:`reset` runs the mask step and the warm-up, later steps are one network pass each.

MatAnyone predicts alpha only. ``fgr`` is the input frame's colour (the usual straight-colour
approximation; it is exact where alpha is 1 and unused where alpha is 0). The official demo's
"fgr" output is a green composite instead, which is not a foreground.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.matanyone import MatAnyone
from .matanyone import InferenceCore, MatAnyoneSettings, start
from .matanyone.preprocess import image_to_tensor


class MatAnyoneMatter:
    def __init__(self, network: MatAnyone, mask: np.ndarray, settings: MatAnyoneSettings | None = None,
                 device: torch.device | str = "cpu", description: str = "MatAnyone (PyTorch)") -> None:
        self.core = InferenceCore(network.to(device), settings)
        self.mask = np.asarray(mask)
        self.description = description
        self.reset()

    def reset(self, concurrent_io: bool = False) -> None:
        """Start a new video (the next frame is its first and gets the mask)."""
        self._started = False

    def set_mask(self, mask: np.ndarray) -> None:
        """A new target for the next video (takes effect at the next :meth:`reset`)."""
        self.mask = np.asarray(mask)

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        if not self._started:
            out = start(self.core, image, self.mask)
            self._started = True
        else:
            out = self.core.step(image_to_tensor(image, self.core.device))
        alpha = out.alpha[0].float().cpu().numpy()
        fgr = None
        if foreground:
            scale = 1.0 / 65535.0 if image.dtype == np.uint16 else 1.0 / 255.0
            fgr = image.astype(np.float32) * np.float32(scale)
        return fgr, alpha
