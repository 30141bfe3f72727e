"""Robustness suite, output ownership and stopping signals (issue 21, classes A and B).

* Two runs on the same outputs: one owns the set (a lock), the other is refused with one line;
  repeated 20 times with two different inputs of the same name, the outputs are always exactly one
  run's, complete.
* Only what vmatte wrote is removed: a user's folder named like an output file, extra files in a
  PNG output folder, a user's ``.NAME.partial`` / ``.NAME.old`` all stay.
* SIGTERM / SIGHUP stop a run like Ctrl-C: one line, exit 143 / 129, no partial file; a journaled
  run keeps its journal for ``--resume``; one that stops on a bad input frame removes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import clip_frame, make_clip
from robust_cases import ERROR, Case, Expect, check_outcome, run_case
from vmatte.cli import main
from vmatte.io.ownership import OutputLock
from vmatte.io.probe import read_rgba

RVM = ["--model", "rvm", "--device", "cpu"]


# --- two runs, one output set --------------------------------------------------------------

_WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from vmatte.cli import main
    clip, out, sync, me, rounds = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    for k in range(rounds):
        while not (sync / f"go{k}").exists():
            time.sleep(0.002)
        r, w = os.pipe()
        saved = os.dup(2)
        os.dup2(w, 2)
        try:
            code = main(["matte", clip, "-o", out, "-f", "alpha,alpha-png", "--model", "rvm", "--device", "cpu",
                         "--overwrite", "-q"])
        finally:
            os.dup2(saved, 2)
            os.close(w)
        err = os.read(r, 65536).decode()
        os.close(r)
        (sync / f"tmp{k}_{me}").write_text(f"{code}\\n{err}")
        os.replace(sync / f"tmp{k}_{me}", sync / f"done{k}_{me}")
""")


def _decoded(out: Path) -> tuple[list[np.ndarray], list[bytes]]:
    return list(read_rgba(out / "clip_alpha.mp4")), [p.read_bytes() for p in sorted((out / "clip_alpha").iterdir())]


