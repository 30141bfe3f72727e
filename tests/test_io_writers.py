"""vmatte.io.writers / formats / probe: every output format round-trips, composites are right,
audio is carried, outputs are atomic, and output problems are one-line OutputErrors."""

from __future__ import annotations

import builtins
import os
import types
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import clip_colour, make_clip
from vmatte.errors import OutputError, VmatteError
from vmatte.io import encoders
from vmatte.io.formats import DEFAULT_FORMATS, FORMATS, PLATE_FORMATS, parse_formats
from vmatte.io.probe import read_rgba, stream_summary
from vmatte.io.reader import VideoInfo, open_source
from vmatte.io.writers import Background, OutputSet, temp_name

N = 10


def make_info(w=64, h=48, fps=Fraction(25), path=Path("src.mp4"), audio=False, seq=False) -> VideoInfo:
    return VideoInfo(
        path=path,
        width=w,
        height=h,
        fps=fps,
        num_frames=N,
        rotation=0,
        bit_depth=8,
        has_audio=audio,
        is_image_sequence=seq,
        codec="h264",
    )


# Test matte: three flat vertical bands (alpha 0 | 1 | 0.5) above a horizontal 0..1 gradient.
# The foreground is one flat colour per frame (red channel codes the frame index).
def matte(i: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.zeros((h, w), np.float32)
    alpha[:, 20:44] = 1.0
    alpha[:, 44:] = 0.5
    alpha[36:, :] = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    fgr = np.empty((h, w, 3), np.float32)
    fgr[:] = (0.2 + 0.05 * i, 0.3, 0.7)
    return fgr, alpha


# Interiors of the flat bands (away from edges, where lossy codecs blur).
ZERO = (slice(10, 30), slice(4, 16))
ONE = (slice(10, 30), slice(24, 40))
HALF = (slice(10, 30), slice(48, 60))


def write_all(outdir: Path, formats, info: VideoInfo, n=N, background=None, overwrite=False) -> dict[str, Path]:
    image = np.zeros((info.height, info.width, 3), np.uint8)
    with OutputSet(outdir, "clip", formats, info, background=background, overwrite=overwrite) as out:
        for i in range(n):
            fgr, alpha = matte(i, info.width, info.height)
            out.write(i, image, fgr, alpha)
    return out.paths


# --- formats ----------------------------------------------------------------------------------


def test_parse_formats():
    assert parse_formats("alpha,prores") == ["alpha", "prores"]
    assert parse_formats(" alpha , ALPHA,webm ") == ["alpha", "webm"]
    assert parse_formats(["fgr", "comp,alpha-png16"]) == ["fgr", "comp", "alpha-png16"]
    assert parse_formats(DEFAULT_FORMATS) == ["alpha", "fgr", "comp"]
    with pytest.raises(VmatteError) as e:
        parse_formats("alpha,gif")
    msg = str(e.value)
    assert "gif" in msg and all(name in msg for name in FORMATS) and "\n" not in msg
    with pytest.raises(VmatteError):
        parse_formats(" , ")


# the EXR/DPX plate formats are read back with OpenEXR in test_vfx_plates.py
VIDEO_FORMATS = [n for n in FORMATS if n not in PLATE_FORMATS]


def test_format_table():
    assert set(FORMATS) == {
        "alpha",
        "alpha-png",
        "alpha-png16",
        "mask-png",
        "fgr",
        "comp",
        "rgba-png",
        "prores",
        "webm",
        "exr",
        "exr-layers",
        "alpha-exr",
        "dpx",
    }
    names = {k: s.output_name("x") for k, s in FORMATS.items()}
    assert names == {
        "alpha": "x_alpha.mp4",
        "alpha-png": "x_alpha",
        "alpha-png16": "x_alpha16",
        "mask-png": "x_mask",
        "fgr": "x_fgr.mp4",
        "comp": "x_comp.mp4",
        "rgba-png": "x_rgba",
        "prores": "x_prores4444.mov",
        "webm": "x_alpha.webm",
        "exr": "x_exr",
        "exr-layers": "x_layers",
        "alpha-exr": "x_alpha_exr",
        "dpx": "x_alpha_dpx",
    }
    assert all(s.description for s in FORMATS.values())


# --- round trips ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[(64, 48), (65, 47), (66, 48)], ids=["even", "odd", "w66"])
def all_outputs(request, tmp_path_factory):
    w, h = request.param
    info = make_info(w, h)
    paths = write_all(tmp_path_factory.mktemp(f"all{w}x{h}"), VIDEO_FORMATS, info)
    return info, paths


def expected(i, info):
    return matte(i, info.width, info.height)


def test_every_format_written_with_right_count_and_size(all_outputs):
    info, paths = all_outputs
    assert set(paths) == set(VIDEO_FORMATS)
    listing = sorted(os.listdir(paths["alpha"].parent))
    assert listing == sorted(p.name for p in paths.values())  # no temporaries left behind
    for name, path in paths.items():
        s = stream_summary(path)
        assert s["frames"] == N, (name, s)
        w, h = info.width, info.height
        if name in ("alpha", "fgr", "comp"):  # H.264 4:2:0 pads odd sizes by one pixel
            w, h = w + w % 2, h + h % 2
        assert (s["width"], s["height"]) == (w, h), (name, s)
        if not FORMATS[name].is_dir:
            assert s["fps"] == Fraction(25) and s["video_duration"] == pytest.approx(N / 25, abs=0.01)
        assert s["has_alpha"] == (name in ("prores", "webm", "rgba-png")), (name, s)
        assert not s["has_audio"]


def test_png_outputs_exact(all_outputs):
    info, paths = all_outputs
    a8 = list(read_rgba(paths["alpha-png"]))
    a16 = list(read_rgba(paths["alpha-png16"]))
    rgba = list(read_rgba(paths["rgba-png"]))
    masks = list(read_rgba(paths["mask-png"]))
    assert sorted(os.listdir(paths["alpha-png"]))[:2] == ["00000.png", "00001.png"]
    for i in range(N):
        fgr, alpha = expected(i, info)
        assert a8[i].dtype == np.uint8 and a8[i].shape == alpha.shape
        assert np.array_equal(a8[i], np.round(alpha * 255).astype(np.uint8))
        assert a16[i].dtype == np.uint16
        assert np.abs(a16[i].astype(np.int64) - np.round(alpha * 65535)).max() <= 1
        assert rgba[i].shape == alpha.shape + (4,)
        assert np.array_equal(rgba[i][..., 3], a8[i])
        assert np.array_equal(rgba[i][..., :3], np.round(fgr * 255).astype(np.uint8))
        assert np.array_equal(masks[i], np.where(alpha >= 0.5, 255, 0).astype(np.uint8))  # mask-png: alpha >= 1/2


def test_prores_alpha_within_one_level(all_outputs):
    info, paths = all_outputs
    frames = list(read_rgba(paths["prores"]))
    assert len(frames) == N
    s = stream_summary(paths["prores"])
    assert s["codec"] == "prores" and s["pix_fmt"].startswith("yuva444p")
    with av.open(str(paths["prores"])) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.profile, cc.codec_tag) == ("4444", "ap4h")
    for i, f in enumerate(frames):
        fgr, alpha = expected(i, info)
        assert f.dtype == np.uint16 and f.shape == (info.height, info.width, 4)
        a = f[..., 3] / 65535.0
        assert np.abs(a - alpha).max() <= 1 / 255
        rgb = f[..., :3] / 65535.0
        assert np.abs(rgb[ONE] - fgr[ONE]).max() <= 2 / 255  # colour, in the opaque band


