"""vmatte: alpha mattes of a chosen subject from any video.

Public API: :func:`matte` (files), :func:`iter_matte` (per-frame arrays), :func:`load_matter`
(build a model once, reuse it). Errors the user can fix are :class:`VmatteError`.
"""

import os

# Before torch loads OpenMP: idle OpenMP workers then sleep instead of spinning. vmatte decodes and
# encodes in threads beside the network, and spinning workers starve them: measured on 2 cores
# (1080p, 3 outputs) file-to-file went from 6.6 to 8.0-8.3 frames/s. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import VmatteError  # noqa: E402

# Bound eagerly: the function `matte` must win over the submodule of the same name.
from .matte import FrameResult, MatteResult, iter_matte, load_matter, matte  # noqa: E402

__all__ = ["FrameResult", "MatteResult", "VmatteError", "iter_matte", "load_matter", "matte"]
__version__ = "0.1.0"
