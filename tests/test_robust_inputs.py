"""Robustness suite, inputs and outputs: bad or odd videos and folders through the real CLI.

One table (``CASES``): each case makes its own input, runs ``vmatte matte`` in-process and
checks its expected outcome (see ``robust_cases``). The disk-full case needs a file-size limit,
so it runs in a subprocess (see ``test_disk_full``). docs/robustness.md publishes the table.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import clip_frame, make_audio_only, make_clip
from robust_cases import ERROR, HANDLED, Case, Expect, check_outcome, run_case

RVM = ["--model", "rvm", "--device", "cpu", "-f", "alpha"]


def _clip(name: str, n: int = 4, w: int = 64, h: int = 48, **kw):
    def make(tmp: Path) -> list:
        return [make_clip(tmp / name, n, w, h, **kw), *RVM]

    return make


def _truncated(fraction: float):
    def make(tmp: Path) -> list:
        good = make_clip(tmp / "good.mp4", 20, 96, 64)
        cut = tmp / "cut.mp4"
        cut.write_bytes(good.read_bytes()[: int(good.stat().st_size * fraction)])
        good.unlink()
        return [cut, *RVM]

    return make


def _zero_byte(tmp: Path) -> list:
    (tmp / "empty.mp4").write_bytes(b"")
    return [tmp / "empty.mp4", *RVM]


def _text_as_mp4(tmp: Path) -> list:
    (tmp / "notes.mp4").write_text("not a video\n" * 50)
    return [tmp / "notes.mp4", *RVM]


def _audio_only(tmp: Path) -> list:
    return [make_audio_only(tmp / "song.m4a", 0.5), *RVM]


def _no_video_stream(tmp: Path) -> list:
    # A video container (.mkv) that holds only an audio track.
    return [make_audio_only(tmp / "clip.mkv", 0.5), *RVM]


def _missing(tmp: Path) -> list:
    return [tmp / "nowhere.mp4", *RVM]


def _vfr(tmp: Path) -> list:
    """Variable frame rate: frames 40 ms apart, then 80 ms, then 20 ms (ms time base)."""
    path = tmp / "vfr.mkv"
    pts = [0, 40, 80, 160, 240, 260, 280, 300]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(pts):
            f = av.VideoFrame.from_ndarray(clip_frame(i, 64, 48), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            out.mux(s.encode(f))
        out.mux(s.encode())
    return [path, *RVM]


# Odd sizes: the PNG and ProRes outputs keep the exact size; 4:2:0 H.264 cannot code an odd size
# (nor crop to one), so the mp4s get one replicated row/column (documented in docs/robustness.md).
ODD_FORMATS = ["-f", "alpha,alpha-png,prores"]


def _odd_size(tmp: Path) -> list:
    # yuv444p lets H.264 carry an odd width and height.
    return [make_clip(tmp / "odd.mp4", 3, 65, 49, pix_fmt="yuv444p"), *RVM, *ODD_FORMATS]


def _image_folder_odd(tmp: Path) -> list:
    import cv2

    d = tmp / "frames"
    d.mkdir()
    for i in range(3):
        cv2.imwrite(str(d / f"f{i}.png"), clip_frame(i, 33, 21)[:, :, ::-1])
    return [d, "--fps", "12", *RVM, *ODD_FORMATS]


def _space_unicode(tmp: Path) -> list:
    d = tmp / "Clips été 東京 ü"
    d.mkdir()
    return [make_clip(d / "my clip – ñ.mp4", 3, 64, 48), *RVM]


def _unwritable_out(tmp: Path) -> list:
    # "-o OUT" is added after this: OUT lies under a file, so it can never be created (even by root).
    return [make_clip(tmp / "ok.mp4", 3, 64, 48), *RVM]


def _8k(max_size: bool):
    def make(tmp: Path) -> list:
        img = np.zeros((4320, 7680, 3), np.uint8)
        img[1000:3300, 3000:4700] = (200, 160, 140)  # a flat block: cheap to encode
        path = tmp / "eightk.mp4"
        with av.open(str(path), "w") as out:
            s = out.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = 7680, 4320, "yuv420p"
            s.options = {"preset": "ultrafast", "crf": "30"}
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            out.mux(s.encode(f))
            out.mux(s.encode())
        return [path, *RVM, *(["--max-size", "256"] if max_size else [])]

    return make


CASES = [
    Case("zero-byte file", _zero_byte, Expect(ERROR, ("empty.mp4",))),
    Case("text file named .mp4", _text_as_mp4, Expect(ERROR, ("notes.mp4",))),
    Case("missing file", _missing, Expect(ERROR, ("not found",))),
    Case("truncated mp4 at 5%", _truncated(0.05), Expect(ERROR, ("cut.mp4",))),
    Case("truncated mp4 at 40%", _truncated(0.4), Expect(ERROR, ("cut.mp4",))),
    Case("truncated mp4 at 80%", _truncated(0.8), Expect(ERROR, ("cut.mp4",))),
    Case("truncated mp4 at 90% (in the sample index)", _truncated(0.9), Expect(ERROR, ("cut.mp4",))),
    # The last 1% is the trailing metadata atom (udta, the encoder tag): every frame is intact.
    Case(
        "truncated mp4 at 99% (only trailing metadata lost)",
        _truncated(0.99),
        Expect(HANDLED, frames=20, size=(96, 64)),
    ),
    Case("container with no video stream (mkv, audio only)", _no_video_stream, Expect(ERROR, ("no video stream",))),
    Case("audio-only file (m4a)", _audio_only, Expect(ERROR, ("no video stream",))),
    Case("variable frame rate (mkv)", _vfr, Expect(HANDLED, frames=8, size=(64, 48))),
    Case("rotation metadata 90", _clip("rot.mp4", rotation=90), Expect(HANDLED, frames=4, size=(48, 64))),
    Case("rotation metadata 270 (mov)", _clip("rot.mov", rotation=270), Expect(HANDLED, frames=4, size=(48, 64))),
    Case(
        "10-bit HEVC (yuv420p10le)",
        _clip("ten.mkv", w=64, h=48, codec="libx265", pix_fmt="yuv420p10le"),
        Expect(HANDLED, frames=4, size=(64, 48)),
    ),
    Case(
        "10-bit ProRes 422 (yuv422p10le)",
        _clip("ten.mov", codec="prores_ks", pix_fmt="yuv422p10le"),
        Expect(HANDLED, frames=4, size=(64, 48)),
    ),
    Case("yuv444p H.264", _clip("full.mp4", pix_fmt="yuv444p"), Expect(HANDLED, frames=4, size=(64, 48))),
    Case(
        "odd width and height (65x49)",
        _odd_size,
        Expect(HANDLED, frames=3, size=(65, 49), outputs=3, sizes={"alpha": (66, 50)}),
    ),
    Case(
        "image folder, odd size 33x21",
        _image_folder_odd,
        Expect(HANDLED, frames=3, size=(33, 21), outputs=3, sizes={"alpha": (34, 22)}),
    ),
    Case("1-frame video", _clip("one.mp4", n=1), Expect(HANDLED, frames=1, size=(64, 48))),
    Case("8K frame with --max-size 256", _8k(True), Expect(HANDLED, frames=1, size=(7680, 4320))),
    Case("8K frame, automatic size", _8k(False), Expect(HANDLED, frames=1, size=(7680, 4320))),
    Case("non-ASCII and spaces in the path", _space_unicode, Expect(HANDLED, frames=3, size=(64, 48))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_input_case(case: Case, tmp_path, capsys):
    code, stdout, err, out = run_case(case, tmp_path, capsys)
    check_outcome(case, code, stdout, err, out)
    if case.name.startswith("non-ASCII"):
        assert (out / "my clip – ñ_alpha.mp4").is_file()


UNWRITABLE = Case("output folder not writable (under a file)", _unwritable_out, Expect(ERROR, ("output",)))


def test_output_folder_not_writable(tmp_path, capsys):
    from vmatte.cli import main

    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    argv = ["matte", *map(str, UNWRITABLE.make(tmp_path)), "-o", str(blocker / "out"), "-q"]
    code = main(argv)
    _, err = capsys.readouterr()
    check_outcome(UNWRITABLE, code, "", err, tmp_path / "no-such-out")
    assert blocker.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; covered by the case above")
def test_output_folder_read_only(tmp_path, capsys):  # pragma: no cover - CI runs as root
    from vmatte.cli import main

    out = tmp_path / "ro"
    out.mkdir(mode=0o500)
    code = main(["matte", str(make_clip(tmp_path / "ok.mp4", 3, 64, 48)), *RVM, "-o", str(out), "-q"])
    _, err = capsys.readouterr()
    assert code == 2 and "not writable" in err and "Traceback" not in err


DISK_FULL = Case(
    "disk full (file-size limit: EFBIG; tiny tmpfs: ENOSPC)",
    _clip("long.mp4", n=20, w=320, h=240),
    Expect(ERROR, ("disk full",)),
)


def _limit_file_size(limit: int):
    def apply() -> None:
        # Without this the kernel kills the writer with SIGXFSZ; ignored, write() fails with EFBIG,
        # which is what a full disk (ENOSPC) looks like to the program. Works without privileges.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("formats,limit", [("alpha,prores", 60_000), ("alpha-png", 200)])
def test_disk_full(tmp_path, formats, limit):
    from vmatte.weights import resolve_rvm

    resolve_rvm()  # the weights cache is built here, not under the file-size limit
    args = [str(a) for a in DISK_FULL.make(tmp_path)]
    args[args.index("alpha")] = formats
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "vmatte.cli", "matte", *args, "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size(limit),
    )
    check_outcome(DISK_FULL, proc.returncode, proc.stdout, proc.stderr, out)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 256 KiB tmpfs: a really full disk (ENOSPC). Needs mount rights, which CI may not have."""
    where = tmp_path / "tiny"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (no privileges); the file-size-limit cases cover disk full")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_disk_full_tmpfs(tiny_tmpfs, tmp_path, capsys):
    from vmatte.cli import main

    args = [str(a) for a in DISK_FULL.make(tmp_path)]
    args[args.index("alpha")] = "alpha,prores"
    out = tiny_tmpfs / "out"
    code = main(["matte", *args, "-o", str(out), "-q"])
    _, err = capsys.readouterr()
    check_outcome(DISK_FULL, code, "", err, out)
