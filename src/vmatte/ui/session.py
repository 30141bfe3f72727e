"""One user's state in the web app, without Gradio: the video, its frames, the targets picked
by clicks / brush / mask file, and the working folder everything lives in.

Everything the app reads or writes for a user stays under ``UiSettings.workdir`` (the app serves
files from there only). A click reuses the code of ``vmatte matte --click`` (a SAM / SAM 2
checkpoint when one is chosen or cached, else RVM's person regions, both through
:class:`~vmatte.engine.segment.clicks.ClickSegmenter`), so the
overlay is exactly the mask the run will use.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.segment.clicks import Click, ClickSegmenter
from ..engine.segment.prompts import AUTO
from ..errors import InputError
from ..io.masks import TargetMask, as_target_mask, fit_to_frame, schedule_ids
from ..io.reader import VideoInfo, open_source
from .overlay import Marker, draw_overlay, target_colour

FRAME_CACHE = 8  # decoded frames kept per session (scrubbing back and forth between a few)
# RVM's person alphas kept per session: a click on a frame near one already run is then instant.
PERSON_CACHE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class UiSettings:
    workdir: Path  # the only folder the app reads user files from and serves files out of
    max_upload_mb: int = 500
    device: str = "auto"
    preview_size: int = 960  # long side of the result viewer's frames, px
    segmenter: str = AUTO  # what clicks use at first: auto, rvm, a SEGMENTERS name or a checkpoint path


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` (symlinks resolved) lies in ``root``."""
    p, r = Path(path).resolve(), Path(root).resolve()
    return p == r or r in p.parents


@dataclass
class Target:
    """One subject to matte: its clicks and its mask at each frame that has one."""

    id: int
    name: str
    points: list[Click] = field(default_factory=list)
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> HxW uint8 (0..255)
    sources: dict[int, str] = field(default_factory=dict)  # frame -> "clicks" | "brush" | "file"

    @property
    def colour(self) -> tuple[int, int, int]:
        return target_colour(self.id)

    def points_at(self, frame: int) -> tuple[list[Click], list[Click]]:
        here = [p for p in self.points if p.frame == frame]
        return [p for p in here if not p.negative], [p for p in here if p.negative]


