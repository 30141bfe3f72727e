"""Which losses a batch gets, by model and data kind; the weights come from ``[loss]``.

MatAnyone (the paper's recipe; a stage is a config file choosing data and weights):
- matting data: alpha L1 (frame 0 weighted by ``first_frame_weight``: it is the mask-to-matte
  step), Laplacian, gradient, temporal coherence, and the change-probability BCE of U_t against
  |a_t - a_{t-1}| > delta pooled to stride 16.
- segmentation data, on the *matting* head ("core supervision"): L1 on the core region of the
  mask and the scaled DDC loss on the boundary band; U_t supervised from the masks.

RVM (its paper's recipe): matting data gets L1 + Laplacian + temporal coherence on alpha and L1
+ temporal coherence on the foreground (where alpha > 0); segmentation data trains the
segmentation head with BCE + Dice.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import losses as L
from .config import LossConfig
from .data.datasets import SEGMENTATION
from .models import ClipOutput


def _matting(out: ClipOutput, batch: dict[str, Tensor], cfg: LossConfig) -> dict[str, Tensor]:
    pred, true = out.alpha, batch["alpha"]
    parts: dict[str, Tensor] = {}
    w = L.frame_weights(pred.shape[1], cfg.first_frame_weight, pred.device)
    if cfg.l1:
        parts["l1"] = cfg.l1 * L.l1_loss(pred, true, w)
    if cfg.laplacian:
        parts["laplacian"] = cfg.laplacian * L.laplacian_loss(pred, true)
    if cfg.gradient:
        parts["gradient"] = cfg.gradient * L.gradient_loss(pred, true)
    if cfg.temporal:
        parts["temporal"] = cfg.temporal * L.temporal_coherence_loss(pred, true)
    if out.fgr is not None and (cfg.fgr_l1 or cfg.fgr_temporal):
        # Foreground colour is only defined where there is some foreground.
        known = (true > 0).to(pred.dtype)
        if cfg.fgr_l1:
            parts["fgr_l1"] = cfg.fgr_l1 * L.l1_loss(out.fgr * known, batch["fgr"] * known)
        if cfg.fgr_temporal:
            parts["fgr_temporal"] = cfg.fgr_temporal * L.temporal_coherence_loss(out.fgr * known, batch["fgr"] * known)
    return parts


def _change(out: ClipOutput, batch: dict[str, Tensor], cfg: LossConfig) -> dict[str, Tensor]:
    if out.change_prob is None or not cfg.change_prob:
        return {}
    target = L.change_target(batch["alpha"], cfg.change_delta, stride=16)
    return {"change_prob": cfg.change_prob * L.change_probability_loss(out.change_prob, target)}


def _core(out: ClipOutput, batch: dict[str, Tensor], cfg: LossConfig) -> dict[str, Tensor]:
    parts = L.core_supervision_loss(out.alpha, batch["image"], batch["alpha"], cfg.core_radius, 1.0, cfg.ddc_radius)
    return {"core_l1": cfg.core_l1 * parts["core_l1"], "ddc": cfg.ddc * parts["ddc"]}


def compute_losses(kind: str, out: ClipOutput, batch: dict[str, Tensor], cfg: LossConfig) -> dict[str, Tensor]:
    """Weighted loss terms; their sum is what is minimised (``total`` is added here)."""
    segmentation = int(batch["kind"][0]) == SEGMENTATION
    if kind == "rvm":
        if segmentation:
            parts = {"segmentation": cfg.segmentation * L.segmentation_loss(out.seg_logits, batch["alpha"])}
        else:
            parts = _matting(out, batch, cfg)
    else:
        parts = _core(out, batch, cfg) if segmentation else _matting(out, batch, cfg)
        parts.update(_change(out, batch, cfg))
    parts["total"] = torch.stack(list(parts.values())).sum()
    return parts
