"""Training on torchrun DDP: 2 CPU processes (gloo), RVM fine-tuned from the shipped weights on
64x64 clips composed from ../shared/media with exact alpha (vmatte.eval.compose).

One 50-step run: the loss falls, both replicas end identical, and a resume from the step-25
checkpoint gives the same step-26 loss as the uninterrupted run. About 45 s on 2 busy cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vmatte.train.logging import read_metrics, series

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
CONFIG = ROOT / "configs" / "train" / "tiny_ci.toml"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    from vmatte.eval.compose import ComposeSettings, compose_clips

    root = tmp_path_factory.mktemp("train_clips")
    fgs = [MEDIA / "am2k" / "sample1.jpg", MEDIA / "am2k" / "sample2.jpg", MEDIA / "pymatting-synthetic" / "test.png"]
    compose_clips(
        fgs, [MEDIA / "davis2016" / "JPEGImages" / "parkour"], root, ComposeSettings(size=(64, 64), frames=12)
    )
    return root


def _torchrun(out_dir: Path, clips: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "vmatte.train",
        str(CONFIG),
        "--set",
        f'data.video_matting=["{clips}"]',
        "--set",
        f'data.background_videos=["{MEDIA / "davis2016" / "JPEGImages" / "parkour"}"]',
        "--set",
        f'run.out_dir="{out_dir}"',
        *extra,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, clips) -> Path:
    out = tmp_path_factory.mktemp("ddp_full")
    _torchrun(out, clips)
    return out


def test_loss_falls_over_50_steps(full_run):
    steps, total = series(full_run / "metrics.csv", "total")
    assert steps == list(range(1, 51))
    first, last = np.mean(total[:10]), np.mean(total[-10:])
    assert last < 0.5 * first, (first, last)


def test_replicas_hold_identical_parameters(full_run):
    rows = [r for r in read_metrics(full_run / "metrics.csv") if r["name"] == "replica_max_abs_diff"]
    assert len(rows) == 1 and float(rows[0]["value"]) == 0.0


def test_checkpoints_and_csv(full_run):
    ck = full_run / "checkpoints"
    assert {p.name for p in ck.iterdir()} == {"step_0000025.pt", "step_0000050.pt", "latest.pt"}
    names = {r["name"] for r in read_metrics(full_run / "metrics.csv")}
    assert {"l1", "laplacian", "temporal", "fgr_l1", "fgr_temporal", "samples_per_s"} <= names


def test_resume_gives_the_same_next_step_loss(full_run, clips, tmp_path):
    _torchrun(tmp_path, clips, "--resume", str(full_run / "checkpoints" / "step_0000025.pt"), "--set", "run.steps=26")
    steps, resumed = series(tmp_path / "metrics.csv", "total")
    assert steps == [26]
    _, uninterrupted = series(full_run / "metrics.csv", "total")
    assert resumed[0] == pytest.approx(uninterrupted[25], rel=1e-5, abs=1e-7)
