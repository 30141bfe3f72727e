"""Streaming SAM 2 / 2.1 video object tracking (any object, from clicks, a box or a mask)."""

from .memory import MemoryEntry, ObjectMemory
from .tracker import FrameResult, Prompt, Sam2VideoTracker

__all__ = ["FrameResult", "MemoryEntry", "ObjectMemory", "Prompt", "Sam2VideoTracker"]
