"""VideoMaMa on tiny random weights of the real classes (diffusers' SVD UNet and temporal VAE).

The weights are saved in the hub layout (``unet/`` + ``vae/``: config.json + safetensors) and
loaded through ``--weights DIR``, the path the released weights take, so the CLI runs end to end
on a CPU in seconds. What is checked: the loaded network computes what the saved one did; frame
count, fps and size survive; long videos are chunked with at most one chunk of frames held, and
frames covered by one chunk only equal a single pass of that chunk; the cross-fade; the
pad-not-stretch geometry; bad input gives one line and exit code 2, and no output.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import make_clip
from vmatte import load_matter
from vmatte.cli import main
from vmatte.engine.videomama import Placement, canvas_for, chunked, crossfade_weights
from vmatte.io.masks import FrameMasks
from vmatte.io.reader import Frame, open_source
from vmatte.models.videomama import VideoMaMa, tiny_unet_config, tiny_vae_config

W, H, N, FPS = 64, 48, 28, 30  # 28 frames: chunks 0-15, 12-27 and the tail 24-27 (filled up to 16)
CANVAS = (64, 36)  # a 16:9 canvas; the 4:3 clip is padded left and right
RUN = "32"  # --max-size for the model runs: a 32x20 canvas keeps the CPU time small


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> tuple[Path, VideoMaMa]:
    torch.manual_seed(0)
    model = VideoMaMa.from_config(tiny_unet_config(), tiny_vae_config()).eval()
    root = tmp_path_factory.mktemp("videomama-tiny")
    model.unet.save_pretrained(root / "unet")
    model.vae.save_pretrained(root / "vae")
    return root, model


def _mask(i: int) -> np.ndarray:
    """A coarse box that moves 1 px per frame."""
    m = np.zeros((H, W), np.uint8)
    m[10:40, 12 + i % 20 : 36 + i % 20] = 255
    return m


@pytest.fixture(scope="module")
def clip_and_masks(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("videomama-clip")
    clip = make_clip(root / "clip.mp4", N, W, H, fps=FPS)
    masks = root / "masks"
    masks.mkdir()
    for i in range(N):
        cv2.imwrite(str(masks / f"{i:05d}.png"), _mask(i))
    return clip, masks


def test_weights_load_through_the_hub_layout(tiny_weights, clip_and_masks):
    root, model = tiny_weights
    matter = load_matter(
        "videomama", masks=FrameMasks(clip_and_masks[1]), weights=root, device="cpu", max_size=int(RUN)
    )
    frames = torch.rand(8, 3, 20, 32) * 2 - 1
    masks = (torch.rand(8, 1, 20, 32) > 0.5).float()
    with torch.inference_mode():
        want, got = model(frames, masks), matter.model(frames, masks)
    assert got.shape == (8, 20, 32) and float(got.min()) >= 0 and float(got.max()) <= 1
    # The network is built on the meta device: it only runs if every tensor was loaded (assigned),
    # and then computes what the saved one did (to float rounding).
    assert float((want - got).abs().max()) < 1e-5
    with torch.inference_mode():  # the frames of a chunk are matted together: the temporal layers are live
        other = model(torch.cat([frames[:4], frames[4:].flip(0)]), torch.cat([masks[:4], masks[4:].flip(0)]))
    assert not torch.allclose(other[:4], want[:4])


def test_cli_end_to_end_keeps_frames_fps_and_size(tiny_weights, clip_and_masks, tmp_path, capsys):
    clip, masks = clip_and_masks
    out = tmp_path / "out"
    rc = main(
        [
            "matte",
            str(clip),
            "--masks",
            str(masks),
            "--model",
            "videomama",
            "--weights",
            str(tiny_weights[0]),
            "--max-size",
            RUN,
            "--device",
            "cpu",
            "-f",
            "alpha,alpha-png",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    with open_source(out / "clip_alpha.mp4") as src:
        assert (src.info.width, src.info.height, src.info.fps) == (W, H, Fraction(FPS))
        assert sum(1 for _ in src) == N
    assert len(list((out / "clip_alpha").glob("*.png"))) == N


def _frames(n: int) -> list[Frame]:
    rng = np.random.default_rng(1)
    return [Frame(i, rng.integers(0, 256, (H, W, 3), dtype=np.uint8), i / FPS) for i in range(n)]


def test_long_video_is_chunked_with_bounded_memory(tiny_weights, clip_and_masks):
    matter = load_matter(
        "videomama", masks=FrameMasks(clip_and_masks[1]), weights=tiny_weights[0], device="cpu", max_size=int(RUN)
    )
    s = matter.settings
    assert (s.size, s.chunk_frames, s.overlap) == ((32, 20), 16, 4)
    frames = _frames(N)
    pulled = 0

    def source():
        nonlocal pulled
        for f in frames:
            pulled += 1
            yield f

    results, held = [], 0
    matter.reset()
    for frame, _fgr, alphas in matter.run(map(matter.mask_source.annotate, source())):  # the loop's mask step
        alpha = alphas[None]
        held = max(held, pulled - len(results))  # frames read but not yet given back
        results.append((frame.index, alpha))
    assert [i for i, _ in results] == list(range(N))
    assert held <= s.chunk_frames
    # Frames 0..11 are in the first chunk only: exactly a single pass of frames 0..15.
    place = Placement.fit(H, W, s.size)
    first = matter.run_chunk(
        np.stack([place.image(f.image) for f in frames[:16]]),
        np.stack([place.mask(matter.mask_source.mask(i, (H, W))) for i in range(16)]),
    )
    for i in range(12):
        assert np.array_equal(results[i][1], place.back(first[i]))
    # Frame 12 is cross-faded with the second chunk: not the first chunk's alone.
    assert not np.allclose(results[12][1], place.back(first[12]))
    assert all(a.shape == (H, W) and a.dtype == np.float32 for _, a in results)


def test_crossfade_weights_and_blend():
    for overlap in (1, 4, 7):
        w = crossfade_weights(overlap)
        assert np.all(np.diff(w) > 0) and 0 < w[0] and w[-1] < 1  # earlier chunk fades out, later fades in
        # the weights of the two chunks sum to 1: a value both chunks agree on comes out unchanged
        same = dict(chunked(range(25), lambda win: [np.full(2, 0.7, np.float32) for _ in win], 8, overlap))
        assert all(np.allclose(v, 0.7, atol=1e-6) for v in same.values()) and list(same) == list(range(25))
    windows = []

    def run(window):  # each window answers its own number: the blend is then visible exactly
        windows.append(list(window))
        return [np.full(2, float(len(windows))) for _ in window]

    out = dict(chunked(range(10), run, chunk=4, overlap=2))
    assert windows == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    assert list(out) == list(range(10))
    w = crossfade_weights(2)
    assert out[0][0] == 1 and out[1][0] == 1  # one window only
    assert out[2][0] == pytest.approx((1 - w[0]) * 1 + w[0] * 2)
    assert out[3][0] == pytest.approx((1 - w[1]) * 1 + w[1] * 2)
    assert out[8][0] == 4 and out[9][0] == 4  # the video ended with a full window: its tail is its own


def test_pad_not_stretch_geometry():
    p = Placement.fit(H, W, CANVAS)  # 4:3 in 16:9: scaled to 48x36, 8 px of padding each side
    assert (p.inner, p.offset, p.canvas) == ((48, 36), (8, 0), CANVAS)
    mask = np.zeros((H, W), np.float32)
    mask[8:24, 16:48] = 1.0  # a 32x16 box keeps its place and its 2:1 shape
    canvas = p.mask(mask)[0]
    assert canvas[:, :8].max() == 0 and canvas[:, -8:].max() == 0  # padding is empty
    ys, xs = np.nonzero(canvas > 0.5)
    assert (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1) == pytest.approx(2.0, rel=0.1)
    back = p.back(canvas) > 0.5
    assert (back & (mask > 0)).sum() / (back | (mask > 0)).sum() > 0.9
    portrait = Placement.fit(W, H, CANVAS)  # a portrait video gets the canvas turned
    assert portrait.canvas == (36, 64) and portrait.inner == (36, 48)
    assert canvas_for(1024, 64) == (1024, 576) and canvas_for(512, 64) == (512, 320)
    assert p.image(np.zeros((H, W, 3), np.uint8)).shape == (3, 36, 64)


@pytest.mark.parametrize("case", ["gap", "too-few", "no-masks", "matanyone", "bad-weights", "not-12-channels"])
def test_bad_input_one_line_exit_2_no_output(case, tiny_weights, clip_and_masks, tmp_path, capsys):
    clip, masks = clip_and_masks
    weights = tiny_weights[0]
    args = ["--masks", str(masks)]
    if case in ("gap", "too-few"):
        folder = tmp_path / "m"
        folder.mkdir()
        keep = [i for i in range(N) if i != 7] if case == "gap" else range(N - 3)
        for i in keep:
            cv2.imwrite(str(folder / f"{i:05d}.png"), _mask(i))
        args = ["--masks", str(folder)]
    elif case == "no-masks":
        args = []
    elif case == "bad-weights":
        weights = tmp_path
    elif case == "not-12-channels":
        torch.manual_seed(0)
        weights = tmp_path / "w"
        net = VideoMaMa.from_config(tiny_unet_config(), tiny_vae_config())
        from diffusers import UNetSpatioTemporalConditionModel

        UNetSpatioTemporalConditionModel.from_config({**tiny_unet_config(), "in_channels": 8}).save_pretrained(
            weights / "unet"
        )
        net.vae.save_pretrained(weights / "vae")
    model = "matanyone" if case == "matanyone" else "videomama"
    out = tmp_path / "out"
    rc = main(
        [
            "matte",
            str(clip),
            "--model",
            model,
            "--weights",
            str(weights),
            "--max-size",
            RUN,
            "--device",
            "cpu",
            "-f",
            "alpha",
            "-o",
            str(out),
            "-q",
            *args,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("vmatte: error:") and len(err.splitlines()) == 1, err
    assert not list(out.glob("*")) if out.exists() else True
    expect = {
        "gap": "frame number(s) 7",
        "too-few": "no mask for frame 25",
        "no-masks": "--masks DIR",
        "matanyone": "--masks-dir",
        "bad-weights": "unet/",
        "not-12-channels": "12 input channels",
    }[case]
    assert expect in err
