"""The official SAM v1 point predictor (``SamPredictor``) over :class:`vmatte.models.sam.Sam`.

Same arithmetic as upstream, step by step, so masks agree with the official code:

* the image is resized so its long side is S (1024) with upstream's rounding
  (``int(side * S / long + 0.5)``) by PIL's bilinear filter on the uint8 image (what
  torchvision's ``resize`` does to a PIL image), normalised with the model's mean/std and
  zero-padded bottom-right to S x S;
* click coordinates are scaled by ``new / old`` per axis (in float64, then float32);
* the 4x-downscaled logits are upscaled to S x S (bilinear, ``align_corners=False``), the
  unpadded part cropped and upscaled again to the original size.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from ...models.sam import Sam
from .points import prompt_arrays, rgb_image

_NAMES = {"vit_b": "SAM ViT-B", "vit_l": "SAM ViT-L", "vit_h": "SAM ViT-H"}


def preprocess_shape(h: int, w: int, long_side: int) -> tuple[int, int]:
    """(h, w) scaled so the long side is ``long_side``, rounded half up as upstream."""
    scale = long_side * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


class Sam1Predictor:
    """Encode one image, then answer any number of point prompts on it."""

    def __init__(self, model: Sam, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        cfg = model.config
        self.image_size = cfg.image_size
        self.name = _NAMES.get(cfg.name, f"SAM ViT ({cfg.encoder_embed_dim}-d, {cfg.encoder_depth} blocks)")
        self._dtype = model.image_encoder.pos_embed.dtype
        self._embedding: torch.Tensor | None = None
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] | None = None

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    def set_image(self, rgb: np.ndarray) -> None:
        """Encode ``rgb`` (HxWx3 uint8, RGB) and keep its embedding for :meth:`predict`."""
        rgb = rgb_image(rgb)
        h, w = rgb.shape[:2]
        new_h, new_w = preprocess_shape(h, w, self.image_size)
        resized = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((new_w, new_h), Image.BILINEAR))
        x = torch.from_numpy(resized.copy()).to(self.device).permute(2, 0, 1)[None]
        x = (x - self.model.pixel_mean) / self.model.pixel_std  # uint8 - float32: float32, as upstream
        x = F.pad(x, (0, self.image_size - new_w, 0, self.image_size - new_h))
        with torch.inference_mode():
            self._embedding = self.model.encode_image(x.to(self._dtype))
        self.original_size = (h, w)
        self.input_size = (new_h, new_w)

    def predict(
        self, points: np.ndarray, labels: np.ndarray, multimask: bool | None = None
    ) -> tuple[np.ndarray, float]:
        """Logits (HxW float32, at the image's size; > 0 is the object) and the predicted IoU.

        ``points``: N x 2 (x, y) pixels of the original image; ``labels``: N ints (1 on the object,
        0 off it). ``multimask=None``: three candidates for a single click (which is ambiguous:
        a shirt, the person, the group), one for several clicks, as upstream advises; of three,
        the one with the highest predicted IoU is returned.
        """
        if self._embedding is None or self.original_size is None or self.input_size is None:
            raise RuntimeError("call set_image before predict")
        points, labels, multimask = prompt_arrays(points, labels, multimask, np.float64)
        (h, w), (new_h, new_w) = self.original_size, self.input_size
        coords = points * np.array([new_w / w, new_h / h])  # float64 as upstream, then float32
        coords_t = torch.as_tensor(coords, dtype=torch.float32, device=self.device)[None]
        labels_t = torch.as_tensor(labels.astype(np.int64), device=self.device)[None]
        with torch.inference_mode():
            low_res, iou = self.model.decode(self._embedding, coords_t, labels_t, multimask)
            best = int(iou[0].argmax())
            logits = low_res[:, best : best + 1].float()
            logits = F.interpolate(logits, (self.image_size, self.image_size), mode="bilinear", align_corners=False)
            logits = logits[..., :new_h, :new_w]
            logits = F.interpolate(logits, (h, w), mode="bilinear", align_corners=False)
        return logits[0, 0].cpu().numpy().astype(np.float32, copy=False), float(iou[0, best])
