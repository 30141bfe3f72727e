"""The network as vmatte runs it: what is done once at load time so that every frame is cheaper.

Each choice here was measured side by side against the official layout on the same frames
(``benchmarks/speed_matanyone.py``, A B A B in one process) and keeps the outputs within the
numeric fixture's tolerance (``tests/test_matanyone_fixture.py`` runs both paths).

- Frozen BatchNorm folded into the convolution before it (exact up to float rounding).
- On the CPU, the encoders in channels-last (NHWC) memory layout.
- Optional (``winograd=True`` or ``VMATTE_WINOGRAD=1``): every 3x3 stride-1 convolution on the
  CPU as a Winograd transform (NNPACK, bundled with PyTorch): F(6x6, 3x3) needs about a quarter
  of the multiplications, at a relative error of ~1e-5 (the fixture allows 5e-4 on alpha). It
  is off by default because it did not pay end to end where it was measured last: on a quiet
  2-core AMD EPYC, 512x288, 2 threads, 8 alternating steps, fused NHWC ran at 1.15x the
  official layout (median; min 1.02x) and fused + Winograd at 0.78x (min 0.87x)
  (``benchmarks/speed_matanyone.py`` compares the default with the official layout).
  Measure on your CPU before turning it on.
- Optional (``compile=True`` or ``VMATTE_COMPILE=1``): the encoders, decoder, pixel fuser and
  object transformer through ``torch.compile`` (Inductor) with weight freezing, which fuses the
  decoder's memory-bound chains (bilinear x2 + skip + ReLU at full resolution) into single
  passes and pre-packs the convolution weights. It costs a compile of tens of seconds per new
  frame size (and per target count), so it pays on long clips only; off by default. Measured
  with ``benchmarks/speed_matanyone.py --compile`` (see the README's speed section). Needs a C++
  compiler on the CPU (Inductor generates C++); without one, vmatte says so and runs uncompiled.
"""

from __future__ import annotations

import os
import shutil
import warnings

import torch
from torch import Tensor, nn

from ...models.matanyone import MatAnyone


class WinogradConv2d(nn.Conv2d):
    """A 3x3, stride 1, dilation 1, ungrouped ``nn.Conv2d`` computed by NNPACK's Winograd
    convolution on the CPU (inference only: NNPACK has no backward here); anything else, e.g.
    a tensor that needs a gradient or lives on a GPU, takes the ordinary path."""

    @staticmethod
    def eligible(conv: nn.Module) -> bool:
        return (
            type(conv) is nn.Conv2d
            and conv.kernel_size == (3, 3)
            and conv.stride == (1, 1)
            and conv.dilation == (1, 1)
            and conv.groups == 1
            and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple)
        )

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> WinogradConv2d:
        new = cls(
            conv.in_channels,
            conv.out_channels,
            3,
            padding=conv.padding,
            bias=conv.bias is not None,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
        )
        new.weight = conv.weight
        new.bias = conv.bias
        return new

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)
        weight = self.weight.contiguous()
        return torch._nnpack_spatial_convolution(x.contiguous(), weight, self.bias, list(self.padding))


def use_winograd_(module: nn.Module) -> int:
    """Swap every eligible convolution of ``module`` for a :class:`WinogradConv2d` sharing its
    parameters (state_dict keys unchanged), in place. -> how many were swapped (0 without NNPACK)."""
    if not torch._nnpack_available():
        return 0
    swapped = 0
    for child in list(module.modules()):
        for attr, conv in list(child.named_children()):
            if WinogradConv2d.eligible(conv):
                setattr(child, attr, WinogradConv2d.from_conv(conv))
                swapped += 1
    return swapped


# The per-frame modules worth compiling (key projection, change probability: too small to pay).
COMPILED_PARTS = ("pixel_encoder", "mask_encoder", "mask_decoder", "object_transformer", "pixel_fuser")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def compile_network_(network: MatAnyone, device: torch.device | str = "cpu") -> bool:
    """``torch.compile`` (Inductor, frozen weights, static shapes) on :data:`COMPILED_PARTS`, in
    place (state_dict keys unchanged). -> whether it was applied (not without a C++ compiler on
    the CPU). The compile itself happens at the first step of each new input shape."""
    if (
        torch.device(device).type == "cpu"
        and shutil.which(os.environ.get("CXX", "g++")) is None
        and shutil.which("c++") is None
    ):
        warnings.warn("VMATTE_COMPILE: no C++ compiler (g++) found for torch.compile; running uncompiled", stacklevel=2)
        return False
    for name in COMPILED_PARTS:
        getattr(network, name).compile(dynamic=False, options={"freezing": True})
    return True


def prepare_network(
    network: MatAnyone, device: torch.device | str, winograd: bool | None = None, compile: bool | None = None
) -> MatAnyone:
    """Load weights (and move to ``device``) first; the state_dict is no longer the official
    layout afterwards. ``winograd`` (CPU only; None: the ``VMATTE_WINOGRAD`` environment
    variable, default off); ``compile`` (None: ``VMATTE_COMPILE``, default off)."""
    device = torch.device(device)
    if winograd is None:
        winograd = _env_flag("VMATTE_WINOGRAD")
    if compile is None:
        compile = _env_flag("VMATTE_COMPILE")
    cpu = device.type == "cpu"
    network.eval().fuse_for_inference(channels_last=cpu and not winograd)
    if cpu and winograd:
        use_winograd_(network)
    if compile:
        compile_network_(network, device)
    return network
