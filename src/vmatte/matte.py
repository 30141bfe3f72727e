"""The public API: what the CLI, the UI and user programs call.

>>> import vmatte
>>> result = vmatte.matte("clip.mp4", "out/", formats=["alpha", "prores"])   # files
>>> for frame in vmatte.iter_matte("clip.mp4"):                               # arrays
...     frame.alpha  # HxW float32 in [0, 1]

The models are in :mod:`vmatte.engine.registry`, the frame loop in :mod:`vmatte.engine.loop`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from .engine import registry
from .engine.device import resolve_device
from .engine.loop import QUEUE_FRAMES, FrameResult, results, run
from .engine.matter import Matter, as_matter
from .engine.outputs import OutputPlan, default_stem, own_outputs
from .engine.pipeline import Prefetcher
from .engine.refine import RefineSettings, refined
from .engine.registry import BACKENDS, MatterOptions
from .engine.resume import should_journal
from .engine.segment.clicks import keyframes_with_clicks
from .errors import VmatteError
from .io.formats import DEFAULT_FORMATS, FORMATS, parse_formats
from .io.masks import check_keyframes_inside, fit_schedule, schedule_options
from .io.reader import VideoInfo, open_source
from .io.writers import Background
from .progress import run_progress, say_fps_assumed

__all__ = [
    "BACKENDS",
    "MODELS",
    "FrameResult",
    "MatteResult",
    "MatterOptions",
    "RefineSettings",
    "iter_matte",
    "load_matter",
    "matte",
    "resolve_device",
]

MODELS = registry.help_lines()  # name -> one line of help (the registry's)


@dataclass
class MatteResult:
    outputs: dict[str, Path]
    frames: int
    seconds: float
    model: str
    info: VideoInfo | None = field(default=None, repr=False)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def load_matter(model: str = "auto", *, options: MatterOptions | None = None, **kwargs) -> Matter:
    """Build a streaming matter for ``model``; reuse it across videos (it resets per video).

    Options (:class:`~vmatte.engine.registry.MatterOptions`, or the same names as keywords):
    ``weights``, ``device``, ``backend``, ``downsample_ratio``, ``max_size``; ``mask`` (the target(s)
    on the first frame: a path, an HxW array, ``{id: HxW}`` or a TargetMask; a label mask gives one
    matte per id), ``keyframes`` (``{frame index: mask}``: an id first seen at frame k is tracked
    from k on, one already tracked is re-initialised there), ``masks`` (a folder of one coarse
    mask per frame: videomama, or rvm gated by them), ``warmup_frames``, ``erode``, ``dilate``
    (MatAnyone's first-frame refinement and mask clean-up, defaults 10, 10, 10 as upstream),
    ``precision`` (fp32, bf16, or fp16 on a GPU).
    """
    opts = options if options is not None else MatterOptions.from_kwargs(kwargs)
    return registry.load(model, opts)


def iter_matte(
    input: str | os.PathLike,
    *,
    model: str | Matter = "auto",
    fps: float | None = None,
    clicks: Sequence | None = None,
    excludes: Sequence | None = None,
    segmenter: str | None = None,
    frames: str | None = None,
    input_colorspace: str | None = None,
    refine: RefineSettings | None = None,
    **model_options,
) -> Iterator[FrameResult]:
    """Yield a :class:`FrameResult` per frame, streaming (decode runs ahead in a thread).

    ``clicks`` / ``excludes``: points ``(x, y, frame)`` on / off the target; they become its
    keyframe masks (see :mod:`vmatte.engine.segment.clicks`), made by ``segmenter`` (``auto``: a
    cached SAM / SAM 2, else RVM's person regions; see :mod:`vmatte.engine.segment.prompts`).
    ``frames`` / ``input_colorspace``: EXR/DPX plates (see :func:`vmatte.io.reader.open_source`);
    ``refine``: the matte refinement controls (:class:`~vmatte.engine.refine.RefineSettings`)."""
    if clicks or excludes:
        model_options["keyframes"] = keyframes_with_clicks(
            input, model, fps, clicks, excludes, model_options, False, segmenter
        )
    matter = model if not isinstance(model, str) else load_matter(model, **model_options)
    matter = refined(as_matter(matter), refine)
    with open_source(input, fps=fps, frames=frames, colorspace=input_colorspace) as src:
        prefetch = Prefetcher(src, QUEUE_FRAMES)
        try:
            yield from results(matter, iter(prefetch))
        finally:
            prefetch.close()


def matte(
    input: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    model: str | Matter = "auto",
    formats: str | Sequence[str] = DEFAULT_FORMATS,
    background: str | None = None,
    overwrite: bool = False,
    fps: float | None = None,
    stem: str | None = None,
    progress: bool = False,
    clicks: Sequence | None = None,
    excludes: Sequence | None = None,
    segmenter: str | None = None,
    resume: bool = False,
    chunk_frames: int | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    frames: str | None = None,
    input_colorspace: str | None = None,
    exr_compression: str = "zip",
    refine: RefineSettings | None = None,
    **model_options,
) -> MatteResult:
    """Matte ``input`` and write ``formats`` into ``output_dir``; returns the final paths.

    Outputs appear under their final names only when complete: on any error or Ctrl-C every
    temporary file is removed and existing files are left as they were.

    With a mask of several targets (``mask=`` a label/palette mask), each target id N gets its
    own set of outputs named ``STEM_idN_...`` (keys ``NAME_idN`` in the result), all from one pass.
    ``clicks`` / ``excludes`` (points ``(x, y, frame)``) pick the target as keyframe masks, made by
    ``segmenter`` (as in :func:`iter_matte`). ``on_frame(result)`` is called after each frame (in
    the model's thread; an exception there stops the run and removes the partial outputs).
    Videos longer than two chunks (``chunk_frames``, default 250) are written chunk by chunk into
    a journal (models whose state can be saved: every model but VideoMaMa), so ``resume=True``
    continues a killed run (see :mod:`vmatte.engine.resume`).
    EXR/DPX plates: ``frames`` (``"1001-1100"``) and ``input_colorspace`` (an OpenColorIO space);
    ``exr_compression`` for the EXR outputs; ``refine`` the matte refinement controls, applied to
    every target's alpha after the model. With several targets, ``exr-layers`` is one set of files
    (``STEM_layers``) with one alpha layer per target.
    """
    if clicks or excludes:  # the clicked target becomes a keyframe mask, then is handled as one
        parse_formats(formats)  # a format typo should not cost an RVM pass
        model_options["keyframes"] = keyframes_with_clicks(
            input, model, fps, clicks, excludes, model_options, progress, segmenter
        )
    # Cheap checks first (formats, background, input, mask, output folder), the model last: a
    # typo should not cost a model load, and the user sees one error line.
    names = parse_formats(formats)
    if background:
        Background.parse(background)  # a bad background fails before the input is opened
    ids = schedule_options(model_options) if isinstance(model, str) else as_matter(model).targets
    if not os.fspath(output_dir):
        raise VmatteError("the output folder is an empty name; give --output a folder name ('.' for here)")
    last_key = max(model_options.get("keyframes") or {0: None}) if isinstance(model, str) else 0
    start = time.perf_counter()
    with open_source(input, fps=fps, frames=frames, colorspace=input_colorspace) as src, ExitStack() as owned:
        info = src.info
        check_keyframes_inside(last_key, info.num_frames, exact=info.is_image_sequence)  # before any work
        if isinstance(model, str) and model_options.get("keyframes"):
            # fitted to the frame now: a mask of another video fails before any output exists, and a
            # resize warning prints before the progress bar instead of on its line
            model_options["keyframes"] = fit_schedule(model_options["keyframes"], (info.height, info.width))
        say_fps_assumed(info, fps, progress)
        plan = OutputPlan(output_dir, stem or default_stem(info), ids, names, background, overwrite, exr_compression)
        outputs, locks = own_outputs(plan, info, owned)  # locked for this run; checked before the model loads
        try:
            matter = model if not isinstance(model, str) else load_matter(model, **model_options)
        except BaseException:
            outputs.abort()
            raise
        matter = refined(as_matter(matter), refine)  # the refinement: a step of the one loop, for every run
        outputs.annotate(matter.description)
        plan = dataclasses.replace(plan, model=matter.description)
        announced = matter.description
        if progress:
            print(f"model: {announced}", file=sys.stderr)
        bar, tick = run_progress(info.num_frames, info.path.name, progress, on_frame)
        try:
            if should_journal(matter, info.num_frames, resume, chunk_frames):  # chunks into a journal: resumable
                from .engine.chunked import journaled_matte
                from .engine.resume import DEFAULT_CHUNK_FRAMES

                outputs.abort()  # the output checks are done; the chunks are written into the journal
                model_name = model if isinstance(model, str) else matter.description
                options = dict(
                    model=model_name,
                    formats=names,
                    background=background,
                    fps=fps,
                    stem=plan.stem,
                    ids=ids,
                    frames=frames,
                    input_colorspace=input_colorspace,
                    exr_compression=exr_compression,
                    refine=refine if refine is not None and refine.active else None,
                    **model_options,
                )
                paths, count = journaled_matte(
                    src,
                    matter,
                    info,
                    plan,
                    options,
                    resume,
                    chunk_frames or DEFAULT_CHUNK_FRAMES,
                    bar,
                    tick,
                    run_id=locks[plan.stem].run,
                    check=lambda n: check_keyframes_inside(last_key, n, exact=True),
                )
            else:
                try:
                    need_fgr = any(FORMATS[n].uses_foreground for n in names)
                    count = run(matter, src, outputs.write, foreground=need_fgr, on_frame=tick)
                    check_keyframes_inside(last_key, count, exact=True)  # past the end: every alpha would be 0
                    paths = outputs.close()
                except BaseException:
                    outputs.abort()
                    raise
        finally:
            if bar is not None:
                bar.close()
    _say_runtime(matter, announced, progress)
    return MatteResult(paths, count, time.perf_counter() - start, matter.description, info)


def _say_runtime(matter, announced: str, progress: bool) -> None:
    """A matter that chose its runtime from the first frame (RVM on the CPU) says which one ran."""
    if progress and matter.description != announced:
        print(f"ran: {matter.description}", file=sys.stderr)
