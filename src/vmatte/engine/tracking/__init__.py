"""Choosing and following one target (person) in a video: the first mask from clicks, and more."""

from .settings import TargetSettings
from .tracker import TargetTracker

__all__ = ["TargetSettings", "TargetTracker"]
