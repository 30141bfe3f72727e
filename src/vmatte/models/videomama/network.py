"""VideoMaMa (Lim et al., 2026): mask-to-matte with a one-step video diffusion prior.

A plain ``nn.Module``, tensors in and out: ``forward(frames, masks)`` takes a chunk of T frames
and their coarse masks at the network's resolution and returns T mattes. The two networks are
diffusers' Stable Video Diffusion classes:

* ``vae`` (:class:`AutoencoderKLTemporalDecoder`) encodes the frames and the masks (rendered as
  grey 3-channel images in [-1, 1]) into 4-channel latents, and decodes the matte latent; its
  decoder is temporal (it mixes the frames it decodes together);
* ``unet`` (:class:`UNetSpatioTemporalConditionModel`, 12 input channels: 4 noise + 4 frame
  latent + 4 mask latent) runs **once** per chunk; its output is the matte latent.

Conditioning as the released inference code does it (see :class:`VideoMaMaConstants` and
docs/videomama.md): zero CLIP embedding, added time ids (7, 127, 0), timestep 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import UNET_IN_CHANNELS, VideoMaMaConstants


@dataclass(frozen=True)
class NetworkShape:
    """Pixel geometry the networks impose on the input canvas."""

    vae_scale: int  # pixels per latent cell (8 for the SVD VAE)
    multiple: int  # canvas sides must be multiples of this (VAE scale x UNet downsampling)


class VideoMaMa(nn.Module):
    def __init__(self, unet: nn.Module, vae: nn.Module, constants: VideoMaMaConstants = VideoMaMaConstants()):
        super().__init__()
        if unet.config.in_channels != UNET_IN_CHANNELS:
            raise ValueError(
                f"VideoMaMa's UNet takes {UNET_IN_CHANNELS} input channels, this one "
                f"{unet.config.in_channels}: it is not a VideoMaMa UNet"
            )
        self.unet = unet
        self.vae = vae
        self.constants = constants

    @classmethod
    def from_config(
        cls,
        unet_config: dict,
        vae_config: dict,
        constants: VideoMaMaConstants = VideoMaMaConstants(),
        empty: bool = False,
    ) -> VideoMaMa:
        """Build both networks from their configs (random weights); ``empty``: on the meta device, no
        memory, for weights loaded afterwards with ``load_state_dict(..., assign=True)``."""
        from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel

        with torch.device("meta") if empty else torch.device("cpu"):
            unet = UNetSpatioTemporalConditionModel.from_config(unet_config)
            vae = AutoencoderKLTemporalDecoder.from_config(vae_config)
        return cls(unet, vae, constants)

    @property
    def shape(self) -> NetworkShape:
        vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        unet_down = 2 ** (len(self.unet.config.down_block_types) - 1)
        return NetworkShape(vae_scale, vae_scale * unet_down)

    def _encode(self, images: Tensor) -> Tensor:
        """[N, 3, H, W] in [-1, 1] -> [N, 4, h, w]: the posterior mean, unscaled (as SVD conditions on
        image latents); encoded ``decode_frames`` at a time to bound activation memory."""
        step = self.constants.decode_frames
        return torch.cat(
            [self.vae.encode(images[i : i + step]).latent_dist.mode() for i in range(0, len(images), step)]
        )

    def _noise(self, like: Tensor) -> Tensor:
        # Drawn on the CPU from a fixed seed: the same chunk gives the same matte on any device/run.
        g = torch.Generator("cpu").manual_seed(self.constants.seed)
        return torch.randn(like.shape, generator=g).to(like.device, like.dtype)

    def forward(self, frames: Tensor, masks: Tensor) -> Tensor:
        """``frames`` [T, 3, H, W] in [-1, 1], ``masks`` [T, 1, H, W] in [0, 1] -> mattes [T, H, W] in [0, 1].

        H and W must be multiples of :attr:`shape`.multiple."""
        t, _, h, w = frames.shape
        m = self.shape.multiple
        if h % m or w % m:
            raise ValueError(f"VideoMaMa input must be a multiple of {m} px, got {w}x{h}")
        dtype = next(self.unet.parameters()).dtype
        frames = frames.to(dtype)
        mask_images = (masks.to(dtype) * 2 - 1).expand(-1, 3, -1, -1)  # the mask rendered as a grey image
        latents = self._encode(torch.cat([frames, mask_images]))
        frame_latents, mask_latents = latents[:t], latents[t:]
        sample = torch.cat([self._noise(frame_latents), frame_latents, mask_latents], dim=1).unsqueeze(0)
        c = self.constants
        clip_embedding = sample.new_zeros(1, 1, self.unet.config.cross_attention_dim)
        time_ids = torch.tensor(
            [[c.fps_id, c.motion_bucket_id, c.noise_aug_strength]], device=sample.device, dtype=dtype
        )
        timestep = torch.tensor([c.timestep], device=sample.device, dtype=dtype)
        matte_latents = self.unet(sample, timestep, clip_embedding, time_ids, return_dict=False)[0][0]
        matte_latents = matte_latents / self.vae.config.scaling_factor
        step = c.decode_frames
        images = torch.cat(
            [
                self.vae.decode(matte_latents[i : i + step], num_frames=len(matte_latents[i : i + step])).sample
                for i in range(0, t, step)
            ]
        )
        return (images.float() / 2 + 0.5).clamp(0, 1).mean(dim=1)
