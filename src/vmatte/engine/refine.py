"""Matte refinement after any model: the editors' "refine matte" controls.

Applied per frame, in this order, to each target's alpha (and despill to the foreground):

- ``choke`` (px, fractional, +/-): grey-scale erosion (> 0, shrinks) or dilation (< 0, grows) with a
  disc of radius ``|choke|``; a fractional radius blends the two nearest whole radii linearly, so
  the edge moves by exactly ``choke`` pixels on a straight edge.
- ``shift_edge`` (%, -100..100): moves the SOFT part of the edge out (> 0) or in (< 0) without
  touching fully opaque or transparent pixels: ``alpha ** 2 ** (-shift/50)`` (+50: 0.25 -> 0.5).
- ``feather`` (px): Gaussian blur with sigma ``feather / 2``, so a hard edge becomes a ramp that is
  95 % done within ``feather`` pixels on either side.
- ``reduce_chatter`` (N frames): edge chatter is frame-to-frame flicker of alpha where the picture
  did not change. Each alpha is averaged with the model's alphas of the previous N frames, each
  weighted by how unchanged the picture is at that pixel (``exp(-(d / tolerance)^2)``, d the
  mean absolute RGB difference, 0..1) and zero where alpha itself jumped by more than 0.5 (a
  moving hard edge). Where something moves, the picture changes and the current alpha is kept:
  motion is not smeared. It averages the unrefined alphas (a FIR filter), so it never lags behind
  by more than N frames and errors do not accumulate.
- ``despill`` (green/blue): the foreground's spill channel is limited to the mean of the other
  two (the "average" despill of compositing packages): green ``g' = min(g, (r + b) / 2)``.

:func:`refined` wraps any :class:`~vmatte.engine.matter.Matter` so that its results come out
refined: the refinement is then part of the one frame loop (:mod:`vmatte.engine.loop`) for
every run, plain, journaled (its history is part of the saved state, so a resumed run refines
the next frame exactly as an uninterrupted one) or the web app's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from ..io.reader import Frame
from .matter import Alphas, Matter, State, as_matter
from .options import DESPILL, REFINE, group, settings_class

__all__ = ["DESPILL", "RefineSettings", "Refined", "Refiner", "refined"]

CHATTER_TOLERANCE = 0.04  # picture change (mean |RGB| difference, 0..1) that counts as motion


class _Refine:
    def __post_init__(self) -> None:
        for option in group(REFINE):  # each control's range, as its declaration says (engine/options.py)
            option.check(getattr(self, option.name))

    @property
    def active(self) -> bool:
        return any(o.given(getattr(self, o.name)) for o in group(REFINE))

    def describe(self) -> str:
        """``choke=2 feather=3``: the controls that are on (the run's description)."""
        on = [(o.name, getattr(self, o.name)) for o in group(REFINE)]
        return " ".join(f"{k.replace('_', '-')}={v}" for k, v in on if v)


RefineSettings = settings_class(
    "RefineSettings",
    group(REFINE),
    _Refine,
    __name__,
    "The matte refinement controls (the module docstring); each field as declared in engine/options.py.",
    extra=(("chatter_tolerance", CHATTER_TOLERANCE),),
)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def choke(alpha: np.ndarray, px: float) -> np.ndarray:
    if px == 0:
        return alpha
    op = cv2.erode if px > 0 else cv2.dilate
    r = abs(px)
    lo, t = int(np.floor(r)), r - np.floor(r)
    # BORDER_REPLICATE: the frame edge is not an edge of the matte (a subject cut by the frame stays cut).
    a_lo = alpha if lo == 0 else op(alpha, _disc(lo), borderType=cv2.BORDER_REPLICATE)
    if t < 1e-6:
        return a_lo
    a_hi = op(alpha, _disc(lo + 1), borderType=cv2.BORDER_REPLICATE)
    return (1.0 - t) * a_lo + t * a_hi


def shift_edge(alpha: np.ndarray, percent: float) -> np.ndarray:
    if percent == 0:
        return alpha
    return np.power(np.clip(alpha, 0.0, 1.0), np.float32(2.0 ** (-percent / 50.0)))


def feather(alpha: np.ndarray, px: float) -> np.ndarray:
    if px <= 0:
        return alpha
    return cv2.GaussianBlur(alpha, (0, 0), sigmaX=px / 2.0, borderType=cv2.BORDER_REPLICATE)


def despill(fgr: np.ndarray, colour: str) -> np.ndarray:
    out = np.array(fgr, dtype=np.float32, copy=True)
    r, g, b = out[..., 0], out[..., 1], out[..., 2]
    if colour == "green":
        np.minimum(g, (r + b) * 0.5, out=g)
    else:
        np.minimum(b, (r + g) * 0.5, out=b)
    return out


class Refiner:
    """Streaming refinement: call :meth:`reset` per video, then :meth:`step` per frame in order."""

    def __init__(self, settings: RefineSettings):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        # per target key: the previous frames' (picture, unrefined alpha)
        self._history: dict[object, deque] = {}

    def step(self, image: np.ndarray, fgr: np.ndarray | None, alphas: dict) -> tuple[np.ndarray | None, dict]:
        """``image`` the frame the model saw (uint8/uint16 RGB), ``fgr`` HxWx3 float32 or None,
        ``alphas`` {target key: HxW float32}; returns the refined ``(fgr, alphas)``."""
        s = self.settings
        picture = None
        if s.reduce_chatter:
            scale = 1.0 / 65535.0 if image.dtype == np.uint16 else 1.0 / 255.0
            picture = image.astype(np.float32) * scale
        out = {}
        for key, alpha in alphas.items():
            a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
            if s.reduce_chatter:
                a = self._dechatter(key, picture, a)
            a = choke(a, s.choke)
            a = shift_edge(a, s.shift_edge)
            a = feather(a, s.feather)
            out[key] = np.clip(a, 0.0, 1.0).astype(np.float32, copy=False)
        if fgr is not None and s.despill:
            fgr = despill(fgr, s.despill)
        return fgr, out

    def _dechatter(self, key, picture: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        history = self._history.setdefault(key, deque(maxlen=self.settings.reduce_chatter))
        total = alpha.copy()
        weight = np.ones_like(alpha)
        tol = self.settings.chatter_tolerance
        for past_picture, past_alpha in history:
            d = np.abs(picture - past_picture).mean(axis=2)
            w = np.exp(-np.square(d / tol))
            w[np.abs(alpha - past_alpha) > 0.5] = 0.0
            total += w * past_alpha
            weight += w
        history.append((picture, alpha))
        return total / weight

    def state(self) -> State:
        """The history :meth:`step` keeps (``reduce_chatter``): ``{target: [(picture, alpha), ...]}``."""
        return {key: [(p, a) for p, a in h] for key, h in self._history.items()}

    def load_state(self, state: State) -> None:
        n = self.settings.reduce_chatter
        self._history = {key: deque(((p, a) for p, a in h), maxlen=n) for key, h in (state or {}).items()}


class Refined:
    """``inner``'s results through a :class:`Refiner` (a :class:`~vmatte.engine.matter.Matter`)."""

    def __init__(self, inner: Matter, settings: RefineSettings):
        self.inner = as_matter(inner)
        self.settings = settings
        self.refiner = Refiner(settings)
        self.resumable = bool(getattr(self.inner, "resumable", False))

    @property
    def description(self) -> str:  # live: a model may choose its runtime at the first frame
        return f"{self.inner.description}; refined: {self.settings.describe()}"

    @property
    def targets(self) -> tuple:
        return self.inner.targets

    @property
    def mask_source(self):
        """The model's mask source (the loop puts its masks on the frames before the model reads them)."""
        return getattr(self.inner, "mask_source", None)

    def add_keyframe(self, index: int, mask) -> None:
        self.inner.add_keyframe(index, mask)

    def reset(self, concurrent_io: bool = False) -> None:
        self.inner.reset(concurrent_io)
        self.refiner.reset()

    def run(
        self, frames: Iterable[Frame], foreground: bool = True
    ) -> Iterator[tuple[Frame, np.ndarray | None, Alphas]]:
        step = self.refiner.step
        for frame, fgr, alphas in self.inner.run(frames, foreground):
            fgr, alphas = step(frame.image, fgr, alphas)
            yield frame, fgr, alphas

    def state(self) -> State:
        return {"model": self.inner.state(), "refine": self.refiner.state()}

    def load_state(self, state: State) -> None:
        self.inner.load_state(state["model"])
        self.refiner.load_state(state["refine"])


def refined(matter, settings: RefineSettings | None):
    """``matter`` refined by ``settings`` (``matter`` itself when no control is on)."""
    if settings is None or not settings.active:
        return matter
    return Refined(matter, settings)
