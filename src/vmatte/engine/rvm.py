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

    def reset(self, concurrent_io: bool = False) -> None:
        """Start a new video; ``concurrent_io``: encoder threads run beside the model."""
        ...

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """``(fgr HxWx3, alpha HxW)`` float32; ``foreground=False`` skips fgr (returns None)."""
        ...


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

    def reset(self, concurrent_io: bool = False) -> None:
        self._rec: list[torch.Tensor | None] = [None] * 4

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        if image.dtype == np.uint8:  # move bytes, convert on the device: 4x less host->device traffic
            t = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, non_blocking=True)
        else:
            t = torch.from_numpy(image.astype(np.float32)).to(self.device)
        return t.permute(2, 0, 1).unsqueeze(0).to(self.dtype).mul_(image_scale(image))

    @torch.inference_mode()
    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        src = self.to_tensor(image)
        fgr, pha, *self._rec = self.model(src, *self._rec, downsample_ratio=ratio_for(image, self.settings))
        if foreground:  # HWC copy of a full-res float image: ~25 MB at 1080p, skipped when unused
            fgr = np.ascontiguousarray(fgr[0].permute(1, 2, 0).float().cpu().numpy())
        return fgr if foreground else None, pha[0, 0].float().cpu().numpy()


class RVMOnnx:
    """The official ONNX graph on onnxruntime. Note: that export runs the refiner even at ratio 1."""

    def __init__(self, onnx_path: str, settings: RVMSettings, threads: int | None = None,
                 description: str = "RVM (onnxruntime)"):
        self.onnx_path = onnx_path
        self.threads = threads
        self.settings = settings
        self.description = description
        self._sessions: dict[bool, object] = {}
        self.reset()

    def _session(self, concurrent_io: bool):
        """One session per threading mode, made on first use.

        ORT's workers spin between operators, which is fastest when the model has the cores to
        itself (frames consumed by a program), but while encoder threads run beside it spinning
        steals their cores: measured at 512x288, file-to-file is faster with spinning off.
        """
        if concurrent_io not in self._sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = self.threads
            if concurrent_io:
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            else:  # spin inside a frame, stop as soon as it returns
                opts.add_session_config_entry("session.force_spinning_stop", "1")
            self._sessions[concurrent_io] = ort.InferenceSession(self.onnx_path, opts, providers=["CPUExecutionProvider"])
        return self._sessions[concurrent_io]

    def reset(self, concurrent_io: bool = False) -> None:
        self._rec: list | None = None  # OrtValues r1..r4 of the last frame; None: the zero state
        self._concurrent_io = concurrent_io
        self._src: np.ndarray | None = None

    def to_input(self, image: np.ndarray) -> np.ndarray:
        """[1,3,H,W] float32 in [0,1], written into one buffer reused frame after frame (a new
        24 MB array per 1080p frame costs page faults as well as the copy)."""
        h, w = image.shape[:2]
        if self._src is None or self._src.shape != (1, 3, h, w):
            self._src = np.empty((1, 3, h, w), np.float32)
        np.multiply(image.transpose(2, 0, 1)[None], np.float32(image_scale(image)), out=self._src, casting="unsafe")
        return self._src

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """One frame through an IO binding: the recurrent state stays in onnxruntime's own
        buffers (OrtValues bound as the next frame's inputs, never copied to numpy), and only
        the outputs asked for are copied out."""
        import onnxruntime as ort

        session = self._session(self._concurrent_io)
        binding = session.io_binding()
        binding.bind_cpu_input("src", self.to_input(image))
        binding.bind_cpu_input("downsample_ratio", np.array([ratio_for(image, self.settings)], np.float32))
        if self._rec is None:  # the graph broadcasts this initial state
            self._rec = [np.zeros((1, 1, 1, 1), np.float32)] * 4
        for i, r in enumerate(self._rec):  # numpy after a reset or a --resume, OrtValues after a frame
            if not isinstance(r, ort.OrtValue):
                r = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(r, np.float32))
            binding.bind_ortvalue_input(f"r{i + 1}i", r)
        for name in ("fgr", "pha", "r1o", "r2o", "r3o", "r4o"):
            binding.bind_output(name, "cpu")
        session.run_with_iobinding(binding)
        fgr, pha, *self._rec = binding.get_outputs()
        alpha = pha.numpy()[0, 0]
        return np.ascontiguousarray(fgr.numpy()[0].transpose(1, 2, 0)) if foreground else None, alpha


class RVMAuto:
    """The shipped MobileNetV3 weights on the CPU, on whichever runtime is faster for this video.

    Measured on 2 cores (benchmarks/speed.py): onnxruntime wins while the network's input is
    small (128 px long side: 5.4 vs 11.6 ms/frame), PyTorch wins from ~300 px up (480 px, the
    default for HD: 69 vs 82-89 ms). The choice is made per video, from its first frame. Both
    compute the same network (max difference ~1e-5); the ONNX path is only used when the ratio
    is below 1, where both run the refiner, so results do not depend on the choice.
    """

    ONNX_MAX_SIDE = 288

    def __init__(self, make_torch, onnx: RVMOnnx, settings: RVMSettings, description: str):
        self._make_torch = make_torch
        self._torch: RVMTorch | None = None
        self.onnx = onnx
        self.settings = settings
        self.description = description
        self.reset()

    def reset(self, concurrent_io: bool = False) -> None:
        self._active: FrameMatter | None = None
        self._concurrent_io = concurrent_io

    def choose(self, image: np.ndarray) -> FrameMatter:
        ratio = ratio_for(image, self.settings)
        if ratio < 1 and max(image.shape[:2]) * ratio <= self.ONNX_MAX_SIDE:
            return self.onnx
        if self._torch is None:
            self._torch = self._make_torch()
        return self._torch

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        if self._active is None:
            self._active = self.choose(image)
            self._active.reset(self._concurrent_io)
        return self._active.step(image, foreground)
