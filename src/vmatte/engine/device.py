"""Which device a model runs on and in which precision: one check for every model."""

from __future__ import annotations

import torch

from ..errors import VmatteError
from .options import PRECISIONS


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, else Apple MPS, else the CPU; any other name must be usable here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise VmatteError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):  # meta, xla, ...: PyTorch knows them, vmatte cannot run there
        raise VmatteError(f"vmatte cannot run on device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VmatteError("device cuda requested but no CUDA GPU/PyTorch CUDA build is available; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise VmatteError(
            f"device {name} requested but this machine has {torch.cuda.device_count()} CUDA GPU(s); "
            f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}"
        )
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise VmatteError("device mps requested but Apple MPS is not available; use --device cpu")
    return device


def check_precision(precision: str, dev: torch.device) -> None:
    if precision not in PRECISIONS:
        raise VmatteError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "fp16" and dev.type == "cpu":
        raise VmatteError("--precision fp16 needs a GPU (cuda or mps); on the CPU use bf16 or fp32")
