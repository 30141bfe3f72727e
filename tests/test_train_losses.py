"""Training losses on constructed cases with hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from vmatte.train import losses as L


def test_l1_plain_and_first_frame_weighted():
    pred = torch.zeros(1, 2, 1, 4, 4)
    true = torch.full_like(pred, 0.5)
    assert L.l1_loss(pred, true).item() == pytest.approx(0.5)
    true = torch.zeros_like(pred)
    true[:, 0] = 1.0  # frame 0 wrong by 1, frame 1 exact; frame 0 weighs 2 -> (2*1 + 1*0) / 3
    w = L.frame_weights(2, 2.0)
    assert L.l1_loss(pred, true, w).item() == pytest.approx(2 / 3)


def test_laplacian_zero_for_identical_and_known_for_a_constant_offset():
    x = torch.rand(1, 2, 1, 32, 32)
    assert L.laplacian_loss(x, x).item() == 0.0
    # A constant has no band-pass content; 32 -> 16 -> 8 -> 4 -> 2 gives 4 bands, so only the
    # residual (level 4, weight 2^4) differs: 16 * 0.1.
    a = torch.zeros(1, 1, 1, 32, 32)
    assert L.laplacian_loss(a + 0.1, a).item() == pytest.approx(1.6, rel=1e-5)
    step = torch.zeros(1, 1, 1, 32, 32)
    step[..., 16:] = 1.0
    assert L.laplacian_loss(step, a).item() > L.laplacian_loss(step, step).item()


def test_gradient_loss_of_a_vertical_edge():
    pred = torch.zeros(1, 1, 1, 4, 4)
    pred[..., 2:] = 1.0  # one column of horizontal differences (of 3) is 1; vertical ones are 0
    assert L.gradient_loss(pred, torch.zeros_like(pred)).item() == pytest.approx(1 / 3)


def test_temporal_coherence():
    true = torch.zeros(1, 2, 1, 4, 4)
    pred = true.clone()
    pred[:, 1] = 1.0  # predicted alpha jumps by 1 where the truth is still
    assert L.temporal_coherence_loss(pred, true).item() == pytest.approx(1.0)
    assert L.temporal_coherence_loss(true + 0.3, true).item() == 0.0  # a constant bias is coherent
    assert L.temporal_coherence_loss(pred[:, :1], true[:, :1]).item() == 0.0


def test_change_target_of_a_moving_square():
    alpha = torch.zeros(1, 3, 1, 32, 32)
    alpha[0, 0, 0, 0:8, 0:8] = 1.0
    alpha[0, 1, 0, 0:8, 20:28] = 1.0  # moved right: tokens (0,0) and (0,1) changed
    alpha[0, 2, 0, 0:8, 20:28] = 1.0  # still: nothing changed
    alpha[0, 2, 0, 30, 30] = 0.05  # below delta: not a change
    target = L.change_target(alpha, delta=0.1, stride=16)
    assert target.shape == (1, 2, 1, 2, 2)
    assert target[0, 0, 0].tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert target[0, 1, 0].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    half = torch.full_like(target, 0.5)
    assert L.change_probability_loss(half, target).item() == pytest.approx(math.log(2), rel=1e-5)


def test_dice_identical_and_disjoint():
    a = torch.zeros(1, 1, 1, 4, 4)
    b = torch.zeros_like(a)
    a[..., 0, :] = 1.0  # 4 pixels
    b[..., 3, :] = 1.0  # 4 other pixels
    assert L.dice_loss(a, a).item() == pytest.approx(0.0)
    assert L.dice_loss(a, b).item() == pytest.approx(1 - 1 / 9)  # 1 - eps / (4 + 4 + eps)
    logits = (a * 2 - 1) * 20  # confident and right
    assert L.segmentation_loss(logits, a).item() < 1e-3
    assert L.segmentation_loss(-logits, a).item() > 5


def test_core_l1_counts_only_the_core():
    mask = torch.zeros(1, 1, 1, 8, 8)
    mask[..., :4] = 1.0
    # radius 1: core fg = columns 0-2, core bg = columns 5-7 (48 pixels); alpha 0 is wrong by 1
    # on the 24 core fg pixels and right on the boundary columns 3-4, which are not counted.
    assert L.core_l1_loss(torch.zeros_like(mask), mask, radius=1).item() == pytest.approx(0.5)


def test_ddc_known_value_on_two_pixels():
    alpha = torch.zeros(1, 1, 1, 2)
    image = torch.zeros(1, 3, 1, 2)
    image[0, :, 0, 1] = torch.tensor([0.3, 0.4, 0.0])  # |I_0 - I_1| = 0.5
    region = torch.ones(1, 1, 1, 2)
    # Each pixel sees the other in 3 of its 8 (replicate-padded) neighbours: 2 * 3 * 0.5 / (2 * 8)
    loss = L.ddc_loss(alpha, image, region, torch.ones_like(alpha), radius=1)
    assert loss.item() == pytest.approx(3 / 16)


def test_ddc_zero_when_alpha_explains_the_image():
    w = 40
    ramp = torch.clamp((torch.arange(w, dtype=torch.float32) - 18) / 4, 0, 1)  # soft edge 18..22
    alpha = ramp.view(1, 1, 1, w).expand(1, 1, 24, w).contiguous()
    fg = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    bg = torch.tensor([0.1, 0.3, 0.8]).view(1, 3, 1, 1)
    image = alpha * fg + (1 - alpha) * bg
    mask = (alpha > 0.5).float()
    boundary = torch.ones_like(alpha)
    exact = L.ddc_loss(alpha, image, boundary, torch.full_like(alpha, float((fg - bg).norm())))
    assert exact.item() < 1e-6
    # F - B estimated from the core regions of the binary mask gives the same answer
    parts = L.core_supervision_loss(alpha, image, mask, core_radius=6)
    assert parts["ddc"].item() < 1e-5
    assert parts["core_l1"].item() < 1e-6
    # the hard mask as prediction has the wrong edge profile: DDC notices
    assert L.core_supervision_loss(mask, image, mask, core_radius=6)["ddc"].item() > 0.05
