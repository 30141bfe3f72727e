"""SAM 2 / SAM 2.1 (Ravi et al., 2024): the single-image path for point prompts, and the video path.

- :class:`Sam2` - Hiera image encoder + SAM prompt encoder and mask decoder, official key layout.
- :class:`Sam2Video` - plus the memory encoder, memory attention and object pointers (tracking),
  loaded from the full checkpoint by :func:`sam2_video_from_state_dict`.
- :func:`sam2_from_state_dict` - size and version read from an official checkpoint, strict load.
- :data:`SAM2_CONFIGS` - the official tiny/small/base_plus/large sizes of SAM 2 and SAM 2.1.
"""

from .build import VIDEO_ONLY_PREFIXES, infer_config, sam2_from_state_dict, sam2_video_from_state_dict
from .config import SAM2_CONFIGS, Sam2Config
from .sam2 import Sam2
from .video import NO_OBJ_SCORE, FrameFeatures, Sam2Video, SamOutput

__all__ = [
    "NO_OBJ_SCORE",
    "SAM2_CONFIGS",
    "VIDEO_ONLY_PREFIXES",
    "FrameFeatures",
    "Sam2",
    "Sam2Config",
    "Sam2Video",
    "SamOutput",
    "infer_config",
    "sam2_from_state_dict",
    "sam2_video_from_state_dict",
]
