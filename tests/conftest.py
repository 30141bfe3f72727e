"""Shared test helpers: synthetic media generated with PyAV (no fixtures downloaded).

``make_clip`` writes a short clip whose frames have a known pattern, so tests can check frame
count, order and size after any decode/encode round trip:

* the whole frame is a flat colour that codes the frame index (see :func:`clip_colour`);
* a white square (``SQUARE`` px) moves 2 px to the right per frame along the top edge, which also
  marks the top-left corner so rotations can be checked.

Use :func:`frame_index_of` to read the index back from a decoded RGB frame.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import math
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

SQUARE = 8


def clip_colour(i: int) -> tuple[int, int, int]:
    """Flat RGB colour of frame ``i`` (8 levels per frame on R; valid for i < 30)."""
    r = 16 + 8 * (i % 30)
    return (r, 96, 255 - r)


def clip_frame(i: int, w: int, h: int) -> np.ndarray:
    """The RGB uint8 image of frame ``i`` as written by :func:`make_clip` (before encoding)."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = clip_colour(i)
    x = min(2 * i, max(w - SQUARE, 0))
    img[:SQUARE, x : x + SQUARE] = 255
    return img


def frame_index_of(img: np.ndarray) -> int:
    """Index coded in a decoded frame: read R of the bottom-right flat area (8-bit or 16-bit)."""
    a = np.asarray(img)
    if a.dtype == np.uint16:
        a = a / 257.0
    h, w = a.shape[:2]
    patch = a[h // 2 :, w // 2 :, 0].astype(np.float64)
    return int(round((float(np.median(patch)) - 16) / 8))


def _audio_codec_for(suffix: str) -> str:
    return "libopus" if suffix == ".webm" else "aac"


def write_h264(path, frames, fps: int = 25, crf: int = 10) -> Path:
    """Encode RGB uint8 ``frames`` (any iterable, all one size) as an H.264 yuv420p file."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        stream = None
        for i, img in enumerate(frames):
            if stream is None:
                stream = out.add_stream("libx264", rate=fps)
                stream.height, stream.width = img.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "ultrafast"}
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p", threads=1)
            f.pts = i
            out.mux(stream.encode(f))
        out.mux(stream.encode())
    return path


def make_clip(
    path,
    n: int,
    w: int,
    h: int,
    fps=25,
    audio: bool = False,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    rotation: int = 0,
    faststart: bool = False,
    audio_delay: float = 0.0,
) -> Path:
    """Write an ``n``-frame ``w``x``h`` clip to ``path`` (container from the extension).

    * ``codec``/``pix_fmt``: any PyAV encoder; for ``.webm`` the default libx264 is swapped for
      libvpx-vp9 (WebM only allows VP8/VP9/AV1).
    * ``audio``: add a 440 Hz sine track as long as the video (AAC, or Opus for WebM).
    * ``rotation``: display-matrix rotation in degrees **clockwise** (the convention of the
      classic ``rotate`` tag: a phone held upright records landscape frames tagged 90). The
      stored frames are the ``w``x``h`` pattern; a player shows them rotated by this much.
    * ``faststart``: mp4/mov only, put the index (moov) at the start of the file.
    * ``audio_delay``: the audio track starts this many seconds after the video (and still ends
      with it).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".webm" and codec == "libx264":
        codec = "libvpx-vp9"
    fps = Fraction(fps).limit_denominator(1001)
    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=opts) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            vs.options = {"crf": "8", "preset": "ultrafast"}
        elif codec == "libx265":
            vs.options = {"crf": "8", "preset": "ultrafast", "x265-params": "log-level=error"}
        elif codec == "libvpx-vp9":
            vs.options = {"crf": "10", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        if rotation % 360:
            # PyAV's set_display_rotation takes counter-clockwise degrees.
            vs.set_display_rotation(-rotation)
        as_ = None
        if audio:
            as_ = out.add_stream(_audio_codec_for(suffix), rate=48000)
            as_.layout = "stereo"
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(clip_frame(i, w, h), format="rgb24")
            if pix_fmt != "rgb24":
                # Convert here, single-threaded (see vmatte.io.reader.SWS_THREADS): threaded
                # swscale has garbled high-bit-depth rows at widths not a multiple of 32.
                vf = vf.reformat(format=pix_fmt, threads=1)
            vf.pts = i
            vf.time_base = 1 / fps
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if as_ is not None:
            _write_sine(out, as_, n / float(fps) - audio_delay, start=audio_delay)
    return path


def _write_sine(out, stream, seconds: float, start: float = 0.0) -> None:
    rate = 48000
    total = int(math.ceil(seconds * rate))
    offset = int(round(start * rate))
    chunk = 960 if stream.codec_context.name.endswith("opus") else 1024
    t0 = 0
    while t0 < total:
        k = min(chunk, total - t0)
        t = (np.arange(t0, t0 + k) / rate).astype(np.float32)
        mono = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        data = np.stack([mono, mono])  # planar stereo
        af = av.AudioFrame.from_ndarray(data, format="fltp", layout="stereo")
        af.sample_rate = rate
        af.pts = offset + t0
        af.time_base = Fraction(1, rate)
        for p in stream.encode(af):
            out.mux(p)
        t0 += k
    for p in stream.encode():
        out.mux(p)


def make_audio_only(path, seconds: float = 1.0) -> Path:
    """An audio-only file (no video stream)."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        s = out.add_stream(_audio_codec_for(path.suffix.lower()), rate=48000)
        s.layout = "stereo"
        _write_sine(out, s, seconds)
    return path


@pytest.fixture
def clip_factory(tmp_path):
    """``clip_factory(name, n, w, h, **kw)`` -> path of a clip made with :func:`make_clip`."""

    def _make(name: str, n: int = 10, w: int = 64, h: int = 48, **kw) -> Path:
        return make_clip(tmp_path / name, n, w, h, **kw)

    return _make


def write_blob_still(path) -> Path:
    """A 40x30 RGBA still with a soft elliptical alpha: a tiny foreground for `bench compose` tests."""
    import cv2

    y, x = np.mgrid[0:30, 0:40]
    alpha = np.clip((1 - np.hypot((x - 20) / 13, (y - 15) / 10)) * 4, 0, 1)
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., :3] = (200, 60, 90)
    rgba[..., 3] = np.rint(alpha * 255)
    cv2.imwrite(str(path), rgba)
    return Path(path)


MATANYONE_FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "matanyone"


def matanyone_recipe_state_dict() -> dict:
    """The MatAnyone fixture's recipe weights (``../shared/fixtures/matanyone/recipe.py``)."""
    spec = importlib.util.spec_from_file_location("matanyone_fixture_recipe", MATANYONE_FIXTURE / "recipe.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe.make_state_dict(str(MATANYONE_FIXTURE / "keys.json"))


def matanyone_fixture_settings(case: Path):
    """The official inference settings a fixture case was made with (its ``settings.json``)."""
    import json

    from vmatte.engine.matanyone import MatAnyoneSettings

    s = json.loads((case / "settings.json").read_text())
    proc, inf = s["procedure"], s["inference_config"]
    return MatAnyoneSettings(
        mem_every=inf["mem_every"],
        max_mem_frames=inf["max_mem_frames"],
        top_k=inf["top_k"],
        stagger_updates=inf["stagger_updates"],
        warmup_frames=proc["n_warmup"],
        r_erode=proc["r_erode"],
        r_dilate=proc["r_dilate"],
    )


@pytest.fixture(scope="session")
def matanyone_recipe_file(tmp_path_factory) -> Path:
    """:func:`matanyone_recipe_state_dict` saved as a ``.pth``, once per test run."""
    import torch

    path = tmp_path_factory.mktemp("matanyone_recipe") / "matanyone.pth"
    torch.save(matanyone_recipe_state_dict(), path)
    return path


def randomize_sam2(model, seed: int = 0) -> None:
    """Fill every tensor of a SAM 2 model (official or vmatte's) with random values of a sane scale, in
    place: many are zero or one at init, which would hide a wrong wiring from an equality test.
    1-D weights near 1, 1-D biases near 0, position embeddings N(0, 0.5^2), the prompt encoder's
    Gaussian matrix N(0, 1), the rest N(0, 1 / fan_in)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.ndim == 1 and name.endswith("weight"):
                t.copy_(1 + 0.2 * torch.randn(t.shape, generator=g))
            elif t.ndim == 1:
                t.copy_(0.2 * torch.randn(t.shape, generator=g))
            elif "pos_embed" in name or "gaussian" in name:
                t.copy_(torch.randn(t.shape, generator=g) * (0.5 if "pos_embed" in name else 1.0))
            else:
                fan_in = t[0].numel() if t.shape[0] > 1 else t.shape[-1]
                t.copy_(torch.randn(t.shape, generator=g) / fan_in**0.5)


@contextlib.contextmanager
def serve_bytes(payload: bytes, name: str):
    """A local HTTP server answering every GET with ``payload``; yields the URL of ``name``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{name}"
    finally:
        httpd.shutdown()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty weights cache (``VMATTE_CACHE``) for this test."""
    d = tmp_path / "cache"
    monkeypatch.setenv("VMATTE_CACHE", str(d))
    return d


def tiny_sam2_config(version: str = "sam2.1", size: int = 128):
    """The official tiny SAM 2 / 2.1 config shrunk to a test size (16-wide trunk, d_model 32, 8-wide
    memories, ``size`` px input)."""
    from dataclasses import replace

    from vmatte.models.sam2 import SAM2_CONFIGS

    base = SAM2_CONFIGS[f"{'sam2.1' if version == 'sam2.1' else 'sam2'}_hiera_tiny"]
    return replace(
        base,
        name="tiny test",
        embed_dim=16,
        stages=(1, 2, 2, 1),
        global_att_blocks=(4,),
        window_spec=(8, 4, 6, 3),
        d_model=32,
        image_size=size,
        mem_dim=8,
        mem_attn_layers=2,
        mem_attn_ffn=64,
    )


def tiny_tracking_sam2():
    """A tiny random SAM 2.1 video model (the real classes) whose object stays present: a tracker that
    follows what it is given, in place of an official checkpoint."""
    from vmatte.models.sam2 import Sam2Video, sam2_video_from_state_dict

    cfg = tiny_sam2_config("sam2.1")
    model = Sam2Video(cfg)
    randomize_sam2(model, 3)
    sd = model.state_dict()
    sd["sam_mask_decoder.pred_obj_score_head.layers.2.bias"].fill_(5.0)  # the object stays present
    return sam2_video_from_state_dict(sd, "random", cfg)
