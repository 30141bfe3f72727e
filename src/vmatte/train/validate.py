"""Validation with the evaluation suite: score the model on composed clips (``vmatte bench
compose`` output: ``com/`` + ``pha/``) with :class:`vmatte.eval.metrics.MetricAccumulator`.

Each clip's first ``max_frames`` frames are resized to the training size, matted in one clip
forward (MatAnyone gets the binarised first-frame alpha as its mask), and the alpha brought back
to the clip's size before scoring, so numbers are comparable with ``vmatte bench quality``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vmatte.eval.files import images, read_image
from vmatte.eval.metrics import MetricAccumulator, MetricSettings, mean_over_clips
from vmatte.eval.quality import find_clips

from .models import ClipModel

METRICS = ("mad", "mse", "grad", "dtssd")


@torch.no_grad()
def validate(model: ClipModel, roots: list[str], size: tuple[int, int], max_frames: int) -> dict[str, float]:
    was_training = model.training
    model.eval()
    means = []
    try:
        for root in roots:
            for clip in find_clips(root):
                coms = images(clip / "com")[:max_frames]
                phas = images(clip / "pha")[:max_frames]
                com = np.stack([read_image(p, grey=False) for p in coms]).astype(np.float32) / 255.0
                pha = np.stack([read_image(p, grey=True) for p in phas]).astype(np.float32) / 255.0
                h, w = pha.shape[1:]
                image = F.interpolate(
                    torch.from_numpy(com).permute(0, 3, 1, 2),
                    size=(size[1], size[0]),
                    mode="bilinear",
                    align_corners=False,
                )[None]
                mask0 = cv2.resize((pha[0] > 0.5).astype(np.float32), size, interpolation=cv2.INTER_NEAREST)
                out = model(image, torch.from_numpy(mask0)[None, None])
                alpha = F.interpolate(out.alpha[0].clamp(0, 1), size=(h, w), mode="bilinear", align_corners=False)
                acc = MetricAccumulator(MetricSettings(metrics=METRICS))
                for pred, true in zip(alpha[:, 0].numpy(), pha):
                    acc.update(pred, true)
                means.append(acc.mean())
    finally:
        model.train(was_training)
    return mean_over_clips(means)
