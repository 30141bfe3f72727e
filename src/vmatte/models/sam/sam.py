"""Segment Anything (Kirillov et al., "Segment Anything", ICCV 2023), official key layout.

Two tensor entry points, split where the cost is: :meth:`Sam.encode_image` (the heavy ViT, once
per image) and :meth:`Sam.decode` (prompt encoder + mask decoder, milliseconds, once per click).
Resizing the image, normalising/padding it and upscaling the masks are the predictor's job
(:mod:`vmatte.engine.segment.sam1`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import SamConfig
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder


class Sam(nn.Module):
    def __init__(self, cfg: SamConfig) -> None:
        super().__init__()
        self.config = cfg
        self.image_encoder = ImageEncoderViT(cfg)
        self.prompt_encoder = PromptEncoder(cfg.prompt_embed_dim, cfg.image_size, cfg.embedding_size, cfg.mask_in_chans)
        self.mask_decoder = MaskDecoder(cfg)
        # Non-persistent, as upstream: official checkpoints do not hold them.
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(3, 1, 1), persistent=False)

    def reset_pixel_stats(self, device: torch.device | str | None = None) -> None:
        """Re-create ``pixel_mean``/``pixel_std`` (needed after building on the meta device, where
        a state_dict load does not reach non-persistent buffers)."""
        device = device if device is not None else self.image_encoder.pos_embed.device
        self.pixel_mean = torch.tensor(self.config.pixel_mean, device=device).view(3, 1, 1)
        self.pixel_std = torch.tensor(self.config.pixel_std, device=device).view(3, 1, 1)

    def encode_image(self, x: Tensor) -> Tensor:
        """``[B, 3, S, S]`` normalised, bottom-right zero-padded image -> ``[B, C, S/16, S/16]``."""
        return self.image_encoder(x)

    def decode(
        self, embeddings: Tensor, coords: Tensor, labels: Tensor, multimask: bool, mask_input: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Masks for point prompts on encoded images.

        ``embeddings`` ``[B or 1, C, h, w]``; ``coords`` ``[B, N, 2]`` (x, y) in pixels of the padded
        S x S input; ``labels`` ``[B, N]`` (1 include, 0 exclude, -1 padding); ``mask_input``
        ``[B, 1, 4h, 4w]`` logits (e.g. a previous low-res output). Returns low-res logits
        ``[B, K, 4h, 4w]`` and predicted IoUs ``[B, K]``, K = 3 if ``multimask`` else 1.
        """
        if coords.ndim != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
            raise ValueError(
                f"coords must be [B, N, 2] and labels [B, N]; got {tuple(coords.shape)} and {tuple(labels.shape)}"
            )
        b = coords.shape[0]
        if embeddings.shape[0] not in (1, b):
            raise ValueError(f"{embeddings.shape[0]} image embeddings for {b} prompt sets")
        sparse = self.prompt_encoder.embed_points(coords, labels).to(embeddings.dtype)
        dense = self.prompt_encoder.embed_mask(mask_input, b).to(embeddings.dtype)
        image_pe = self.prompt_encoder.dense_pe().to(embeddings.dtype)
        return self.mask_decoder(embeddings, image_pe, sparse, dense, multimask)
