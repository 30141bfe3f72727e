"""Clicks through a SAM checkpoint: ``vmatte matte --click --segmenter``, the API and the web app's
session give exactly the mask the predictor gives for the decoded click frame.

The checkpoints are small random SAM networks saved as official-layout files (the real ones are
not downloadable here); that the modules compute what the official code computes is
``tests/test_sam1.py`` / ``tests/test_sam2.py``. Here the question is the plumbing: the right
frame, the right points, the right predictor, the error and the names shown.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_clip
from vmatte.engine.segment.clicks import Click, masks_from_clicks
from vmatte.engine.segment.prompts import FramePrompter, load_point_predictor
from vmatte.errors import InputError, WeightsError
from vmatte.io.reader import open_source
from vmatte.models.sam import Sam, SamConfig

W, H, FRAMES = 96, 64, 4
TINY = SamConfig(64, 2, 2, (1,), image_size=128, window_size=4, decoder_mlp_dim=128, iou_head_hidden_dim=64)


def _frames(path: Path) -> list[np.ndarray]:
    with open_source(path) as src:
        return [f.image for f in src]


def _tiny_sam_file(path: Path, clip_frame: np.ndarray, point: tuple[int, int]) -> Path:
    """A random tiny SAM whose mask for ``point`` on ``clip_frame`` covers 5-95% of the frame (a
    mask the test can tell from nothing and from everything), saved like the official .pth."""
    for seed in range(40):
        torch.manual_seed(seed)
        model = Sam(TINY)
        model.reset_pixel_stats()
        with torch.no_grad():  # logits of a few units, not tenths: a stable, non-trivial mask
            for p in model.mask_decoder.output_hypernetworks_mlps.parameters():
                p.mul_(4.0)
        torch.save(model.state_dict(), path)
        predictor = load_point_predictor(str(path))
        predictor.set_image(clip_frame)
        logits, _ = predictor.predict(np.array([point], np.float64), np.array([1]))
        share = float((logits > 0).mean())
        if 0.05 < share < 0.95:
            return path
    raise AssertionError("no seed gave a non-trivial mask")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("segclicks")
    clip = make_clip(d / "clip.mp4", FRAMES, W, H)
    frames = _frames(clip)
    ckpt = _tiny_sam_file(d / "tiny_sam.pth", frames[2], (40, 30))
    return clip, frames, ckpt


def _direct(ckpt: Path, image: np.ndarray, pos, neg=()) -> np.ndarray:
    prompter = FramePrompter(load_point_predictor(str(ckpt)))
    return prompter.mask(image, None, [Click(x, y) for x, y in pos], [Click(x, y, 0, True) for x, y in neg])


def test_api_clicks_use_the_checkpoint_on_the_click_frame(setup):
    clip, frames, ckpt = setup
    got = masks_from_clicks(clip, [(40, 30, 2), (10, 10, 0)], [(60, 20, 2)], segmenter=str(ckpt))
    assert sorted(got) == [0, 2]
    want2 = _direct(ckpt, frames[2], [(40, 30)], [(60, 20)])
    assert np.array_equal(got[2], want2) and got[2].dtype == np.uint8 and set(np.unique(got[2])) <= {0, 255}
    assert not np.array_equal(want2, _direct(ckpt, frames[1], [(40, 30)], [(60, 20)])) or not np.array_equal(
        want2, _direct(ckpt, frames[2], [(40, 30)])
    )  # frame and points matter
    # a SAM mask is not RVM's: the synthetic clip has no person, so RVM finds no one there
    with pytest.raises(InputError, match="no person under"):
        masks_from_clicks(clip, [(40, 30, 2)], segmenter="rvm")


def test_nothing_under_the_click_is_a_one_line_error(setup, tmp_path):
    clip, frames, ckpt = setup
    model = Sam(TINY)
    model.reset_pixel_stats()
    with torch.no_grad():  # every weight zero: every mask logit is 0, and SAM's mask is logits > 0
        for p in model.parameters():
            p.zero_()
    empty = tmp_path / "empty_sam.pth"
    torch.save(model.state_dict(), empty)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vmatte.cli",
            "matte",
            str(clip),
            "-o",
            str(tmp_path / "o"),
            "--click",
            "40,30",
            "--model",
            "rvm-target",
            "--segmenter",
            str(empty),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "found nothing under the click(s) at 40,30" in lines[0], r.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cli_mattes_the_target_a_checkpoint_picked_and_names_it(setup, tmp_path):
    clip, frames, ckpt = setup
    out = tmp_path / "out"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vmatte.cli",
            "matte",
            str(clip),
            "-o",
            str(out),
            "--click",
            "40,30",
            "--model",
            "rvm-target",
            "--segmenter",
            str(ckpt),
            "-f",
            "alpha",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stderr.splitlines() if l.startswith("target at frame 0"))
    assert "SAM ViT" in line and "tiny_sam.pth" in line and "Apache-2.0" in line
    area = int(line.split("area ")[1].split(" px")[0])
    assert area == int((_direct(ckpt, frames[0], [(40, 30)]) >= 128).sum())
    assert len(list(out.glob("*alpha*"))) == 1


def test_app_session_clicks_use_the_chosen_checkpoint_and_can_switch(setup, tmp_path):
    from vmatte.ui.session import Session, UiSettings

    clip, frames, ckpt = setup
    s = Session(tmp_path / "s", UiSettings(workdir=tmp_path, segmenter=str(ckpt), device="cpu"))
    s.open_video(clip)
    assert s.segmenter_name().startswith("SAM ViT")
    s.click(1, 40, 30, 2)
    mask = s.click(1, 60, 20, 2, negative=True)
    assert np.array_equal(mask, _direct(ckpt, frames[2], [(40, 30)], [(60, 20)]))
    s.undo_point(1)
    assert np.array_equal(s.targets[1].masks[2], _direct(ckpt, frames[2], [(40, 30)]))
    assert s.set_segmenter("rvm") == "RVM person regions"
    with pytest.raises(InputError, match="no person under"):  # now RVM: nobody in this clip
        s.click(1, 40, 30, 1)
    with pytest.raises(WeightsError, match="no such file"):
        s.set_segmenter(str(tmp_path / "missing.pth"))
    assert s.segmenter == "rvm"  # a failed switch keeps the working choice


def test_auto_takes_a_cached_checkpoint_after_checking_its_sha256(setup, tmp_path, monkeypatch):
    import hashlib
    import shutil

    import vmatte.weights as w
    from vmatte.ui.session import Session, UiSettings

    clip, frames, ckpt = setup
    monkeypatch.setenv("VMATTE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="no person under"):  # nothing cached: RVM's person regions ...
        masks_from_clicks(clip, [(40, 30, 2)], segmenter=None)
    cached = w.segmenter_cache_path("sam-vit-b")
    cached.parent.mkdir(parents=True)
    shutil.copyfile(ckpt, cached)
    with pytest.raises(WeightsError, match="changed since download"):  # ... and not the official file
        masks_from_clicks(clip, [(40, 30, 2)])
    official = w.SEGMENTERS["sam-vit-b"]  # pretend our tiny file is the published one
    monkeypatch.setitem(
        w.SEGMENTERS,
        "sam-vit-b",
        w.SegmenterSource(
            official.name,
            official.label,
            w.RemoteFile(
                official.remote.filename,
                official.remote.url,
                hashlib.sha256(ckpt.read_bytes()).hexdigest(),
                w.SAM_LICENSE,
            ),
            official.rank_cpu,
            official.rank_gpu,
        ),
    )
    got = masks_from_clicks(clip, [(40, 30, 2)])
    assert np.array_equal(got[2], _direct(ckpt, frames[2], [(40, 30)]))
    s = Session(tmp_path / "s", UiSettings(workdir=tmp_path, device="cpu"))
    s.open_video(clip)
    assert s.segmenter == "auto" and s.segmenter_name() == "SAM ViT-B"
    assert np.array_equal(s.click(1, 40, 30, 2), got[2])
