"""A matting run started from the web app: progress, cancellation, frames to scrub through, and
the chosen outputs ready to download (image folders zipped). No Gradio here.

The run is :func:`vmatte.matte.matte` with an ``on_frame`` callback: it sees every frame as the
model finishes it, so it counts progress, keeps the frames of the
result viewer (:class:`ResultFrames`) and stops the run when the user
cancels (an exception inside the run, so ``matte`` removes every partial output as it does on
Ctrl-C). The model menu comes from the registry (:mod:`vmatte.engine.registry`): every model
whose weights are here. A per-frame-mask model (VideoMaMa) gets its masks from SAM 2 tracking the
session's targets inside the run when a SAM 2 checkpoint is cached (``--tracker auto``), else from
a first pass of the best target model over them.
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

from ..engine.options import AUTO, REFINE, TRACKER_RVM, TRACKER_SAM2, Option, group
from ..engine.refine import RefineSettings
from ..errors import InputError, VmatteError
from ..io.formats import parse_formats
from ..io.masks import TargetMask
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


# The tracker menu (--tracker): what follows the targets through the video in "Preview tracking" and
# in runs of the models that read a tracker's masks (VideoMaMa, rvm-target, sam2-matte, Auto).
TRACKER_CHOICES: tuple[tuple[str, str], ...] = (
    ("Auto: SAM 2 when cached, else RVM", AUTO),
    ("SAM 2 (any object)", TRACKER_SAM2),
    ("RVM (people only)", TRACKER_RVM),
)
TRACKER_NAMES = {TRACKER_SAM2: "SAM 2", TRACKER_RVM: "RVM (rvm-target)"}


class Cancelled(VmatteError):
    """The user stopped the run."""


def available_models() -> list[tuple[str, str]]:
    """(label, model name) of the models this machine can run without a download: auto, the target
    models, the per-frame-mask models (their masks from a first pass), then every-person ones."""
    from ..engine import registry

    def label(spec: registry.ModelSpec) -> str:
        if spec.every_person:
            return f"{spec.label}: every person, no target"
        if spec.takes == registry.FRAME_MASKS:
            return (
                f"{spec.label} (cached weights; per-frame masks: SAM 2 tracks the targets when a SAM 2 "
                f"checkpoint is cached, else a first pass with Auto)"
            )
        return f"{spec.label} (cached weights)" if spec.weights else f"Offline target mode ({spec.name})"

    here = [s for s in registry.SPECS.values() if registry.is_cached(s)]
    order = [s for s in here if s.takes == registry.KEYFRAMES] + [s for s in here if s.takes == registry.FRAME_MASKS]
    order += [s for s in here if s.every_person][:1]
    return [("Auto (best available)", registry.AUTO)] + [(label(s), s.name) for s in order]


def page_options(group_name: str) -> tuple[Option, ...]:
    """The options of ``group_name`` the page has a field for, in declaration order."""
    return tuple(o for o in group(group_name) if o.field)


def shown_options(model: str, tracker: str = AUTO) -> frozenset[str]:
    """The model options the page shows for a choice of the Model menu: those the model takes
    (``auto``: the model auto picks for the page's targets, by the same rule the run uses)."""
    from ..engine import registry

    if model == AUTO:
        return registry.choose_auto(registry.MatterOptions(keyframes={0: None}, tracker=tracker or AUTO))[0].options
    spec = registry.SPECS.get(model)
    return spec.options if spec is not None else frozenset()


def page_value(o: Option, value):
    """A field's value as the option's value: empty (or "none", or 0 where 0 is no allowed value,
    as in "Max size 0") is the option's default."""
    if value is None or value == "" or (o.choices and value == "none"):
        return o.default
    if o.type in (int, float):
        value = o.type(value)
        if value == 0 and o.low is not None and (o.low > 0 or o.low_open):
            return o.default
    return value


def refine_from_page(values: dict) -> RefineSettings | None:
    """The Refine matte fields (``{name: value}``) as settings, or None when all are off."""
    settings = RefineSettings(**{o.name: page_value(o, values.get(o.name)) for o in page_options(REFINE)})
    return settings if settings.active else None


@dataclass(frozen=True)
class RunSettings:
    model: str = "auto"
    formats: tuple[str, ...] = ("prores",)
    background: str | None = None  # a colour only: name, #rrggbb or r,g,b (composite output)
    background_file: str | None = None  # an uploaded image/video (a path Gradio gave, in the working folder)
    options: dict = field(default_factory=dict)  # the page's model option fields {name: value}; only the model's go
    refine: RefineSettings | None = None  # choke/feather/shift edge/chatter/despill after the model
    tracker: str = AUTO  # --tracker: sam2, rvm or auto, for the models that follow a target by a tracker


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
        cv2.imwrite(
            str(self._temp / f"{self.count:06d}_f.jpg"),
            cv2.cvtColor(fg, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 92],
        )
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
    """load_matter() options for the chosen model: targets for the target models, and of the
    page's option fields only those the model takes (a field of another model never reaches it)."""
    from ..engine import registry

    options: dict = {"device": session.settings.device}
    spec = None if settings.model == registry.AUTO else registry.get(settings.model)
    if spec is not None and spec.every_person:
        return {**options, **_taken(settings, spec)}
    keyframes = session.keyframes()
    if not keyframes:
        raise InputError(
            "no target yet: click on the subject in the frame (or brush / upload its mask), "
            "or choose an every-person model"
        )
    options["keyframes"] = keyframes
    if settings.tracker != registry.AUTO and (spec is None or spec.takes_tracker):
        options["tracker"] = settings.tracker  # models that follow their target themselves ignore the menu
    if spec is None:
        spec, _ = registry.choose_auto(registry.MatterOptions(keyframes=keyframes, tracker=settings.tracker))
    return {**options, **_taken(settings, spec)}


def _taken(settings: RunSettings, spec) -> dict:
    return {k: v for k, v in settings.options.items() if k in spec.options and v is not None}


def run_background(settings: RunSettings, session: Session) -> str | None:
    """The composite's background: an upload (a file in the app's working folder) or a colour.
    A typed path is never opened, and the error says nothing about whether it exists: the page
    must not read, or probe, files of the server."""
    from ..io.background import Background
    from .session import inside

    if settings.background_file:
        if not inside(settings.background_file, session.settings.workdir):
            raise InputError("the background file was not uploaded through this page; upload it again")
        return str(settings.background_file)
    if settings.background:
        Background.parse_colour(settings.background)
        return settings.background
    return None


def run_job(
    session: Session, settings: RunSettings, job: Job, on_frame: Callable[[Job], None] | None = None
) -> JobResult:
    """Matte the session's video into ``session.folder/run-N/``; return what to download."""
    from ..engine import registry
    from ..engine.registry import tracker_kind
    from ..matte import load_matter, matte

    session._need_video()
    if settings.model != registry.AUTO and settings.model not in registry.SPECS:
        raise InputError(f"unknown model {settings.model!r}")
    names = parse_formats(list(settings.formats) or [])
    background = run_background(settings, session)
    runs = sorted(session.folder.glob("run-*"))
    out_dir = session.folder / f"run-{len(runs) + 1:03d}"
    if settings.tracker not in registry.TRACKERS:
        raise InputError(f"unknown tracker {settings.tracker!r}; choose one of {', '.join(registry.TRACKERS)}")
    frame_masks = settings.model != registry.AUTO and registry.get(settings.model).takes == registry.FRAME_MASKS
    options = _frame_mask_options(settings, session) if frame_masks else model_options(settings, session)
    if frame_masks and (settings.tracker != registry.AUTO or tracker_kind(registry.AUTO) == registry.TRACKER_SAM2):
        # the tracker (SAM 2, or rvm-target's tracking when chosen) makes the masks inside the run
        options["keyframes"] = options.pop("first")["keyframes"]
        options["tracker"] = settings.tracker
        frame_masks = False
    matter = None if frame_masks else load_matter(settings.model, **options)  # a bad model fails before any file
    preview = ResultFrames(out_dir / "preview", session.settings.preview_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        if frame_masks:  # the per-frame masks from the best target model first (a pass of its own)
            first = matte(
                session.video,
                out_dir / ".masks",
                model=load_matter(registry.AUTO, **options.pop("first")),
                formats=["alpha-png"],
                stem="masks",
                on_frame=_hook(job, None, on_frame),
            )
            options["masks"] = first.outputs["alpha-png"]
            job.done = 0
            matter = load_matter(settings.model, **options)
        result = matte(
            session.video,
            out_dir,
            model=matter,
            formats=names,
            background=background,
            stem=session.name,
            on_frame=_hook(job, preview, on_frame),
            refine=settings.refine,
        )
        preview_path = preview.close()
    except BaseException:
        preview.abort()
        raise
    finally:
        shutil.rmtree(out_dir / ".masks", ignore_errors=True)
    downloads = [zip_folder(p) if p.is_dir() else p for p in result.outputs.values()]
    return JobResult(downloads, preview_path, result.frames, time.perf_counter() - start, result.model)


def _frame_mask_options(settings: RunSettings, session: Session) -> dict:
    """Options of a per-frame-mask model (VideoMaMa), with ``first``: those of the first pass that
    makes its masks (Auto on the session's targets, every target as one subject). The masks'
    pass runs at the tracker's own size: a small max size set for VideoMaMa (its memory) would
    leave the people finder too few pixels to see anyone."""
    first = model_options(RunSettings(), session)
    first["keyframes"] = {
        f: TargetMask({1: np.max(np.stack(list(m.targets.values())), axis=0)}, m.source, m.kind)
        for f, m in first["keyframes"].items()
    }
    from ..engine import registry

    return {"device": session.settings.device, **_taken(settings, registry.get(settings.model)), "first": first}


def _hook(job: Job, preview: ResultFrames | None, on_frame: Callable[[Job], None] | None):
    """matte()'s ``on_frame``: the preview, the progress, and the stop flag (checked once the frame
    is counted, so a stop stops before the next frame is matted)."""

    def hook(r) -> None:
        if preview is not None:  # the preview shows every target together
            alpha = r.alpha if r.alphas is None else np.max(np.stack(list(r.alphas.values())), axis=0)
            preview.write(r.image, r.foreground, alpha)
        job.done += 1
        if on_frame is not None:
            on_frame(job)
        if job.cancel.is_set():
            raise Cancelled("stopped; no output was written")

    return hook
