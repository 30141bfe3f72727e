"""MatAnyone network and engine pieces that do not need the numeric fixture to be checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vmatte.engine.matanyone import (
    InferenceCore,
    MatAnyoneSettings,
    MemoryManager,
    first_frame_mask,
    iter_alpha,
    pad_divide_by,
    prepare_mask,
    region_adaptive_fusion,
    top_k_softmax,
    unpad,
)
from vmatte.models.matanyone import MatAnyone

KEYS_JSON = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "matanyone" / "keys.json"
NUM_PARAMETERS = 35_249_195  # official single-target model, aux_computer included


@pytest.fixture(scope="module")
def random_network() -> MatAnyone:
    torch.manual_seed(0)
    return MatAnyone().eval()


def test_parameter_count(random_network):
    assert sum(p.numel() for p in random_network.parameters()) == NUM_PARAMETERS


@pytest.mark.skipif(not KEYS_JSON.is_file(), reason="no MatAnyone keys.json")
def test_state_dict_layout_is_the_official_one(random_network):
    entries = json.loads(KEYS_JSON.read_text())["entries"]
    sd = random_network.state_dict()
    assert list(sd) == [e["name"] for e in entries]  # same names, same order
    for e in entries:
        t = sd[e["name"]]
        assert list(t.shape) == e["shape"], e["name"]
        assert str(t.dtype) == "torch." + e["dtype"], e["name"]


def test_aux_computer_is_optional():
    """Inference-only checkpoints may lack the training-only head."""
    full = MatAnyone().state_dict()
    lean = MatAnyone(with_aux=False)
    lean.load_state_dict({k: v for k, v in full.items() if not k.startswith("aux_computer.")}, strict=True)


@pytest.mark.parametrize("h,w", [(37, 50), (144, 256), (17, 16)])
def test_pad_divide_by_and_unpad(h, w):
    x = torch.rand(3, h, w)
    padded, pad = pad_divide_by(x, 16)
    assert padded.shape[-2] % 16 == 0 and padded.shape[-1] % 16 == 0
    left, right, top, bottom = pad
    assert left == (padded.shape[-1] - w) // 2 and top == (padded.shape[-2] - h) // 2  # smaller half first
    assert left + right < 16 and top + bottom < 16
    assert torch.equal(padded[:, top : top + h, left : left + w], x)
    assert padded.sum() == x.sum()  # zeros elsewhere
    assert torch.equal(unpad(padded, pad), x)


def test_engine_crops_back_on_a_non_multiple_of_16_size(random_network):
    h, w = 37, 50
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3)]
    mask = np.zeros((h, w), np.uint8)
    mask[10:30, 15:40] = 255
    core = InferenceCore(random_network, MatAnyoneSettings(warmup_frames=1, r_erode=0, r_dilate=0))
    outs = list(iter_alpha(core, frames, mask))
    assert len(outs) == 3
    for i, out in enumerate(outs):
        assert out.alpha.shape == (1, h, w) and out.logits.shape == (1, h, w)
        assert float(out.alpha.min()) >= 0.0 and float(out.alpha.max()) <= 1.0
        assert (out.change_prob is None) == (i == 0)
        if out.change_prob is not None:
            assert out.change_prob.shape == (1, 48 // 16, 64 // 16)
    assert core.pad == (7, 7, 5, 6)


def test_mask_step_returns_the_mask(random_network):
    h, w = 32, 48
    core = InferenceCore(random_network, MatAnyoneSettings())
    mask = torch.zeros(1, h, w)
    mask[:, 8:20, 10:30] = 1.0
    out = core.step(torch.rand(3, h, w), mask)
    assert torch.equal(out.alpha, mask) and out.logits is None
    assert core.memory.num_frames == 1 and core.memory.sensory.shape == (1, 256, 2, 3)


def test_predicting_without_a_mask_is_an_error(random_network):
    core = InferenceCore(random_network)
    with pytest.raises(RuntimeError, match="mask"):
        core.step(torch.rand(3, 32, 32))


def test_prepare_mask_dilate_then_erode():
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    assert np.array_equal(prepare_mask(mask, 0, 0), mask.astype(np.float32))  # 0/0: untouched
    dilated = prepare_mask(mask, r_erode=0, r_dilate=5)
    eroded = prepare_mask(mask, r_erode=5, r_dilate=0)
    assert set(np.unique(dilated)) == {0.0, 255.0}
    assert (dilated >= mask).all() and (dilated > 0).sum() > (mask > 0).sum()
    assert (eroded <= mask).all() and 0 < (eroded > 0).sum() < (mask > 0).sum()
    # a 5x5 ellipse grows / shrinks a square by 2 px on each side
    assert (dilated > 0).sum(axis=1).max() == 24 and (eroded > 0).sum(axis=1).max() == 16
    # dilate then erode with the same kernel is a closing: a square comes back as it was
    assert np.array_equal(prepare_mask(mask, 5, 5), mask.astype(np.float32))
    # soft (non-255) values count as "maybe" for the dilate and are dropped by the erode
    soft = mask.astype(np.float32) * 0.5
    assert (prepare_mask(soft, r_erode=3, r_dilate=0) == 0).all()
    assert (prepare_mask(soft, r_erode=0, r_dilate=3) > 0).sum() > (soft > 0).sum()


def test_first_frame_mask_is_resized_to_the_frame():
    mask = np.zeros((1080, 1920), np.uint8)
    mask[500:600, 900:1000] = 255
    out = first_frame_mask(mask, (1088, 1920), 0, 0)
    assert out.shape == (1088, 1920) and set(np.unique(out)) == {0.0, 255.0}
    assert first_frame_mask(mask > 0, (1080, 1920), 0, 0).max() == 255.0


def test_top_k_softmax():
    sim = torch.randn(1, 50, 7)
    aff = top_k_softmax(sim, 30)
    assert torch.allclose(aff.sum(1), torch.ones(1, 7))
    assert ((aff > 0).sum(1) == 30).all()
    # the zeroed tokens are the least similar ones
    kept_min = sim.masked_fill(aff == 0, float("inf")).min(1).values
    dropped_max = sim.masked_fill(aff > 0, -float("inf")).max(1).values
    assert (kept_min >= dropped_max).all()
    assert torch.allclose(top_k_softmax(sim[:, :10], 30), torch.softmax(sim[:, :10], 1), atol=1e-6)


def test_region_adaptive_fusion():
    r, v = torch.full((1, 4, 2, 2), 2.0), torch.zeros(1, 4, 2, 2)
    p = torch.tensor([[[[0.0, 1.0], [0.25, 0.5]]]])
    out = region_adaptive_fusion(r, v, p)
    assert torch.equal(out[0, 0], torch.tensor([[0.0, 2.0], [0.5, 1.0]]))


def test_memory_keeps_first_frame_and_a_fifo():
    mem = MemoryManager(max_mem_frames=3, top_k=4)

    def frame(i: float):
        t = torch.full((1, 64, 2, 2), i)
        return t, torch.ones(1, 1, 2, 2), torch.full((1, 256, 2, 2), i), torch.full((1, 16, 257), 1.0)

    for i in range(5):
        mem.add_memory(*frame(float(i)))
    kept = [float(e[0][0, 0, 0]) for e in mem.perm + mem.fifo]
    assert kept == [0.0, 3.0, 4.0]  # permanent frame 0 + the 2 newest
    assert float(mem.obj_memory[0, 0, 0]) == 5.0  # summaries keep accumulating
    mem.clear()
    assert not mem.engaged and mem.obj_memory is None
    mem.add_memory(*frame(7.0))
    assert len(mem.perm) == 1  # first frame after a clear is permanent again


def test_settings_validation():
    with pytest.raises(ValueError):
        MatAnyoneSettings(mem_every=0)
    with pytest.raises(ValueError):
        MatAnyoneSettings(warmup_frames=-1)


def test_frame_matter_runner(random_network):
    from vmatte.engine.matanyone.matter import MatAnyoneMatter

    h, w = 40, 56
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3)]
    mask = np.zeros((h, w), np.uint8)
    mask[8:30, 10:40] = 255
    settings = MatAnyoneSettings(warmup_frames=1, r_erode=3, r_dilate=3)
    matter = MatAnyoneMatter(random_network, mask, settings)
    got = [matter.step(f) for f in frames]
    want = list(iter_alpha(InferenceCore(random_network, settings), frames, mask))
    for (fgr, alpha), ref in zip(got, want):
        assert alpha.shape == (h, w) and alpha.dtype == np.float32
        assert np.array_equal(alpha, ref.alpha[0].numpy())
        assert fgr.shape == (h, w, 3) and fgr.dtype == np.float32
    matter.reset()
    fgr, alpha = matter.step(frames[0], foreground=False)
    assert fgr is None and np.array_equal(alpha, want[0].alpha[0].numpy())
    fgr16, _ = matter.step((frames[1].astype(np.uint16) * 257), foreground=True)
    assert np.allclose(fgr16, frames[1] / 255.0, atol=1e-6)


def test_max_internal_size(random_network):
    h, w = 90, 120
    core = InferenceCore(random_network, MatAnyoneSettings(warmup_frames=0, max_internal_size=48))
    assert core._internal_size(h, w) == (48, 64) and core._internal_size(40, 60) is None
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2)]
    mask = np.zeros((h, w), np.uint8)
    mask[20:70, 30:90] = 255
    outs = list(iter_alpha(core, frames, mask))
    assert [o.alpha.shape for o in outs] == [(1, h, w)] * 2
    assert outs[1].change_prob.shape == (1, 3, 4)  # stride 16 of the internal 48x64
    assert core.memory.sensory.shape[-2:] == (3, 4)


def test_prepare_network_swaps_3x3_convolutions_for_winograd_and_keeps_the_numbers():
    """vmatte's CPU network (prepare_network): BatchNorm folded, 3x3 stride-1 convolutions on
    NNPACK's Winograd path; same parameters under the same names, same features up to float
    rounding (the numeric fixture test checks the whole stream against the official outputs)."""
    import copy

    from vmatte.engine.matanyone import prepare_network
    from vmatte.engine.matanyone.optimise import WinogradConv2d

    torch.manual_seed(0)
    plain = MatAnyone().eval()
    fast = prepare_network(copy.deepcopy(plain), "cpu", winograd=True)
    swapped = [m for m in fast.modules() if isinstance(m, WinogradConv2d)]
    if not torch._nnpack_available():
        pytest.skip("this PyTorch build has no NNPACK: the plain convolutions run")
    assert len(swapped) > 50 and all(m.stride == (1, 1) and m.kernel_size == (3, 3) for m in swapped)

    def convs(net):
        return {n for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)}

    assert convs(fast) == convs(plain)  # same places, same names: only the class changed
    image = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        (ref, *_), ref_pix = plain.encode_image(image)
        (out, *_), out_pix = fast.encode_image(image)
        sensory = torch.zeros(1, 256, 4, 6)
        ref_v = plain.encode_mask(image, ref_pix, sensory, image[:, :1])[0]
        out_v = fast.encode_mask(image, out_pix, sensory, image[:, :1])[0]
    for a, b in ((ref, out), (ref_pix, out_pix), (ref_v, out_v)):
        assert (a - b).abs().max() <= 1e-4 * a.abs().max()
    x = torch.rand(1, 256, 4, 6, requires_grad=True)  # training keeps the ordinary path (NNPACK has no backward)
    conv = swapped[0]
    if conv.in_channels == 256:
        conv(x).sum().backward()
        assert x.grad is not None
