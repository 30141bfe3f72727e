"""Training checkpoints: model, optimizer, step, config and RNG state, for an exact resume.

The data order needs no saved state: samples are a function of (seed, step, rank) (see
:mod:`.data.datasets`), so the step is enough. Files are written under a temporary name and
renamed, so a crash mid-write never leaves a checkpoint that looks complete, and read back with
``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from vmatte.errors import WeightsError

LATEST = "latest.pt"


def checkpoint_dir(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "checkpoints"


def save_checkpoint(
    out_dir: str | os.PathLike,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    config: dict[str, Any],
) -> Path:
    """Write ``checkpoints/step_NNNNNNN.pt`` and point ``latest.pt`` at the same content."""
    folder = checkpoint_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": config,
        "torch_rng": torch.get_rng_state(),
    }
    path = folder / f"step_{step:07d}.pt"
    for target in (path, folder / LATEST):
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, target)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path).expanduser()
    if p.is_dir():  # a run folder or its checkpoints/ folder: the latest one
        p = p / LATEST if (p / LATEST).is_file() else checkpoint_dir(p) / LATEST
    if not p.is_file():
        raise WeightsError(f"checkpoint {p} not found; give a checkpoint file or a run folder")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable
        raise WeightsError(
            f"cannot read checkpoint {p} ({type(e).__name__}); it is corrupt or not a training checkpoint"
        ) from None
    if not isinstance(state, dict) or not {"step", "model", "optimizer"} <= set(state):
        raise WeightsError(f"{p} is not a training checkpoint (needs step, model and optimizer)")
    return state