def test_h264_alpha_close_on_flat_regions(all_outputs):
    info, paths = all_outputs
    frames = list(read_rgba(paths["alpha"]))
    assert len(frames) == N
    for i, a in enumerate(frames):
        _, alpha = expected(i, info)
        assert a.ndim == 2 and a.dtype == np.uint8
        crop = a[: info.height, : info.width].astype(np.float64)
        ref = alpha * 255
        for region in (ZERO, ONE, HALF):
            assert np.abs(crop[region] - ref[region]).max() <= 2
        assert np.abs(crop - ref).mean() < 1.5  # gradient and edges too, on average
        if info.width % 2:  # padding replicates the last column
            assert np.abs(a[:30, -1].astype(int) - a[:30, -2]).max() <= 2


def test_webm_has_alpha_close(all_outputs):
    info, paths = all_outputs
    frames = list(read_rgba(paths["webm"]))
    assert len(frames) == N
    for i, f in enumerate(frames):
        fgr, alpha = expected(i, info)
        assert f.shape == (info.height, info.width, 4) and f.dtype == np.uint8
        a = f[..., 3].astype(np.float64)
        for region in (ZERO, ONE, HALF):
            assert np.abs(a[region] - alpha[region] * 255).max() <= 4
        assert np.abs(f[..., :3][ONE].astype(float) - fgr[ONE] * 255).max() <= 6


