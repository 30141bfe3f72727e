"""Robust Video Matting (RVM): network modules and weight conversion.

- :class:`RobustVideoMatting` - the network (MobileNetV3 or ResNet-50 variant), official key layout.
- :func:`auto_downsample_ratio` - the internal resolution heuristic.
- :func:`state_dict_from_onnx` - weights from the official ONNX export (needs ``onnx``).
"""

from .from_onnx import MISSING_FROM_ONNX, state_dict_from_onnx
from .model import RobustVideoMatting, auto_downsample_ratio

__all__ = ["MISSING_FROM_ONNX", "RobustVideoMatting", "auto_downsample_ratio", "state_dict_from_onnx"]
