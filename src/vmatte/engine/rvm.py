"""Per-frame RVM inference: the recurrent state lives here, not in the model.

Two interchangeable backends compute the same network:
- :class:`RVMTorch` runs vmatte's PyTorch module (any device, any RVM checkpoint);
- :class:`RVMOnnx` runs the official ONNX export on onnxruntime (CPU), used where it is faster.
Both take an RGB frame (uint8 or uint16 HxWx3) and return ``(fgr HxWx3, alpha HxW)`` float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..models.rvm import RobustVideoMatting, auto_downsample_ratio


class FrameMatter(Protocol):
    """A streaming matting step: call :meth:`reset` at the start of each video."""

    description: str

    def reset(self) -> None: ...

    def step(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class RVMSettings:
    downsample_ratio: float | None = None  # None: chosen per video from its size (rvm.md guidance)
    max_size: int | None = None  # long side of the internal (downsampled) resolution


def image_scale(image: np.ndarray) -> float:
    return 1.0 / 65535.0 if image.dtype == np.uint16 else 1.0 / 255.0


def ratio_for(image: np.ndarray, settings: RVMSettings) -> float:
    if settings.downsample_ratio is not None:
        return float(settings.downsample_ratio)
    h, w = image.shape[:2]
    return auto_downsample_ratio(h, w, settings.max_size)


class RVMTorch:
    def __init__(self, model: RobustVideoMatting, device: torch.device, settings: RVMSettings,
                 dtype: torch.dtype = torch.float32, description: str = "RVM (PyTorch)"):
        self.model = model.eval().to(device=device, dtype=dtype)
        self.device = device
        self.dtype = dtype
        self.settings = settings
        self.description = description
        self.reset()

    def reset(self) -> None:
        self._rec: list[torch.Tensor | None] = [None] * 4

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        if image.dtype == np.uint8:  # move bytes, convert on the device: 4x less host->device traffic
            t = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, non_blocking=True)
        else:
            t = torch.from_numpy(image.astype(np.float32)).to(self.device)
        return t.permute(2, 0, 1).unsqueeze(0).to(self.dtype).mul_(image_scale(image))

    @torch.inference_mode()
    def step(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        src = self.to_tensor(image)
        fgr, pha, *self._rec = self.model(src, *self._rec, downsample_ratio=ratio_for(image, self.settings))
        fgr = fgr[0].permute(1, 2, 0).float().cpu().numpy()
        return np.ascontiguousarray(fgr), pha[0, 0].float().cpu().numpy()


class RVMOnnx:
    """The official ONNX graph on onnxruntime. Note: that export runs the refiner even at ratio 1."""

    def __init__(self, onnx_path: str, settings: RVMSettings, threads: int | None = None,
                 description: str = "RVM (onnxruntime)"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        self.settings = settings
        self.description = description
        self.reset()

    def reset(self) -> None:
        zero = np.zeros((1, 1, 1, 1), np.float32)  # the graph broadcasts this initial state
        self._rec = [zero] * 4

    @staticmethod
    def to_input(image: np.ndarray) -> np.ndarray:
        src = image.transpose(2, 0, 1)[None].astype(np.float32)
        src *= image_scale(image)
        return src

    def step(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feeds = {"src": self.to_input(image), "downsample_ratio": np.array([ratio_for(image, self.settings)], np.float32)}
        feeds.update({f"r{i + 1}i": r for i, r in enumerate(self._rec)})
        fgr, pha, *self._rec = self.session.run(None, feeds)
        return np.ascontiguousarray(fgr[0].transpose(1, 2, 0)), pha[0, 0]
