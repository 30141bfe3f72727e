"""Conv + BatchNorm pairing and folding.

At inference a BatchNorm is a fixed per-channel affine map, so it can be folded into the
convolution before it: W' = W * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta.
That removes one full pass over every feature map. The same pairing tells the ONNX converter
where the (already folded) weights of the official export belong.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv name, BatchNorm name) for every BatchNorm2d, paired with the last Conv2d that
    precedes it in module-definition order. Every network here defines its modules in
    execution order, so this is also the order in which they run."""
    pairs: list[tuple[str, str]] = []
    last_conv: str | None = None
    for name, child in module.named_modules():
        if isinstance(child, nn.Conv2d):
            last_conv = name
        elif isinstance(child, nn.BatchNorm2d):
            if last_conv is None:
                raise ValueError(f"BatchNorm {name!r} has no preceding Conv2d")
            pairs.append((last_conv, name))
            last_conv = None
    return pairs


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` (its running statistics, i.e. eval behaviour) into ``conv`` in place."""
    # Compute in float64: the fold itself should not add error on top of float32 inference.
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    weight = conv.weight.double() * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    bias = (bias - bn.running_mean.double()) * scale + bn.bias.double()
    conv.weight.copy_(weight.to(conv.weight.dtype))
    if conv.bias is None:
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype))
    else:
        conv.bias.copy_(bias.to(conv.bias.dtype))


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


def fuse_conv_bn_(module: nn.Module) -> int:
    """Fold every BatchNorm2d into its preceding Conv2d and replace the BatchNorm with
    ``nn.Identity``, in place. Inference only (training would need the BatchNorm back).
    Returns the number of folded pairs."""
    pairs = conv_bn_pairs(module)
    for conv_name, bn_name in pairs:
        conv = module.get_submodule(conv_name)
        bn = module.get_submodule(bn_name)
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError(f"BatchNorm {bn_name!r} tracks no running statistics; cannot fold")
        fold_batchnorm(conv, bn)
        _set_submodule(module, bn_name, nn.Identity())
    return len(pairs)
