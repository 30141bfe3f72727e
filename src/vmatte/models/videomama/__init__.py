"""VideoMaMa: per-frame coarse masks -> mattes, one SVD UNet evaluation per chunk of frames."""

from .config import VideoMaMaConstants, svd_unet_config, svd_vae_config, tiny_unet_config, tiny_vae_config
from .network import NetworkShape, VideoMaMa

__all__ = [
    "NetworkShape",
    "VideoMaMa",
    "VideoMaMaConstants",
    "svd_unet_config",
    "svd_vae_config",
    "tiny_unet_config",
    "tiny_vae_config",
]