def test_fgr_and_comp_colours_and_order(all_outputs):
    info, paths = all_outputs
    fgr_frames = list(read_rgba(paths["fgr"]))
    comp_frames = list(read_rgba(paths["comp"]))
    green = np.array([0.0, 1.0, 0.0])
    for i in range(N):
        fgr, alpha = expected(i, info)
        f = fgr_frames[i].astype(float)
        c = comp_frames[i].astype(float)
        # H.264 at CRF 18 with 4:2:0 chroma: flat colour areas wobble by a few levels (more in
        # blue, which rides on chroma); the red channel steps by 12.75 per frame, so order shows.
        for got, want in (
            (f[ONE], fgr[ONE] * 255),  # fgr output
            (c[ONE], fgr[ONE] * 255),  # comp, opaque: foreground
            (c[ZERO], np.broadcast_to(green * 255, c[ZERO].shape)),  # transparent: green
            (c[HALF], (0.5 * fgr[HALF] + 0.5 * green) * 255),
        ):  # half: the mix
            err = np.abs(got - want)
            assert err.max() <= 8 and err.mean() <= 3, (i, err.max(), err.mean())


def test_h264_colour_metadata_is_bt709(all_outputs):
    _, paths = all_outputs
    for name in ("alpha", "fgr", "comp"):
        with av.open(str(paths[name])) as c:
            cc = c.streams.video[0].codec_context
            assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == (1, 1, 1, 1), name


def test_output_frame_rate_follows_source(tmp_path):
    info = make_info(fps=Fraction(30000, 1001))
    paths = write_all(tmp_path, ["alpha", "prores"], info, n=6)
    for p in paths.values():
        s = stream_summary(p)
        assert s["fps"] == Fraction(30000, 1001)
        assert s["video_duration"] == pytest.approx(6 * 1001 / 30000, abs=1e-3)


def test_16bit_source_image_accepted(tmp_path):
    info = replace(make_info(), bit_depth=16)
    with OutputSet(tmp_path, "deep", ["alpha-png16"], info) as out:
        fgr, alpha = matte(0, 64, 48)
        out.write(0, np.zeros((48, 64, 3), np.uint16), fgr, alpha)
    assert len(list(read_rgba(out.paths["alpha-png16"]))) == 1


def test_out_of_range_alpha_is_clipped(tmp_path):
    info = make_info()
    with OutputSet(tmp_path, "c", ["alpha-png", "alpha"], info) as out:
        fgr, _ = matte(0, 64, 48)
        alpha = np.full((48, 64), 1.3, np.float32)
        alpha[:, :32] = -0.2
        out.write(0, None, fgr, alpha)
    a = next(read_rgba(out.paths["alpha-png"]))
    assert a[:, :30].max() == 0 and a[:, 34:].min() == 255
    a = next(read_rgba(out.paths["alpha"]))
    assert a[4:40, 4:28].max() <= 1 and a[4:40, 36:60].min() >= 254


def test_wrong_frame_shape_rejected(tmp_path):
    out = OutputSet(tmp_path, "c", ["alpha-png", "alpha"], make_info())
    with pytest.raises(ValueError):
        out.write(0, None, np.zeros((10, 10, 3), np.float32), np.zeros((10, 10), np.float32))
    assert os.listdir(tmp_path) == []  # a failed write aborts the whole set


# --- backgrounds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,rgb",
    [
        ("green", (0, 255, 0)),
        ("black", (0, 0, 0)),
        ("white", (255, 255, 255)),
        ("blue", (0, 0, 255)),
        ("#ff8000", (255, 128, 0)),
        ("#0f0", (0, 255, 0)),
        ("10, 20, 30", (10, 20, 30)),
    ],
)
def test_background_colours(spec, rgb):
    bg = Background.parse(spec)
    f = bg.frame(0, 4, 6)
    assert f.shape == (4, 6, 3) and f.dtype == np.float32
    assert np.allclose(f, np.array(rgb) / 255.0)


