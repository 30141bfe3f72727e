"""Matte refinement controls (vmatte.engine.refine), each on a case worked out by hand."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from vmatte.engine.refine import Refiner, RefineSettings, choke, despill, feather, shift_edge
from vmatte.errors import VmatteError


def square(size: int = 20, lo: int = 5, hi: int = 15) -> np.ndarray:
    a = np.zeros((size, size), np.float32)
    a[lo:hi, lo:hi] = 1.0
    return a


def test_choke_whole_pixels_shrinks_and_grows_a_square_by_exactly_that_many():
    # A 10x10 square (rows/cols 5..14): eroding by radius 2 needs every pixel within 2 px (the
    # disc reaches +-2 on both axes) to be inside, so 7..12 stay: a 6x6 square. Dilating by the
    # radius-1 disc (a 3x3 cross) grows each side by 1 (4..15) but leaves the 4 diagonal corners out.
    assert np.array_equal(choke(square(), 2), square(lo=7, hi=13))
    grown = square(lo=4, hi=16)
    grown[[4, 4, 15, 15], [4, 15, 4, 15]] = 0.0
    assert np.array_equal(choke(square(), -1), grown)


def test_choke_fractional_blends_the_two_nearest_radii():
    # 1.5 px = half of radius 1 (8x8) + half of radius 2 (6x6): 1 inside 6x6, 0.5 on the ring up to 8x8.
    out = choke(square(), 1.5)
    want = 0.5 * square(lo=6, hi=14) + 0.5 * square(lo=7, hi=13)
    np.testing.assert_allclose(out, want, atol=1e-6)
    assert out[6, 10] == pytest.approx(0.5) and out[7, 10] == 1.0 and out[5, 10] == 0.0


def test_feather_is_a_gaussian_with_sigma_half_the_radius():
    # Hard vertical edge at x = 10 (alpha 1 for x >= 10). feather 2 -> sigma 1; OpenCV samples the
    # Gaussian on k = -4..4 (ksize = 8 sigma + 1) and normalises. Pixel 10 sees weights k >= 0:
    # 0.5 + w0 / 2 with w0 = 1 / sum(exp(-k^2 / 2)); pixel 9 is 1 minus that (symmetry).
    a = np.zeros((12, 20), np.float32)
    a[:, 10:] = 1.0
    w = np.exp(-(np.arange(-4, 5) ** 2) / 2.0)
    w /= w.sum()
    out = feather(a, 2.0)
    assert out[6, 10] == pytest.approx(w[4:].sum(), abs=1e-5)
    assert out[6, 9] == pytest.approx(1 - w[4:].sum(), abs=1e-5)
    assert out[6, 12] > 0.95 and out[6, 7] < 0.05  # 95 % done within feather (2 px) either side


def test_shift_edge_moves_only_the_soft_values():
    a = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    np.testing.assert_allclose(shift_edge(a, 50), [[0.0, 0.5, math.sqrt(0.5), 1.0]], atol=1e-6)  # a ** 0.5
    np.testing.assert_allclose(shift_edge(a, -50), [[0.0, 0.0625, 0.25, 1.0]], atol=1e-6)  # a ** 2


def test_despill_limits_the_spill_channel_to_the_mean_of_the_others():
    fgr = np.array([[[0.2, 0.8, 0.4], [0.5, 0.4, 0.6]]], np.float32)
    np.testing.assert_allclose(despill(fgr, "green"), [[[0.2, 0.3, 0.4], [0.5, 0.4, 0.6]]], atol=1e-6)
    np.testing.assert_allclose(despill(fgr, "blue"), [[[0.2, 0.8, 0.4], [0.5, 0.4, 0.45]]], atol=1e-6)


def test_reduce_chatter_averages_a_flickering_edge_on_a_still_picture():
    image = np.full((4, 4, 3), 128, np.uint8)
    refiner = Refiner(RefineSettings(reduce_chatter=1))
    outs = []
    for t in range(4):
        alpha = np.full((4, 4), 0.4 if t % 2 == 0 else 0.6, np.float32)
        outs.append(refiner.step(image, None, {None: alpha})[1][None])
    assert outs[0][0, 0] == pytest.approx(0.4)  # no history yet
    for out in outs[1:]:
        assert out[0, 0] == pytest.approx(0.5, abs=1e-6)  # (0.4 + 0.6) / 2, equal weights: the picture is still


def test_reduce_chatter_keeps_moving_pixels_as_they_are():
    # Where the picture changes by 0.5 (>> tolerance 0.04), the weight is exp(-156) = 0: current alpha.
    # A pixel whose alpha jumps by more than 0.5 on a still picture (a hard edge arriving) is kept too.
    refiner = Refiner(RefineSettings(reduce_chatter=3))
    still = np.zeros((2, 2, 3), np.uint8)
    moved = still.copy()
    moved[0, 0] = 128  # pixel (0, 0) changes by ~0.5
    refiner.step(still, None, {None: np.array([[0.0, 0.0], [0.3, 0.3]], np.float32)})
    _, out = refiner.step(moved, None, {None: np.array([[0.9, 0.9], [0.5, 0.3]], np.float32)})
    a = out[None]
    assert a[0, 0] == pytest.approx(0.9, abs=1e-6)  # picture moved: kept
    assert a[0, 1] == pytest.approx(0.9, abs=1e-6)  # still picture, but alpha jumped 0.9: kept
    assert a[1, 0] == pytest.approx(0.4, abs=1e-6)  # still, small change: (0.5 + 0.3) / 2
    assert a[1, 1] == pytest.approx(0.3, abs=1e-6)


def test_refiner_applies_every_target_and_despills_the_foreground():
    refiner = Refiner(RefineSettings(choke=2, despill="green"))
    fgr = np.zeros((20, 20, 3), np.float32)
    fgr[..., 1] = 1.0
    out_fgr, alphas = refiner.step(np.zeros((20, 20, 3), np.uint8), fgr, {1: square(), 2: square(lo=4, hi=16)})
    assert np.array_equal(alphas[1], square(lo=7, hi=13)) and np.array_equal(alphas[2], square(lo=6, hi=14))
    assert float(out_fgr[..., 1].max()) == 0.0


@pytest.mark.parametrize(
    "kwargs", [dict(choke=1000), dict(feather=-1), dict(shift_edge=150), dict(reduce_chatter=-2), dict(despill="red")]
)
def test_bad_settings_are_one_line_errors(kwargs):
    with pytest.raises(VmatteError):
        RefineSettings(**kwargs)


def test_cli_rejects_a_bad_refinement_value_with_one_line(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vmatte.cli",
            "matte",
            str(tmp_path / "none.mp4"),
            "-o",
            str(tmp_path / "out"),
            "--shift-edge",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmatte: error: --shift-edge")
    assert not (tmp_path / "out").exists()


def test_api_refines_every_run_path_the_same(tmp_path):
    """matte() plain, matte() journaled (rvm, chunks of 3) and iter_matte() with the same controls
    give the same 16-bit alphas, and those are the model's alphas refined by hand."""
    import cv2

    import vmatte
    from conftest import make_clip

    clip = make_clip(tmp_path / "c.mp4", 10, 64, 48)
    settings = vmatte.RefineSettings(choke=1.5, feather=1, reduce_chatter=2)
    raw = [r.alpha.copy() for r in vmatte.iter_matte(clip, model="rvm", device="cpu")]
    images = [r.image for r in vmatte.iter_matte(clip, model="rvm", device="cpu")]
    refiner = Refiner(settings)
    by_hand = [refiner.step(im, None, {None: a})[1][None] for im, a in zip(images, raw)]
    streamed = [r.alpha for r in vmatte.iter_matte(clip, model="rvm", device="cpu", refine=settings)]
    assert all(np.array_equal(s, h) for s, h in zip(streamed, by_hand)) and len(streamed) == 10
    plain = vmatte.matte(clip, tmp_path / "plain", model="rvm", device="cpu", formats="alpha-png16", refine=settings)
    chunked = vmatte.matte(
        clip, tmp_path / "chunked", model="rvm", device="cpu", formats="alpha-png16", refine=settings, chunk_frames=3
    )
    assert "refined: choke=1.5 feather=1 reduce-chatter=2" in plain.model
    for i, h in enumerate(by_hand):
        a = cv2.imread(str(plain.outputs["alpha-png16"] / f"{i:05d}.png"), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(chunked.outputs["alpha-png16"] / f"{i:05d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(a, b), f"frame {i}: journaled != plain"
        assert np.abs(a / 65535.0 - h).max() <= 0.5 / 65535 + 1e-6, f"frame {i}"
