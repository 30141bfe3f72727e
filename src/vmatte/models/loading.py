"""Putting a state_dict into a network: strict, with every mismatch named in one line.

Here, not in :mod:`vmatte.weights`, because a network never fetches its own weights: callers
resolve the tensors (the weights store) and the model builders only load what they are given.
"""

from __future__ import annotations

import torch

from ..errors import WeightsError


def load_into(
    model: torch.nn.Module,
    sd: dict[str, torch.Tensor],
    source: str,
    optional: tuple[str, ...] = (),
    assign: bool = False,
) -> None:
    """Strict load that reports missing/unexpected keys in one line; ``optional`` prefixes may be absent.
    ``assign``: the tensors replace the parameters (a model built on the meta device: no second copy)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd and not k.startswith(optional)]
    unexpected = [k for k in sd if k not in expected]
    shapes = [k for k in sd if k in expected and sd[k].shape != expected[k].shape]
    if missing or unexpected or shapes:

        def few(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {few(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} keys with wrong shapes: {few(shapes)}")
        raise WeightsError(
            f"weights from {source} do not fit {type(model).__name__}: {'; '.join(parts)}; "
            f"check that --model matches the checkpoint"
        )
    model.load_state_dict(sd, strict=False, assign=assign)
