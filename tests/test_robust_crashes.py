"""Robustness suite, cases that crashed (tracebacks, segfaults) or said the wrong thing (issue 21).

One table (``CASES``), run like ``test_robust_inputs``: each case makes its input, runs the real
``vmatte matte`` in-process, and must be *handled* or one ``vmatte: error:`` line with exit 2 and
nothing left in the output folder. Image files with names that are not valid UTF-8 used to
segfault inside ``cv2.imread``; they run in a subprocess so a regression cannot take pytest down.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import clip_frame, make_clip
from robust_cases import ERROR, HANDLED, Case, Expect, check_outcome, run_case
from vmatte.cli import main

RVM = ["--model", "rvm", "--device", "cpu", "-f", "alpha"]
BAD = os.fsdecode(b"\xff\xfe")  # not valid UTF-8: Python keeps it as surrogate escapes


def _png(path, img) -> Path:
    Path(path).write_bytes(cv2.imencode(".png", img)[1].tobytes())  # plain I/O: any file name
    return Path(path)


def _frames(folder: Path, n: int = 3, names=lambda i: f"{i:05d}.png") -> Path:
    folder.mkdir()
    for i in range(n):
        _png(folder / names(i), clip_frame(i, 64, 48)[:, :, ::-1])
    return folder


def _mask(path) -> Path:
    m = np.zeros((48, 64), np.uint8)
    m[8:40, 16:48] = 255
    return _png(path, m)


def _folder(tmp: Path) -> Path:
    return _frames(tmp / "frames")


# --- non-UTF-8 paths (segfaulted in cv2.imread) ------------------------------------------


def _bad_folder(tmp: Path) -> list:
    return [_frames(tmp / f"frames{BAD}", names=lambda i: f"{i:05d}{BAD}.png"), *RVM]


def _bad_mask(tmp: Path) -> list:
    return [
        make_clip(tmp / "clip.mp4", 3, 64, 48),
        "--model",
        "rvm-target",
        "--mask",
        _mask(tmp / f"m{BAD}.png"),
        "--device",
        "cpu",
        "-f",
        "alpha",
    ]


def _bad_background(tmp: Path) -> list:
    bg = _png(tmp / f"bg{BAD}.png", np.full((48, 64, 3), 90, np.uint8))
    return [make_clip(tmp / "clip.mp4", 3, 64, 48), "--model", "rvm", "--device", "cpu", "-f", "comp", "--bg", bg]


# --- options that crashed -----------------------------------------------------------------


def _fps(value: str):
    return lambda tmp: [_folder(tmp), *RVM, "--fps", value]


def _tiny_ratio(*extra: str, target: bool = False, masks: bool = False):
    def make(tmp: Path) -> list:
        clip = make_clip(tmp / "clip.mp4", 3, 64, 48)
        more = ["--mask", _mask(tmp / "m.png")] if target else []
        if masks:
            d = tmp / "masks"
            d.mkdir()
            for i in range(3):
                _mask(d / f"{i:05d}.png")
            more = ["--masks", d]
        model = "rvm-target" if target else "rvm"
        return [clip, "--model", model, "--device", "cpu", "-f", "alpha", "--downsample-ratio", "0.001", *extra, *more]

    return make


def _huge_dilate(tmp: Path) -> list:
    d = tmp / "masks"
    d.mkdir()
    for i in range(3):
        _mask(d / f"{i:05d}.png")
    return [make_clip(tmp / "clip.mp4", 3, 64, 48), *RVM, "--masks", d, "--dilate", "100000"]


def _device(name: str):
    return lambda tmp: [make_clip(tmp / "clip.mp4", 3, 64, 48), "--model", "rvm", "--device", name, "-f", "alpha"]


def _mask_at(frame: int):
    def make(tmp: Path) -> list:
        m = _mask(tmp / "m.png")
        return [
            make_clip(tmp / "clip.mp4", 3, 64, 48),
            "--model",
            "rvm-target",
            "--mask",
            m,
            "--mask-at",
            f"{frame}:{m}",
            "--device",
            "cpu",
            "-f",
            "alpha",
        ]

    return make


# --- messages -------------------------------------------------------------------------------


def _garbage_png_frame(tmp: Path) -> list:
    folder = _folder(tmp)
    (folder / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x10\x00garbage" * 40)
    return [folder, *RVM]


def _cover_art(tmp: Path) -> list:
    path = tmp / "song.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        audio = out.add_stream("aac", rate=44100)
        art = out.add_stream("mjpeg")
        art.width = art.height = 64
        art.pix_fmt = "yuvj420p"
        art.disposition = av.stream.Disposition.attached_pic
        pic = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24").reformat(format="yuvj420p")
        pic.pts = 0
        for p in [*art.encode(pic), *art.encode()]:
            out.mux(p)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 44100), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        for p in [*audio.encode(frame), *audio.encode()]:
            out.mux(p)
    return [path, *RVM]


def _long_stem(tmp: Path) -> list:
    return [make_clip(tmp / ("d" * 250 + ".mp4"), 3, 64, 48), *RVM]


def _long_input(tmp: Path) -> list:
    return [tmp / ("e" * 300 + ".mp4"), *RVM]


CASES = [
    Case(
        "image folder named with bytes that are not UTF-8 (segfault in cv2.imread)",
        _bad_folder,
        Expect(HANDLED, frames=3, size=(64, 48)),
    ),
    Case("mask path not valid UTF-8", _bad_mask, Expect(HANDLED, frames=3, size=(64, 48))),
    Case("background image path not valid UTF-8", _bad_background, Expect(HANDLED, frames=3, size=(64, 48))),
    Case("--fps nan on an image folder", _fps("nan"), Expect(ERROR, ("--fps",))),
    Case("--fps inf on an image folder", _fps("inf"), Expect(ERROR, ("--fps",))),
    Case("--fps 1e300 on an image folder", _fps("1e300"), Expect(ERROR, ("--fps",))),
    Case(
        "--downsample-ratio 0.001 (0 px network input), --backend torch",
        _tiny_ratio("--backend", "torch"),
        Expect(ERROR, ("one pixel",)),
    ),
    Case("--downsample-ratio 0.001, --backend onnx", _tiny_ratio("--backend", "onnx"), Expect(ERROR, ("one pixel",))),
    Case("--downsample-ratio 0.001, --backend auto", _tiny_ratio(), Expect(ERROR, ("one pixel",))),
    Case("--downsample-ratio 0.001, rvm-target", _tiny_ratio(target=True), Expect(ERROR, ("one pixel",))),
    Case("--downsample-ratio 0.001, rvm with --masks", _tiny_ratio(masks=True), Expect(ERROR, ("one pixel",))),
    Case("--dilate 100000 with --masks (a 40 GB kernel)", _huge_dilate, Expect(ERROR, ("--dilate", "larger"))),
    Case("--device meta", _device("meta"), Expect(ERROR, ("device",))),
    Case("--device xla", _device("xla"), Expect(ERROR, ("device",))),
    Case("--mask-at 999 past the last frame (every alpha was 0)", _mask_at(999), Expect(ERROR, ("frame 999",))),
    # A video's frame count is known only once it is read (its header's is an estimate), so the run
    # gets that far: rvm-target's (true) warning that the box mask holds no person may come first.
    Case(
        "--mask-at at the frame just past the end",
        _mask_at(3),
        Expect(ERROR, ("frame 3",), warnings_first=True),
    ),
    Case(
        "PNG frame with a valid signature and a garbage body (OpenCV's own log lines)",
        _garbage_png_frame,
        Expect(ERROR, ("00001.png",)),
    ),
    Case("audio file with cover art", _cover_art, Expect(ERROR, ("cover art",))),
    Case("URL as input", lambda tmp: ["http://example.com/clip.mp4", *RVM], Expect(ERROR, ("URL", "download"))),
    Case("output name longer than the file system allows", _long_stem, Expect(ERROR, ("shorter name",))),
    Case("input path with a name over 255 bytes", _long_input, Expect(ERROR, ("too long", "shorter"))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crash_case(case: Case, tmp_path, capsys):
    if "UTF-8" in case.name:
        # in a fresh process: a segfault there fails this test instead of killing the suite
        code = subprocess.run(
            [
                sys.executable,
                "-c",
                f"""
