"""The one interface every model is run through: a :class:`Matter`.

A matter turns a stream of decoded frames into ``(frame, foreground, {target: alpha})``, in order.
Models that take one frame at a time (RVM, rvm-target, MatAnyone) implement :meth:`step_all`
and inherit :meth:`PerFrameMatter.run`; windowed models (VideoMaMa mattes chunks of frames)
implement :meth:`Matter.run` themselves. The frame loop (:mod:`vmatte.engine.loop`) only calls
``reset``, ``run``, and, for journaled runs, ``state`` / ``load_state``.

A model that reads per-frame masks (RVM's mask gate, VideoMaMa, sam2-matte) names their
:class:`MaskSource` as its ``mask_source``: the loop runs that source's step on every frame before
the model sees it (``frame.masks``), and the model reads the masks of the frame it is given. The
model resets, saves and restores its source with itself, so the journal's state is one tree.

``state()`` is the model's streaming state after the last frame it returned, as a tree of dicts,
lists, tuples, tensors, arrays and plain values; ``load_state`` puts such a tree back into a
freshly reset matter of the same kind, and the next frame then comes out bit-identical to an
uninterrupted run. A matter whose ``resumable`` is False keeps no such state and is not journaled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np

from ..errors import VmatteError
from ..io.pixels import image_scale, to_float
from ..io.reader import Frame

__all__ = [
    "Alphas",
    "FrameMatter",
    "MaskSource",
    "Matter",
    "PerFrameMatter",
    "State",
    "StepAdapter",
    "as_matter",
    "frame_masks",
    "image_scale",
    "to_float",
    "union",
]

Alphas = dict  # target id (None for models without targets) -> HxW float32 alpha
State = Any  # a tree of dict / list / tuple / torch.Tensor / np.ndarray / int / float / str / bool / None


class Matter(Protocol):
    description: str
    resumable: bool

    @property
    def targets(self) -> tuple:
        """Target ids in output order; ``(None,)`` for a model without targets (every person)."""
        ...

    def reset(self, concurrent_io: bool = False) -> None:
        """Start a new video; ``concurrent_io``: encoder threads run beside the model."""
        ...

    def run(
        self, frames: Iterable[Frame], foreground: bool = True
    ) -> Iterator[tuple[Frame, np.ndarray | None, Alphas]]:
        """``(frame, fgr HxWx3 float32 or None, {target: alpha HxW})`` per frame, in order;
        ``foreground=False`` may skip the foreground (None)."""
        ...

    def state(self) -> State: ...

    def load_state(self, state: State) -> None: ...


class MaskSource(Protocol):
    """What puts each frame's masks on it: a ``--masks`` folder (:class:`~vmatte.io.masks.FrameMasks`),
    the SAM 2 tracker (:class:`~vmatte.engine.sam2video.source.Sam2Masks`), rvm-target's regions
    (:class:`~vmatte.engine.mask_source.MatterMasks`). Frames come in order, once each."""

    description: str
    label: str  # what descriptions call it: a folder, or "the tracker (...)"
    resumable: bool

    def reset(self) -> None:
        """A new video starts."""
        ...

    def annotate(self, frame: Frame) -> Frame:
        """Sets ``frame.masks`` (and ``frame.mask_scores`` where the source has them); returns the frame."""
        ...

    def finish(self, frames: int | None = None) -> None:
        """The video ended (after ``frames`` frames; None: after the last one annotated)."""
        ...

    def state(self) -> State: ...

    def load_state(self, state: State) -> None: ...


def union(masks: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The union of a frame's masks (what a model reading one mask per frame sees); empty: zeros."""
    maps = list(masks.values())
    if not maps:
        return np.zeros(shape, np.float32)
    return maps[0] if len(maps) == 1 else np.maximum.reduce(maps)


def frame_masks(frame: Frame) -> dict[int, np.ndarray]:
    """``frame.masks``, which the run's mask source put there (one-line error when none did)."""
    if frame.masks is None:
        raise VmatteError(
            f"internal: frame {frame.index} has no masks; a model reading per-frame masks runs through "
            f"vmatte.engine.loop (iter_matte, matte), whose step puts its mask source's masks on each frame"
        )
    return frame.masks


class FrameMatter(Protocol):
    """The per-frame step the frame-at-a-time models share (what ``step`` users call directly)."""

    description: str

    def reset(self, concurrent_io: bool = False) -> None: ...

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """``(fgr HxWx3, alpha HxW)`` float32; ``foreground=False`` skips fgr (returns None)."""
        ...


class PerFrameMatter:
    """Base of the frame-at-a-time matters: :meth:`run` from :meth:`step_all`, which defaults to
    :meth:`step` for a model without targets."""

    description = ""
    resumable = True
    targets: tuple = (None,)

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        fgr, alphas = self.step_all(image, foreground)
        return fgr, alphas[self.targets[0]]

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, Alphas]:
        fgr, alpha = self.step(image, foreground)
        return fgr, {None: alpha}

    def run(
        self, frames: Iterable[Frame], foreground: bool = True
    ) -> Iterator[tuple[Frame, np.ndarray | None, Alphas]]:
        step_all = self.step_all
        for frame in frames:
            fgr, alphas = step_all(frame.image, foreground)
            yield frame, fgr, alphas

    def state(self) -> State:
        raise NotImplementedError(f"{type(self).__name__} keeps no saved state")

    def load_state(self, state: State) -> None:
        raise NotImplementedError(f"{type(self).__name__} keeps no saved state")


class StepAdapter(PerFrameMatter):
    """A user's own per-frame object (``reset`` and ``step``, optionally ``step_all`` and ``targets``:
    the protocol before :class:`Matter`) as a Matter. Not journaled: its state is unknown."""

    resumable = False

    def __init__(self, inner) -> None:
        self.inner = inner
        self.description = getattr(inner, "description", type(inner).__name__)
        self._step_all = getattr(inner, "step_all", None)
        self.targets = tuple(getattr(inner, "targets", None) or (None,)) if self._step_all else (None,)

    def reset(self, concurrent_io: bool = False) -> None:
        self.inner.reset(concurrent_io)

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        return self.inner.step(image, foreground)

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, Alphas]:
        if self._step_all is not None:
            return self._step_all(image, foreground)
        fgr, alpha = self.inner.step(image, foreground)
        return fgr, {None: alpha}


def as_matter(matter) -> Matter:
    """``matter`` itself when it has :meth:`Matter.run`, else wrapped in a :class:`StepAdapter`."""
    return matter if hasattr(matter, "run") and hasattr(matter, "targets") else StepAdapter(matter)
