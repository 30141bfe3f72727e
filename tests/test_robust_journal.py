"""Robustness suite, journaled runs (issue 21, class G): a SIGKILL at any instant, the final join
included, then ``--resume`` gives frame-identical outputs and the real frame count; an input
re-rendered in place is refused; a damaged journal is one line, never a run with gaps.

The kills are real SIGKILLs of a real ``vmatte matte`` process. To land one at an exact point of
the join (a PNG being linked, a video being remuxed, a rename), the process runs through a small
wrapper that arms a SIGKILL on the N-th call of that step; nothing else is changed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import clip_frame, make_clip
from vmatte.io.probe import read_rgba

CHUNK = 8
FRAMES = 36  # 4 full chunks + one of 4: the last chunk is shorter, as in real videos
FORMATS = "alpha,alpha-png,prores"
FINAL = ["c_alpha", "c_alpha.mp4", "c_prores4444.mov"]

_WRAPPER = textwrap.dedent("""
    import os, signal, sys
    import vmatte.engine.chunked as ch
    import vmatte.engine.resume as rs
    point, n = sys.argv[1], int(sys.argv[2])
    calls = [0]
    armed = [point == "commit"]

    def killer(orig):
        def step(*a, **k):
            if armed[0]:
                calls[0] += 1
                if calls[0] == n and point != "commit":
                    os.kill(os.getpid(), signal.SIGKILL)
            out = orig(*a, **k)
            if point == "commit" and calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)  # after the n-th chunk is counted
            return out
        return step

    if point == "commit":
        rs.Journal.commit_chunk = killer(rs.Journal.commit_chunk)
    elif point in ("link", "remux"):
        setattr(ch, "_" + ("link_or_copy" if point == "link" else "remux"),
                killer(getattr(ch, "_" + ("link_or_copy" if point == "link" else "remux"))))
    elif point == "replace":
        ch.os.replace = killer(ch.os.replace)
    elif point == "rmtree":
        ch.shutil.rmtree = killer(ch.shutil.rmtree)
    join = ch.join_chunks

    def armed_join(*a, **k):
        armed[0] = True
        return join(*a, **k)

    ch.join_chunks = armed_join
    from vmatte.cli import main
    sys.exit(main(sys.argv[3:]))
