"""vmatte.io.reader: streaming decode of video files and image folders, and input validation."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import SQUARE, clip_colour, clip_frame, frame_index_of, make_audio_only, make_clip
from vmatte.errors import InputError
from vmatte.io.reader import VideoInfo, natural_key, open_source


def read_all(path, **kw):
    with open_source(path, **kw) as src:
        return src.info, list(src)


def assert_one_line(err: pytest.ExceptionInfo, *words: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg and len(msg) < 400, msg
    assert ";" in msg, f"message should say how to fix it: {msg}"
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)


# --- video files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ext,codec", [("mp4", "h264"), ("mov", "h264"), ("mkv", "h264"), ("webm", "vp9"), ("avi", "h264")]
)
def test_containers_frame_count_order_and_size(tmp_path, ext, codec):
    path = make_clip(tmp_path / f"clip.{ext}", 12, 64, 48)
    info, frames = read_all(path)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == Fraction(25)
    assert info.num_frames == 12
    assert info.codec == codec
    assert (info.rotation, info.bit_depth, info.has_audio, info.is_image_sequence) == (0, 8, False, False)
    assert [f.index for f in frames] == list(range(12))
    assert [frame_index_of(f.image) for f in frames] == list(range(12))
    for f in frames:
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 and f.image.flags.c_contiguous
    assert [round(f.time, 3) for f in frames] == [round(i / 25, 3) for i in range(12)]
    # Colours are right, not just ordered: the flat area of frame 5 matches what was encoded.
    assert np.abs(frames[5].image[30:, 30:].astype(int) - clip_colour(5)).max() <= 4


def test_audio_flag_and_fractional_fps(tmp_path):
    path = make_clip(tmp_path / "a.mp4", 10, 64, 48, fps=Fraction(30000, 1001), audio=True)
    info, frames = read_all(path)
    assert info.has_audio
    assert info.fps == Fraction(30000, 1001)
    assert len(frames) == 10 == info.num_frames


def test_first_frame_is_decoded_at_open_and_not_lost(tmp_path):
    path = make_clip(tmp_path / "c.mp4", 5, 64, 48)
    src = open_source(path)
    try:
        it = iter(src)
        first = next(it)
        assert first.index == 0 and frame_index_of(first.image) == 0
        assert [frame_index_of(f.image) for f in it] == [1, 2, 3, 4]
        with pytest.raises(RuntimeError):
            iter(src)  # streams once
    finally:
        src.close()


def test_early_close_stops_streaming(tmp_path):
    path = make_clip(tmp_path / "c.mkv", 20, 64, 48)
    with open_source(path) as src:
        it = iter(src)
        next(it)
        next(it)
    # Closing with frames left must not raise, and a closed source cannot be iterated.
    with pytest.raises(RuntimeError):
        iter(src)


@pytest.mark.parametrize("ext,codec,pix_fmt", [("mkv", "libx265", "yuv420p10le"), ("mov", "prores_ks", "yuv422p10le")])
def test_10bit_source_gives_uint16(tmp_path, ext, codec, pix_fmt):
    path = make_clip(tmp_path / f"deep.{ext}", 6, 64, 48, codec=codec, pix_fmt=pix_fmt)
    info, frames = read_all(path)
    assert info.bit_depth == 10
    assert all(f.image.dtype == np.uint16 and f.image.shape == (48, 64, 3) for f in frames)
    assert [frame_index_of(f.image) for f in frames] == list(range(6))
    # Full 0..65535 scale, not 10-bit values in a 16-bit container: the white square is near 65535.
    assert frames[0].image[2 : SQUARE - 2, 2 : SQUARE - 2].min() > 58000


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_gives_upright_frames(tmp_path, rotation):
    # Stored frames are 64x48 with the white square at the top-left; the display matrix says
    # "turn clockwise by `rotation`" (what a phone writes), so the square must end up at:
    path = make_clip(tmp_path / "phone.mp4", 4, 64, 48, rotation=rotation)
    info, frames = read_all(path)
    assert info.rotation == rotation
    expected_dims = (48, 64) if rotation in (90, 270) else (64, 48)
    assert (info.width, info.height) == expected_dims
    img = frames[0].image
    assert img.shape == (info.height, info.width, 3) and img.flags.c_contiguous
    h, w = img.shape[:2]
    corners = {
        "top-left": img[:SQUARE, :SQUARE],
        "top-right": img[:SQUARE, w - SQUARE :],
        "bottom-left": img[h - SQUARE :, :SQUARE],
        "bottom-right": img[h - SQUARE :, w - SQUARE :],
    }
    white = [name for name, c in corners.items() if c.min() > 200]
    assert white == [{90: "top-right", 180: "bottom-right", 270: "bottom-left"}[rotation]]
    # Exactly the upright version of the stored pattern.
    stored = clip_frame(0, 64, 48)
    upright = np.rot90(stored, k=-rotation // 90)
    assert np.abs(img.astype(int) - upright).mean() < 3


# --- image folders ----------------------------------------------------------------------------


def test_natural_key():
    names = ["frame10.png", "frame2.png", "frame1.png", "Frame3.png"]
    assert sorted(names, key=natural_key) == ["frame1.png", "frame2.png", "Frame3.png", "frame10.png"]


def test_image_folder_natural_order_and_fps(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    n = 12
    for i in reversed(range(n)):  # creation order must not matter
        cv2.imwrite(str(folder / f"frame{i + 1}.png"), cv2.cvtColor(clip_frame(i, 40, 30), cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"junk")
    info, frames = read_all(folder, fps=12)
    assert info.is_image_sequence and info.codec == "png" and not info.has_audio
    assert (info.width, info.height, info.num_frames, info.bit_depth) == (40, 30, n, 8)
    assert info.fps == Fraction(12)
    assert [frame_index_of(f.image) for f in frames] == list(range(n))  # frame2 before frame10
    assert np.array_equal(frames[3].image, clip_frame(3, 40, 30))  # PNG: exact, RGB order
    assert frames[3].time == pytest.approx(3 / 12)
    info, _ = read_all(folder)
    assert info.fps == Fraction(25)  # default
    assert read_all(folder, fps=29.97)[0].fps == Fraction(30000, 1001)


def test_png16_folder_gives_uint16(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16) for _ in range(3)]
    for i, img in enumerate(imgs):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    info, frames = read_all(folder)
    assert info.bit_depth == 16
    for img, f in zip(imgs, frames):
        assert f.image.dtype == np.uint16 and np.array_equal(f.image, img)


def test_grey_and_rgba_images_become_rgb(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    grey = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    cv2.imwrite(str(folder / "a1.png"), grey)
    bgra = np.zeros((20, 30, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 77
    cv2.imwrite(str(folder / "a2.png"), bgra)
    cv2.imwrite(str(folder / "a3.jpg"), np.full((20, 30, 3), 128, np.uint8))
    _, frames = read_all(folder)
    assert [f.image.shape for f in frames] == [(20, 30, 3)] * 3
    assert np.array_equal(frames[0].image[..., 0], grey) and np.array_equal(frames[0].image[..., 2], grey)
    assert frames[1].image[0, 0].tolist() == [30, 20, 10]  # RGB, alpha dropped
    assert np.abs(frames[2].image.astype(int) - 128).max() <= 2


def test_image_folder_problems(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(InputError) as e:
        open_source(empty)
    assert_one_line(e, "no images")

    folder = tmp_path / "bad"
    folder.mkdir()
    cv2.imwrite(str(folder / "f1.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(folder / "f2.png"), np.zeros((12, 10, 3), np.uint8))  # different size
    (folder / "f3.png").write_bytes(b"\x89PNG not really")
    with open_source(folder) as src:
        it = iter(src)
        next(it)
        with pytest.raises(InputError) as e:
            next(it)
        assert_one_line(e, "f2.png", "same size")

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "f1.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError) as e:
        open_source(corrupt)
    assert_one_line(e, "f1.png")

    with pytest.raises(InputError) as e:
        open_source(folder, fps=0)
    assert_one_line(e, "fps")


# --- bad input files --------------------------------------------------------------------------


def test_missing_input(tmp_path):
    with pytest.raises(InputError) as e:
        open_source(tmp_path / "nope.mp4")
    assert_one_line(e, "input not found", "nope.mp4", "check the path")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "zero.mp4"
    p.write_bytes(b"")
    with pytest.raises(InputError) as e:
        open_source(p)
    assert_one_line(e, "zero.mp4", "empty")


def test_text_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError) as e:
        open_source(p)
    assert_one_line(e, "notes.mp4")


def test_audio_only(tmp_path):
    p = make_audio_only(tmp_path / "song.m4a")
    with pytest.raises(InputError) as e:
        open_source(p)
    assert_one_line(e, "song.m4a", "no video stream", "audio")


def test_zero_frames(tmp_path):
    p = tmp_path / "empty.mp4"
    with av.open(str(p), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    with pytest.raises(InputError) as e:
        open_source(p)
    assert_one_line(e, "empty.mp4")


def _cut_offsets(n: int) -> list[int]:
    fractions = [0.005, 0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 0.95, 0.98, 0.995]
    return sorted({int(n * f) for f in fractions} | {n - 1, n - 16, n - 200})


def _decode_or_error(path: Path) -> str:
    """'error' for InputError (at open or while iterating), 'full' for a complete correct decode,
    'short' otherwise. Any other exception fails the test."""
    try:
        with open_source(path) as src:
            idx = [frame_index_of(f.image) for f in src]
    except InputError as e:
        assert "\n" not in str(e)
        return "error"
    return "full" if idx == list(range(30)) else f"short:{len(idx)}"


@pytest.mark.parametrize(
    "name,kw",
    [
        ("plain.mp4", {}),
        ("faststart.mp4", {"faststart": True}),
        ("plain_audio.mp4", {"audio": True}),
        ("faststart_audio.mp4", {"audio": True, "faststart": True}),
        ("clip.mkv", {"audio": True}),
        ("clip.webm", {}),
    ],
)
def test_truncated_files_never_decode_short(tmp_path, name, kw):
    good = make_clip(tmp_path / name, 30, 96, 64, **kw)
    data = good.read_bytes()
    results = {}
    for off in _cut_offsets(len(data)):
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(data[:off])
        results[off] = _decode_or_error(cut)
    assert not [r for r in results.values() if r.startswith("short")], results
    assert list(results.values()).count("error") >= len(results) - 4, results


def test_truncated_faststart_mp4_refused_at_open(tmp_path):
    # moov at the front: the index survives the cut and tells us data is missing, even when only
    # the very last frame is gone.
    good = make_clip(tmp_path / "fs.mp4", 30, 96, 64, faststart=True)
    data = good.read_bytes()
    cut = tmp_path / "fs_cut.mp4"
    cut.write_bytes(data[: len(data) - 60])
    with pytest.raises(InputError) as e:
        open_source(cut)
    assert_one_line(e, "fs_cut.mp4", "truncated")


def test_truncated_mkv_fails_at_end_of_iteration(tmp_path):
    # Matroska has no per-frame index up front: the short stream is noticed when it ends early
    # (the header carries the track duration), so the caller aborts before finishing outputs.
    good = make_clip(tmp_path / "m.mkv", 30, 96, 64)
    data = good.read_bytes()
    cut = tmp_path / "m_cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    seen = 0
    with open_source(cut) as src:
        with pytest.raises(InputError) as e:
            for _ in src:
                seen += 1
    assert 5 < seen < 30
    assert_one_line(e, "m_cut.mkv", "truncated")


def test_corrupted_middle_never_raises_raw_errors(tmp_path):
    good = make_clip(tmp_path / "g.mp4", 30, 96, 64)
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(1)
    for start in (len(data) // 4, len(data) // 2):
        data[start : start + 300] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbled.mp4"
    bad.write_bytes(bytes(data))
    try:
        with open_source(bad) as src:
            n = sum(1 for _ in src)
        assert n == 30  # the decoder concealed the damage; every frame is still there
    except InputError as e:
        assert "\n" not in str(e)


def test_unreadable_file_as_root_safe(tmp_path):
    # A directory path component that is a file: the OS says ENOTDIR; still a one-line InputError.
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError) as e:
        open_source(f / "clip.mp4")
    assert_one_line(e, "not found")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_permissions(tmp_path):  # pragma: no cover - CI runs as root
    p = make_clip(tmp_path / "c.mp4", 3, 64, 48)
    p.chmod(0)
    with pytest.raises(InputError) as e:
        open_source(p)
    assert_one_line(e, "permission")


def test_decode_error_while_iterating_names_the_frame(tmp_path):
    # A PNG-coded .mov whose 6th frame is garbled: the container is fine, frames 0-4 decode, the
    # PNG decoder rejects frame 5 -> InputError naming frame 5 (after 5 good frames were yielded).
    good = make_clip(tmp_path / "png.mov", 12, 64, 48, codec="png", pix_fmt="rgb24")
    with av.open(str(good)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(good.read_bytes())
    pos, size = packets[5]
    data[pos + 40 : pos + size - 20] = bytes(size - 60)
    bad = tmp_path / "garbled.mov"
    bad.write_bytes(bytes(data))
    seen = []
    with open_source(bad) as src:
        with pytest.raises(InputError) as e:
            for f in src:
                seen.append(frame_index_of(f.image))
    assert seen == [0, 1, 2, 3, 4]
    assert_one_line(e, "garbled.mov", "at frame 5")


def test_b_frames_come_out_in_display_order(tmp_path):
    path = tmp_path / "bframes.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"preset": "medium", "bf": "3", "crf": "10"}
        for i in range(20):
            f = av.VideoFrame.from_ndarray(clip_frame(i, 64, 48), format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    info, frames = read_all(path)
    assert [frame_index_of(f.image) for f in frames] == list(range(20))
    assert info.start_time == pytest.approx(0.0, abs=1e-6) and frames[0].time == 0.0


def test_10bit_width_not_multiple_of_32(tmp_path):  # (x265 needs an even width)
    # Widths that are not a multiple of 32 are where threaded swscale has garbled high-bit-depth
    # rows (see vmatte.io.reader.SWS_THREADS): every decoded frame must be clean.
    path = make_clip(tmp_path / "deep66.mkv", 4, 66, 48, codec="libx265", pix_fmt="yuv420p10le")
    _, frames = read_all(path)
    for i, f in enumerate(frames):
        flat = f.image[12:, :].astype(np.int64)  # below the square: one flat colour
        want = np.array(clip_colour(i)) * 257
        assert np.abs(flat - want).max() < 6 * 257, i


def test_mkv_frame_estimate_from_duration(tmp_path):
    path = make_clip(tmp_path / "d.mkv", 17, 64, 48)
    with open_source(path) as src:
        assert src.info.num_frames == 17  # Matroska has no frame count: from the duration
