"""vmatte: alpha mattes of a chosen subject from any video.

Public API: :func:`matte` (files), :func:`iter_matte` (per-frame arrays), :func:`load_matter`
(build a model once, reuse it). Errors the user can fix are :class:`VmatteError`.

The API is loaded on first use, not on ``import vmatte``: the command line's ``--help``,
``--version``, ``formats`` and argument errors then answer without importing PyTorch (seconds).
"""

import os
import sys
import types

# Before torch loads OpenMP (libgomp reads this once per process, so it cannot differ per model):
# idle OpenMP workers sleep instead of spinning. Spinning workers starve vmatte's decode/encode
# threads (RVM 1080p file-to-file 6.6 -> 8.0 frames/s with PASSIVE) and, on a machine shared with
# other jobs, each other: measured here (2 cores, load ~15-20) RVM on PyTorch ran 5-12 s/frame at
# 512x288 without it against 25 ms with it. The cost: MatAnyone on a quiet, dedicated machine is
# ~17% faster with OMP_WAIT_POLICY=ACTIVE (issue 22); set it yourself there. A user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import VmatteError  # noqa: E402

__all__ = ["FrameResult", "MatteResult", "RefineSettings", "VmatteError", "iter_matte", "load_matter", "matte"]
__version__ = "0.1.0"
_API = ("FrameResult", "MatteResult", "RefineSettings", "iter_matte", "load_matter", "matte")


def __getattr__(name: str):
    if name in _API:
        import importlib

        api = importlib.import_module(".matte", __name__)  # also binds vmatte.matte to the function (_Package)
        return getattr(api, name)
    raise AttributeError(f"module 'vmatte' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The package, where the function ``matte`` wins over the submodule of the same name: the import
    system binds each submodule on its package once it is loaded, and ``vmatte.matte(...)`` must stay
    the API call whichever import came first."""

    def __setattr__(self, name: str, value) -> None:
        if name == "matte" and isinstance(value, types.ModuleType):
            value = value.matte
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
