"""The command line as a new user meets it (issue 19): ``-o FILE``, a stray positional output, a mask
of another video, warnings on their own line, an image folder's assumed frame rate, progress in
logs, the runtime plain ``rvm`` ran on, ``--version`` and a start that does not import PyTorch.
Real clips, the shipped RVM weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import vmatte.demo
from vmatte.cli import main
from vmatte.io.masks import same_aspect
from vmatte.io.probe import stream_summary
from vmatte.progress import LineProgress

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return vmatte.demo.make_sample(tmp_path_factory.mktemp("clip") / "walk.mp4", frames=6)


def run(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code: int, err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vmatte: error:"), err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    "name, formats, codec, alpha",
    [
        ("out.mov", None, "prores", True),
        ("out.webm", None, "vp9", True),
        ("out.mp4", None, "h264", False),
        ("comp.mp4", "comp", "h264", False),
    ],
)
def test_output_file_extension_picks_the_format(clip, tmp_path, capsys, name, formats, codec, alpha):
    target = tmp_path / "shots" / name
    code, out, err = run(
        ["matte", clip, "-o", target, "--device", "cpu", "-q", *(["-f", formats] if formats else [])], capsys
    )
    assert code == 0, err
    assert out.strip().split("\t")[1] == str(target)
    s = stream_summary(target)
    assert s["codec"].startswith(codec) and s["frames"] == 6, s
    if alpha:
        assert s["has_alpha"], s
    assert sorted(p.name for p in target.parent.iterdir()) == [name]  # nothing else, hidden or not
    # the same name again: refused, without --overwrite, and the file is kept
    before = target.stat().st_mtime_ns
    one_error(
        *run(["matte", clip, "-o", target, "--device", "cpu", "-q"], capsys)[::2], "already exists", "--overwrite"
    )
    assert target.stat().st_mtime_ns == before


def test_output_folder_still_a_folder(clip, tmp_path, capsys):
    code, _, err = run(["matte", clip, "-o", tmp_path / "out.v2", "-f", "alpha", "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    assert (tmp_path / "out.v2" / "walk_alpha.mp4").is_file()
    folder = tmp_path / "named.mov"  # an existing folder with a video-like name stays a folder
    folder.mkdir()
    code, _, err = run(["matte", clip, "-o", folder, "-f", "alpha", "--device", "cpu", "-q"], capsys)
    assert code == 0 and (folder / "walk_alpha.mp4").is_file(), err


@pytest.mark.parametrize(
    "args, words",
    [
        (["{clip}", "out.mp4"], ("use -o", "-o out.mp4")),
        (["{clip}"], ("no output given", "-o OUTDIR")),
        (["{clip}", "-o", "x.mp4", "-f", "alpha,comp"], ("names one file", "2 outputs")),
        (["{clip}", "-o", "x.mov", "-f", "alpha"], ("-f alpha writes a .mp4 file", "x.mp4")),
        (["{clip}", "-o", "x.mkv"], (".mov", ".webm")),
    ],
)
def test_output_mistakes_are_one_line(clip, tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    one_error(*run(["matte", *(a.format(clip=clip) for a in args)], capsys)[::2], *words)
    assert list(tmp_path.iterdir()) == []


def test_same_aspect_allows_rounding_and_codec_padding_only():
    assert same_aspect((1080, 1920), (720, 1280))  # a full-size mask on a proxy
    assert same_aspect((1080, 1920), (1088, 1920)) and same_aspect((135, 240), (540, 960))
    assert same_aspect((101, 180), (540, 960))  # one pixel of rounding
    assert not same_aspect((10, 10), (540, 960))
    assert not same_aspect((1080, 1920), (1080, 1440))


def test_mask_of_another_shape_is_an_error_and_writes_nothing(clip, tmp_path, capsys):
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), np.full((10, 10), 255, np.uint8))
    out = tmp_path / "out"
    err = one_error(
        *run(["matte", clip, "-o", out, "--mask", mask, "--model", "rvm-target", "--device", "cpu"], capsys)[::2],
        "10x10",
        "another shape",
    )
    assert "Traceback" not in err
    assert not out.exists() or list(out.iterdir()) == []


def test_resize_warning_is_its_own_line_before_the_progress(clip, tmp_path, capsys):
    info = stream_summary(clip)
    w, h = info["width"], info["height"]
    m = np.zeros((h * 2, w * 2), np.uint8)  # the same picture at twice the size: resized, with a warning
    m[h // 2 : h * 3 // 2, w // 2 : w * 3 // 2] = 255
    cv2.imwrite(str(tmp_path / "big.png"), m)
    code, _, err = run(
        [
            "matte",
            clip,
            "-o",
            tmp_path / "o",
            "--mask",
            tmp_path / "big.png",
            "--model",
            "rvm-target",
            "--device",
            "cpu",
            "-f",
            "alpha",
        ],
        capsys,
    )
    assert code == 0, err
    lines = err.splitlines()
    warn = [i for i, line in enumerate(lines) if "vmatte: warning:" in line]
    bar = [i for i, line in enumerate(lines) if "frames (" in line]
    assert warn and bar and max(warn) < min(bar), err
    assert all(line.startswith("vmatte: warning:") for line in (lines[i] for i in warn)), err
    assert "\r" not in err  # stderr is not a terminal here: lines, not redraws


def test_image_folder_says_its_assumed_rate(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, rgb in enumerate(vmatte.demo.sample_frames(4)):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    code, _, err = run(["matte", folder, "-o", tmp_path / "o.mp4", "--device", "cpu"], capsys)
    assert code == 0, err
    assert "frames/: 4 images, 25 fps assumed; use --fps" in err.splitlines()[0], err
    code, _, err = run(["matte", folder, "-o", tmp_path / "p.mp4", "--device", "cpu", "--fps", "12"], capsys)
    assert code == 0 and "assumed" not in err, err


def test_plain_rvm_says_which_runtime_ran(clip, tmp_path, capsys):
    # a 128-px network input is under RVMAuto.ONNX_MAX_SIDE: onnxruntime; the full frame: PyTorch
    code, _, err = run(["matte", clip, "-o", tmp_path / "a.mp4", "--device", "cpu", "--max-size", "128"], capsys)
    assert code == 0, err
    assert "by size" in err  # announced before the run: either
    ran = [line for line in err.splitlines() if line.startswith("ran: ")]
    assert len(ran) == 1 and ran[0].startswith("ran: RVM MobileNetV3 on onnxruntime/CPU"), err
    code, _, err = run(["matte", clip, "-o", tmp_path / "b.mp4", "--device", "cpu", "--downsample-ratio", "1"], capsys)
    assert code == 0 and "ran: RVM MobileNetV3 on PyTorch/CPU" in err, err


def test_line_progress_prints_lines_every_period():
    import io

    stream = io.StringIO()
    bar = LineProgress(10, "clip.mp4", stream, every=0.0)
    for _ in range(10):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 11
    assert lines[4].startswith("clip.mp4: 5/10 frames (50%)") and "s left" in lines[4]
    quiet = io.StringIO()
    bar = LineProgress(10, "clip.mp4", quiet, every=3600.0)
    for _ in range(10):
        bar.update(1)
    bar.close()
    assert quiet.getvalue().count("\n") == 1 and "10/10 frames (100%)" in quiet.getvalue()


def test_version():
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["formats"], ["matte", "x.mp4", "-m", "nope"], ["matte", "x.mp4", "y.mp4"]]
)
def test_quick_commands_do_not_import_torch(argv):
    """The fast start, as a behaviour: `vmatte --help` and friends never load PyTorch (its import is
    seconds; benchmarks/startup.py prints the times)."""
    code = (
        "import sys\nfrom vmatte.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'gradio') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert "HEAVY []" in proc.stderr, proc.stderr[-2000:]