import sys; sys.path[:0] = {[str(Path(__file__).parent)]!r}
import test_robust_crashes as t, robust_cases as r
from pathlib import Path
case = next(c for c in t.CASES if c.name == {case.name!r})
class Cap:
    def readouterr(self):
        return self.out, self.err
import io, contextlib
cap = Cap(); o, e = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
    code = r.main(["matte", *map(str, case.make(Path({str(tmp_path)!r}))), "-o", {str(tmp_path / "out")!r}, "-q"])
r.check_outcome(case, code, o.getvalue(), e.getvalue(), Path({str(tmp_path / "out")!r}))
""",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert code.returncode == 0, code.stderr[-3000:]
        return
    code, stdout, err, out = run_case(case, tmp_path, capsys)
    check_outcome(case, code, stdout, err, out)


def test_argparse_errors_are_one_line(capsys):
    for argv in (
        ["matte"],
        ["matte", "x", "-o", "y", "--fps", "abc"],
        ["nosuchcommand"],
        ["matte", "x", "-o", "y", "--model", "nope"],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("vmatte: error:"), err


@pytest.mark.parametrize(
    "args,words",
    [(["--frames", "0"], "--frames"), (["--output", "FILE"], "is a file")],
    ids=["--frames 0", "--output an existing file"],
)
def test_demo_bad_options_are_one_line(args, words, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    code = main(["demo", *[str(blocker) if a == "FILE" else a for a in args]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert blocker.read_text() == "mine"


def test_opencv_log_lines_are_silenced(tmp_path):
    """OpenCV writes its own ``[ WARN:...]`` lines to the C stderr (not seen by capsys): in a
    real process the garbage PNG frame gives exactly the one vmatte line."""
    argv = [str(a) for a in _garbage_png_frame(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "vmatte.cli", "matte", *argv, "-o", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "00001.png" in done.stderr, done.stderr
