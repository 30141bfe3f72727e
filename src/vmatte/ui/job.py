"""A matting run started from the web app: progress, cancellation, a side-by-side preview, and
the chosen outputs ready to download (image folders zipped). No Gradio here.

The run is :func:`vmatte.matte.matte` on a matter wrapped by :class:`HookedMatter`: the wrapper
sees every frame as the model finishes it, so it counts progress, writes the preview and stops
the run when the user cancels (an exception inside the run, so ``matte`` removes every partial
output as it does on Ctrl-C).
"""

from __future__ import annotations

import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InputError, VmatteError
from ..engine.refine import RefineSettings
from ..io.formats import parse_formats
from .overlay import preview_panels
from .session import Session

# What the page offers, in this order: (label, format name). Folders are zipped for download.
FORMAT_CHOICES: tuple[tuple[str, str], ...] = (
    ("ProRes 4444 with alpha (.mov)", "prores"),
    ("WebM VP9 with alpha (.webm)", "webm"),
    ("Alpha matte video (.mp4)", "alpha"),
    ("RGBA PNG sequence (.zip)", "rgba-png"),
    ("Alpha PNG sequence (.zip)", "alpha-png"),
    ("16-bit alpha PNG sequence (.zip)", "alpha-png16"),
    ("Composite over the background (.mp4)", "comp"),
    ("Foreground colour (.mp4)", "fgr"),
)
EVERY_PERSON = "rvm"
TARGET_MODELS = ("auto", "rvm-target", "matanyone", "matanyone2")


class Cancelled(VmatteError):
    """The user stopped the run."""


def available_models() -> list[tuple[str, str]]:
    """(label, model name) of the models this machine can run without a download."""
    from ..weights import matanyone_cache_paths

    models = [("Auto (best available)", "auto"), ("Offline target mode (rvm-target)", "rvm-target")]
    for name, label in (("matanyone", "MatAnyone"), ("matanyone2", "MatAnyone2")):
        file, folder = matanyone_cache_paths(name)
        if file.is_file() or (folder / "model.safetensors").is_file():
            models.append((f"{label} (cached weights)", name))
    models.append(("RVM: every person, no target", EVERY_PERSON))
    return models


@dataclass(frozen=True)
class RunSettings:
    model: str = "auto"
    formats: tuple[str, ...] = ("prores",)
    background: str | None = None  # colour, #rrggbb, or an image/video path (composite output)
    max_size: int | None = None
    warmup_frames: int | None = None  # MatAnyone's first-frame refinement (ignored by other models)
    refine: RefineSettings | None = None  # choke/feather/shift edge/chatter/despill after the model


@dataclass
class Job:
    """Progress and the stop flag of one run, shared between the run and the page."""

    total: int
    done: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self.cancel.set()


@dataclass
class JobResult:
    downloads: list[Path]  # files to offer (folders already zipped)
    preview: Path  # alpha | composite, side by side (VP9 WebM, plays in any browser)
    frames: int
    seconds: float
    model: str