@pytest.mark.parametrize("spec", ["purple-ish", "300,0,0", "#12345", "", "missing/bg.png", "nope.jpg"])
def test_background_errors(spec):
    with pytest.raises(VmatteError) as e:
        Background.parse(spec)
    assert "\n" not in str(e.value)


def test_background_image_cover_and_crop(tmp_path):
    # 100x40 image: left half red, right half blue, a 2-px white border column in the middle.
    img = np.zeros((40, 100, 3), np.uint8)
    img[:, :50] = (255, 0, 0)
    img[:, 50:] = (0, 0, 255)
    p = tmp_path / "bg.png"
    cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    bg = Background.parse(str(p))
    assert bg.kind == "image"
    # Target 48x64 (taller aspect): scale to height 48 (x1.2 -> 120 wide), crop 28 px each side.
    f = bg.frame(3, 48, 64)
    assert f.shape == (48, 64, 3)
    assert np.allclose(f[:, :28], (1, 0, 0), atol=0.02)
    assert np.allclose(f[:, 36:], (0, 0, 1), atol=0.02)
    assert f is bg.frame(4, 48, 64)  # cached, same for every frame


def test_background_video_loops(tmp_path):
    p = make_clip(tmp_path / "bgv.mp4", 4, 32, 24)
    bg = Background.parse(str(p))
    assert bg.kind == "video"
    for index in (0, 1, 2, 3, 4, 5, 9, 2, 0):  # loops, and copes with going backwards
        f = bg.frame(index, 48, 64)  # upscaled to cover
        assert f.shape == (48, 64, 3)
        want = np.array(clip_colour(index % 4)) / 255.0
        assert np.abs(f[30:, 30:] - want).max() < 0.03, index
    bg.close()


