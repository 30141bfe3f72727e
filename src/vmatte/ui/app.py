"""The web app's page (Gradio): upload, pick targets on a frame, run, preview, download.

The logic lives in :mod:`vmatte.ui.session` and :mod:`vmatte.ui.job`; this file only lays out
the page and turns their results and errors into what the page shows. Every user-facing problem
is a :class:`~vmatte.errors.VmatteError` shown as one line, in the app's own words
(:func:`app_words`), in the status bar fixed at the bottom of the window (always in view) and,
for a run, next to the Run button.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from pathlib import Path

import cv2
import gradio as gr
import numpy as np

from ..engine.options import AUTO, MODEL, OPTIONS, REFINE, Option
from ..errors import VmatteError
from .job import (
    FORMAT_CHOICES,
    TRACKER_CHOICES,
    TRACKER_NAMES,
    Cancelled,
    Job,
    RunSettings,
    available_models,
    page_options,
    page_value,
    read_result_frame,
    refine_from_page,
    run_job,
    shown_options,
)
from .overlay import VIEWS, ZOOMS, colour_hex, mask_from_layers, result_view
from .session import Session, SessionStore, UiSettings

log = logging.getLogger("vmatte.ui")

INTRO = """# vmatte: matte a subject out of a video
**1.** Upload a video. **2.** Scrub to a frame where the subject is clear and click on them
(*Include*); click *Exclude* on what is not them. Clicks pick people with RVM, or any object with
a SAM / SAM 2 checkpoint (`vmatte weights fetch sam2.1-hiera-tiny`). Several subjects: *Add target*.
*Preview tracking* shows the targets followed through the video by the chosen *Tracker* (SAM 2: any
object; RVM: people). **3.** Choose the model and the files you want, then *Run*: the result opens on
the left, frame by frame. Everything runs on this machine."""
CSS = """
#status {position: fixed; left: 0; right: 0; bottom: 0; z-index: 1000; margin: 0; padding: 6px 16px;
         min-height: 2.2em; background: var(--background-fill-primary); border-top: 2px solid var(--border-color-primary);
         box-shadow: 0 -2px 8px rgba(0,0,0,.12)}
.gradio-container {padding-bottom: 4.5em !important}
#frame img {cursor: crosshair}
#result img {cursor: zoom-in}
#run-status {min-height: 1.6em}
"""
PROGRESS_EVERY_S = 0.4  # how often a long click reports its progress in the status bar
# Gradio shows a picture at most at its own size (and maps clicks only then), so small frames are
# sent enlarged by a whole factor to about this width: a 320-px clip is shown 960 px wide.
DISPLAY_WIDTH = 960


def display_factor(width: int) -> int:
    """The whole factor a picture ``width`` px wide is enlarged by for the page (1 for most videos)."""
    return max(1, -(-DISPLAY_WIDTH // max(int(width), 1)) if width < DISPLAY_WIDTH else 1)


def _large(image: np.ndarray) -> np.ndarray:
    k = display_factor(image.shape[1])
    if k == 1:
        return image
    return cv2.resize(image, (image.shape[1] * k, image.shape[0] * k), interpolation=cv2.INTER_LINEAR)


def _ok(text: str) -> str:
    return f"**OK:** {text}"  # words, not emoji: headless/minimal systems lack emoji fonts


def _bad(text: str) -> str:
    return f'<span style="color:#c0392b"><b>Problem:</b> {html.escape(app_words(text))}</span>'


def app_words(message: str) -> str:
    """An engine/CLI message in the page's words: the page has clicks and menus, not --options."""
    m = re.match(r"no person under --click (\d+),(\d+)(?:@(\d+))?", message)
    if m:
        return (
            "No one found where you clicked - click on a person, or switch 'Clicks make masks with' to a "
            "SAM model to pick other objects"
        )
    if "found nothing under the click" in message:
        return "Nothing found where you clicked - click inside the subject, or add more Include clicks on it"
    if "is on the same pixel as a --click" in message:
        return "That point is where you clicked to include - click Exclude on the other person instead"
    words = {"--model": "Model", **{f: o.label for o in OPTIONS if o.label for f in o.cli_flags}}
    for option, word in words.items():
        message = re.sub(re.escape(option) + r"(?![\w-])", word, message)
    return message


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MB" if n_bytes >= 2**20 else f"{max(1, round(n_bytes / 1024))} KB"


