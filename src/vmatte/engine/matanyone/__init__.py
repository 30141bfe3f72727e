"""Streaming MatAnyone inference: the memory lives here, the network in vmatte.models.

- :func:`prepare_network` - the network as vmatte runs it (BatchNorm folded, NHWC on the CPU).
- :class:`MatAnyoneSettings` - mem_every, max_mem_frames, top_k, warmup_frames, mask clean-up.
- :class:`InferenceCore` - ``step(image, mask=None, first_frame_pred=False)``, one per call.
- :func:`iter_alpha` - the official call sequence over a frame stream (warm-up included).
- :class:`MemoryManager`, :func:`region_adaptive_fusion` - working/object/sensory memory.
"""

from .core import InferenceCore, StepOutput
from .memory import MemoryManager, get_similarity, region_adaptive_fusion, top_k_softmax
from .optimise import prepare_network
from .preprocess import pad_divide_by, prepare_mask, unpad
from .settings import MatAnyoneSettings
from .stream import first_frame_mask, iter_alpha, reinitialise, start

__all__ = [
    "InferenceCore",
    "MatAnyoneSettings",
    "MemoryManager",
    "StepOutput",
    "first_frame_mask",
    "get_similarity",
    "iter_alpha",
    "pad_divide_by",
    "prepare_mask",
    "prepare_network",
    "region_adaptive_fusion",
    "reinitialise",
    "start",
    "top_k_softmax",
    "unpad",
]
