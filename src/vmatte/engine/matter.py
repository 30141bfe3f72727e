"""The one interface every model is run through: a :class:`Matter`.

A matter turns a stream of decoded frames into ``(frame, foreground, {target: alpha})``, in order.
Models that take one frame at a time (RVM, rvm-target, MatAnyone) implement :meth:`step_all`
and inherit :meth:`PerFrameMatter.run`; windowed models (VideoMaMa mattes chunks of frames)
implement :meth:`Matter.run` themselves. The frame loop (:mod:`vmatte.engine.loop`) only calls
``reset``, ``run``, and, for journaled runs, ``state`` / ``load_state``.

``state()`` is the model's streaming state after the last frame it returned, as a tree of dicts,
lists, tuples, tensors, arrays and plain values; ``load_state`` puts such a tree back into a
freshly reset matter of the same kind, and the next frame then comes out bit-identical to an
uninterrupted run. A matter whose ``resumable`` is False keeps no such state and is not journaled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np

from ..io.pixels import image_scale, to_float
from ..io.reader import Frame

__all__ = [
    "Alphas",
    "FrameMatter",
    "IndexedWrapper",
    "Matter",
    "PerFrameMatter",
    "State",
    "StepAdapter",
    "as_matter",
    "image_scale",
    "to_float",
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


class IndexedWrapper(PerFrameMatter):
    """A per-frame matter around another (``inner``) that counts the frames it has stepped: the index
    of the per-frame mask it reads next (masks gating RVM, :mod:`.mask_to_matte` and :mod:`.tracked`).
    Its saved state is that count and the inner model's; it is resumable when the inner model is."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self._index = 0

    def reset(self, concurrent_io: bool = False) -> None:
        self.inner.reset(concurrent_io)
        self._index = 0

    @property
    def resumable(self) -> bool:
        return self.inner.resumable

    def state(self) -> State:
        return {"index": self._index, "inner": self.inner.state()}

    def load_state(self, state: State) -> None:
        self._index = int(state["index"])
        self.inner.load_state(state["inner"])


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
