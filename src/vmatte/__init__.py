"""vmatte: alpha mattes of a chosen subject from any video.

Public API: :func:`matte` (files), :func:`iter_matte` (per-frame arrays), :func:`load_matter`
(build a model once, reuse it). Errors the user can fix are :class:`VmatteError`.
"""

# No process-wide threading setting here: OMP_WAIT_POLICY=PASSIVE, once set on import for every
# model to help RVM file-to-file, cost MatAnyone ~17% (issue 22). Threading is per model now:
# onnxruntime sessions choose spinning per session (engine/rvm.py); a user's OMP_* setting applies.

from .errors import VmatteError

# Bound eagerly: the function `matte` must win over the submodule of the same name.
from .matte import FrameResult, MatteResult, iter_matte, load_matter, matte

__all__ = ["FrameResult", "MatteResult", "VmatteError", "iter_matte", "load_matter", "matte"]
__version__ = "0.1.0"
