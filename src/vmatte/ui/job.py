"""A matting run started from the web app: progress, cancellation, frames to scrub through, and
the chosen outputs ready to download (image folders zipped). No Gradio here.

The run is :func:`vmatte.matte.matte` on a matter wrapped by :class:`HookedMatter`: the wrapper
sees every frame as the model finishes it, so it counts progress, keeps the frames of the result
viewer (:class:`ResultFrames`) and stops
the run when the user cancels (an exception inside the run, so ``matte`` removes every partial
output as it does on Ctrl-C).
"""

from __future__ import annotations

import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, VmatteError
from ..io.formats import parse_formats
from .overlay import to_rgb8
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
    preview: Path  # the result viewer's frames (ResultFrames folder)
    frames: int
    seconds: float
    model: str


class ResultFrames:
    """Every matted frame for the page's result viewer, at ``max_side`` px: the alpha as a grey PNG
    and the foreground (the source colours for alpha-only runs: close enough to judge the cut-out,
    no extra model work) as a JPEG, in a folder named ``.partial-...`` until the run is complete."""

    def __init__(self, folder: Path, max_side: int):
        self.folder, self.max_side = Path(folder), max_side
        self._temp = self.folder.with_name(f".partial-{self.folder.name}")
        self.count = 0

    def write(self, image: np.ndarray, foreground: np.ndarray | None, alpha: np.ndarray) -> None:
        if self.count == 0:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp.mkdir(parents=True)
        h, w = alpha.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        a = np.clip(np.rint(np.asarray(alpha, np.float32) * 255), 0, 255).astype(np.uint8)
        fg = to_rgb8(foreground if foreground is not None else image)
        if scale < 1:
            a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
            fg = cv2.resize(fg, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(self._temp / f"{self.count:06d}_a.png"), a)
        cv2.imwrite(str(self._temp / f"{self.count:06d}_f.jpg"), cv2.cvtColor(fg, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        self.count += 1

    def close(self) -> Path:
        if self.count == 0:
            raise InputError("no frame was matted, so there is no preview")
        self._temp.replace(self.folder)
        return self.folder

    def abort(self) -> None:
        shutil.rmtree(self._temp, ignore_errors=True)


def read_result_frame(folder: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``index`` of a :class:`ResultFrames` folder: (foreground RGB uint8, alpha uint8)."""
    a = cv2.imread(str(Path(folder) / f"{index:06d}_a.png"), cv2.IMREAD_GRAYSCALE)
    f = cv2.imread(str(Path(folder) / f"{index:06d}_f.jpg"), cv2.IMREAD_COLOR)
    if a is None or f is None:
        raise InputError(f"frame {index} of the result is not there; run again")
    return cv2.cvtColor(f, cv2.COLOR_BGR2RGB), a


class HookedMatter:
    """A FrameMatter that counts frames, feeds the preview and honours the stop flag."""

    def __init__(self, inner, job: Job, preview: ResultFrames, on_frame: Callable[[Job], None] | None = None):
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
    preview = ResultFrames(out_dir / "preview", session.settings.preview_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    hooked = HookedMatter(matter, job, preview, on_frame)
    start = time.perf_counter()
    try:
        result = matte(session.video, out_dir, model=hooked, formats=names, background=settings.background,
                       stem=session.name)
        preview_path = preview.close()
    except BaseException:
        preview.abort()
        raise
    downloads = [zip_folder(p) if p.is_dir() else p for p in result.outputs.values()]
    return JobResult(downloads, preview_path, result.frames, time.perf_counter() - start, result.model)

