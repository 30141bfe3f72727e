"""SAM 2 / SAM 2.1 (Ravi et al., 2024): the single-image path, for point prompts.

- :class:`Sam2` - Hiera image encoder + SAM prompt encoder and mask decoder, official key layout.
- :func:`sam2_from_state_dict` - size and version read from an official checkpoint, strict load.
- :data:`SAM2_CONFIGS` - the official tiny/small/base_plus/large sizes of SAM 2 and SAM 2.1.
"""

from .build import VIDEO_ONLY_PREFIXES, infer_config, sam2_from_state_dict
from .config import SAM2_CONFIGS, Sam2Config
from .sam2 import Sam2

__all__ = ["SAM2_CONFIGS", "VIDEO_ONLY_PREFIXES", "Sam2", "Sam2Config", "infer_config", "sam2_from_state_dict"]