class VmatteApp:
    """Builds the page; holds the sessions and their running jobs (no module-level state)."""

    def __init__(self, settings: UiSettings):
        self.settings = settings
        self.store = SessionStore(settings)
        self.jobs: dict[str, Job] = {}
        self.models = available_models()

    # --- helpers -----------------------------------------------------------------------------

    def _session(self, sid: str | None) -> Session:
        s = self.store.get(sid)
        if s is None or s.video is None:
            raise VmatteError("upload a video first")
        return s

    def _targets_update(self, s: Session, selected: int | None = None):
        choices = [(t.name, t.id) for t in s.targets.values()]
        value = selected if selected in s.targets else next(iter(s.targets))
        return gr.update(choices=choices, value=value)

    def _summary(self, s: Session) -> str:
        rows = []
        for t in s.targets.values():
            where = ", ".join(f"frame {f} ({t.sources[f]})" for f in sorted(t.masks)) or "no mask yet"
            rows.append(f'<span style="color:{colour_hex(t.colour)}">■</span> **{t.name}**: {where}')
        return "<br>".join(rows)

    def _drop(self, sid: str | None) -> None:
        job = self.jobs.pop(sid or "", None)
        if job is not None:
            job.stop()
        self.store.drop(sid)

    # --- event handlers ----------------------------------------------------------------------

    def on_upload(self, sid, file):
        # The upload box is emptied after each upload, so another file can be dropped in at once;
        # the line under it keeps the file's name, size and length.
        sid, s = self.store.get_or_new(sid)
        keep = (gr.update(),) * 4
        if file is None:
            return (sid, None, *keep, self._summary(s), _bad("no file received"), gr.update())
        name = Path(file).name
        size = Path(file).stat().st_size if Path(file).is_file() else 0
        try:
            info = s.open_video(file)
        except VmatteError as e:
            return (sid, None, *keep, self._summary(s), _bad(str(e)), gr.update())
        slider = gr.update(minimum=0, maximum=max(s.frame_count - 1, 1), value=0, step=1, interactive=s.frame_count > 1)
        seconds = s.frame_count / float(info.fps)
        about = (
            f"**{html.escape(name)}**: {_size(size)}, {info.width}x{info.height}, {s.frame_count} frames "
            f"({seconds:.1f} s at {float(info.fps):.3g} fps). Drop another file to replace it."
        )
        return (
            sid,
            None,
            slider,
            _large(s.overlay(0)),
            self._targets_update(s),
            gr.update(selected="pick"),
            self._summary(s),
            _ok(
                f"{name}: {info.width}x{info.height}, {s.frame_count} frames at {float(info.fps):.3g} fps. "
                f"Click on the subject."
            ),
            about,
        )

    def on_frame(self, sid, index):
        try:
            s = self._session(sid)
            with s.lock:  # after a click still running: its mask is in the picture
                return _large(s.overlay(int(index))), gr.update()
        except VmatteError as e:
            return gr.update(), _bad(str(e))

    def on_click(self, sid, target_id, mode, index, evt: gr.SelectData):
        """A click on the frame: its mask, with progress in the status bar while RVM runs up to a
        later frame (the frame stays in view; what RVM ran is kept for the next click)."""
        try:
            s = self._session(sid)
            k = display_factor(s.info.width)  # the picture was sent enlarged k times
            x, y = (min(int(v) // k, lim - 1) for v, lim in zip(evt.index[:2], (s.info.width, s.info.height)))
            index = int(index)
            span = s.person_frames_to_run(index) if s.uses_person_model() else None
        except VmatteError as e:
            yield gr.update(), gr.update(), _bad(str(e))
            return
        done = {"n": 0, "total": 0, "error": None}

        def work():
            try:
                with s.lock:
                    s.click(
                        target_id,
                        x,
                        y,
                        index,
                        negative=mode == "Exclude",
                        on_progress=lambda n, total: done.update(n=n, total=total),
                    )
            except Exception as e:  # noqa: BLE001 - reported below, in the page
                done["error"] = e

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        if span is not None and span[1] > span[0]:
            started = time.monotonic()
            while worker.is_alive():
                worker.join(PROGRESS_EVERY_S)
                if worker.is_alive():
                    n, total = done["n"], done["total"] or span[1] - span[0] + 1
                    left = ""
                    if n:
                        left = f", about {(time.monotonic() - started) / n * (total - n):.0f} s left"
                    said = (
                        f"Running the person model over frames {span[0]}-{span[1]} to find people at frame "
                        f"{index}: {n}/{total}{left}"
                    )
                    yield gr.update(), gr.update(), said
        worker.join()
        error = done["error"]
        if error is not None:
            if not isinstance(error, VmatteError):
                log.error("click failed", exc_info=error)
                error = VmatteError(f"internal error: {type(error).__name__}: {error}")
            yield (_large(s.overlay(index)) if s.video else gr.update()), gr.update(), _bad(str(error))
            return
        t = s.target(target_id)
        box = (t.masks[index] >= 128).sum()
        yield (
            _large(s.overlay(index)),
            self._summary(s),
            _ok(f"{t.name}: {mode.lower()} point at ({x}, {y}), frame {index}; mask {box} px ({s.segmenter_name()})"),
        )

    def on_target_edit(self, sid, action, target_id, name, index):
        try:
            s = self._session(sid)
            with s.lock:
                if action == "add":
                    target_id = s.add_target(name if name and name not in s.target_names().values() else None).id
                elif action == "rename":
                    s.rename_target(target_id, name)
                elif action == "remove":
                    s.remove_target(target_id)
                    target_id = None
                elif action == "undo":
                    s.undo_point(target_id)
                elif action == "clear":
                    s.clear_frame(target_id, int(index))
                return (
                    _large(s.overlay(int(index))),
                    self._targets_update(s, target_id),
                    self._summary(s),
                    _ok(action + " done"),
                )
        except VmatteError as e:
            return gr.update(), gr.update(), gr.update(), _bad(str(e))

    def on_mask(self, sid, target_id, index, editor, mask_file, source):
        try:
            s = self._session(sid)
            if source == "brush":
                mask = mask_from_layers((editor or {}).get("layers") or [])
                if mask is None:
                    raise VmatteError("nothing painted yet: paint over the subject in the brush editor")
            else:
                if mask_file is None:
                    raise VmatteError("choose a mask image first (white or any colour = subject, black = not)")
                mask = mask_file
            with s.lock:
                s.set_mask(target_id, int(index), mask, source)
                return _large(s.overlay(int(index))), self._summary(s), _ok(f"{source} mask set for frame {int(index)}")
        except VmatteError as e:
            return gr.update(), gr.update(), _bad(str(e))

    def on_brush_frame(self, sid, index):
        s = self.store.get(sid)
        if s is None or s.video is None:
            return gr.update()
        return {"background": s.frame(int(index)), "layers": [], "composite": None}

    def on_propagate(self, sid, index, tracker=AUTO, progress=gr.Progress()):
        """The chosen tracker follows the targets through the video: the frame shows the tracked masks
        when scrubbed."""
        try:
            s = self._session(sid)
            with s.lock:  # no click or mask edit while the targets are being tracked
                n = s.propagate(
                    on_frame=lambda i, total: progress((i + 1) / total, desc="tracking"), tracker=tracker or AUTO
                )
                shown = _large(s.overlay(int(index)))
            who = TRACKER_NAMES[s.tracker_used]
            return shown, _ok(
                f"{who} tracked the targets over {n} frames: move the slider to "
                f"see their masks (frames with clicks show their own)"
            )
        except VmatteError as e:
            return gr.update(), _bad(str(e))

    def on_segmenter(self, sid, choice):
        s = self.store.get(sid)
        if s is None:  # no video yet: the choice is applied when the session starts
            sid, s = self.store.get_or_new(sid)
        try:
            return sid, _ok(f"clicks now use {s.set_segmenter(choice)}")
        except VmatteError as e:
            return sid, _bad(str(e))

    def on_model(self, model, tracker=AUTO):
        """The Model (or Tracker) menu changed: show the option fields of the model it picks, only."""
        shown = shown_options(model, tracker)
        return [gr.update(visible=o.name in shown) for o in page_options(MODEL)]

    def on_run_start(self):
        """Run pressed: Run waits, Stop wakes up, and the line next to them says what happens."""
        return (gr.update(interactive=False), gr.update(interactive=True, variant="stop"), "Starting the run ...")

    def on_run_end(self):
        return gr.update(interactive=True), gr.update(interactive=False, variant="secondary")

    def on_run_page(self, data: dict, progress=gr.Progress()):
        """Run pressed: :meth:`on_run` with the page's inputs (Gradio gives ``{component: value}``)."""
        c = self.inputs
        values = {name: data[field] for name, field in self.fields.items()}
        return self.on_run(
            data[c["state"]],
            data[c["model"]],
            data[c["formats"]],
            data[c["background"]],
            data[c["background_file"]],
            data[c["tracker"]],
            values,
            progress,
        )

    def on_run(
        self,
        sid,
        model,
        formats,
        background,
        background_file,
        tracker=AUTO,
        values: dict | None = None,
        progress=gr.Progress(),
    ):
        """-> downloads, the result viewer's state, its slider, its picture, the tabs, status, run status.
        ``values``: the option fields' ``{name: value}`` (a hidden field's value never reaches the run)."""
        keep = (gr.update(),) * 4
        values = values or {}
        try:
            s = self._session(sid)
            settings = RunSettings(
                model=model,
                formats=tuple(formats or ()),
                background=(background or "").strip() or None,
                background_file=background_file or None,
                options={o.name: page_value(o, values.get(o.name)) for o in page_options(MODEL)},
                refine=refine_from_page(values),
                tracker=tracker or AUTO,
            )
            job = Job(total=s.frame_count)
            self.jobs[sid] = job
            progress((0, job.total), desc="loading the model", unit="frames")
            result = run_job(s, settings, job, lambda j: progress((j.done, j.total), desc="matting", unit="frames"))
        except Cancelled:
            return (None, *keep, "**Stopped:** no output was written.", "Stopped: no output was written.")
        except VmatteError as e:
            return (None, *keep, _bad(str(e)), _bad(str(e)))
        except Exception as e:  # noqa: BLE001 - the page must say something; the log has the traceback
            log.exception("run failed")
            return (None, *keep, _bad(f"internal error: {type(e).__name__}: {e}"), _bad("internal error"))
        finally:
            self.jobs.pop(sid, None)
        view = {
            "folder": str(result.preview),
            "frames": result.frames,
            "background": _colour(settings.background),
            "centre": None,
        }
        done = (
            f"Done: {result.frames} frames in {result.seconds:.1f} s. Scrub through the result on the left; "
            f"the files are below Run."
        )
        details = f"<details><summary>Model details</summary>{html.escape(result.model)}</details>"
        return (
            [str(p) for p in result.downloads],
            view,
            gr.update(minimum=0, maximum=max(result.frames - 1, 1), value=0, interactive=result.frames > 1),
            self._result_picture(view, 0, VIEWS[0], ZOOMS[0]),
            gr.update(selected="result"),
            _ok(done) + details,
            _ok(done),
        )

    def on_stop(self, sid):
        job = self.jobs.get(sid or "")
        if job is None:
            return _bad("nothing is running")
        job.stop()
        return _ok("stopping at the next frame ...")

    # --- the result viewer --------------------------------------------------------------------

    def _result_picture(self, view: dict | None, index, mode: str, zoom: str):
        if not view:
            return None
        index = min(max(int(index or 0), 0), view["frames"] - 1)
        fg, alpha = read_result_frame(Path(view["folder"]), index)
        return _large(result_view(fg, alpha, mode, view["background"], zoom, view.get("centre")))

    def on_result(self, view, index, mode, zoom):
        try:
            return self._result_picture(view, index, mode, zoom), gr.update()
        except VmatteError as e:
            return gr.update(), _bad(str(e))

    def on_result_click(self, view, index, mode, zoom, evt: gr.SelectData):
        """A click on the result zooms in there (Fit -> 2x) or moves the zoomed view to it."""
        if not view:
            return view, gr.update(), gr.update()
        shown = self._result_picture(view, index, mode, zoom)  # what the click landed on
        h, w = shown.shape[:2]
        panel_w = w / (2 if mode == VIEWS[0] else 1)
        fx, fy = (evt.index[0] % panel_w) / panel_w, evt.index[1] / h
        old = view.get("centre") or (0.5, 0.5)
        if zoom == ZOOMS[0]:
            centre, zoom = (fx, fy), "2x"
        else:
            factor = {"2x": 2, "4x": 4}[zoom]
            centre = (min(max(old[0] + (fx - 0.5) / factor, 0), 1), min(max(old[1] + (fy - 0.5) / factor, 0), 1))
        view = {**view, "centre": centre}
        return view, zoom, self._result_picture(view, index, mode, zoom)

    # --- the page ----------------------------------------------------------------------------

    def _segmenter_choices(self) -> list[tuple[str, str]]:
        from ..engine.device import resolve_device
        from ..engine.segment.prompts import segmenter_choices

        return segmenter_choices(self.settings.segmenter, resolve_device(self.settings.device))

    def build(self) -> gr.Blocks:
        with gr.Blocks(title="vmatte") as page:
            state = gr.State(None, delete_callback=self._drop)
            view_state = gr.State(None)
            gr.Markdown(INTRO)
            status = gr.Markdown("Upload a video to start.", elem_id="status")
            with gr.Row():
                with gr.Column(scale=3):
                    with gr.Tabs(selected="pick", elem_id="views") as tabs:
                        with gr.Tab("Pick the subject", id="pick", elem_id="tab-pick"):
                            slider = gr.Slider(
                                0,
                                1,
                                value=0,
                                step=1,
                                label="Frame (drag, or type a number)",
                                interactive=False,
                                elem_id="frame-slider",
                            )
                            frame = gr.Image(
                                label="Click on the subject (the overlay is the target's mask)",
                                type="numpy",
                                interactive=False,
                                elem_id="frame",
                                buttons=[],
                            )
                        with gr.Tab("Result", id="result", elem_id="tab-result"):
                            with gr.Row():
                                view_mode = gr.Radio(list(VIEWS), value=VIEWS[0], label="Show", elem_id="view-mode")
                                zoom = gr.Radio(
                                    list(ZOOMS), value=ZOOMS[0], label="Zoom (click the picture)", elem_id="zoom"
                                )
                            result_slider = gr.Slider(
                                0, 1, value=0, step=1, label="Result frame", interactive=False, elem_id="result-slider"
                            )
                            result = gr.Image(
                                label="Result",
                                type="numpy",
                                interactive=False,
                                elem_id="result",
                                buttons=["fullscreen"],
                            )
                with gr.Column(scale=2):
                    upload = gr.File(label="1. Video", file_types=["video"], elem_id="upload")
                    video_info = gr.Markdown("No video yet.", elem_id="video-info")
                    gr.Markdown("### 2. Targets")
                    with gr.Row():
                        target = gr.Dropdown(choices=[("Target 1", 1)], value=1, label="Target", elem_id="target")
                        mode = gr.Radio(["Include", "Exclude"], value="Include", label="Click adds", elem_id="mode")
                    with gr.Row():
                        name = gr.Textbox(label="Name", placeholder="e.g. dancer", scale=2)
                        rename = gr.Button("Rename", size="sm")
                        add = gr.Button("Add target", size="sm")
                    with gr.Row():
                        undo = gr.Button("Undo click", size="sm")
                        clear = gr.Button("Clear this frame", size="sm")
                        remove = gr.Button("Remove target", size="sm", variant="secondary", elem_id="remove")
                    segmenter = gr.Dropdown(
                        self._segmenter_choices(),
                        value=self.settings.segmenter,
                        label="Clicks make masks with",
                        elem_id="segmenter",
                    )
                    propagate = gr.Button("Preview tracking", size="sm", elem_id="propagate")
                    summary = gr.Markdown(elem_id="summary")
                    with gr.Accordion("Brush or mask file instead of clicks", open=False):
                        editor = gr.ImageEditor(
                            label="Paint over the subject",
                            type="numpy",
                            layers=False,
                            transforms=(),
                            brush=gr.Brush(colors=["#ff4060"], default_size=12),
                        )
                        use_brush = gr.Button("Use painted mask", size="sm")
                        mask_file = gr.File(label="Mask PNG (white = subject)", file_types=["image"], type="filepath")
                        use_file = gr.Button("Use mask file", size="sm")
                    gr.Markdown("### 3. Settings")
                    with gr.Row():
                        model = gr.Dropdown(self.models, value="auto", label="Model", elem_id="model", scale=2)
                        tracker = gr.Dropdown(
                            list(TRACKER_CHOICES),
                            value=AUTO,
                            label="Tracker (Preview tracking; models that follow masks)",
                            elem_id="tracker",
                        )
                    formats = gr.CheckboxGroup(
                        list(FORMAT_CHOICES), value=["prores", "alpha"], label="Outputs", elem_id="formats"
                    )
                    with gr.Row():
                        background = gr.Textbox(
                            label="Composite background colour", placeholder="green, #rrggbb", value="green"
                        )
                        background_file = gr.File(
                            label="or a background image/video", type="filepath", file_types=["image", "video"]
                        )
                    with gr.Row():  # the chosen model's option fields: one per declared option it takes
                        shown = shown_options(AUTO)
                        model_fields = [_field(o, visible=o.name in shown) for o in page_options(MODEL)]
                    with gr.Accordion("Refine matte", open=False):
                        with gr.Row():
                            refine_fields = [_field(o) for o in page_options(REFINE)]
                    with gr.Row():
                        run = gr.Button("Run", variant="primary", elem_id="run")
                        stop = gr.Button("Stop", variant="secondary", interactive=False, elem_id="stop")
                    run_status = gr.Markdown("", elem_id="run-status")
                    downloads = gr.File(
                        label="Downloads", file_count="multiple", elem_id="downloads", interactive=False
                    )

            upload.upload(
                self.on_upload,
                [state, upload],
                [state, upload, slider, frame, target, tabs, summary, status, video_info],
            )
            # typing a number fires `input` per keystroke and `release` only on leaving the box, so the
            # frame follows `input` (the last one wins): Enter is not needed, and no click waits on a blur
            for event in (slider.input, slider.release):
                event(
                    self.on_frame,
                    [state, slider],
                    [frame, status],
                    trigger_mode="always_last",
                    show_progress="minimal",
                    show_progress_on=[frame],
                )
            slider.release(self.on_brush_frame, [state, slider], [editor])
            upload.upload(self.on_brush_frame, [state, slider], [editor])
            upload.upload(
                lambda: (None, None, None, "", gr.update(value=0, interactive=False)),
                None,
                [downloads, view_state, result, run_status, result_slider],
            )  # the last video's results go
            segmenter.change(self.on_segmenter, [state, segmenter], [state, status])
            propagate.click(self.on_propagate, [state, slider, tracker], [frame, status])
            # the click's own progress goes to the status bar, Gradio's timer to the summary: the frame
            # stays in view (no full-picture spinner) and the status bar keeps its words
            frame.select(
                self.on_click,
                [state, target, mode, slider],
                [frame, summary, status],
                show_progress="minimal",
                show_progress_on=[summary],
            )
            for button, action in (
                (add, "add"),
                (rename, "rename"),
                (remove, "remove"),
                (undo, "undo"),
                (clear, "clear"),
            ):
                button.click(
                    lambda sid, t, n, i, a=action: self.on_target_edit(sid, a, t, n, i),
                    [state, target, name, slider],
                    [frame, target, summary, status],
                )
            use_brush.click(
                lambda sid, t, i, e: self.on_mask(sid, t, i, e, None, "brush"),
                [state, target, slider, editor],
                [frame, summary, status],
            )
            use_file.click(
                lambda sid, t, i, f: self.on_mask(sid, t, i, None, f, "file"),
                [state, target, slider, mask_file],
                [frame, summary, status],
            )
            for menu in (model, tracker):  # auto's choice depends on the tracker
                menu.change(self.on_model, [model, tracker], model_fields)
            self.fields = {
                o.name: f for o, f in zip(page_options(MODEL) + page_options(REFINE), model_fields + refine_fields)
            }
            self.inputs = {
                "state": state,
                "model": model,
                "formats": formats,
                "background": background,
                "background_file": background_file,
                "tracker": tracker,
            }
            run.click(self.on_run_start, None, [run, stop, run_status], queue=False).then(
                self.on_run_page,
                {*self.inputs.values(), *self.fields.values()},
                [downloads, view_state, result_slider, result, tabs, status, run_status],
                show_progress_on=[run_status],
            ).then(self.on_run_end, None, [run, stop], queue=False)
            # No cancels=[running]: Gradio cancels a sync handler by waiting for its thread, so the
            # stop would only land after the run. The flag stops the run at its next frame instead.
            stop.click(self.on_stop, [state], [status], queue=False)
            for event in (result_slider.input, result_slider.release, view_mode.change, zoom.change):
                event(
                    self.on_result,
                    [view_state, result_slider, view_mode, zoom],
                    [result, status],
                    trigger_mode="always_last",
                    show_progress="minimal",
                    show_progress_on=[result],
                )
            result.select(
                self.on_result_click,
                [view_state, result_slider, view_mode, zoom],
                [view_state, zoom, result],
                show_progress="minimal",
                show_progress_on=[result],
            )
        return page


def _field(o: Option, visible: bool = True):
    """The page's field of a declared option: a menu for choices, a number box for numbers (empty:
    the model's own default), a text box otherwise."""
    elem_id = o.name.replace("_", "-")
    label = f"{o.label} ({o.hint})" if o.hint else o.label
    if o.choices:
        choices = list(o.choices) if o.default is not None else ["none", *o.choices]
        return gr.Dropdown(choices, value=o.default or "none", label=label, elem_id=elem_id, visible=visible)
    if o.type in (int, float):
        low = o.low if o.low is not None and o.low <= 0 and not o.low_open else None  # 0 = default where 0 is no value
        return gr.Number(
            label=label,
            value=o.default,
            precision=0 if o.type is int else None,
            minimum=low,
            maximum=o.high,
            elem_id=elem_id,
            visible=visible,
        )
    return gr.Textbox(label=label, value=o.default or "", elem_id=elem_id, visible=visible)


def _colour(spec: str | None) -> tuple[float, float, float]:
    """The composite view's background: the run's colour, green for anything else (image/video)."""
    from ..io.background import Background

    try:
        bg = Background.parse(spec) if spec else Background.default()
    except VmatteError:
        bg = Background.default()
    return tuple(bg.colour) if bg.kind == "colour" and bg.colour is not None else (0.0, 0.69, 0.25)


def build_app(settings: UiSettings) -> gr.Blocks:
    return VmatteApp(settings).build()
