"""Rebuild an RVM state_dict from the official ONNX export.

The export (e.g. ``rvm_mobilenetv3_fp32.onnx``) stores weights two ways:

- Parameters that had no BatchNorm after them keep their PyTorch names as initializers (SE
  fc1/fc2, ``aspp.aspp2.1.weight``, the ConvGRU convs, ``project_mat``, the refiner's box
  filter and last conv).
- Every (Conv2d, BatchNorm2d) pair was folded into one conv with a bias, stored under a numeric
  name. Graph order of those Conv nodes equals the order of the pairs in the module tree.

A folded conv computes ``W x + b``. Putting ``W`` in the conv and making the BatchNorm the
affine map ``y + b`` (weight 1, bias b, running_mean 0, running_var 1 - eps, so
sqrt(var + eps) = 1) reproduces it exactly, and the result loads with ``strict=True``.

``project_seg`` (the segmentation head, used only in training) is not in the export.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .fuse import conv_bn_pairs
from .model import RobustVideoMatting, Variant

if TYPE_CHECKING:
    import onnx

# Keys the ONNX export cannot provide. ``state_dict_from_onnx(fill_missing=True)`` returns them
# zero-initialised (segmentation logits of 0: meaningless, but harmless for matting).
MISSING_FROM_ONNX: tuple[str, ...] = ("project_seg.conv.weight", "project_seg.conv.bias")

_EXPECTED_INPUTS = ("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio")
_EXPECTED_OUTPUTS = ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")


def _conv_attrs(node: onnx.NodeProto) -> dict[str, object]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _check_conv_matches(node: onnx.NodeProto, conv: nn.Conv2d, name: str) -> None:
    """The folded weight shape alone could coincide; stride/group/dilation make a mismatch in
    the pairing order (a different architecture) fail loudly instead of loading garbage."""
    attrs = _conv_attrs(node)
    got = (
        tuple(attrs.get("strides", (1, 1))),
        int(attrs.get("group", 1)),
        tuple(attrs.get("dilations", (1, 1))),
    )
    want = (tuple(conv.stride), conv.groups, tuple(conv.dilation))
    if got != want:
        raise ValueError(
            f"ONNX Conv node {node.name or node.output[0]!r} (strides, group, dilations) = {got} "
            f"does not match {name} {want}: not an RVM export of this variant"
        )


def state_dict_from_onnx(
    model: onnx.ModelProto, variant: Variant = "mobilenetv3", *, fill_missing: bool = True
) -> dict[str, torch.Tensor]:
    """State_dict for ``RobustVideoMatting(variant)`` from the official RVM ONNX export.

    fill_missing: include the keys in ``MISSING_FROM_ONNX`` as zeros so the result loads with
        ``strict=True``; with ``False`` they are left out (load with ``strict=False``, or keep
        the model's own initialisation).

    Raises ValueError when the graph is not an RVM export matching ``variant``.
    Only the MobileNetV3 export is published; the mapping is generic over the module tree and
    validated conv by conv, so another variant's export is accepted only if it fits exactly.
    """
    from onnx import numpy_helper

    graph = model.graph
    inputs = tuple(i.name for i in graph.input if i.name not in {t.name for t in graph.initializer})
    outputs = tuple(o.name for o in graph.output)
    if inputs != _EXPECTED_INPUTS or outputs != _EXPECTED_OUTPUTS:
        raise ValueError(
            f"not an RVM ONNX export: inputs {list(inputs)}, outputs {list(outputs)}; expected "
            f"{list(_EXPECTED_INPUTS)} -> {list(_EXPECTED_OUTPUTS)}"
        )

    template = RobustVideoMatting(variant)
    template_sd = template.state_dict()
    initializers = {t.name: t for t in graph.initializer}
    pairs = conv_bn_pairs(template)
    paired = {f"{conv}.weight" for conv, _ in pairs} | {
        f"{bn}.{field}"
        for _, bn in pairs
        for field in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    }
    named = [k for k in template_sd if k not in paired and k not in MISSING_FROM_ONNX]

    def tensor(name: str) -> torch.Tensor:
        array = numpy_helper.to_array(initializers[name])
        return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))

    out: dict[str, torch.Tensor] = {}

    # 1. Initializers that kept their PyTorch names.
    missing = [k for k in named if k not in initializers]
    if missing:
        raise ValueError(
            f"ONNX graph lacks {len(missing)} named RVM {variant} initializer(s), e.g. {missing[:3]}: "
            "not an RVM export of this variant"
        )
    for key in named:
        value = tensor(key)
        if value.shape != template_sd[key].shape:
            raise ValueError(
                f"ONNX initializer {key!r} has shape {tuple(value.shape)}, RVM {variant} expects "
                f"{tuple(template_sd[key].shape)}: not an RVM export of this variant"
            )
        out[key] = value

    # 2. Folded conv+BN pairs: Conv nodes whose weight is an initializer without a model name,
    #    in graph order.
    folded_nodes = [
        node
        for node in graph.node
        if node.op_type == "Conv" and node.input[1] in initializers and node.input[1] not in template_sd
    ]
    if len(folded_nodes) != len(pairs):
        raise ValueError(
            f"ONNX graph has {len(folded_nodes)} folded Conv nodes, RVM {variant} has {len(pairs)} "
            "conv+BatchNorm pairs: not an RVM export of this variant"
        )
    for node, (conv_name, bn_name) in zip(folded_nodes, pairs):
        conv = template.get_submodule(conv_name)
        bn = template.get_submodule(bn_name)
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        _check_conv_matches(node, conv, conv_name)
        weight = tensor(node.input[1])
        if weight.shape != conv.weight.shape:
            raise ValueError(
                f"ONNX Conv weight {node.input[1]!r} has shape {tuple(weight.shape)}, RVM {variant} "
                f"expects {tuple(conv.weight.shape)} for {conv_name}: not an RVM export of this variant"
            )
        if len(node.input) < 3 or node.input[2] not in initializers:
            raise ValueError(f"ONNX Conv {node.input[1]!r} ({conv_name}) has no constant bias: BatchNorm not folded")
        bias = tensor(node.input[2])
        if bias.shape != (conv.out_channels,):
            raise ValueError(
                f"ONNX Conv bias {node.input[2]!r} has shape {tuple(bias.shape)}, expected ({conv.out_channels},)"
            )
        out[f"{conv_name}.weight"] = weight
        out[f"{bn_name}.weight"] = torch.ones_like(bias)
        out[f"{bn_name}.bias"] = bias
        out[f"{bn_name}.running_mean"] = torch.zeros_like(bias)
        out[f"{bn_name}.running_var"] = torch.full_like(bias, 1.0 - bn.eps)
        out[f"{bn_name}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)

    if fill_missing:
        for key in MISSING_FROM_ONNX:
            out[key] = torch.zeros_like(template_sd[key])
    return out
