"""End to end: the `vmatte` command and the Python API on real files, real weights (the shipped RVM)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

import vmatte
import vmatte.demo
from conftest import make_clip
from vmatte.cli import main
from vmatte.demo import make_sample
from vmatte.io.probe import read_rgba, stream_summary


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The demo's own clip: a real person photo moving over a background, with audio."""
    return make_sample(tmp_path_factory.mktemp("sample") / "astronaut.mp4", frames=12)


@pytest.fixture(scope="module")
def matter():
    return vmatte.load_matter("rvm", device="cpu")


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vmatte: error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])


def test_matte_writes_every_requested_format_with_person_matte(sample, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        ["matte", sample, "-o", out, "-f", "alpha,fgr,comp,prores,webm,alpha-png16", "--device", "cpu"], capsys
    )
    assert code == 0, err
    assert "GPL-3.0" in err  # the weights' licence is named where they are loaded
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "astronaut_alpha.mp4",
        "astronaut_alpha.webm",
        "astronaut_alpha16",
        "astronaut_comp.mp4",
        "astronaut_fgr.mp4",
        "astronaut_prores4444.mov",
    ], names
    for name in ("astronaut_alpha.mp4", "astronaut_comp.mp4", "astronaut_prores4444.mov", "astronaut_alpha.webm"):
        s = stream_summary(out / name)
        assert s["frames"] == 12 and (s["width"], s["height"]) == (640, 360), (name, s)
        assert s["has_audio"], f"{name} lost the source's audio"
    assert stream_summary(out / "astronaut_prores4444.mov")["has_alpha"]
    assert stream_summary(out / "astronaut_alpha.webm")["has_alpha"]
    # The matte is of the person: the face (centre of the portrait) is opaque, a far corner is not.
    alpha = np.stack([a.astype(np.float32) / 65535 for a in read_rgba(out / "astronaut_alpha16")])
    assert alpha.shape[0] == 12
    assert alpha[0, 60:100, 300:340].mean() > 0.9  # the astronaut's face at frame 0
    assert alpha[:, :40, :40].mean() < 0.05
    # stdout lists format<TAB>path for scripts.
    assert len(stdout.strip().splitlines()) == 6


def test_iter_matte_matches_file_outputs(sample, tmp_path, matter):
    frames = list(vmatte.iter_matte(sample, model=matter))
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].alpha.shape == (360, 640) and frames[0].alpha.dtype == np.float32
    assert frames[0].foreground.shape == (360, 640, 3)
    assert 0 <= frames[0].alpha.min() and frames[0].alpha.max() <= 1
    result = vmatte.matte(sample, tmp_path, model=matter, formats=["alpha-png16"])
    assert result.frames == 12
    written = [a.astype(np.float32) / 65535 for a in read_rgba(result.outputs["alpha-png16"])]
    for f, w in zip(frames, written):
        assert np.abs(f.alpha - w).max() <= 1 / 65535 + 1e-6


def test_entry_point_exit_code_and_listing(tmp_path):
    exe = Path(sys.executable).with_name("vmatte")
    r = subprocess.run([str(exe), "formats"], capture_output=True, text=True)
    assert r.returncode == 0 and "prores" in r.stdout and "webm" in r.stdout
    r = subprocess.run(
        [str(exe), "matte", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o")], capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not found" in r.stderr


# --- bad input: one line, exit 2, nothing written ---------------------------------------------


def outdir_is_empty(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_missing_file(tmp_path, capsys):
    code, _, err = run_cli(["matte", tmp_path / "missing.mp4", "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, "not found")
    assert outdir_is_empty(tmp_path / "out")


def test_not_a_video(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 20)
    code, _, err = run_cli(["matte", bad, "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, "notes.mp4")
    assert outdir_is_empty(tmp_path / "out")


@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_truncated_video(tmp_path, capsys, fraction):
    good = make_clip(tmp_path / "good.mp4", 30, 160, 120)
    data = good.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    out = tmp_path / "out"
    code, _, err = run_cli(["matte", cut, "-o", out, "-f", "alpha,prores"], capsys)
    assert_one_line_error(code, err, "cut.mp4")
    assert outdir_is_empty(out), list(out.iterdir())


def test_zero_frames(tmp_path, capsys):
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    code, _, err = run_cli(["matte", empty, "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err)
    assert outdir_is_empty(tmp_path / "out")


def test_unwritable_output_dir(sample, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a file where a folder should be: fails even for root
    code, _, err = run_cli(["matte", sample, "-o", blocker / "out"], capsys)
    assert_one_line_error(code, err, "output")
    assert blocker.read_text() == "x"


def test_unknown_format(sample, tmp_path, capsys):
    code, _, err = run_cli(["matte", sample, "-o", tmp_path / "out", "-f", "alpha,gif"], capsys)
    assert_one_line_error(code, err, "gif", "prores")  # names the bad one and lists the valid ones
    assert outdir_is_empty(tmp_path / "out")


def test_existing_output_is_kept_without_overwrite(sample, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "astronaut_alpha.mp4"
    mine.write_bytes(b"user's own file")
    code, _, err = run_cli(["matte", sample, "-o", out, "-f", "alpha"], capsys)
    assert_one_line_error(code, err, "--overwrite")
    assert mine.read_bytes() == b"user's own file"
    assert sorted(os.listdir(out)) == ["astronaut_alpha.mp4"]


def test_unknown_model_and_device(sample, tmp_path, capsys):
    code, _, err = run_cli(["matte", sample, "-o", tmp_path / "o", "--device", "tpu"], capsys)
    assert_one_line_error(code, err, "device")


# --- interruption, image folders, high bit depth ----------------------------------------------


def test_ctrl_c_leaves_no_output(tmp_path):
    """SIGINT mid-run: exit 130, and neither final nor temporary files remain."""
    import signal
    import time

    clip = make_clip(tmp_path / "long.mp4", 600, 320, 240)
    out = tmp_path / "out"
    exe = Path(sys.executable).with_name("vmatte")
    proc = subprocess.Popen(
        [str(exe), "matte", str(clip), "-o", str(out), "-f", "alpha,prores,alpha-png"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and any(out.iterdir())):
        time.sleep(0.05)  # wait until writing has started
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    # no output, final or temporary; a video this long (> 2 chunks) keeps its resume journal
    assert [p.name for p in out.iterdir() if p.name != ".vmatte-partial-long"] == []


def test_image_folder_input_with_fps(tmp_path, matter):
    import cv2

    folder = tmp_path / "shots"
    folder.mkdir()
    for i, rgb in enumerate(vmatte.demo.sample_frames(6)):
        cv2.imwrite(str(folder / f"frame{i + 1}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))  # frame1..frame6
    result = vmatte.matte(folder, tmp_path / "out", model=matter, formats=["alpha"], fps=12)
    s = stream_summary(result.outputs["alpha"])
    assert result.outputs["alpha"].name == "shots_alpha.mp4"
    assert s["frames"] == 6 and s["fps"] == 12


def test_16bit_input_gives_the_same_matte_as_8bit(tmp_path, matter):
    """>8-bit sources arrive as uint16; the engine scales them to [0, 1] like uint8 ones."""
    rgb = next(vmatte.demo.sample_frames(1))
    matter.reset()
    _, a8 = matter.step(rgb)
    matter.reset()
    _, a16 = matter.step(rgb.astype(np.uint16) * 257)
    assert np.abs(a8 - a16).max() < 1e-4