def test_two_runs_on_the_same_outputs_never_mix(tmp_path):
    """Two inputs named clip.mp4 (6 and 9 frames) into one -o with --overwrite, started together
    20 times: each run either completes alone or is refused in one line; the outputs are always
    exactly one input's, complete (the mp4 and the PNG folder from the same run)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_clip(tmp_path / "a" / "clip.mp4", 6, 64, 48)
    b_frames = [255 - clip_frame(i, 64, 48) for i in range(9)]
    from conftest import write_h264

    b = write_h264(tmp_path / "b" / "clip.mp4", b_frames)
    refs = {}
    for name, clip in (("a", a), ("b", b)):
        ref = tmp_path / f"ref_{name}"
        assert main(["matte", str(clip), "-o", str(ref), "-f", "alpha,alpha-png", *RVM, "-q"]) == 0
        refs[name] = _decoded(ref)
    out, sync = tmp_path / "out", tmp_path / "sync"
    sync.mkdir()
    rounds = 20
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), *sys.path])}
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(clip), str(out), str(sync), me, str(rounds)], env=env)
        for me, clip in (("a", a), ("b", b))
    ]
    refused = 0
    try:
        for k in range(rounds):
            (sync / f"go{k}").write_text("")
            deadline = time.time() + 120
            while not all((sync / f"done{k}_{me}").exists() for me in "ab"):
                assert time.time() < deadline, "the runs hang"
                assert all(w.poll() is None or (sync / f"done{k}_{me}").exists() for w, me in zip(workers, "ab")), (
                    "a worker died"
                )
                time.sleep(0.01)
            results = {me: (sync / f"done{k}_{me}").read_text().split("\n", 1) for me in "ab"}
            assert any(code == "0" for code, _ in results.values()), results
            for code, err in results.values():
                if code != "0":
                    refused += 1
                    lines = [line for line in err.strip().splitlines() if line]
                    assert code == "2" and len(lines) == 1 and "another vmatte run" in lines[0], err
            mp4, pngs = _decoded(out)
            assert any(
                len(mp4) == len(refs[n][0])
                and all(np.array_equal(x, y) for x, y in zip(mp4, refs[n][0]))
                and pngs == refs[n][1]
                for n in "ab"
            ), f"round {k}: outputs mixed or short"
            assert sorted(p.name for p in out.iterdir()) == ["clip_alpha", "clip_alpha.mp4"]  # no temporaries
    finally:
        for w in workers:
            w.kill()
            w.wait()
    print(f"{refused} of {2 * rounds} runs refused")


def test_second_run_refused_while_the_first_owns_the_outputs(tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", 3, 64, 48)
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out, "clip"):  # another run, alive, owns clip's outputs
        code = main(["matte", str(clip), "-o", str(out), *RVM, "-f", "alpha", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "another vmatte run" in err and f"pid {os.getpid()}" in err
    assert os.listdir(out) == []


def test_lock_of_a_dead_run_is_taken_over(tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", 3, 64, 48)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / ".clip.vmatte-lock").write_text(
        f'{{"pid": {dead.stdout.strip()}, "host": "x", "start": 0, "run": "0123456789ab"}}'
    )
    (out / ".clip_alpha.mp4.vmatte-0123456789ab.partial").write_bytes(b"half of the dead run's file")
    assert main(["matte", str(clip), "-o", str(out), *RVM, "-f", "alpha", "-q"]) == 0
    assert os.listdir(out) == ["clip_alpha.mp4"]


# --- only what vmatte wrote is removed ------------------------------------------------------


def _user_dir_named_like_output(tmp: Path) -> list:
    d = tmp / "out" / "clip_alpha.mp4"
    d.mkdir(parents=True)
    (d / "notes.txt").write_text("mine")
    return [make_clip(tmp / "clip.mp4", 3, 64, 48), *RVM, "-f", "alpha", "--overwrite"]


def _extra_files_in_png_folder(tmp: Path) -> list:
    d = tmp / "out" / "clip_alpha"
    d.mkdir(parents=True)
    (d / "00000.png").write_bytes(b"an old frame")
    (d / "reference.psd").write_text("mine")
    return [make_clip(tmp / "clip.mp4", 3, 64, 48), *RVM, "-f", "alpha-png", "--overwrite"]


def _empty_output_name(tmp: Path) -> list:
    return [make_clip(tmp / "clip.mp4", 3, 64, 48), *RVM, "-f", "alpha"]


OWNERSHIP_CASES = [
    Case(
        "--overwrite with a user's folder named like an output file",
        _user_dir_named_like_output,
        Expect(ERROR, ("clip_alpha.mp4", "folder")),
        "the folder and its contents stay",
    ),
    Case(
        "--overwrite with extra files inside a PNG output folder",
        _extra_files_in_png_folder,
        Expect(ERROR, ("reference.psd",)),
        "the folder and its files stay",
    ),
]


@pytest.mark.parametrize("case", OWNERSHIP_CASES, ids=lambda c: c.name)
def test_overwrite_removes_only_what_vmatte_wrote(case: Case, tmp_path, capsys):
    argv = ["matte", *map(str, case.make(tmp_path)), "-o", str(tmp_path / "out"), "-q"]
    before = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "out").rglob("*"))
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("vmatte: error:"), err
    for w in case.expect.words:
        assert w in err
    assert sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "out").rglob("*")) == before  # all kept


def test_users_partial_and_old_names_stay(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", 3, 64, 48)
    out = tmp_path / "out"
    out.mkdir()
    mine = {
        out / ".clip_alpha.mp4.partial": b"mine 1",
        out / ".clip_alpha.old": b"mine 2",
        out / ".clip_alpha.mp4.old": b"mine 3",
    }
    for p, data in mine.items():
        p.write_bytes(data)
    (out / "clip_alpha").mkdir()  # an earlier vmatte PNG output: replaced with --overwrite
    (out / "clip_alpha" / "00000.png").write_bytes(b"old")
    assert main(["matte", str(clip), "-o", str(out), *RVM, "-f", "alpha,alpha-png", "-q"]) == 2  # exists
    assert main(["matte", str(clip), "-o", str(out), *RVM, "-f", "alpha,alpha-png", "-q", "--overwrite"]) == 0
    assert all(p.read_bytes() == data for p, data in mine.items())
    assert sorted(os.listdir(out / "clip_alpha")) == ["00000.png", "00001.png", "00002.png"]
    assert sorted(os.listdir(out)) == sorted(["clip_alpha", "clip_alpha.mp4", *(p.name for p in mine)])


EMPTY_OUTPUT = Case("-o '' (empty output folder name)", _empty_output_name, Expect(ERROR, ("empty",)))


def test_empty_output_name_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["matte", *map(str, EMPTY_OUTPUT.make(tmp_path)), "-o", "", "-q"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "empty" in err
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]  # nothing written into the current folder


# --- SIGTERM / SIGHUP -----------------------------------------------------------------------


def _cmd(clip: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vmatte.cli",
        "matte",
        str(clip),
        "-o",
        str(out),
        "-f",
        "alpha,alpha-png",
        "-q",
        *RVM,
        *extra,
    ]


def _stop_when(proc: subprocess.Popen, ready, sig: int) -> tuple[int, str]:
    deadline = time.time() + 120
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before the signal: make the clip longer"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_remove_partial_outputs(sig, code, tmp_path):
    clip = make_clip(tmp_path / "long.mp4", 400, 64, 48)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(clip, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rc, err = _stop_when(proc, lambda: out.is_dir() and any(p.name.endswith(".partial") for p in out.iterdir()), sig)
    lines = err.strip().splitlines()
    assert rc == code and len(lines) == 1 and "stopped by" in lines[0], err
    assert os.listdir(out) == []  # no partial file, no lock


def test_sigterm_keeps_a_journal_for_resume(tmp_path):
    clip = make_clip(tmp_path / "long.mp4", 120, 64, 48)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _cmd(clip, out, "--chunk-frames", "8"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    rc, err = _stop_when(proc, lambda: (out / ".vmatte-partial-long" / "state_1.json").exists(), signal.SIGTERM)
    lines = err.strip().splitlines()
    assert rc == 143 and len(lines) == 1 and "--resume" in lines[0], err
    assert sorted(os.listdir(out)) == [".vmatte-partial-long"]
    done = subprocess.run(
        _cmd(clip, out, "--chunk-frames", "8", "--resume"), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert len(os.listdir(out / "long_alpha")) == 120


def _folder_with_bad_frame(tmp: Path) -> list:
    d = tmp / "frames"
    d.mkdir()
    for i in range(12):
        cv2.imwrite(str(d / f"{i:05d}.png"), clip_frame(i, 64, 48)[:, :, ::-1])
    (d / "00009.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    return [d, *RVM, "-f", "alpha", "--chunk-frames", "4"]


BAD_FRAME_JOURNALED = Case(
    "journaled run stops on a bad input frame",
    _folder_with_bad_frame,
    Expect(ERROR, ("00009.png",)),
    "the journal is removed",
)


def test_journaled_run_that_stops_on_a_bad_frame_removes_its_journal(tmp_path, capsys):
    code, stdout, err, out = run_case(BAD_FRAME_JOURNALED, tmp_path, capsys)
    check_outcome(BAD_FRAME_JOURNALED, code, stdout, err, out)  # one line, and nothing left: no journal
