"""Configurations of VideoMaMa's two networks (diffusers config dicts) and its inference constants.

The real networks are those of Stable Video Diffusion img2vid-xt (the UNet with a 12-channel
input, fine-tuned by VideoMaMa; the VAE unchanged) and are built from the ``config.json`` files of
their hub folders. The tiny configurations build the *same classes* with a few thousand
parameters, so the tests run the real code path on a CPU in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

# 4 noise latent + 4 latent of the RGB frames + 4 latent of the mask rendered as an image.
UNET_IN_CHANNELS = 12
LATENT_CHANNELS = 4


@dataclass(frozen=True)
class VideoMaMaConstants:
    """What the released one-step inference feeds the SVD UNet besides the latents.

    Read from the authors' released inference code (see docs/videomama.md): the CLIP image
    embedding is replaced by zeros (``encoder_hidden_states``), the added time ids are
    ``(fps, motion_bucket_id, noise_aug_strength) = (7, 127, 0)``, the timestep given to the UNet
    is 1, and the UNet output *is* the matte latent (no scheduler step).
    """

    fps_id: float = 7.0
    motion_bucket_id: float = 127.0
    noise_aug_strength: float = 0.0
    timestep: float = 1.0
    seed: int = 42  # the noise latent: a fixed draw, so a chunk's result does not depend on the run
    decode_frames: int = 8  # VAE decode batch (frames), as the released code: bounds decoder memory


def tiny_unet_config() -> dict:
    """A UNetSpatioTemporalConditionModel config with the real block types, a few 10k parameters."""
    return {
        "in_channels": UNET_IN_CHANNELS,
        "out_channels": LATENT_CHANNELS,
        "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
        "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
        "block_out_channels": [32, 64],
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 24,  # 3 added time ids x 8
        "layers_per_block": 1,
        "cross_attention_dim": 32,
        "num_attention_heads": [2, 4],
        "num_frames": 16,
    }


def tiny_vae_config() -> dict:
    """An AutoencoderKLTemporalDecoder config (2 levels: latents at 1/2 size instead of 1/8)."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
        "block_out_channels": [32, 32],
        "layers_per_block": 1,
        "latent_channels": LATENT_CHANNELS,
        "scaling_factor": 0.18215,
    }


def svd_unet_config() -> dict:
    """The img2vid-xt UNet's shape with VideoMaMa's 12 input channels (diffusers' defaults are SVD's):
    for speed/memory figures with random weights where the real ones cannot be had."""
    return {"in_channels": UNET_IN_CHANNELS, "out_channels": LATENT_CHANNELS, "num_frames": 25}


def svd_vae_config() -> dict:
    """The SVD VAE's shape (4 levels, latents at 1/8 size)."""
    return {
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2,
        "latent_channels": LATENT_CHANNELS,
        "scaling_factor": 0.18215,
    }
