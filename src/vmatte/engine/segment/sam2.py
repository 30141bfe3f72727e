"""The official SAM 2 point predictor (``SAM2ImagePredictor``) over :class:`vmatte.models.sam2.Sam2`.

Same arithmetic as upstream, step by step, so masks agree with the official code:

* ``SAM2Transforms``: the uint8 image to float in [0, 1], resized to S x S *without* keeping the
  aspect ratio (torchvision's ``Resize`` on a tensor: bilinear, ``align_corners=False``,
  antialias on), normalised with the ImageNet mean/std;
* click coordinates divided by (w, h) and multiplied by S (``transform_coords``, normalize=True);
  the predictor appends one padding point (no box is given);
* the 4x-downscaled logits are upscaled bilinearly straight to the original size
  (``postprocess_masks``). Upstream's optional hole/sprinkle removal there (a CUDA
  connected-components kernel) is off by default in ``SAM2ImagePredictor``
  (``max_hole_area=0``, ``max_sprinkle_area=0``), so it is not done here either.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ...models.sam2 import Sam2
from .points import prompt_arrays, rgb_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sam2_input(rgb: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    """``rgb`` (HxWx3 uint8) -> ``[1, 3, size, size]`` network input (also the video tracker's)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None]
    x = x.to(torch.float32).div(255)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=device)[:, None, None]
    return (x - mean) / std


class Sam2Predictor:
    """Encode one image, then answer any number of point prompts on it."""

    def __init__(self, model: Sam2, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.image_size = model.image_size
        self.name = model.config.name
        self._dtype = model.no_mem_embed.dtype
        self._features: tuple[torch.Tensor, list[torch.Tensor]] | None = None
        self.original_size: tuple[int, int] | None = None

    @property
    def is_image_set(self) -> bool:
        return self._features is not None

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """``rgb`` (HxWx3 uint8) -> ``[1, 3, S, S]`` network input."""
        return sam2_input(rgb, self.image_size, self.device)

    def set_image(self, rgb: np.ndarray) -> None:
        """Encode ``rgb`` (HxWx3 uint8, RGB) and keep its features for :meth:`predict`."""
        rgb = rgb_image(rgb)
        self._features = None
        with torch.inference_mode():
            self._features = self.model.encode_image(self.preprocess(rgb).to(self._dtype))
        self.original_size = (rgb.shape[0], rgb.shape[1])

    def predict(
        self, points: np.ndarray, labels: np.ndarray, multimask: bool | None = None
    ) -> tuple[np.ndarray, float]:
        """Logits (HxW float32, at the image's size; > 0 is the object) and the predicted IoU.

        ``points``: N x 2 (x, y) pixels of the original image; ``labels``: N ints (1 on the object,
        0 off it). ``multimask=None``: three candidates for a single click (which is ambiguous),
        one for several clicks; of three, the one with the highest predicted IoU is returned.
        A single mask goes through SAM 2's stability check (an unstable one is replaced by the
        best of the three), as ``build_sam2`` configures upstream.
        """
        if self._features is None or self.original_size is None:
            raise RuntimeError("call set_image before predict")
        points, labels, multimask = prompt_arrays(points, labels, multimask, np.float32)
        h, w = self.original_size
        coords = torch.as_tensor(points, dtype=torch.float32, device=self.device).clone()
        coords[:, 0] = coords[:, 0] / w
        coords[:, 1] = coords[:, 1] / h
        coords = (coords * self.image_size)[None]
        labels_t = torch.as_tensor(labels.astype(np.int32), device=self.device)[None]
        with torch.inference_mode():
            low_res, iou = self.model.decode(self._features, coords, labels_t, multimask)
            best = int(iou[0].argmax())
            logits = low_res[:, best : best + 1].float()
            logits = F.interpolate(logits, (h, w), mode="bilinear", align_corners=False)
        return logits[0, 0].cpu().numpy().astype(np.float32, copy=False), float(iou[0, best])
