"""SAM's prompt encoder, restricted to what point prompts (and a mask prompt) need.

Points are encoded with random Fourier features (Tancik et al. 2020): the pixel centre,
normalised to [-1, 1], is projected by a fixed Gaussian matrix and passed through sin/cos; a
learned embedding per label is added (0 background, 1 foreground). A "not a point" token with
label -1 carries no position. The same features evaluated on the embedding grid are the dense
positional encoding of the image. A low-res mask prompt is downscaled 4x by two strided convs to
a dense embedding; without one, a learned "no mask" vector is broadcast over the grid.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .common import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    def __init__(self, num_feats: int) -> None:
        super().__init__()
        # Drawn once at training time and shipped in the checkpoint (a persistent buffer).
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, xy: Tensor) -> Tensor:
        """``[..., 2]`` (x, y) in [0, 1] -> ``[..., 2 * num_feats]``."""
        gauss = self.positional_encoding_gaussian_matrix
        proj = (2 * xy.to(gauss.dtype) - 1) @ gauss
        proj = 2 * math.pi * proj
        return torch.cat([proj.sin(), proj.cos()], dim=-1)

    def grid(self, h: int, w: int) -> Tensor:
        """``[C, h, w]``: the encoding of every cell centre of an h x w grid."""
        device = self.positional_encoding_gaussian_matrix.device
        y = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        x = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        xy = torch.stack([x[None, :].expand(h, w), y[:, None].expand(h, w)], dim=-1)
        return self.encode(xy).permute(2, 0, 1)

    def points(self, coords: Tensor, height: int, width: int) -> Tensor:
        """``[B, N, 2]`` (x, y) in pixels of a ``height`` x ``width`` frame -> ``[B, N, C]``."""
        scale = torch.tensor([width, height], device=coords.device, dtype=torch.float32)
        return self.encode(coords.float() / scale)


class PromptEncoder(nn.Module):
    """The same module (and keys) in SAM and SAM 2: ``dim`` channels, prompts in an
    ``image_size`` square, an ``embedding_size`` square grid, ``mask_in_chans`` in the mask convs."""

    def __init__(self, dim: int, image_size: int, embedding_size: int, mask_in_chans: int = 16) -> None:
        super().__init__()
        self.input_image_size = (image_size, image_size)
        self.image_embedding_size = (embedding_size, embedding_size)
        self.pe_layer = PositionEmbeddingRandom(dim // 2)
        # Labels 0 (background) and 1 (foreground); 2 and 3 are box corners (SAM 2's video path).
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, dim)
        c = mask_in_chans
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, c // 4, kernel_size=2, stride=2),
            LayerNorm2d(c // 4),
            nn.GELU(),
            nn.Conv2d(c // 4, c, kernel_size=2, stride=2),
            LayerNorm2d(c),
            nn.GELU(),
            nn.Conv2d(c, dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, dim)

    def dense_pe(self) -> Tensor:
        """``[1, C, h, w]`` positional encoding of the image embedding grid."""
        return self.pe_layer.grid(*self.image_embedding_size)[None]

    def embed_points(self, coords: Tensor, labels: Tensor) -> Tensor:
        """Sparse embeddings ``[B, N + 1, C]``: the points plus one padding point.

        Upstream appends a (0, 0) point with label -1 whenever no box is given, which is always
        the case here; the decoder was trained with it, so it changes the masks and is kept.
        """
        b = coords.shape[0]
        coords = torch.cat([coords.float() + 0.5, coords.new_zeros(b, 1, 2, dtype=torch.float32)], dim=1)
        labels = torch.cat([labels, labels.new_full((b, 1), -1)], dim=1)[..., None]
        h, w = self.input_image_size
        pe = self.pe_layer.points(coords, h, w)
        zero = pe.new_zeros(())
        pe = pe + torch.where(labels == 0, self.point_embeddings[0].weight, zero)
        pe = pe + torch.where(labels == 1, self.point_embeddings[1].weight, zero)
        # SAM 2's video predictor passes a box as its two corners, labels 2 (top-left) and 3
        pe = pe + torch.where(labels == 2, self.point_embeddings[2].weight, zero)
        pe = pe + torch.where(labels == 3, self.point_embeddings[3].weight, zero)
        # A padding point has no position: its embedding is the learned token alone.
        return torch.where(labels == -1, self.not_a_point_embed.weight, pe)

    def embed_mask(self, mask_input: Tensor | None, batch: int) -> Tensor:
        """Dense embeddings ``[B, C, h, w]`` from a ``[B, 1, 4h, 4w]`` logit mask, or "no mask"."""
        if mask_input is not None:
            return self.mask_downscaling(mask_input)
        h, w = self.image_embedding_size
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)
