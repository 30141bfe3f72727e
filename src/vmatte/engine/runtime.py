"""Process-wide runtime settings for fast CPU inference (opt-in: the CLI calls them, a library import does not)."""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_done = False


def tune_allocator() -> bool:
    """Keep freed tensor memory in the heap instead of unmapping it (glibc only).

    PyTorch's CPU allocator returns every large tensor to glibc, which unmaps it; the next frame
    then pays ~10 ms of page faults at 1080p for memory it had a moment ago. Serving large blocks
    from the heap and not trimming it keeps the pages mapped between frames. RSS stays at the
    per-frame peak (flat in video length). Returns whether the setting was applied.
    """
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 31) == 1
    except (OSError, AttributeError):
        ok = False
    _done = ok
    return ok
