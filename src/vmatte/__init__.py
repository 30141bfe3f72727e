"""vmatte: alpha mattes of a chosen subject from any video.

Public API: :func:`matte` (files), :func:`iter_matte` (per-frame arrays), :func:`load_matter`
(build a model once, reuse it). Errors the user can fix are :class:`VmatteError`.

The API is loaded on first use, not on ``import vmatte``: the command line's ``--help``,
``--version``, ``formats`` and argument errors then answer without importing PyTorch (seconds).
"""

import os
import sys
import types

# Before torch loads OpenMP: idle OpenMP workers then sleep instead of spinning. vmatte decodes and
# encodes in threads beside the network, and spinning workers starve them: measured on 2 cores
# (1080p, 3 outputs) file-to-file went from 6.6 to 8.0-8.3 frames/s. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import VmatteError  # noqa: E402

__all__ = ["FrameResult", "MatteResult", "VmatteError", "iter_matte", "load_matter", "matte"]
__version__ = "0.1.0"
_API = ("FrameResult", "MatteResult", "iter_matte", "load_matter", "matte")


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