class Session:
    """A user's video and targets, in its own folder under the app's working directory."""

    def __init__(self, folder: Path, settings: UiSettings):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.video: Path | None = None
        self.name = "video"
        self.info: VideoInfo | None = None
        self.frame_count = 0
        self.targets: dict[int, Target] = {}
        self._frames: dict[int, np.ndarray] = {}
        self._person: dict[int, np.ndarray] = {}  # frame -> RVM alpha of every person (uint8)
        # One event at a time touches the session: a frame load finishing after a click must not
        # paint over the click's mask (Gradio runs different listeners concurrently).
        self.lock = threading.RLock()
        self.segmenter = settings.segmenter
        self._segmenters: dict[str, ClickSegmenter] = {}  # by choice, loaded once per session
        # SAM 2's propagated masks (the preview of the tracking): frame -> {target id: packed bits}
        self.tracked: dict[int, dict[int, np.ndarray]] = {}
        self._sam2 = None  # (choice, model, description), loaded on the first preview
        self.tracker_used: str | None = None  # sam2 or rvm: what made the last preview
        self.add_target()

    # --- the video ---------------------------------------------------------------------------

    def open_video(self, upload: str | os.PathLike) -> VideoInfo:
        """Take an uploaded file into the session folder and check it decodes; a bad file is a
        one-line :class:`InputError` and leaves the previous video in place."""
        src = Path(upload)
        if not src.is_file():
            raise InputError("no video received; upload a video file (mp4, mov, mkv, webm ...)")
        size_mb = src.stat().st_size / 2**20
        if size_mb > self.settings.max_upload_mb:
            raise InputError(
                f"the video is {size_mb:.0f} MB, over this app's {self.settings.max_upload_mb} MB "
                f"limit; trim it, or start the app with a larger --max-upload-mb"
            )
        dest = self.folder / f"input-{uuid.uuid4().hex[:8]}{src.suffix.lower()}"
        shutil.copyfile(src, dest)
        try:
            frames = self._count_frames(dest, src.name)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        if self.video is not None:
            self.video.unlink(missing_ok=True)
        self.video, self.frame_count = dest, frames
        # output names come from the user's file name, reduced to safe characters
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", src.stem).strip("._") or "video"
        with open_source(dest) as s:
            self.info = s.info
        self._frames.clear()
        self._person.clear()
        self.tracked.clear()
        for segmenter in self._segmenters.values():
            segmenter.new_video()
        self.targets = {}
        self.add_target()
        return self.info

    @staticmethod
    def _count_frames(path: Path, name: str) -> int:
        """Decode the whole file once: a truncated or non-video file fails now, not mid-run."""
        try:
            with open_source(path) as s:
                count = sum(1 for _ in s)
        except InputError as e:  # the user knows their file's name, not our copy's path
            raise InputError(f"cannot use this file: {str(e).replace(str(path), name)}") from None
        if count == 0:
            raise InputError("the file holds no video frames; upload a video")
        return count

    def _need_video(self) -> None:
        if self.video is None:
            raise InputError("upload a video first")

    def _check_index(self, index: int) -> int:
        self._need_video()
        index = int(index)
        if not 0 <= index < self.frame_count:
            raise InputError(f"frame {index} is outside the video (0..{self.frame_count - 1})")
        return index

    def frame(self, index: int) -> np.ndarray:
        """The upright RGB frame ``index`` (decoded from the start: exact for any codec)."""
        index = self._check_index(index)
        if index not in self._frames:
            with open_source(self.video) as s:
                for f in s:
                    if f.index == index:
                        if len(self._frames) >= FRAME_CACHE:
                            self._frames.pop(next(iter(self._frames)))
                        self._frames[index] = f.image
                        break
        return self._frames[index]

    def person_alpha(self, index: int, on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """RVM's alpha of every person at frame ``index`` (uint8), after running frames 0..index
        so its recurrent state has settled, as ``vmatte matte --click`` does.

        What was run is kept: every frame's alpha (up to ``PERSON_CACHE_BYTES``) and RVM's state at
        the last frame, so a later frame continues from there instead of from frame 0.
        ``on_progress(done, total)`` is called after each frame the model runs."""
        index = self._check_index(index)
        if index in self._person:
            return self._person[index]
        segmenter = self._segmenter(self.segmenter)
        first = segmenter.person_at + 1 if segmenter.person_at < index else 0

        def keep(i: int, alpha: np.ndarray) -> None:
            self._keep_person(i, np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8))
            if on_progress is not None:
                on_progress(i - first + 1, index - first + 1)

        with open_source(self.video) as s:
            segmenter.person_alphas(s, [index], on_alpha=keep)
        return self._person[index]

    def person_frames_to_run(self, index: int) -> tuple[int, int] | None:
        """The frames (first, last) RVM must run before a click at ``index`` (None: cached)."""
        if index in self._person:
            return None
        at = self._segmenter(self.segmenter).person_at
        return (at + 1 if at < index else 0), index

    def _keep_person(self, index: int, alpha: np.ndarray) -> None:
        self._person[index] = alpha
        budget = max(1, PERSON_CACHE_BYTES // max(alpha.nbytes, 1))
        while len(self._person) > budget:
            self._person.pop(next(iter(self._person)))

    # --- targets -----------------------------------------------------------------------------

    def add_target(self, name: str | None = None) -> Target:
        new_id = max(self.targets, default=0) + 1
        t = Target(new_id, (name or "").strip() or f"Target {new_id}")
        self.targets[new_id] = t
        return t

    def target(self, target_id: int) -> Target:
        try:
            return self.targets[int(target_id)]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"no target {target_id!r}; add a target first") from None

    def rename_target(self, target_id: int, name: str) -> None:
        if name.strip():
            self.target(target_id).name = name.strip()

    def remove_target(self, target_id: int) -> None:
        self.target(target_id)
        self.tracked.clear()
        del self.targets[int(target_id)]
        if not self.targets:
            self.add_target()

    # --- what turns clicks into masks ---------------------------------------------------------

    def set_segmenter(self, choice: str) -> str:
        """Use ``choice`` (auto, rvm, a SEGMENTERS name or a path) for the next clicks; loads it now so
        a missing or bad checkpoint is reported here, and returns its name for the page."""
        segmenter = self._segmenter(choice or AUTO)
        self.segmenter = choice or AUTO
        return segmenter.name

    def segmenter_name(self) -> str:
        return self._segmenter(self.segmenter).name

    def _segmenter(self, choice: str) -> ClickSegmenter:
        """What ``choice`` stands for (loaded once per session). Downloads are for `vmatte weights
        fetch`: a click must not start a 2 GB download."""
        if choice not in self._segmenters:
            self._segmenters[choice] = ClickSegmenter(choice, self.settings.device, allow_download=False)
        return self._segmenters[choice]

    def _points_mask(
        self, frame: int, pos: list[Click], neg: list[Click], on_progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        segmenter = self._segmenter(self.segmenter)
        alpha = self.person_alpha(frame, on_progress) if segmenter.needs_person_alpha else None
        return segmenter.mask(self.frame(frame), frame, pos, neg, person_alpha=alpha, key=(self.video, frame))

    def uses_person_model(self) -> bool:
        """Whether clicks go to RVM's person regions (which must run the video up to the frame)."""
        return self._segmenter(self.segmenter).needs_person_alpha

    def click(
        self,
        target_id: int,
        x: int,
        y: int,
        frame: int,
        negative: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Add an include/exclude point for a target at ``frame`` and return its new mask there.
        A point that picks no one is an :class:`InputError` and is not kept. ``on_progress``: see
        :meth:`person_alpha`."""
        t = self.target(target_id)
        frame = self._check_index(frame)
        point = Click(int(x), int(y), frame, negative)
        pos, neg = t.points_at(frame)
        pos, neg = (pos, neg + [point]) if negative else (pos + [point], neg)
        if not pos:
            raise InputError("click on the subject first (include), then exclude what is not it")
        mask = self._points_mask(frame, pos, neg, on_progress)
        self.tracked.clear()  # the targets changed: the preview of the tracking is stale
        t.points.append(point)
        t.masks[frame], t.sources[frame] = mask, "clicks"
        return mask

    def undo_point(self, target_id: int) -> None:
        """Remove the target's last click and redo its mask at that frame."""
        t = self.target(target_id)
        if not t.points:
            return
        last = t.points.pop()
        self.tracked.clear()
        pos, neg = t.points_at(last.frame)
        t.masks.pop(last.frame, None)
        t.sources.pop(last.frame, None)
        if pos:
            t.masks[last.frame] = self._points_mask(last.frame, pos, neg)
            t.sources[last.frame] = "clicks"

    def clear_frame(self, target_id: int, frame: int) -> None:
        t = self.target(target_id)
        self.tracked.clear()
        t.points = [p for p in t.points if p.frame != frame]
        t.masks.pop(frame, None)
        t.sources.pop(frame, None)

    def set_mask(self, target_id: int, frame: int, mask, source: str = "file") -> np.ndarray:
        """A brushed or uploaded mask (path or array; non-zero = target) for a target at ``frame``;
        it replaces that frame's clicks. A mask of another size is resized with a warning."""
        t = self.target(target_id)
        frame = self._check_index(frame)
        m = np.asarray(mask) if not isinstance(mask, (str, os.PathLike)) else mask
        targets = as_target_mask(m)
        if len(targets.ids) != 1:  # a label mask: every labelled pixel is this one target
            union = np.max(np.stack(list(targets.targets.values())), axis=0)
            targets = TargetMask({1: union}, targets.source)
        fitted = fit_to_frame(targets, (self.info.height, self.info.width))
        self.tracked.clear()
        t.points = [p for p in t.points if p.frame != frame]
        t.masks[frame], t.sources[frame] = fitted.targets[1], source
        return t.masks[frame]

    def keyframes(self) -> dict[int, TargetMask]:
        """Every target's masks as ``{frame: TargetMask({id: mask})}`` for the matting API."""
        frames = sorted({f for t in self.targets.values() for f in t.masks})
        out = {}
        for f in frames:
            here = {t.id: t.masks[f] for t in self.targets.values() if f in t.masks}
            out[f] = TargetMask(here, source=f"the app's targets at frame {f}", kind="soft")
        return out

    def target_names(self) -> dict[int, str]:
        return {t.id: t.name for t in self.targets.values()}

    # --- the preview of the tracking (SAM 2) -------------------------------------------------

    def propagate(self, frames: int | None = None, on_frame=None, tracker: str = AUTO) -> int:
        """Track every target from its masks over the first ``frames`` frames (all by default) with
        ``tracker`` (the run's ``--tracker``): ``sam2`` is vmatte's streaming SAM 2 tracker (as ``--model
        sam2-matte`` and ``--tracker sam2`` run it; the clicks' SAM 2 checkpoint, else the first cached
        one), ``rvm`` is ``rvm-target``'s tracking (people only: its alpha >= 1/2), ``auto`` SAM 2 when the
        clicks use a SAM 2 checkpoint or one is cached, else RVM. :meth:`overlay` then shows the tracked masks on the frames
        without one of their own. Stored as packed bits (480p: 51 KB a frame and target).
        ``on_frame(i, n)`` after each frame. Returns the number of frames tracked; ``tracker_used``
        says which tracker ran."""
        from ..engine.loop import results
        from ..engine.mask_to_matte import MasksAsMattes
        from ..engine.registry import TRACKER_SAM2, TRACKERS, tracker_kind

        self._need_video()
        if tracker not in TRACKERS:
            raise InputError(f"unknown tracker {tracker!r}; choose one of {', '.join(TRACKERS)}")
        schedule = self.keyframes()
        if not schedule:
            raise InputError("pick a target first (a click, the brush or a mask file), then preview its tracking")
        kind = TRACKER_SAM2 if tracker == AUTO and self._sam2_segmenter() else tracker_kind(tracker)
        source = self._sam2_source(schedule) if kind == TRACKER_SAM2 else self._rvm_source(schedule)
        n = self.frame_count if frames is None else max(1, min(int(frames), self.frame_count))
        self.tracked.clear()
        # the run's own frame loop, with the masks as the mattes: the preview is what the run will track
        with open_source(self.video) as src:
            for r in results(MasksAsMattes(source, schedule_ids(schedule)), itertools.islice(src, n), False):
                self.tracked[r.index] = {i: np.packbits(a >= 0.5) for i, a in r.alphas.items()}
                if on_frame is not None:
                    on_frame(r.index, n)
        self.tracker_used = kind
        return len(self.tracked)

    def _sam2_source(self, schedule: dict):
        """SAM 2's tracked masks (the session's SAM 2 model), as ``--tracker sam2`` makes them."""
        from ..engine.sam2video.source import Sam2Masks

        model, device = self._tracker_model()
        return Sam2Masks(model, schedule, device, "SAM 2")

    def _rvm_source(self, schedule: dict):
        """What ``--tracker rvm`` makes: each target's rvm-target alpha >= 1/2 (the shipped RVM weights)."""
        from ..engine.mask_source import MatterMasks
        from ..engine.registry import MatterOptions, load_person_tracker

        return MatterMasks(load_person_tracker(MatterOptions(device=self.settings.device, keyframes=schedule)))

    def tracked_mask(self, target_id: int, frame: int) -> np.ndarray | None:
        """SAM 2's mask of a target at ``frame`` from the last :meth:`propagate` (uint8 0/255), if any."""
        packed = self.tracked.get(int(frame), {}).get(int(target_id))
        if packed is None:
            return None
        h, w = self.info.height, self.info.width
        return np.unpackbits(packed, count=h * w).reshape(h, w) * np.uint8(255)

    def _sam2_segmenter(self) -> bool:
        """Whether the clicks use a SAM 2 checkpoint of their own (a name or a file): the preview's SAM 2 then."""
        return str(self.segmenter).startswith("sam2") or Path(self.segmenter).is_file()

    def _tracker_model(self):
        """The session's SAM 2 video model: the clicks' SAM 2 checkpoint when one is chosen, else the
        first cached one; never a download."""
        import torch

        from ..engine.device import resolve_device
        from ..engine.sam2video import masks

        choice = self.segmenter if self._sam2_segmenter() else AUTO
        if self._sam2 is None or self._sam2[0] != choice:
            device = resolve_device(self.settings.device)
            model, _ = masks.load_video_model(choice, device, allow_download=False)
            self._sam2 = (choice, model, device)
        return self._sam2[1], torch.device(self._sam2[2])

    def overlay(self, frame: int) -> np.ndarray:
        """Frame ``frame`` with every target's mask there tinted in its colour and its clicks (a
        target without a mask of its own there: SAM 2's tracked mask, after :meth:`propagate`)."""
        frame = self._check_index(frame)
        masks = [(t.masks[frame], t.colour) for t in self.targets.values() if frame in t.masks]
        masks += [
            (m, t.colour)
            for t in self.targets.values()
            if frame not in t.masks
            for m in [self.tracked_mask(t.id, frame)]
            if m is not None
        ]
        markers = [Marker(p.x, p.y, p.negative) for t in self.targets.values() for p in t.points if p.frame == frame]
        return draw_overlay(self.frame(frame), masks, markers)


class SessionStore:
    """The app's sessions by id, each in ``workdir/sessions/<id>/`` (no module-level state)."""

    def __init__(self, settings: UiSettings):
        self.settings = settings
        self.root = Path(settings.workdir) / "sessions"
        self._sessions: dict[str, Session] = {}

    def new(self) -> tuple[str, Session]:
        sid = uuid.uuid4().hex
        s = Session(self.root / sid, self.settings)
        self._sessions[sid] = s
        return sid, s

    def get(self, sid: str | None) -> Session | None:
        return self._sessions.get(sid or "")

    def get_or_new(self, sid: str | None) -> tuple[str, Session]:
        s = self.get(sid)
        return (sid, s) if s is not None else self.new()

    def drop(self, sid: str | None) -> None:
        s = self._sessions.pop(sid or "", None)
        if s is not None:
            shutil.rmtree(s.folder, ignore_errors=True)
