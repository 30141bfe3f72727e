"""The web app's page (Gradio): upload, pick targets on a frame, run, preview, download.

The logic lives in :mod:`vmatte.ui.session` and :mod:`vmatte.ui.job`; this file only lays out
the page and turns their results and errors into what the page shows. Every user-facing problem
is a :class:`~vmatte.errors.VmatteError` shown as one line in the page's status box.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import gradio as gr

from ..engine.refine import RefineSettings
from ..errors import VmatteError
from .job import FORMAT_CHOICES, Cancelled, Job, RunSettings, available_models, run_job
from .overlay import colour_hex, mask_from_layers
from .session import Session, SessionStore, UiSettings

log = logging.getLogger("vmatte.ui")

INTRO = """# vmatte: matte a subject out of a video
**1.** Upload a video. **2.** Scrub to a frame where the subject is clear and click on them
(*Include*); click *Exclude* on what is not them. Clicks pick people with RVM, or any object with
a SAM / SAM 2 checkpoint (`vmatte weights fetch sam2.1-hiera-tiny`). Several subjects: *Add target*.
**3.** Choose the model and the files you want, then *Run*. Everything runs on this machine."""
CSS = """
#status {min-height: 2.5em}
#frame img {cursor: crosshair}
"""


def _ok(text: str) -> str:
    return f"**OK:** {text}"  # words, not emoji: headless/minimal systems lack emoji fonts


def _bad(text: str) -> str:
    return f'<span style="color:#c0392b"><b>Problem:</b> {html.escape(text)}</span>'


class VmatteApp:
    """Builds the page; holds the sessions and their running jobs (no module-level state)."""

    def __init__(self, settings: UiSettings):
        self.settings = settings
        self.store = SessionStore(settings)
        self.jobs: dict[str, Job] = {}

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
        # The upload box is emptied after each upload (the video shows as the frame below), so
        # another file can be dropped in at once.
        sid, s = self.store.get_or_new(sid)
        if file is None:
            return sid, None, gr.update(), gr.update(), gr.update(), self._summary(s), _bad("no file received")
        name = Path(file).name
        try:
            info = s.open_video(file)
        except VmatteError as e:
            return sid, None, gr.update(), gr.update(), gr.update(), self._summary(s), _bad(str(e))
        slider = gr.update(minimum=0, maximum=max(s.frame_count - 1, 1), value=0, step=1,
                           interactive=s.frame_count > 1)
        return (sid, None, slider, s.overlay(0), self._targets_update(s), self._summary(s),
                _ok(f"{name}: {info.width}x{info.height}, {s.frame_count} frames at {float(info.fps):.3g} fps. "
                    f"Click on the subject."))

    def on_frame(self, sid, index):
        try:
            s = self._session(sid)
            return s.overlay(int(index)), gr.update()
        except VmatteError as e:
            return gr.update(), _bad(str(e))

    def on_click(self, sid, target_id, mode, index, evt: gr.SelectData):
        try:
            s = self._session(sid)
            x, y = (int(round(v)) for v in evt.index[:2])
            s.click(target_id, x, y, int(index), negative=mode == "Exclude")
            t = s.target(target_id)
            box = (t.masks[int(index)] >= 128).sum()
            msg = _ok(f"{t.name}: {mode.lower()} point at ({x}, {y}), frame {int(index)}; mask {box} px "
                      f"({s.segmenter_name()})")
            return s.overlay(int(index)), self._summary(s), msg
        except VmatteError as e:
            s = self.store.get(sid)
            return (s.overlay(int(index)) if s and s.video else gr.update()), gr.update(), _bad(str(e))

    def on_target_edit(self, sid, action, target_id, name, index):
        try:
            s = self._session(sid)
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
            return s.overlay(int(index)), self._targets_update(s, target_id), self._summary(s), _ok(action + " done")
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
            s.set_mask(target_id, int(index), mask, source)
            return s.overlay(int(index)), self._summary(s), _ok(f"{source} mask set for frame {int(index)}")
        except VmatteError as e:
            return gr.update(), gr.update(), _bad(str(e))

    def on_brush_frame(self, sid, index):
        s = self.store.get(sid)
        if s is None or s.video is None:
            return gr.update()
        return {"background": s.frame(int(index)), "layers": [], "composite": None}

    def on_segmenter(self, sid, choice):
        s = self.store.get(sid)
        if s is None:  # no video yet: the choice is applied when the session starts
            sid, s = self.store.get_or_new(sid)
        try:
            return sid, _ok(f"clicks now use {s.set_segmenter(choice)}")
        except VmatteError as e:
            return sid, _bad(str(e))

    def on_run(self, sid, model, formats, background, background_file, max_size, warmup, choke=0, feather=0,
               shift_edge=0, chatter=0, despill="none", progress=gr.Progress()):
        try:
            s = self._session(sid)
            refine = RefineSettings(choke=float(choke or 0), feather=float(feather or 0),
                                    shift_edge=float(shift_edge or 0), reduce_chatter=int(chatter or 0),
                                    despill=None if despill in (None, "none") else despill)
            settings = RunSettings(model=model, formats=tuple(formats or ()), background=(background or "").strip() or None,
                                   background_file=background_file or None,
                                   max_size=int(max_size) if max_size else None,
                                   warmup_frames=int(warmup) if warmup is not None else None,
                                   refine=refine if refine.active else None)
            job = Job(total=s.frame_count)
            self.jobs[sid] = job
            progress((0, job.total), desc="loading the model", unit="frames")
            result = run_job(s, settings, job, lambda j: progress((j.done, j.total), desc="matting", unit="frames"))
        except Cancelled:
            return None, None, "**Stopped:** no output was written."
        except VmatteError as e:
            return None, None, _bad(str(e))
        except Exception as e:  # noqa: BLE001 - the page must say something; the log has the traceback
            log.exception("run failed")
            return None, None, _bad(f"internal error: {type(e).__name__}: {e}")
        finally:
            self.jobs.pop(sid, None)
        return ([str(p) for p in result.downloads], str(result.preview),
                _ok(f"done: {result.frames} frames in {result.seconds:.1f} s. Model: {result.model}"))

    def on_stop(self, sid):
        job = self.jobs.get(sid or "")
        if job is None:
            return _bad("nothing is running")
        job.stop()
        return _ok("stopping at the next frame ...")

    # --- the page ----------------------------------------------------------------------------

    def _segmenter_choices(self) -> list[tuple[str, str]]:
        from ..engine.device import resolve_device
        from ..engine.segment.prompts import segmenter_choices

        return segmenter_choices(self.settings.segmenter, resolve_device(self.settings.device))

    def build(self) -> gr.Blocks:
        models = available_models()
        with gr.Blocks(title="vmatte") as page:
            state = gr.State(None, delete_callback=self._drop)
            gr.Markdown(INTRO)
            status = gr.Markdown("Upload a video to start.", elem_id="status")
            with gr.Row():
                with gr.Column(scale=3):
                    upload = gr.File(label="1. Video", file_types=["video"], elem_id="upload")
                    slider = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False, elem_id="frame-slider")
                    frame = gr.Image(label="Click on the subject (the overlay is the target's mask)", type="numpy",
                                     interactive=False, elem_id="frame", buttons=[])
                with gr.Column(scale=2):
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
                        remove = gr.Button("Remove target", size="sm", variant="stop")
                    segmenter = gr.Dropdown(self._segmenter_choices(), value=self.settings.segmenter,
                                            label="Clicks make masks with", elem_id="segmenter")
                    summary = gr.Markdown(elem_id="summary")
                    with gr.Accordion("Brush or mask file instead of clicks", open=False):
                        editor = gr.ImageEditor(label="Paint over the subject", type="numpy", layers=False,
                                                transforms=(), brush=gr.Brush(colors=["#ff4060"], default_size=12))
                        use_brush = gr.Button("Use painted mask", size="sm")
                        mask_file = gr.File(label="Mask PNG (white = subject)", file_types=["image"], type="filepath")
                        use_file = gr.Button("Use mask file", size="sm")
                    gr.Markdown("### 3. Settings")
                    model = gr.Dropdown(models, value="auto", label="Model", elem_id="model")
                    formats = gr.CheckboxGroup(list(FORMAT_CHOICES), value=["prores", "alpha"], label="Outputs",
                                               elem_id="formats")
                    with gr.Row():
                        background = gr.Textbox(label="Composite background colour", placeholder="green, #rrggbb",
                                                value="green")
                        background_file = gr.File(label="or a background image/video", type="filepath",
                                                  file_types=["image", "video"])
                        max_size = gr.Number(label="Max size (px, 0 = auto)", value=0, precision=0, minimum=0)
                        warmup = gr.Number(label="Warm-up frames (MatAnyone)", value=10, precision=0, minimum=0)
                    with gr.Accordion("Refine matte", open=False):
                        with gr.Row():
                            choke = gr.Number(label="Choke (px, - grows)", value=0, elem_id="choke")
                            feather = gr.Number(label="Feather (px)", value=0, minimum=0, elem_id="feather")
                            shift_edge = gr.Number(label="Shift edge (%)", value=0, minimum=-100, maximum=100,
                                                   elem_id="shift-edge")
                            chatter = gr.Number(label="Reduce chatter (frames)", value=0, precision=0, minimum=0,
                                                elem_id="reduce-chatter")
                            despill = gr.Dropdown(["none", "green", "blue"], value="none", label="Despill",
                                                  elem_id="despill")
                    with gr.Row():
                        run = gr.Button("Run", variant="primary", elem_id="run")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop")
            gr.Markdown("### 4. Result: alpha | composite (same frame side by side)")
            with gr.Row():
                preview = gr.Video(label="Preview", elem_id="preview", interactive=False, loop=True, autoplay=True)
                downloads = gr.File(label="Downloads", file_count="multiple", elem_id="downloads", interactive=False)

            upload.upload(self.on_upload, [state, upload], [state, upload, slider, frame, target, summary, status])
            slider.release(self.on_frame, [state, slider], [frame, status])
            slider.release(self.on_brush_frame, [state, slider], [editor])
            upload.upload(self.on_brush_frame, [state, slider], [editor])
            upload.upload(lambda: (None, None), None, [preview, downloads])  # results of the last video go
            segmenter.change(self.on_segmenter, [state, segmenter], [state, status])
            frame.select(self.on_click, [state, target, mode, slider], [frame, summary, status])
            for button, action in ((add, "add"), (rename, "rename"), (remove, "remove"), (undo, "undo"),
                                   (clear, "clear")):
                button.click(lambda sid, t, n, i, a=action: self.on_target_edit(sid, a, t, n, i),
                             [state, target, name, slider], [frame, target, summary, status])
            use_brush.click(lambda sid, t, i, e: self.on_mask(sid, t, i, e, None, "brush"),
                            [state, target, slider, editor], [frame, summary, status])
            use_file.click(lambda sid, t, i, f: self.on_mask(sid, t, i, None, f, "file"),
                           [state, target, slider, mask_file], [frame, summary, status])
            run.click(self.on_run, [state, model, formats, background, background_file, max_size, warmup, choke,
                                    feather, shift_edge, chatter, despill],
                                [downloads, preview, status])
            # No cancels=[running]: Gradio cancels a sync handler by waiting for its thread, so the
            # stop would only land after the run. The flag stops the run at its next frame instead.
            stop.click(self.on_stop, [state], [status], queue=False)
        return page


def build_app(settings: UiSettings) -> gr.Blocks:
    return VmatteApp(settings).build()
