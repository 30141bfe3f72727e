"""Video I/O: streaming reader, atomic multi-format writers, and probes for our outputs."""

from .background import Background
from .formats import DEFAULT_FORMATS, FORMATS, FormatSpec, parse_formats
from .reader import Frame, VideoInfo, VideoSource, open_source
from .writers import OutputSet

__all__ = [
    "Background",
    "DEFAULT_FORMATS",
    "FORMATS",
    "FormatSpec",
    "Frame",
    "OutputSet",
    "VideoInfo",
    "VideoSource",
    "open_source",
    "parse_formats",
]