""")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), *sys.path])}


def _args(src: Path, out: Path, *extra: str) -> list[str]:
    return [
        "matte",
        str(src),
        "-o",
        str(out),
        "-f",
        FORMATS,
        "--chunk-frames",
        str(CHUNK),
        "-q",
        "--model",
        "rvm",
        "--device",
        "cpu",
        *extra,
    ]


def _run(src: Path, out: Path, *extra: str, kill: tuple[str, int] | None = None) -> subprocess.CompletedProcess:
    head = [sys.executable, "-c", _WRAPPER, *map(str, kill)] if kill else [sys.executable, "-m", "vmatte.cli"]
    return subprocess.run(head + _args(src, out, *extra), capture_output=True, text=True, timeout=300, env=_env())


def _frames(out: Path) -> dict[str, list[np.ndarray]]:
    return {name: list(read_rgba(out / name)) for name in FINAL}


def _assert_identical(a: dict, b: dict) -> None:
    for name in FINAL:
        assert len(a[name]) == len(b[name]) == FRAMES, (name, len(a[name]))
        for i, (x, y) in enumerate(zip(a[name], b[name])):
            assert np.array_equal(x, y), f"{name} frame {i} differs"


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("journal")
    clip = make_clip(d / "c.mp4", FRAMES, 96, 64, audio=True)
    ref = d / "ref"
    done = _run(clip, ref)
    assert done.returncode == 0, done.stderr
    return {"clip": clip, "ref": _frames(ref), "dir": d}


# --- SIGKILL anywhere, the join included ---------------------------------------------------

KILL_POINTS = [("commit", 2), ("link", None), ("remux", None), ("replace", None), ("rmtree", 1)]


@pytest.mark.parametrize("point,n", KILL_POINTS, ids=[p for p, _ in KILL_POINTS])
def test_sigkill_anywhere_then_resume_is_frame_identical(point, n, media, tmp_path):
    rng = random.Random(f"{point}-21")
    n = n or {"link": rng.randint(1, FRAMES), "remux": rng.randint(1, 2), "replace": rng.randint(1, 4)}[point]
    out = tmp_path / "out"
    killed = _run(media["clip"], out, kill=(point, n))
    assert killed.returncode == -9, (point, n, killed.stderr)
    if point == "rmtree":  # killed while deleting the journal: the outputs were all in place already
        _assert_identical(_frames(out), media["ref"])
        again = _run(media["clip"], out, "--overwrite")
        assert again.returncode == 0, again.stderr
    else:
        assert point != "commit" or not any((out / name).exists() for name in FINAL)  # nothing looks complete
        resumed = _run(media["clip"], out, "--resume")
        assert resumed.returncode == 0, (point, n, resumed.stderr)
        assert resumed.stderr.startswith(f"{FRAMES} frames"), resumed.stderr  # the real count, not chunks x 8
    assert sorted(p.name for p in out.iterdir()) == sorted(FINAL), (point, n)  # no journal, lock or temporary
    _assert_identical(_frames(out), media["ref"])


# --- the input changed in place ------------------------------------------------------------


def test_resume_refuses_an_image_folder_rerendered_in_place(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(FRAMES):
        cv2.imwrite(str(folder / f"{i:05d}.png"), clip_frame(i, 64, 48)[:, :, ::-1])
    out = tmp_path / "out"
    assert _run(folder, out, kill=("commit", 2)).returncode == -9
    st = folder.stat()
    for i in range(20, FRAMES):  # re-rendered: other pictures under the same names
        cv2.imwrite(str(folder / f"{i:05d}.png"), clip_frame(i + 7, 64, 48)[:, :, ::-1])
    os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns))  # the folder itself looks untouched
    done = _run(folder, out, "--resume")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "changed" in done.stderr, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [".vmatte-partial-frames"]  # journal kept, untouched


# --- damaged journals -----------------------------------------------------------------------


def _cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _edit_manifest(**changes):
    def damage(j: Path) -> None:
        m = json.loads((j / "manifest.json").read_text())
        m.update(changes)
        (j / "manifest.json").write_text(json.dumps(m))

    return damage


DAMAGES = {
    "truncated state file": lambda j: _cut(next(j.glob("state_*.safetensors"))),
    "missing state": lambda j: [p.unlink() for p in j.glob("state_*")],
    "manifest counts more chunks than exist": _edit_manifest(completed=9),
    "manifest with a garbage count": _edit_manifest(completed="3"),
    "manifest not an object": lambda j: (j / "manifest.json").write_text("[1, 2]"),
    "truncated chunk video": lambda j: _cut(j / "chunk_00001" / "c_alpha.mp4"),
    "chunk with missing PNGs": lambda j: (j / "chunk_00001" / "c_alpha" / "00010.png").unlink(),
    "truncated chunk PNG": lambda j: _cut(j / "chunk_00000" / "c_alpha" / "00003.png"),
}


@pytest.fixture(scope="module")
def killed_journal(media) -> Path:
    out = media["dir"] / "killed"
    assert _run(media["clip"], out, kill=("commit", 3)).returncode == -9
    return out


@pytest.mark.parametrize("damage", list(DAMAGES), ids=list(DAMAGES))
def test_damaged_journal_is_one_line(damage, killed_journal, media, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(killed_journal, out)
    DAMAGES[damage](out / ".vmatte-partial-c")
    done = _run(media["clip"], out, "--resume")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "damaged" in done.stderr and "without --resume" in done.stderr, done.stderr
    assert not any((out / name).exists() for name in FINAL)  # never a run with gaps


def test_journal_of_another_version_is_one_line(killed_journal, media, tmp_path):
    """A journal whose state layout is another vmatte's (its manifest's version) is not resumed."""
    out = tmp_path / "out"
    shutil.copytree(killed_journal, out)
    _edit_manifest(version=2)(out / ".vmatte-partial-c")
    done = _run(media["clip"], out, "--resume")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "another version of vmatte" in done.stderr and "without --resume" in done.stderr, done.stderr
    assert not any((out / name).exists() for name in FINAL)
