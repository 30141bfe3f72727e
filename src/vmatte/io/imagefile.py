"""Reading image files with OpenCV, safely.

``cv2.imread`` takes the path as a C string: a path that is not valid UTF-8 (a byte-named file
from another system, surrogate-escaped by Python) crashes the process inside OpenCV (SIGSEGV).
So the bytes are read by Python (any path Python can open) and decoded with ``cv2.imdecode``.
OpenCV's own log lines (``[ WARN:...] read_chunk ...`` for a PNG with a garbage body) are
silenced: vmatte reports an unreadable image itself, in one line.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

try:  # OpenCV >= 4.x: its logging switch; older builds have no logging module
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover
    pass

MAX_IMAGE_BYTES = 2 << 30  # 2 GiB: far above any real frame; refuses a device or a huge file early


def imread(path: str | os.PathLike, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray | None:
    """``cv2.imread`` for any path: None when the file cannot be read or decoded."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_IMAGE_BYTES + 1)
    except (OSError, ValueError):
        return None
    if not data or len(data) > MAX_IMAGE_BYTES:
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    return img if img is not None and img.size else None
