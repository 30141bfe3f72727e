"""SAM 2's video path (Ravi et al., 2024): the image path plus a memory of earlier frames.

:class:`Sam2Video` holds every module of an official checkpoint (attribute names of the official
``SAM2Base``, so the full checkpoint loads strictly) and computes one step of tracking for one
object; *which* frames are remembered is the caller's choice (``vmatte.engine.sam2video``):

* :meth:`encode_frame` - stride-16 features (no memory yet), their sine position encoding and the
  projected stride-4/8 features, shared by every object of the frame;
* :meth:`memory_tokens` - the memory bank as attention tokens: each remembered frame's memory
  with its spatial position encoding plus a learned temporal encoding of its place
  (``maskmem_tpos_enc``: the prompted frames share one, the recent frames one per distance),
  then the object pointers (each ``C``-wide pointer split into ``C / mem_dim`` tokens) with a
  sine encoding of their signed frame distance (SAM 2.1; projected by ``obj_ptr_tpos_proj``);
* :meth:`condition` - the frame's features after memory attention (a frame with no memory yet
  gets the learned ``no_mem_embed`` added instead, ``directly_add_no_mem_embed``);
* :meth:`sam_heads` - prompt encoder + mask decoder on the conditioned features: the mask, the
  object score (is the object there at all? if not, the mask is set to ``NO_OBJ_SCORE``
  everywhere and the pointer becomes the learned ``no_obj_ptr``) and the object pointer (the
  MLP-projected output token of the chosen mask);
* :meth:`mask_as_output` - a mask prompt taken as the answer (logits +-10), its pointer made by
  the decoder from the mask downsampled by ``mask_downsample``;
* :meth:`encode_memory` - the memory of a frame: the memory encoder on the frame's features and
  its mask (hard for prompted frames, a sharpened sigmoid otherwise), plus
  ``no_obj_embed_spatial`` (SAM 2.1) where the object was judged absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..sam.common import MLP
from .config import Sam2Config
from .memory_attention import MemoryAttention
from .memory_encoder import MemoryEncoder, mask_for_memory, sine_position_encoding
from .sam2 import Sam2

NO_OBJ_SCORE = -1024.0  # mask logits of an object judged absent (the official placeholder)


@dataclass
class FrameFeatures:
    feat: Tensor  # [1, C, h, w] stride-16 features without memory
    pos: Tensor  # [1, C, h, w] their sine position encoding
    high_res: list[Tensor]  # stride 4 and stride 8, projected by the decoder's conv_s0 / conv_s1


@dataclass
class SamOutput:
    low_res: Tensor  # [B, 1, S/4, S/4] logits of the chosen mask
    high_res: Tensor  # [B, 1, S, S] the same, upsampled to the input size
    iou: Tensor  # [B, 1] its predicted IoU
    obj_ptr: Tensor  # [B, C]
    object_score: Tensor  # [B, 1] logit: > 0 the object is in the frame


class Sam2Video(Sam2):
    def __init__(self, cfg: Sam2Config) -> None:
        super().__init__(cfg)
        c, m = cfg.d_model, cfg.mem_dim
        self.memory_attention = MemoryAttention(cfg)
        self.memory_encoder = MemoryEncoder(cfg)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(cfg.num_maskmem, 1, 1, m))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, c))  # in every checkpoint; unused with
        # directly_add_no_mem_embed, which every official config sets
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.obj_ptr_proj = MLP(c, c, c, 3)
        self.obj_ptr_tpos_proj = nn.Linear(c, m) if cfg.proj_tpos_enc_in_obj_ptrs else None
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, c))
        self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, m)) if cfg.no_obj_embed_spatial else None

    # --- per frame --------------------------------------------------------------------------------

    def encode_frame(self, x: Tensor) -> FrameFeatures:
        """``x [1, 3, S, S]`` (resized, ImageNet-normalised) -> the frame's shared features."""
        levels = self.image_encoder(x)
        # contiguous NCHW (the neck's output is channels-last strided): upstream flattens it to tokens
        # and back, and the memory encoder's convs round differently on the two layouts
        feat = levels[-1].contiguous()
        pos = sine_position_encoding(self.config.d_model, feat.shape[-2], feat.shape[-1], feat.device).to(feat.dtype)
        dec = self.sam_mask_decoder
        return FrameFeatures(feat, pos, [dec.conv_s0(levels[0]), dec.conv_s1(levels[1])])

    def memory_tokens(
        self, spatial: list[tuple[int, Tensor, Tensor]], pointers: list[tuple[int, Tensor]], max_ptrs: int
    ) -> tuple[Tensor, Tensor, int]:
        """The memory bank as tokens ``[B, M, mem_dim]`` + their encodings, and how many are pointers.

        ``spatial``: (t_pos, memory ``[B, mem_dim, h, w]``, its position encoding ``[1, mem_dim, h, w]``),
        t_pos 0 for prompted frames, ``num_maskmem - k`` for the frame k steps back; ``pointers``:
        (frame distance, pointer ``[B, C]``); ``max_ptrs`` normalises the distance encoding.
        """
        cfg = self.config
        tokens, pos = [], []
        for t_pos, mem, mem_pos in spatial:
            b = mem.shape[0]
            tokens.append(mem.float().flatten(2).transpose(1, 2))
            p = mem_pos.flatten(2).transpose(1, 2) + self.maskmem_tpos_enc[cfg.num_maskmem - t_pos - 1].view(1, 1, -1)
            pos.append(p.expand(b, -1, -1))
        n_ptr_tokens = 0
        if pointers:
            dists, ptrs = zip(*pointers)
            ptr = torch.stack(ptrs, dim=1)  # [B, P, C]
            b, p, c = ptr.shape
            m = cfg.mem_dim
            if cfg.add_tpos_enc_to_obj_ptrs:
                t = torch.tensor(dists, device=ptr.device, dtype=torch.float32) / (max_ptrs - 1)
                enc = sine_1d(t, c if cfg.proj_tpos_enc_in_obj_ptrs else m)
                if self.obj_ptr_tpos_proj is not None:
                    enc = self.obj_ptr_tpos_proj(enc)
            else:
                enc = ptr.new_zeros(p, m)
            split = c // m  # a pointer wider than a memory token becomes several tokens
            tokens.append(ptr.reshape(b, p * split, m))
            pos.append(enc.repeat_interleave(split, dim=0)[None].expand(b, -1, -1))
            n_ptr_tokens = p * split
        return torch.cat(tokens, dim=1), torch.cat(pos, dim=1), n_ptr_tokens

    def condition(self, frame: FrameFeatures, memory: tuple[Tensor, Tensor, int] | None, batch: int = 1) -> Tensor:
        """The frame's features conditioned on ``memory`` (from :meth:`memory_tokens`), or on none."""
        feat = frame.feat.expand(batch, -1, -1, -1)
        if memory is None:
            return feat + self.no_mem_embed.view(1, -1, 1, 1)
        tokens, tokens_pos, n_ptr = memory
        return self.memory_attention(feat, frame.pos.expand(batch, -1, -1, -1), tokens, tokens_pos, n_ptr)

    def sam_heads(
        self,
        feat: Tensor,
        high_res: list[Tensor],
        coords: Tensor | None = None,
        labels: Tensor | None = None,
        mask_input: Tensor | None = None,
        multimask: bool = False,
    ) -> SamOutput:
        """Decode ``feat [B, C, h, w]`` with point prompts (``coords [B, N, 2]`` in the S x S input,
        ``labels [B, N]``, 2/3 = box corners) and/or a mask prompt (``[B, 1, *, *]`` logits or 0/1)."""
        b = feat.shape[0]
        if coords is None:  # no points: one padding point, as upstream
            coords = feat.new_zeros(b, 1, 2)
            labels = torch.full((b, 1), -1, dtype=torch.int32, device=feat.device)
        prompt = self.sam_prompt_encoder
        if mask_input is not None:
            size = (4 * self.config.embedding_size,) * 2
            if tuple(mask_input.shape[-2:]) != size:
                mask_input = F.interpolate(
                    mask_input.float(), size=size, mode="bilinear", align_corners=False, antialias=True
                )
        sparse = prompt.embed_points(coords, labels)
        dense = prompt.embed_mask(mask_input, b)
        high_res = [f.expand(b, -1, -1, -1) for f in high_res]
        dec = self.sam_mask_decoder
        masks, iou, tokens, score = dec.predict_all(feat, prompt.dense_pe(), sparse, dense, high_res)
        if score is None:
            score = feat.new_full((b, 1), 10.0)
        if multimask:
            masks, iou, tokens = masks[:, 1:], iou[:, 1:], tokens[:, 1:]
            if not self.config.use_multimask_token_for_obj_ptr:
                tokens = tokens[:, :1]
        else:
            if dec.dynamic_multimask:
                masks, iou = dec._dynamic_single_mask(masks, iou)
            else:
                masks, iou = masks[:, :1], iou[:, :1]
            tokens = tokens[:, :1]  # the single-mask token, even when stability picked another mask
        present = score > 0
        masks = torch.where(present[:, :, None, None], masks, NO_OBJ_SCORE).float()
        rows = torch.arange(b, device=feat.device)
        best = iou.argmax(-1) if multimask else torch.zeros(b, dtype=torch.long, device=feat.device)
        low = masks[rows, best].unsqueeze(1)
        token = tokens[rows, best] if tokens.shape[1] > 1 else tokens[:, 0]
        high = F.interpolate(low, size=(self.image_size,) * 2, mode="bilinear", align_corners=False)
        ptr = self._pointer(self.obj_ptr_proj(token), present.float())
        return SamOutput(low, high, iou[rows, best].unsqueeze(1), ptr, score)

    def _pointer(self, ptr: Tensor, present: Tensor) -> Tensor:
        if self.config.fixed_no_obj_ptr:
            ptr = present * ptr
        return ptr + (1 - present) * self.no_obj_ptr

    def mask_as_output(self, frame: FrameFeatures, mask: Tensor) -> SamOutput:
        """A mask prompt ``[B, 1, S, S]`` (0/1) taken as the frame's answer, with its object pointer."""
        m = mask.float()
        high = m * 20.0 - 10.0
        low = F.interpolate(
            high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear", align_corners=False, antialias=True
        )
        b = m.shape[0]
        # the pointer: the decoder on the raw features (no memory), prompted by the downsampled mask
        ptr = self.sam_heads(
            frame.feat.expand(b, -1, -1, -1), frame.high_res, mask_input=self.mask_downsample(m)
        ).obj_ptr
        present = (m.flatten(1) > 0).any(dim=1, keepdim=True).float()
        return SamOutput(low, high, m.new_ones(b, 1), self._pointer(ptr, present), present * 20.0 - 10.0)

    def encode_memory(
        self, frame: FrameFeatures, high_res_logits: Tensor, object_score: Tensor, binarize: bool
    ) -> tuple[Tensor, Tensor]:
        """(memory ``[B, mem_dim, h, w]``, position encoding ``[1, mem_dim, h, w]``) of the frame with the
        mask ``high_res_logits [B, 1, S, S]``; ``binarize``: a prompted frame's hard mask."""
        cfg = self.config
        b = high_res_logits.shape[0]
        mask = mask_for_memory(high_res_logits, cfg, binarize and cfg.binarize_mask_from_pts_for_mem_enc)
        mem, pos = self.memory_encoder(frame.feat.expand(b, -1, -1, -1), mask)
        if self.no_obj_embed_spatial is not None:
            absent = 1 - (object_score > 0).float()
            mem = mem + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None]
        return mem, pos


def sine_1d(t: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """``[N] -> [N, dim]``: sin of ``dim / 2`` frequencies, then their cos (the pointers' distance code)."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=t.device)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    p = t[:, None] / dim_t
    return torch.cat([p.sin(), p.cos()], dim=-1)