def test_composite_over_image_and_video(tmp_path):
    info = make_info()
    img = np.zeros((48, 64, 3), np.uint8)
    img[:] = (200, 100, 50)
    imgp = tmp_path / "bg.png"
    cv2.imwrite(str(imgp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    vid = make_clip(tmp_path / "bgv.mp4", 3, 64, 48)
    for name, spec, colour_of in [
        ("img", str(imgp), lambda i: np.array((200, 100, 50), float)),
        ("vid", str(vid), lambda i: np.array(clip_colour(i % 3), float)),
        ("hex", "#102030", lambda i: np.array((16, 32, 48), float)),
    ]:
        bg = Background.parse(spec)
        paths = write_all(tmp_path / name, ["comp"], info, n=5, background=bg)
        check = Background.parse(spec)
        for i, c in enumerate(read_rgba(paths["comp"])):
            fgr, _ = matte(i, 64, 48)
            c = c.astype(float)
            want_bg = check.frame(i, 48, 64) * 255.0
            # The background used is the right one (for the video: frame i mod 3, looping) ...
            assert np.abs(want_bg[ZERO].mean(axis=(0, 1)) - colour_of(i)).max() <= 4, (name, i)
            # ... and the composite over it is right: H.264 at CRF 18, and P-frames of a background
            # that changes every frame, stay within a few levels on average.
            err0 = np.abs(c[ZERO] - want_bg[ZERO])
            err5 = np.abs(c[HALF] - (0.5 * fgr[HALF] * 255 + 0.5 * want_bg[HALF]))
            assert err0.max() <= 12 and err0.mean() <= 3, (name, i, err0.max(), err0.mean())
            assert err5.max() <= 12 and err5.mean() <= 3, (name, i, err5.max(), err5.mean())
        check.close()


# --- audio ------------------------------------------------------------------------------------


def audio_source(tmp_path, name="talk.mp4", n=25, **kw) -> tuple[Path, VideoInfo]:
    p = make_clip(tmp_path / name, n, 64, 48, audio=True, **kw)
    with open_source(p) as src:
        return p, src.info


def write_from_source(src: Path, outdir: Path, formats, n_limit=None) -> dict[str, Path]:
    with open_source(src) as s, OutputSet(outdir, "out", formats, s.info) as out:
        for f in s:
            if n_limit is not None and f.index >= n_limit:
                break
            fgr, alpha = matte(f.index, s.info.width, s.info.height)
            out.write(f.index, f.image, fgr, alpha)
    return out.paths


def test_audio_carried_into_every_video_container(tmp_path):
    src, info = audio_source(tmp_path)
    assert info.has_audio
    paths = write_from_source(src, tmp_path / "out", ["alpha", "fgr", "comp", "prores", "webm", "alpha-png"])
    codecs = {}
    for name in ("alpha", "fgr", "comp", "prores", "webm"):
        s = stream_summary(paths[name])
        assert s["has_audio"], name
        assert s["audio_duration"] == pytest.approx(s["video_duration"], abs=0.06), (name, s)
        with av.open(str(paths[name])) as c:
            codecs[name] = c.streams.audio[0].codec_context.name
            # Interleaved while writing: audio packets are not all parked after the video.
            kinds = [p.stream.type for p in c.demux() if p.size]
            first_audio = kinds.index("audio")
            assert first_audio < len(kinds) - kinds[::-1].index("video") - 5, (name, kinds)
    assert codecs["alpha"] == codecs["prores"] == "aac"  # copied
    assert codecs["webm"] == "opus"  # WebM cannot hold AAC: transcoded
    assert not stream_summary(paths["alpha-png"])["has_audio"]


def test_audio_copied_bit_exact(tmp_path):
    src, _ = audio_source(tmp_path)
    paths = write_from_source(src, tmp_path / "out", ["alpha"])

    def packets(p):
        with av.open(str(p)) as c:
            return [bytes(pk) for pk in c.demux(c.streams.audio[0]) if pk.size]

    assert packets(paths["alpha"]) == packets(src)


def test_opus_source_into_mp4_and_webm(tmp_path):
    src, info = audio_source(tmp_path, "voice.webm")
    paths = write_from_source(src, tmp_path / "out", ["alpha", "webm"])
    for name in ("alpha", "webm"):
        s = stream_summary(paths[name])
        assert s["has_audio"] and s["audio_duration"] == pytest.approx(s["video_duration"], abs=0.06)


def audio_onset(path: Path) -> float:
    """Time (s) of the first clearly audible sample of the first audio track."""
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            data = frame.to_ndarray()
            loud = np.nonzero(np.abs(data).max(axis=0) > 0.02)[0]
            if len(loud):
                return float(frame.time) + loud[0] / frame.sample_rate
    raise AssertionError("silent")


def test_audio_stays_in_sync_when_it_starts_late(tmp_path):
    src = make_clip(tmp_path / "late.mp4", 25, 64, 48, audio=True, audio_delay=0.2)
    assert audio_onset(src) == pytest.approx(0.2, abs=0.01)
    paths = write_from_source(src, tmp_path / "out", ["alpha", "webm"])
    assert audio_onset(paths["alpha"]) == pytest.approx(0.2, abs=0.01)  # copied packets keep their time
    assert audio_onset(paths["webm"]) == pytest.approx(0.2, abs=0.01)  # re-encoded: leading silence


def test_audio_trimmed_to_written_video(tmp_path):
    src, _ = audio_source(tmp_path, n=25)
    paths = write_from_source(src, tmp_path / "out", ["alpha"], n_limit=10)
    s = stream_summary(paths["alpha"])
    assert s["frames"] == 10 and s["audio_duration"] == pytest.approx(0.4, abs=0.05)


def test_image_sequence_has_no_audio(tmp_path):
    info = make_info(seq=True, audio=False)
    paths = write_all(tmp_path, ["alpha"], info, n=3)
    assert not stream_summary(paths["alpha"])["has_audio"]


# --- atomic outputs ---------------------------------------------------------------------------


def test_final_names_appear_only_at_close(tmp_path):
    info = make_info()
    out = OutputSet(tmp_path, "c", ["alpha", "alpha-png", "prores"], info)
    for i in range(3):
        fgr, alpha = matte(i, 64, 48)
        out.write(i, None, fgr, alpha)
    present = set(os.listdir(tmp_path))
    assert ".c.vmatte-lock" in present  # the run owns the set while it writes
    present.discard(".c.vmatte-lock")
    # (PyAV creates a container's file when the encoder emits its first packet; x264 is still
    # buffering after 3 frames, so the mp4 temporary may not exist yet.)
    assert present and present <= {temp_name(p, out.lock.run).name for p in out.paths.values()}
    assert all(name.startswith(".") and name.endswith(f".vmatte-{out.lock.run}.partial") for name in present)
    assert not any(p.exists() for p in out.paths.values())
    final = out.close()
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in final.values())
    assert stream_summary(final["alpha"])["frames"] == 3
    assert out.close() == final  # idempotent


def test_abort_removes_every_temporary(tmp_path):
    info = make_info()
    (tmp_path / "keep.txt").write_text("mine")
    out = OutputSet(tmp_path, "c", VIDEO_FORMATS, info)
    fgr, alpha = matte(0, 64, 48)
    out.write(0, None, fgr, alpha)
    out.abort()
    out.abort()  # idempotent
    assert os.listdir(tmp_path) == ["keep.txt"]
    with pytest.raises(RuntimeError):
        out.write(1, None, fgr, alpha)


def test_context_manager_aborts_on_exception(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with OutputSet(tmp_path, "c", ["alpha", "rgba-png"], make_info()) as out:
            fgr, alpha = matte(0, 64, 48)
            out.write(0, None, fgr, alpha)
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_existing_output_refused_without_overwrite(tmp_path):
    mine = tmp_path / "c_alpha.mp4"
    mine.write_bytes(b"user's own file")
    with pytest.raises(OutputError) as e:
        OutputSet(tmp_path, "c", ["fgr", "alpha"], make_info())
    msg = str(e.value)
    assert "c_alpha.mp4" in msg and "--overwrite" in msg and "\n" not in msg
    assert os.listdir(tmp_path) == ["c_alpha.mp4"]  # nothing created, nothing touched
    assert mine.read_bytes() == b"user's own file"


def test_overwrite_replaces_only_when_complete(tmp_path):
    old_file = tmp_path / "c_alpha.mp4"
    old_file.write_bytes(b"old video")
    old_dir = tmp_path / "c_alpha"
    old_dir.mkdir()
    (old_dir / "00007.png").write_bytes(b"old frame")
    out = OutputSet(tmp_path, "c", ["alpha", "alpha-png"], make_info(), overwrite=True)
    for i in range(3):
        fgr, alpha = matte(i, 64, 48)
        out.write(i, None, fgr, alpha)
    assert old_file.read_bytes() == b"old video"  # intact while the new one is written
    assert os.listdir(old_dir) == ["00007.png"]
    out.close()
    assert stream_summary(old_file)["frames"] == 3
    assert sorted(os.listdir(old_dir)) == ["00000.png", "00001.png", "00002.png"]
    assert sorted(os.listdir(tmp_path)) == ["c_alpha", "c_alpha.mp4"]


def test_overwrite_then_abort_keeps_old_files(tmp_path):
    old_file = tmp_path / "c_alpha.mp4"
    old_file.write_bytes(b"old video")
    out = OutputSet(tmp_path, "c", ["alpha"], make_info(), overwrite=True)
    fgr, alpha = matte(0, 64, 48)
    out.write(0, None, fgr, alpha)
    out.abort()
    assert old_file.read_bytes() == b"old video"
    assert os.listdir(tmp_path) == ["c_alpha.mp4"]


def test_stale_partial_from_crashed_run_is_replaced(tmp_path):
    # A killed run leaves its lock (naming its run id) and its temporaries: the next run takes
    # the lock over and removes exactly those; a user's look-alike names stay.
    (tmp_path / ".clip.vmatte-lock").write_text('{"pid": 999999999, "host": "h", "start": 0, "run": "deadbeef0001"}')
    stale = tmp_path / ".clip_alpha.mp4.vmatte-deadbeef0001.partial"
    stale.write_bytes(b"half written by a crashed run")
    user = [tmp_path / ".clip_alpha.mp4.partial", tmp_path / ".clip_alpha.mp4.old"]
    for u in user:
        u.write_bytes(b"the user's")
    paths = write_all(tmp_path, ["alpha"], make_info(), n=2)
    assert sorted(os.listdir(tmp_path)) == sorted(["clip_alpha.mp4", *(u.name for u in user)])
    assert paths["alpha"].exists() and all(u.read_bytes() == b"the user's" for u in user)


# --- output folder problems -------------------------------------------------------------------


def test_output_dir_created(tmp_path):
    paths = write_all(tmp_path / "a" / "b" / "c", ["alpha-png"], make_info(), n=1)
    assert paths["alpha-png"].is_dir()


def test_output_dir_under_a_file(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as e:
        OutputSet(blocker / "out", "c", ["alpha"], make_info())
    assert "output" in str(e.value) and "\n" not in str(e.value)
    assert blocker.read_text() == "x"


def test_output_dir_is_a_file(tmp_path):
    f = tmp_path / "out"
    f.write_text("x")
    with pytest.raises(OutputError) as e:
        OutputSet(f, "c", ["alpha"], make_info())
    assert "is a file" in str(e.value) and "--output" in str(e.value)


def test_unwritable_output_dir_even_for_root():
    # chmod 0o500 does not stop root; sysfs refuses new files to everyone, root included.
    import tempfile

    if not os.path.isdir("/sys"):
        pytest.skip("needs Linux sysfs")
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        pass
    else:  # pragma: no cover - a writable /sys would defeat the test
        os.close(fd)
        os.unlink(probe)
        pytest.skip("/sys is writable here")
    with pytest.raises(OutputError) as e:
        OutputSet("/sys", "c", ["alpha"], make_info())
    msg = str(e.value)
    assert "not writable" in msg and "--output" in msg and "\n" not in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_output_dir_permissions(tmp_path):  # pragma: no cover - CI runs as root
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(OutputError):
            OutputSet(d, "c", ["alpha"], make_info())
    finally:
        d.chmod(0o700)


def test_disk_full_png(tmp_path, monkeypatch):
    real_open = builtins.open

    def full_open(path, mode="r", *a, **kw):
        return real_open("/dev/full", mode, *a, **kw) if "w" in mode else real_open(path, mode, *a, **kw)

    monkeypatch.setattr(encoders, "open", full_open, raising=False)
    out = OutputSet(tmp_path, "c", ["alpha", "alpha-png"], make_info())
    fgr, alpha = matte(0, 64, 48)
    with pytest.raises(OutputError) as e:
        out.write(0, None, fgr, alpha)
    assert "disk full" in str(e.value) and "c_alpha" in str(e.value)
    assert os.listdir(tmp_path) == []  # temporaries aborted


def test_disk_full_video(tmp_path, monkeypatch):
    """A real ENOSPC from FFmpeg's muxer: the writer's output file is /dev/full."""

    def open_full(file, mode="r", *a, **kw):
        if mode == "w":
            file = "/dev/full"
        return av.open(file, mode, *a, **kw)

    fake_av = types.SimpleNamespace(**{k: getattr(av, k) for k in dir(av) if not k.startswith("__")})
    fake_av.open = open_full
    monkeypatch.setattr(encoders, "av", fake_av)
    out = OutputSet(tmp_path, "c", ["alpha"], make_info())
    fgr, alpha = matte(0, 64, 48)
    with pytest.raises(OutputError) as e:
        for i in range(N):
            out.write(i, None, fgr, alpha)
        out.close()
    assert "disk full" in str(e.value) and "--output" in str(e.value)
    assert os.listdir(tmp_path) == []
    assert os.path.exists("/dev/full")


def test_prores_frame_conversion_is_exact_every_time(tmp_path):
    # Regression: threaded swscale (FFmpeg 8) intermittently wrote alpha 0.5 into x=0..7 of rows
    # 16, 32, ... when converting rgba64le -> yuva444p10le at widths that are not a multiple of
    # 32 (from 1% to 100% of frames depending on load); repeat the writer's conversion many times.
    from vmatte.io.encoders import FrameData

    info = make_info(66, 48)
    out = OutputSet(tmp_path, "c", ["prores"], info)
    try:
        writer = out._writers["prores"]
        bg = Background.parse("green")
        for i in range(150):
            fgr, alpha = matte(i % N, 66, 48)
            frame = writer._frame(FrameData(i, None, fgr, alpha, bg))
            plane = frame.planes[3]
            got = np.frombuffer(plane, np.uint16).reshape(-1, plane.line_size // 2)[:48, :66]
            assert np.abs(got.astype(int) - np.round(alpha * 1023)).max() <= 1, i
    finally:
        out.abort()
