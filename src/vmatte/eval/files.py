"""Reading benchmark clips: image folders in natural order, images as RGB or one grey channel."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vmatte.errors import InputError
from vmatte.io.reader import IMAGE_EXTENSIONS, natural_key


def images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )


def read_image(path: Path, grey: bool) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read {path}; re-create the clip with `vmatte bench compose`")
    if grey:
        return img if img.ndim == 2 else img[:, :, 0]
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)
