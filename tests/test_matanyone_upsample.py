"""--max-size for MatAnyone: guided upsampling of the matte, and the precision option."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vmatte.engine.matanyone import InferenceCore, MatAnyoneSettings, iter_alpha
from vmatte.engine.matanyone.upsample import grey, guided_upsample
from vmatte.errors import VmatteError


def _disc(h=256, w=256):
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (yy - h * 0.47) ** 2 + (xx - w * 0.53) ** 2 <= (0.3 * h) ** 2
    alpha = torch.from_numpy(inside.astype(np.float32))[None, None]
    # the frame: a light target on a dark, slightly textured background (the edge is in the image)
    rng = np.random.default_rng(0)
    bg = 0.15 + 0.05 * rng.random((h, w)).astype(np.float32)
    img = np.where(inside, 0.85, bg).astype(np.float32)
    image = torch.from_numpy(np.stack([img, img * 0.9, img * 0.8]))[None]
    return alpha, image


def test_guided_upsampling_beats_bilinear_on_sharp_edges():
    alpha, image = _disc()
    lo = F.interpolate(alpha, scale_factor=0.25, mode="area")  # the matte at 1/4 resolution
    image_lo = F.interpolate(image, scale_factor=0.25, mode="bilinear", align_corners=False)
    bilinear = F.interpolate(lo, size=alpha.shape[-2:], mode="bilinear", align_corners=False)
    guided = guided_upsample(lo, grey(image_lo), grey(image))
    assert guided.shape == alpha.shape and 0 <= guided.min() and guided.max() <= 1
    edge = F.max_pool2d(alpha, 9, 1, 4) != -F.max_pool2d(-alpha, 9, 1, 4)  # a band around the edge
    err_b = (bilinear - alpha).abs()[edge].mean()
    err_g = (guided - alpha).abs()[edge].mean()
    assert err_g < 0.6 * err_b, (float(err_g), float(err_b))
    assert (guided - alpha).abs().mean() < (bilinear - alpha).abs().mean()


def test_guided_upsampling_is_a_no_op_without_downscaling():
    alpha, image = _disc(64, 80)
    assert guided_upsample(alpha, grey(image), grey(image)) is alpha


@pytest.fixture(scope="module")
def random_network():
    from vmatte.models.matanyone import MatAnyone

    torch.manual_seed(0)
    return MatAnyone().eval()


def _clip(h=96, w=128, n=3):
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    mask = np.zeros((h, w), np.uint8)
    mask[20:70, 30:90] = 255
    return frames, mask


def test_max_internal_size_above_the_frame_changes_nothing(random_network):
    frames, mask = _clip()
    plain = list(iter_alpha(InferenceCore(random_network, MatAnyoneSettings(warmup_frames=1)), frames, mask))
    big = list(
        iter_alpha(
            InferenceCore(random_network, MatAnyoneSettings(warmup_frames=1, max_internal_size=500)), frames, mask
        )
    )
    small = list(
        iter_alpha(
            InferenceCore(random_network, MatAnyoneSettings(warmup_frames=1, max_internal_size=48)), frames, mask
        )
    )
    for a, b, c in zip(plain, big, small):
        assert torch.equal(a.alpha, b.alpha)
        assert c.alpha.shape == a.alpha.shape and 0 <= c.alpha.min() and c.alpha.max() <= 1


def test_bf16_autocast_on_cpu_runs_and_fp16_is_refused(random_network):
    from vmatte.engine.device import check_precision as _check_precision
    from vmatte.engine.matanyone.matter import MatAnyoneMatter

    frames, mask = _clip(64, 96, 3)
    settings = MatAnyoneSettings(warmup_frames=1, r_erode=3, r_dilate=3)
    ref = MatAnyoneMatter(random_network, mask, settings)
    bf16 = MatAnyoneMatter(random_network, mask, settings, precision="bf16")
    for f in frames:
        _, a = ref.step(f, foreground=False)
        _, b = bf16.step(f, foreground=False)
        assert b.dtype == np.float32 and b.shape == a.shape and np.isfinite(b).all()
        assert np.abs(a - b).mean() < 0.1  # bf16 is close, not exact
    with pytest.raises(ValueError):
        MatAnyoneMatter(random_network, mask, settings, precision="fp16")
    with pytest.raises(VmatteError, match="fp16 needs a GPU"):
        _check_precision("fp16", torch.device("cpu"))
    with pytest.raises(VmatteError, match="unknown precision"):
        _check_precision("fp8", torch.device("cpu"))
