"""EXR/DPX plates and the refinement controls in killed runs: a journaled plate run killed by
SIGKILL and resumed writes the same files as an uninterrupted one (the refinement's history is in
the saved state); a killed plain run leaves no plate sequence under a final name, and --overwrite
removes only the frame files vmatte names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

OpenEXR = pytest.importorskip("OpenEXR")
pytest.importorskip("PyOpenColorIO")
pytest.importorskip("fileseq")

from vmatte.errors import OutputError  # noqa: E402 - after the importorskips
from vmatte.matte import matte  # noqa: E402

H, W = 48, 64
FRAMES = 60
CHUNK = 4
FORMATS = "exr,exr-layers,alpha-exr,dpx"
FINAL = ["shot_alpha_dpx", "shot_alpha_exr", "shot_exr", "shot_layers"]


def plate(folder: Path, frames: int = FRAMES) -> Path:
    """A scene-linear half plate, 1001-based: a bright square moving over a dim gradient."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    for t in range(frames):
        rgb = np.stack([0.05 + 0.1 * x / W, 0.1 + 0.05 * y / H, np.full_like(x, 0.08)], -1)
        x0 = 4 + (t % 40)
        rgb[10:38, x0 : x0 + 18] = [0.9, 0.6, 0.4]
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        with OpenEXR.File(header, {"RGB": rgb.astype(np.float16)}) as f:
            f.write(str(folder / f"shot.{1001 + t}.exr"))
    return folder / "shot.####.exr"


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    return plate(tmp_path_factory.mktemp("plate"))


def command(shot: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vmatte.cli",
        "matte",
        str(shot),
        "-o",
        str(out),
        "-f",
        FORMATS,
        "-q",
        "--model",
        "rvm",
        "--device",
        "cpu",
        "--reduce-chatter",
        "2",
        "--choke",
        "0.5",
        *extra,
    ]


def files(out: Path) -> dict[str, bytes]:
    return {f"{d}/{f}": (out / d / f).read_bytes() for d in FINAL for f in sorted(os.listdir(out / d))}


def completed(out: Path) -> int:
    try:
        return json.loads((out / ".vmatte-partial-shot" / "manifest.json").read_text())["completed"]
    except (OSError, ValueError, KeyError):
        return 0


def kill_when(cmd: list[str], ready) -> int:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return proc.returncode


