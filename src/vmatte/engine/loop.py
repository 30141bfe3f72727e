"""The frame loop: decode -> matter -> writers, the one path every run takes.

:func:`results` runs a :class:`~vmatte.engine.matter.Matter` over frames and yields a
:class:`FrameResult` per frame (``iter_matte``, ``bench quality``). :func:`run` adds the threads:
decoding runs ahead in one (:class:`~.pipeline.Prefetcher`), writing runs behind in another
(:class:`~.pipeline.BackgroundConsumer`), the model in the caller's. ``vmatte.matte``'s plain
and journaled runs and the web app all go through :func:`run`; what differs is passed in:

* ``write(result)``: runs in the writer thread, in frame order;
* ``on_frame(result)``: runs in the model's thread after each frame (progress bars, the app's
  preview; raising here, e.g. on a user's cancel, stops the run like Ctrl-C);
* ``after(result)``: may return a task for the writer thread to run once this frame is
  written (the journal commits a chunk this way, with the state taken right after the frame).

The data path of one frame (:func:`results`), whatever the model::

    frame = source.annotate(frame)      # the matter's mask source, if any: frame.masks (+ scores)
    frame, fgr, alphas = matter(frame)  # the model reads the masks of the frame it is given
    write(FrameResult(...))             # the result carries the frame's masks on to the writers
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..io.reader import Frame
from .matter import Matter, State, as_matter
from .pipeline import BackgroundConsumer, Prefetcher

QUEUE_FRAMES = 4  # frames in flight per queue: enough to overlap stages, small enough for 8K


@dataclass
class FrameResult:
    index: int
    time: float
    image: np.ndarray  # the source frame, RGB uint8 (uint16 for >8-bit sources)
    foreground: np.ndarray | None  # HxWx3 float32 in [0, 1], straight (None only inside alpha-only runs)
    alpha: np.ndarray  # HxW float32 in [0, 1] (several targets: the first target's)
    alphas: dict[int, np.ndarray] | None = None  # target id -> HxW alpha (target-mask models only)
    plate: np.ndarray | None = None  # EXR/DPX inputs: the frame in the plate's colour space (image: what the model saw)
    masks: dict[int, np.ndarray] | None = None  # the frame's masks from the mask source (Frame.masks), if any
    mask_scores: dict[int, dict[str, float]] | None = None  # the source's confidence per target (Frame.mask_scores)


def results(
    matter: Matter, frames: Iterable[Frame], foreground: bool = True, concurrent_io: bool = False, state: State = None
) -> Iterator[FrameResult]:
    """``matter`` over ``frames`` from a reset (and, given ``state``, from that saved state). A matter
    with a ``mask_source`` gets every frame with its masks on it (the source's step, here, once per
    frame, just before the model reads the frame); the source ends with the frames."""
    matter = as_matter(matter)
    matter.reset(concurrent_io)
    if state is not None:
        matter.load_state(state)
    source = getattr(matter, "mask_source", None)
    if source is not None:
        frames = map(source.annotate, frames)
    first = matter.targets[0]
    for frame, fgr, alphas in matter.run(frames, foreground):
        yield FrameResult(
            frame.index,
            frame.time,
            frame.image,
            fgr,
            alphas[first],
            None if first is None else alphas,
            frame.plate,
            frame.masks,
            frame.mask_scores,
        )
    if source is not None:
        source.finish()


def run(
    matter: Matter,
    source: Iterable[Frame],
    write: Callable[[FrameResult], None],
    *,
    foreground: bool = True,
    on_frame: Callable[[FrameResult], None] | None = None,
    after: Callable[[FrameResult], Callable[[], None] | None] | None = None,
    skip: int = 0,
    state: State = None,
) -> int:
    """Matte ``source`` into ``write``; returns the number of frames matted. ``skip``: frames before
    this index are decoded and dropped (a resumed run; ``state`` is the model's state there)."""
    frames = Prefetcher(source, QUEUE_FRAMES)
    writer: BackgroundConsumer = BackgroundConsumer(_call, QUEUE_FRAMES)
    count = 0
    try:
        todo = iter(frames) if not skip else (f for f in frames if f.index >= skip)
        for result in results(matter, todo, foreground, concurrent_io=True, state=state):
            writer.put(partial(write, result))
            count += 1
            if after is not None:
                task = after(result)
                if task is not None:
                    writer.put(task)
            if on_frame is not None:
                on_frame(result)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        frames.close()
    return count


def _call(task: Callable[[], None]) -> None:
    task()
