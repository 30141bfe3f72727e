"""RVM network: structure (official key layout, parameter counts), shapes, recurrence, the
downsample-ratio heuristic and BatchNorm folding. Random weights; no files needed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vmatte.models.backbones import ResNet50Encoder
from vmatte.models.rvm import RobustVideoMatting, auto_downsample_ratio


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics, so folding them is actually exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


@pytest.fixture(scope="module")
def mnv3() -> RobustVideoMatting:
    torch.manual_seed(0)
    model = RobustVideoMatting("mobilenetv3").eval()
    _randomise_batchnorm(model)
    return model


def test_mobilenetv3_parameter_count(mnv3):
    # The published RVM MobileNetV3 figure (including the training-only project_seg head).
    assert sum(p.numel() for p in mnv3.parameters()) == 3_748_633


def test_official_key_layout(mnv3):
    sd = mnv3.state_dict()
    expected_shapes = {
        "backbone.features.0.0.weight": (16, 3, 3, 3),
        "backbone.features.1.block.0.0.weight": (16, 1, 3, 3),  # block 1 has no expansion
        "backbone.features.2.block.0.0.weight": (64, 16, 1, 1),
        "backbone.features.4.block.2.fc1.weight": (24, 72, 1, 1),  # SE squeeze make_divisible(18)
        "backbone.features.4.block.3.0.weight": (40, 72, 1, 1),
        "backbone.features.13.block.1.0.weight": (672, 1, 5, 5),
        "backbone.features.15.block.2.fc2.bias": (960,),
        "backbone.features.16.0.weight": (960, 160, 1, 1),
        "aspp.aspp1.0.weight": (128, 960, 1, 1),
        "aspp.aspp1.1.running_var": (128,),
        "aspp.aspp2.1.weight": (128, 960, 1, 1),
        "decoder.decode4.gru.ih.0.weight": (128, 128, 3, 3),
        "decoder.decode4.gru.hh.0.weight": (64, 128, 3, 3),
        "decoder.decode3.conv.0.weight": (80, 171, 3, 3),
        "decoder.decode2.conv.0.weight": (40, 107, 3, 3),
        "decoder.decode1.conv.0.weight": (32, 59, 3, 3),
        "decoder.decode1.gru.ih.0.bias": (32,),
        "decoder.decode0.conv.0.weight": (16, 35, 3, 3),
        "decoder.decode0.conv.4.running_mean": (16,),
        "project_mat.conv.weight": (4, 16, 1, 1),
        "project_seg.conv.weight": (1, 16, 1, 1),
        "refiner.box_filter.weight": (4, 1, 3, 3),
        "refiner.conv.0.weight": (16, 24, 1, 1),
        "refiner.conv.6.weight": (4, 16, 1, 1),
        "refiner.conv.6.bias": (4,),
    }
    for key, shape in expected_shapes.items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key
    # The ImageNet mean/std buffers must stay out of the state_dict (official files lack them).
    assert not any(k.startswith("backbone.mean") or k.startswith("backbone.std") for k in sd)
    # Dilated tail: output stride 16 at the last three blocks.
    assert mnv3.backbone.features[13].block[1][0].stride == (1, 1)
    assert mnv3.backbone.features[13].block[1][0].dilation == (2, 2)


def test_mobilenetv3_shapes_and_modes(mnv3):
    src = torch.rand(2, 3, 96, 160)
    with torch.inference_mode():
        fgr, pha, r1, r2, r3, r4 = mnv3(src, downsample_ratio=0.5)
        assert fgr.shape == (2, 3, 96, 160) and pha.shape == (2, 1, 96, 160)
        # States live at strides 2/4/8/16 of the downsampled (48x80) frame.
        assert [tuple(r.shape) for r in (r1, r2, r3, r4)] == [
            (2, 16, 24, 40),
            (2, 20, 12, 20),
            (2, 40, 6, 10),
            (2, 64, 3, 5),
        ]
        assert 0 <= float(fgr.min()) and float(fgr.max()) <= 1
        assert 0 <= float(pha.min()) and float(pha.max()) <= 1
        # Next frame with the carried state.
        fgr2, *_ = mnv3(src, r1, r2, r3, r4, downsample_ratio=0.5)
        assert fgr2.shape == fgr.shape
        # Without the refiner the prediction stays at the downsampled size.
        fgr_lr, pha_lr, *_ = mnv3(src, downsample_ratio=0.5, refine=False)
        assert fgr_lr.shape == (2, 3, 48, 80) and pha_lr.shape == (2, 1, 48, 80)
        seg, *rec = mnv3(src, downsample_ratio=0.5, segmentation_pass=True)
        assert seg.shape == (2, 1, 48, 80) and len(rec) == 4


def test_initial_state_conventions(mnv3):
    src = torch.rand(1, 3, 64, 96)
    zeros = torch.zeros(1, 1, 1, 1)  # the ONNX export's broadcast initial state
    with torch.inference_mode():
        a = mnv3(src, downsample_ratio=0.5)
        b = mnv3(src, zeros, zeros, zeros, zeros, downsample_ratio=0.5)
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
        _, _, r1, r2, r3, r4 = a
        # A state from another frame size is a caller error with a clear message.
        with pytest.raises(ValueError, match="recurrent state"):
            mnv3(torch.rand(1, 3, 128, 96), r1, r2, r3, r4, downsample_ratio=0.5)


def test_bad_inputs_rejected(mnv3):
    with pytest.raises(ValueError, match="downsample_ratio"):
        mnv3(torch.rand(1, 3, 32, 32), downsample_ratio=0)
    with pytest.raises(ValueError, match="downsample_ratio"):
        mnv3(torch.rand(1, 3, 32, 32), downsample_ratio=1.5)
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        mnv3(torch.rand(1, 4, 32, 32))
    with pytest.raises(ValueError, match="variant"):
        RobustVideoMatting("mobilenetv2")  # type: ignore[arg-type]


def test_clip_equals_frame_by_frame(mnv3):
    """[B, T, 3, H, W] input batches the per-frame parts but must match the recurrent loop."""
    clip = torch.rand(1, 4, 3, 72, 128)
    with torch.inference_mode():
        fgr_c, pha_c, *rec_c = mnv3(clip, downsample_ratio=0.5)
        rec = [None] * 4
        for t in range(clip.shape[1]):
            fgr, pha, *rec = mnv3(clip[:, t], *rec, downsample_ratio=0.5)
            torch.testing.assert_close(fgr_c[:, t], fgr, rtol=0, atol=1e-5)
            torch.testing.assert_close(pha_c[:, t], pha, rtol=0, atol=1e-5)
        for a, b in zip(rec_c, rec):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_matches_unfused(mnv3, channels_last):
    import copy

    fused = copy.deepcopy(mnv3).fuse_for_inference(channels_last=channels_last)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert fused.fuse_for_inference(channels_last=channels_last) is fused  # idempotent
    gen = torch.Generator().manual_seed(1)
    frames = torch.rand(5, 1, 3, 90, 160, generator=gen)
    with torch.inference_mode():
        for ratio in (0.5, 1.0):
            rec_a, rec_b = [None] * 4, [None] * 4
            for src in frames:
                fgr_a, pha_a, *rec_a = mnv3(src, *rec_a, downsample_ratio=ratio)
                fgr_b, pha_b, *rec_b = fused(src, *rec_b, downsample_ratio=ratio)
                torch.testing.assert_close(fgr_b, fgr_a, rtol=0, atol=1e-5)
                torch.testing.assert_close(pha_b, pha_a, rtol=0, atol=1e-5)
                for a, b in zip(rec_a, rec_b):
                    torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


def test_resnet50_variant():
    torch.manual_seed(0)
    model = RobustVideoMatting("resnet50").eval()
    sd = model.state_dict()
    for key in (
        "backbone.conv1.weight",
        "backbone.bn1.running_mean",
        "backbone.layer1.0.downsample.0.weight",
        "backbone.layer1.0.downsample.1.weight",
        "backbone.layer3.5.bn2.weight",
        "backbone.layer4.0.downsample.0.weight",
        "backbone.layer4.2.conv3.weight",
        "aspp.aspp1.0.weight",
        "decoder.decode3.conv.0.weight",
    ):
        assert key in sd, key
    assert not any(k.startswith(("backbone.fc", "backbone.avgpool")) for k in sd)
    assert tuple(sd["aspp.aspp1.0.weight"].shape) == (256, 2048, 1, 1)
    assert tuple(sd["decoder.decode3.conv.0.weight"].shape) == (128, 256 + 512 + 3, 3, 3)
    # torchvision's ResNet-50 minus its 1000-class fc (2048 * 1000 + 1000).
    backbone = model.backbone
    assert isinstance(backbone, ResNet50Encoder)
    assert sum(p.numel() for p in backbone.parameters()) == 25_557_032 - 2_049_000
    # Last stage dilated instead of strided; its first block keeps the previous dilation.
    assert backbone.layer3[0].conv2.stride == (2, 2)
    assert backbone.layer4[0].conv2.stride == (1, 1) and backbone.layer4[0].conv2.dilation == (1, 1)
    assert backbone.layer4[0].downsample[0].stride == (1, 1)
    assert backbone.layer4[1].conv2.dilation == (2, 2) and backbone.layer4[1].conv2.padding == (2, 2)

    src = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        f1, f2, f3, f4 = backbone(src)
        assert [tuple(f.shape[1:]) for f in (f1, f2, f3, f4)] == [
            (64, 48, 64),
            (256, 24, 32),
            (512, 12, 16),
            (2048, 6, 8),
        ]
        fgr, pha, r1, r2, r3, r4 = model(src, downsample_ratio=0.5)
        assert fgr.shape == (1, 3, 96, 128) and pha.shape == (1, 1, 96, 128)
        assert [r.shape[1] for r in (r1, r2, r3, r4)] == [16, 32, 64, 128]
        fgr, pha, *_ = model(src, r1, r2, r3, r4, downsample_ratio=0.5)
        assert torch.isfinite(fgr).all() and torch.isfinite(pha).all()


@pytest.mark.parametrize(
    ("height", "width", "max_size", "expected"),
    [
        (1080, 1920, None, 0.25),
        (1920, 1080, None, 0.25),  # portrait: the long side counts
        (2160, 3840, None, 0.125),
        (288, 512, None, 1.0),
        (512, 400, None, 1.0),
        (480, 854, None, 480 / 854),
        (1080, 1920, 512, 512 / 1920),
        (288, 512, 1024, 1.0),
    ],
)
def test_auto_downsample_ratio(height, width, max_size, expected):
    assert auto_downsample_ratio(height, width, max_size) == pytest.approx(expected)


def test_auto_downsample_ratio_rejects_nonsense():
    with pytest.raises(ValueError):
        auto_downsample_ratio(0, 100)
    with pytest.raises(ValueError):
        auto_downsample_ratio(100, 100, max_size=0)


def test_refiner_fused_tail_matches_official_form(mnv3):
    """``matte`` (the inference path) == clamp(forward(...) + src), forward being the
    official formulation returning the foreground residual."""
    gen = torch.Generator().manual_seed(2)
    fine = torch.rand(2, 3, 64, 96, generator=gen)
    base = torch.nn.functional.interpolate(fine, scale_factor=0.25, mode="bilinear", align_corners=False)
    base_fgr = torch.randn(2, 3, 16, 24, generator=gen) * 0.1
    base_pha = torch.rand(2, 1, 16, 24, generator=gen)
    hid = torch.rand(2, 16, 16, 24, generator=gen)
    refiner = mnv3.refiner
    with torch.inference_mode():
        residual, pha_ref = refiner(fine, base, base_fgr, base_pha, hid)
        fgr, pha = refiner.matte(fine, base, base_fgr, base_pha, hid)
    torch.testing.assert_close(fgr, (residual + fine).clamp(0, 1), rtol=0, atol=1e-6)
    torch.testing.assert_close(pha, pha_ref.clamp(0, 1), rtol=0, atol=1e-6)
