"""Segment Anything v1 (Kirillov et al., ICCV 2023) as plain modules with the official key layout.

- :class:`Sam` - image encoder (ViT), prompt encoder, mask decoder; ``encode_image`` / ``decode``.
- :func:`sam_from_state_dict` - the network for an official ``sam_vit_{b,l,h}`` state_dict (or any
  size), config read from the tensor shapes.
"""

from .build import config_from_state_dict, sam_from_state_dict
from .config import SAM_CONFIGS, SamConfig
from .sam import Sam

__all__ = ["SAM_CONFIGS", "Sam", "SamConfig", "config_from_state_dict", "sam_from_state_dict"]