class PreviewWriter:
    """Side-by-side preview frames into a small VP9 WebM (written to a temp name, then renamed)."""

    def __init__(self, path: Path, fps: Fraction, width: int):
        self.path, self.fps, self.width = Path(path), fps, width
        self._temp = self.path.with_name(f".partial-{self.path.name}")
        self._out = None
        self._stream = None
        self._count = 0

    def write(self, image: np.ndarray, foreground: np.ndarray | None, alpha: np.ndarray) -> None:
        # never upscaled: a small clip's preview is the clip's own size
        panels = preview_panels(image, foreground, alpha, min(self.width, alpha.shape[1]))
        if self._out is None:
            self._out = av.open(str(self._temp), "w", format="webm")
            self._stream = self._out.add_stream("libvpx-vp9", rate=self.fps)
            self._stream.height, self._stream.width = panels.shape[:2]
            self._stream.pix_fmt = "yuv420p"
            # realtime settings: the preview must not slow the run down noticeably
            self._stream.options = {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        vf = av.VideoFrame.from_ndarray(panels, format="rgb24").reformat(format="yuv420p")
        vf.pts = self._count
        self._count += 1
        self._out.mux(self._stream.encode(vf))

    def close(self) -> Path:
        if self._out is None:
            raise InputError("no frame was matted, so there is no preview")
        self._out.mux(self._stream.encode())
        self._out.close()
        self._temp.replace(self.path)
        return self.path

    def abort(self) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except Exception:  # noqa: BLE001 - already failing; the temp file goes below
                pass
        self._temp.unlink(missing_ok=True)


class HookedMatter:
    """A FrameMatter that counts frames, feeds the preview and honours the stop flag."""

    def __init__(self, inner, job: Job, preview: PreviewWriter, on_frame: Callable[[Job], None] | None = None):
        self._inner, self._job, self._preview, self._on_frame = inner, job, preview, on_frame
        self.description = inner.description
        if hasattr(inner, "step_all"):  # matte() looks this up to get one alpha per target
            self.step_all = self._step_all

    def __getattr__(self, name):  # targets, and anything else matte() may read
        if name == "stream":  # a chunked matter's own loop would bypass the hooks: not offered
            raise AttributeError(name)
        return getattr(self._inner, name)

    def reset(self, concurrent_io: bool = False) -> None:
        self._inner.reset(concurrent_io)

    def _after(self, image, fgr, alpha) -> None:
        self._preview.write(image, fgr, alpha)
        self._job.done += 1
        if self._on_frame is not None:
            self._on_frame(self._job)

    def _check(self) -> None:
        if self._job.cancel.is_set():
            raise Cancelled("stopped; no output was written")

    def step(self, image, foreground: bool = True):
        self._check()
        fgr, alpha = self._inner.step(image, foreground)
        self._after(image, fgr, alpha)
        return fgr, alpha

    def _step_all(self, image, foreground: bool = True):
        self._check()
        fgr, alphas = self._inner.step_all(image, foreground)
        # the preview shows every target together
        self._after(image, fgr, np.max(np.stack(list(alphas.values())), axis=0))
        return fgr, alphas


def zip_folder(folder: Path) -> Path:
    """``folder`` as ``folder.zip`` beside it (stored, PNGs do not compress further)."""
    target = folder.with_suffix(".zip")
    temp = folder.with_name(f".partial-{target.name}")
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED) as z:
        for p in sorted(folder.iterdir()):
            z.write(p, f"{folder.name}/{p.name}")
    temp.replace(target)
    return target


def model_options(settings: RunSettings, session: Session) -> dict:
    """load_matter() options for the chosen model: targets for the target models, the warm-up
    only where it means something (MatAnyone)."""
    from ..weights import matanyone_cache_paths

    options: dict = {"device": session.settings.device, "max_size": settings.max_size}
    if settings.model == EVERY_PERSON:
        return options
    keyframes = session.keyframes()
    if not keyframes:
        raise InputError("no target yet: click on the subject in the frame (or brush / upload its mask), "
                         "or choose 'RVM: every person'")
    options["keyframes"] = keyframes
    matanyone = settings.model.startswith("matanyone") or (settings.model == "auto" and any(
        p.is_file() or (p / "model.safetensors").is_file()
        for name in ("matanyone2", "matanyone") for p in matanyone_cache_paths(name)))
    if matanyone and settings.warmup_frames is not None:
        options["warmup_frames"] = settings.warmup_frames
    return options


def run_job(session: Session, settings: RunSettings, job: Job,
            on_frame: Callable[[Job], None] | None = None) -> JobResult:
    """Matte the session's video into ``session.folder/run-N/``; return what to download."""
    from ..matte import load_matter, matte

    session._need_video()
    if settings.model not in TARGET_MODELS + (EVERY_PERSON,):
        raise InputError(f"unknown model {settings.model!r}")
    names = parse_formats(list(settings.formats) or [])
    runs = sorted(session.folder.glob("run-*"))
    out_dir = session.folder / f"run-{len(runs) + 1:03d}"
    matter = load_matter(settings.model, **model_options(settings, session))
    preview = PreviewWriter(out_dir / "preview.webm", session.info.fps, session.settings.preview_width)
    out_dir.mkdir(parents=True, exist_ok=True)
    hooked = HookedMatter(matter, job, preview, on_frame)
    start = time.perf_counter()
    try:
        result = matte(session.video, out_dir, model=hooked, formats=names, background=settings.background,
                       stem=session.name, refine=settings.refine)
        preview_path = preview.close()
    except BaseException:
        preview.abort()
        raise
    downloads = [zip_folder(p) if p.is_dir() else p for p in result.outputs.values()]
    return JobResult(downloads, preview_path, result.frames, time.perf_counter() - start, result.model)