def test_sigkill_then_resume_of_a_refined_exr_dpx_plate_run_writes_the_same_files(shot, tmp_path):
    ref = tmp_path / "ref"
    done = subprocess.run(command(shot, ref, "--chunk-frames", str(CHUNK)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = files(ref)
    assert len(reference) == 4 * FRAMES and "shot_exr/shot_exr.1060.exr" in reference

    out = tmp_path / "out"
    rc = kill_when(command(shot, out, "--chunk-frames", str(CHUNK)), lambda: completed(out) >= 3)
    assert rc == -signal.SIGKILL
    assert 3 <= completed(out) < FRAMES // CHUNK, "the run finished before it was stopped"
    # nothing under a final name: only the journal and the dead run's lock
    assert sorted(p.name for p in out.iterdir()) == [".shot.vmatte-lock", ".vmatte-partial-shot"]
    resumed = subprocess.run(
        command(shot, out, "--chunk-frames", str(CHUNK), "--resume"), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in out.iterdir()) == FINAL  # journal and lock gone
    got = files(out)
    assert sorted(got) == sorted(reference)
    differ = [name for name in reference if got[name] != reference[name]]
    assert not differ, f"{len(differ)} files differ, first {differ[:3]}"


def test_resume_refuses_other_refinement_or_frames(shot, tmp_path):
    out = tmp_path / "out"
    rc = kill_when(command(shot, out, "--chunk-frames", str(CHUNK)), lambda: completed(out) >= 1)
    assert rc == -signal.SIGKILL and completed(out) >= 1
    for extra in (["--feather", "2"], ["--frames", "1001-1030"]):
        cmd = command(shot, out, "--chunk-frames", str(CHUNK), "--resume", *extra)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "other options" in r.stderr, r.stderr


def test_killed_plain_plate_run_leaves_no_final_folder_and_the_next_run_sweeps_it(shot, tmp_path):
    out = tmp_path / "out"

    def some_frames_written() -> bool:
        try:
            return any(p.name.endswith(".partial") and len(os.listdir(p)) >= 3 for p in out.iterdir())
        except OSError:
            return False

    rc = kill_when(command(shot, out), some_frames_written)  # 60 frames: one pass, no journal
    assert rc == -signal.SIGKILL
    left = sorted(p.name for p in out.iterdir())
    assert all(n.startswith(".") for n in left) and any(n.endswith(".partial") for n in left), left
    again = subprocess.run(command(shot, out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == FINAL  # the dead run's temporaries swept
    assert len(os.listdir(out / "shot_exr")) == FRAMES


class Half:
    description = "half"

    def reset(self, concurrent_io=False):
        pass

    def step(self, image, foreground=True):
        return image.astype(np.float32) / 65535.0, np.full(image.shape[:2], 0.5, np.float32)


def test_overwrite_replaces_only_a_folder_of_vmatte_frames(tmp_path):
    shot = plate(tmp_path / "plate", 3)
    out = tmp_path / "out"
    matte(shot, out, model=Half(), formats=["exr", "dpx"])
    (out / "shot_exr" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="shot_exr .*notes.txt"):
        matte(shot, out, model=Half(), formats=["exr", "dpx"], overwrite=True)
    assert (out / "shot_exr" / "notes.txt").read_text() == "mine" and len(os.listdir(out / "shot_exr")) == 4
    (out / "shot_exr" / "notes.txt").unlink()
    matte(shot, out, model=Half(), formats=["exr", "dpx"], overwrite=True)
    assert sorted(os.listdir(out / "shot_exr")) == [f"shot_exr.{n}.exr" for n in (1001, 1002, 1003)]
    assert sorted(p.name for p in out.iterdir()) == ["shot_alpha_dpx", "shot_exr"]


def test_refined_matter_state_gives_the_same_next_frames():
    """Refined.state() after k frames, loaded into a fresh one: the next frames are identical."""
    from vmatte.engine.refine import RefineSettings, refined
    from vmatte.engine.resume import decode_state, encode_state
    from vmatte.io.reader import Frame

    rng = np.random.default_rng(0)
    base = rng.integers(0, 65535, (H, W, 3))
    # a still picture with sensor noise: the chatter filter averages over the history
    images = [np.clip(base + rng.integers(-300, 300, base.shape), 0, 65535).astype(np.uint16) for _ in range(8)]

    class Noisy:
        description, targets, resumable = "noisy", (3, 5), True

        def reset(self, concurrent_io=False):
            self.t = 0

        def run(self, frames, foreground=True):
            for f in frames:
                self.t += 1
                a = rng.random(f.image.shape[:2]).astype(np.float32)  # chatter
                yield f, f.image.astype(np.float32) / 65535.0, {3: a, 5: 1 - a}

        def state(self):
            return {"t": self.t}

        def load_state(self, state):
            self.t = state["t"]

    settings = RefineSettings(reduce_chatter=3, choke=0.5, despill="green")
    frames = [Frame(i, im, i / 24) for i, im in enumerate(images)]

    def run(matter, part, seed):
        rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state  # the same alphas each time
        return list(matter.run(part))

    whole = refined(Noisy(), settings)
    whole.reset()
    expected = run(whole, frames[:5], 1) + run(whole, frames[5:], 2)
    first = refined(Noisy(), settings)
    first.reset()
    run(first, frames[:5], 1)
    skeleton, tensors = encode_state(first.state())
    second = refined(Noisy(), settings)
    second.reset()
    second.load_state(decode_state(skeleton, tensors))
    for (_, fe, ae), (_, fg, ag) in zip(expected[5:], run(second, frames[5:], 2)):
        assert np.array_equal(fe, fg) and all(np.array_equal(ae[k], ag[k]) for k in (3, 5))
    assert second.inner.t == 8
    fresh = refined(Noisy(), settings)  # without the history the next frames differ: the state matters
    fresh.reset()
    assert not np.array_equal(run(fresh, frames[5:], 2)[0][2][3], expected[5][2][3])


def test_journaled_exr_layers_of_two_targets_equal_the_plain_run(tmp_path):
    """Several targets: exr-layers is one set (every target a layer) beside per-target sets, in the
    journal's chunks and joined as in a plain run."""
    shot = plate(tmp_path / "plate", 10)
    label = np.zeros((H, W), np.uint8)
    label[10:38, 4:22] = 1  # the square on the first frame
    label[0:8, 40:60] = 2  # a patch of background
    kw = dict(model="rvm-target", device="cpu", mask=label, formats=["exr-layers", "alpha-exr"])
    plain = matte(shot, tmp_path / "plain", **kw)
    chunked = matte(shot, tmp_path / "chunked", chunk_frames=3, **kw)
    assert set(plain.outputs) == set(chunked.outputs) == {"exr-layers", "alpha-exr_id1", "alpha-exr_id2"}
    assert sorted(p.name for p in (tmp_path / "chunked").iterdir()) == [
        "shot_id1_alpha_exr",
        "shot_id2_alpha_exr",
        "shot_layers",
    ]
    for key, folder in plain.outputs.items():
        names = sorted(os.listdir(folder))
        assert len(names) == 10 and names == sorted(os.listdir(chunked.outputs[key]))
        for n in names:
            assert (folder / n).read_bytes() == (chunked.outputs[key] / n).read_bytes(), f"{key}/{n}"
    with OpenEXR.File(str(plain.outputs["exr-layers"] / "shot_layers.1005.exr"), separate_channels=True) as f:
        assert [p.name() for p in f.parts] == ["rgba", "id1", "id2"]
