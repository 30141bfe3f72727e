"""MatAnyone from the API and the CLI: weights (path, hub folder, cache, download, offline), target
masks (grey, binary 1s, 16-bit, RGB(A), palette, labels, size fixes, empty), several targets in
one pass, and the fixture's alpha through ``iter_matte``.

Model runs use the fixture's recipe weights (``../shared/fixtures/matanyone``); those tests skip
when the fixture is not there. The mask tests need no model.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

import vmatte
from conftest import matanyone_recipe_state_dict, serve_bytes, write_h264  # noqa: E402
from vmatte.cli import main
from vmatte.errors import InputError, VmatteError, WeightsError
from vmatte.io.masks import MaskSizeWarning, as_target_mask, fit_to_frame, read_mask

FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "matanyone"
CASE = FIXTURE / "case_short"
EXACT = ["--warmup-frames", "0", "--erode", "0", "--dilate", "0"]  # the fixture's settings

needs_fixture = pytest.mark.skipif(not (FIXTURE / "recipe.py").is_file(), reason=f"no MatAnyone fixture at {FIXTURE}")


@pytest.fixture
def cache(cache, monkeypatch) -> Path:
    """conftest's empty cache, offline."""
    monkeypatch.setenv("VMATTE_OFFLINE", "1")
    return cache


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """The recipe weights as a .pth and as a hub folder (model.safetensors + config.json)."""
    if not (FIXTURE / "recipe.py").is_file():
        pytest.skip(f"no MatAnyone fixture at {FIXTURE}")
    from safetensors.torch import save_file

    sd = matanyone_recipe_state_dict()
    root = tmp_path_factory.mktemp("matanyone_weights")
    torch.save(sd, root / "matanyone.pth")
    hub = root / "hub"
    hub.mkdir()
    save_file(
        {k: v.contiguous() for k, v in sd.items() if not k.startswith("aux_computer.")}, str(hub / "model.safetensors")
    )
    (hub / "config.json").write_text(json.dumps({"model": "matanyone"}))
    return {"pth": root / "matanyone.pth", "hub": hub}


def _case_frames(n: int) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(CASE / f"{i:05d}.png")), cv2.COLOR_BGR2RGB) for i in range(n)]


def _folder(tmp_path: Path, n: int) -> Path:
    d = tmp_path / "clip"
    d.mkdir()
    for i in range(n):
        shutil.copy(CASE / f"{i:05d}.png", d / f"{i:05d}.png")
    return d


def _mp4(tmp_path: Path, n: int) -> Path:
    return write_h264(tmp_path / "clip.mp4", _case_frames(n), fps=25, crf=8)


def _count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [l for l in err if l.startswith("vmatte: error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- end to end -----------------------------------------------------------------------------


@needs_fixture
def test_cli_matanyone_pth_on_mp4(weights, cache, tmp_path, capsys):
    clip = _mp4(tmp_path, 4)
    out = tmp_path / "out"
    rc = main(
        [
            "matte",
            str(clip),
            "--model",
            "matanyone",
            "--weights",
            str(weights["pth"]),
            "--mask",
            str(CASE / "mask.png"),
            "-o",
            str(out),
            "-f",
            "alpha,alpha-png",
            *EXACT,
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "S-Lab License 1.0 (non-commercial)" in captured.err  # the licence is named where loaded
    assert _count_frames(out / "clip_alpha.mp4") == 4
    assert len(list((out / "clip_alpha").glob("*.png"))) == 4


@needs_fixture
def test_iter_matte_hub_folder_reproduces_the_fixture(weights, cache, tmp_path):
    folder = _folder(tmp_path, 8)
    matter = vmatte.load_matter(
        "matanyone", weights=weights["hub"], mask=CASE / "mask.png", device="cpu", warmup_frames=0, erode=0, dilate=0
    )
    alphas = [r.alpha for r in vmatte.iter_matte(folder, model=matter)]
    ref = np.load(CASE / "reference.npz")["alpha"]
    assert len(alphas) == len(ref) == 8
    for got, want in zip(alphas, ref):
        assert np.abs(got - want).max() <= 5e-4
        assert np.abs(got - want).mean() <= 2e-5
    assert matter.network.encodes == 8  # the mask step and the first prediction share frame 0's encoding


@needs_fixture
def test_mem_every_reaches_the_memory_schedule(weights, cache, tmp_path, capsys):
    """``--mem-every N`` (declared once in engine/options.py): the memory takes a frame every N frames,
    so the mattes change from the first frame the schedules differ; a manifest column and a range
    check come with the declaration, other models refuse it."""
    folder = _folder(tmp_path, 8)
    exact = dict(weights=weights["hub"], mask=CASE / "mask.png", device="cpu", warmup_frames=0, erode=0, dilate=0)
    every = {n: vmatte.load_matter("matanyone", mem_every=n, **exact) for n in (1, 5)}
    assert every[1].settings.mem_every == 1 and every[5].settings.mem_every == 5
    alphas = {n: [r.alpha for r in vmatte.iter_matte(folder, model=m)] for n, m in every.items()}
    ref = np.load(CASE / "reference.npz")["alpha"]  # the fixture's schedule is the default, 5
    assert all(np.abs(a - b).max() <= 5e-4 for a, b in zip(alphas[5], ref))
    assert np.array_equal(alphas[1][1], alphas[5][1])  # frame 1 reads frame 0's memory either way
    assert max(np.abs(a - b).max() for a, b in zip(alphas[1][2:], alphas[5][2:])) > 1e-3
    args = ["matte", str(folder), "-o", str(tmp_path / "out"), "--mask", str(CASE / "mask.png")]
    assert main([*args, "--model", "matanyone", "--weights", str(weights["hub"]), "--mem-every", "0"]) == 2
    assert _one_line_error(capsys) == "vmatte: error: --mem-every must be at least 1, got 0"
    assert main([*args, "--model", "rvm-target", "--mem-every", "2"]) == 2
    assert "--model rvm-target does not take --mem-every (an option of matanyone, matanyone2)" in _one_line_error(
        capsys
    )


@needs_fixture
def test_two_ids_in_one_pass_give_two_output_sets(weights, cache, tmp_path, capsys):
    clip = _folder(tmp_path, 3)
    mask = cv2.imread(str(CASE / "mask.png"), cv2.IMREAD_GRAYSCALE)
    labels = np.zeros_like(mask)
    labels[mask > 0] = 1
    left = np.zeros_like(mask, bool)
    left[:, :120] = True
    labels[(mask > 0) & left] = 2
    labels = cv2.resize(labels, (256, 136), interpolation=cv2.INTER_NEAREST)  # 8 px short: fixed with a warning
    cv2.imwrite(str(tmp_path / "labels.png"), labels)
    out = tmp_path / "out"
    rc = main(
        [
            "matte",
            str(clip),
            "--model",
            "matanyone",
            "--weights",
            str(weights["pth"]),
            "--mask",
            str(tmp_path / "labels.png"),
            "-o",
            str(out),
            "-f",
            "alpha,alpha-png16",
            "-q",
            *EXACT,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "vmatte: warning: the mask" in err and "256x136 but the video is 256x144; resized" in err
    for i in (1, 2):
        assert _count_frames(out / f"clip_id{i}_alpha.mp4") == 3
        assert len(list((out / f"clip_id{i}_alpha16").glob("*.png"))) == 3
    assert not (out / "clip_alpha.mp4").exists()
    a1 = cv2.imread(str(sorted((out / "clip_id1_alpha16").glob("*.png"))[0]), cv2.IMREAD_UNCHANGED)
    a2 = cv2.imread(str(sorted((out / "clip_id2_alpha16").glob("*.png"))[0]), cv2.IMREAD_UNCHANGED)
    assert not np.array_equal(a1, a2)


@needs_fixture
def test_several_targets_equal_separate_runs_and_share_the_encoder(weights, cache):
    from vmatte.matte import load_matter

    frames = _case_frames(2)
    mask = cv2.imread(str(CASE / "mask.png"), cv2.IMREAD_GRAYSCALE)
    one = np.where(mask > 0, 255, 0).astype(np.uint8)
    two = np.zeros_like(one)
    two[20:80, 150:230] = 255
    opts = dict(weights=weights["pth"], device="cpu", warmup_frames=1, erode=3, dilate=3)
    both = load_matter("matanyone", mask={3: one, 7: two}, **opts)
    assert both.targets == (3, 7)
    both.reset()
    got = [both.step_all(f, foreground=False)[1] for f in frames]
    assert both.network.encodes == 2  # once per frame for both targets (warm-up repeats included)
    for i, m in ((3, one), (7, two)):
        single = load_matter("matanyone", mask=m, **opts)
        single.reset()
        want = [single.step(f, foreground=False)[1] for f in frames]
        for g, w in zip(got, want):
            assert np.abs(g[i] - w).max() <= 1e-4  # the targets run batched: float rounding differs


# --- weights --------------------------------------------------------------------------------


@needs_fixture
def test_auto_uses_matanyone_from_the_cache_when_a_mask_is_given(weights, cache):
    from vmatte.engine.matanyone.matter import MatAnyoneMatter

    cache.mkdir(parents=True)
    (cache / "matanyone.pth").symlink_to(weights["pth"])
    matter = vmatte.load_matter("auto", mask=CASE / "mask.png", device="cpu")
    assert isinstance(matter, MatAnyoneMatter)
    assert "--model auto: a mask was given" in matter.description and str(cache / "matanyone.pth") in matter.description


def test_offline_without_weights_names_the_cache_path(cache, tmp_path, clip_factory, capsys):
    clip = clip_factory("c.mp4", n=2, w=64, h=48)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 10:30] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    args = ["matte", str(clip), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "out")]
    assert main([*args, "--model", "matanyone"]) == 2
    line = _one_line_error(capsys)
    assert str(cache / "matanyone.pth") in line and "--weights" in line
    assert main([*args, "--model", "matanyone2"]) == 2
    assert str(cache / "matanyone2.pth") in _one_line_error(capsys)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # --model auto with a mask and no weights: the offline target mode, and it says so
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "rvm-target" in err and "no MatAnyone weights" in err and str(cache) in err
    assert any((tmp_path / "out").iterdir())


def test_option_mistakes_are_one_line_errors(cache, tmp_path, clip_factory, capsys):
    clip = clip_factory("c.mp4", n=2, w=64, h=48)
    cv2.imwrite(str(tmp_path / "m.png"), np.full((48, 64), 255, np.uint8))
    out = ["-o", str(tmp_path / "out")]
    assert main(["matte", str(clip), "--model", "rvm", "--mask", str(tmp_path / "m.png"), *out]) == 2
    assert "takes no --mask" in _one_line_error(capsys)
    assert main(["matte", str(clip), "--model", "matanyone", *out]) == 2
    assert "--mask PATH" in _one_line_error(capsys)
    assert main(["matte", str(clip), "--erode", "3", *out]) == 2
    assert "--model rvm does not take --erode (an option of matanyone, matanyone2)" in _one_line_error(capsys)
    assert main(["matte", str(clip), "--model", "matanyone", "--mask", str(tmp_path / "none.png"), *out]) == 2
    assert "mask not found" in _one_line_error(capsys)


def test_pickle_payload_pth_is_refused(cache, tmp_path, clip_factory, capsys):
    import datetime

    bad = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2), "payload": datetime.datetime(2020, 1, 1)}, bad)
    with pytest.raises(WeightsError, match="refusing to load"):
        vmatte.load_matter("matanyone", weights=bad, mask=np.full((8, 8), 255, np.uint8))
    clip = clip_factory("c.mp4", n=2, w=64, h=48)
    cv2.imwrite(str(tmp_path / "m.png"), np.full((48, 64), 255, np.uint8))
    rc = main(
        [
            "matte",
            str(clip),
            "--model",
            "matanyone",
            "--weights",
            str(bad),
            "--mask",
            str(tmp_path / "m.png"),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 2 and "refusing to load" in _one_line_error(capsys)


def test_hub_folder_without_safetensors_and_wrong_checkpoint(cache, tmp_path):
    from vmatte.weights import resolve_matanyone

    (tmp_path / "hub").mkdir()
    with pytest.raises(WeightsError, match="model.safetensors"):
        resolve_matanyone("matanyone", tmp_path / "hub")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="do not fit MatAnyone"):
        vmatte.load_matter("matanyone", weights=tmp_path / "other.pth", mask=np.full((8, 8), 255, np.uint8))


def test_download_into_cache_records_sha256_then_reads_cache(tmp_path, monkeypatch):
    import io

    from vmatte import weights as W

    monkeypatch.setenv("VMATTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VMATTE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    buf = io.BytesIO()
    torch.save({"a": torch.arange(4.0)}, buf)
    with serve_bytes(buf.getvalue(), "matanyone.pth") as url:
        monkeypatch.setitem(
            W.MATANYONE_REMOTE, "matanyone", W.RemoteFile("matanyone.pth", url, None, W.MATANYONE_LICENSE)
        )
        first = W.resolve_matanyone("matanyone")
        dest = tmp_path / "cache" / "matanyone.pth"
        assert first.source == str(dest) and torch.equal(first.state_dict["a"], torch.arange(4.0))
        record = json.loads((tmp_path / "cache" / "matanyone.pth.sha256.json").read_text())
        assert record["size"] == len(buf.getvalue()) and record["url"] == url
    assert W.resolve_matanyone("matanyone", allow_download=False).source == str(dest)  # from the cache now
    data = bytearray(dest.read_bytes())
    data[-1] ^= 1
    dest.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="changed since download"):
        W.resolve_matanyone("matanyone")


# --- masks ----------------------------------------------------------------------------------


def _square(h=48, w=64, value=255, dtype=np.uint8) -> np.ndarray:
    m = np.zeros((h, w), dtype)
    m[10:30, 20:40] = value
    return m


def _expected(h=48, w=64) -> np.ndarray:
    return _square(h, w)


def test_grey_binary_values_1_and_16bit_masks(tmp_path):
    for name, m in (
        ("grey.png", _square()),
        ("ones.png", _square(value=1)),
        ("sixteen.png", _square(value=65535, dtype=np.uint16)),
        ("sixteen_ones.png", _square(value=1, dtype=np.uint16)),
    ):
        cv2.imwrite(str(tmp_path / name), m)
        t = read_mask(tmp_path / name)
        assert t.ids == (1,) and t.kind == "binary", name
        assert np.array_equal(t.targets[1], _expected()), name


def test_soft_grey_mask_keeps_its_values(tmp_path):
    m = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    cv2.imwrite(str(tmp_path / "soft.png"), m)
    t = read_mask(tmp_path / "soft.png")
    assert t.kind == "soft" and t.ids == (1,) and np.array_equal(t.targets[1], m)


def test_rgb_and_rgba_masks(tmp_path):
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[10:30, 20:30] = (200, 0, 0)  # two colours: both are the target
    rgb[10:30, 30:40] = (0, 0, 90)
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb)
    t = read_mask(tmp_path / "rgb.png")
    assert t.ids == (1,) and t.kind == "rgb" and np.array_equal(t.targets[1], _expected())
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere, the target is in the alpha
    rgba[..., 3] = _square()
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    assert np.array_equal(read_mask(tmp_path / "rgba.png").targets[1], _expected())
    grey_as_rgb = np.repeat(_square(value=1)[..., None], 3, axis=2)
    assert np.array_equal(as_target_mask(grey_as_rgb).targets[1], _expected())


def test_palette_mask_ids_are_palette_indices(tmp_path):
    from PIL import Image

    idx = np.zeros((48, 64), np.uint8)
    idx[5:15, 5:15] = 2
    idx[20:40, 30:60] = 5
    im = Image.fromarray(idx, "P")
    palette = [0, 0, 0] * 256
    palette[6:9] = [255, 255, 255]  # index 2 white, index 5 the same white: ids still differ
    palette[15:18] = [255, 255, 255]
    im.putpalette(palette)
    im.save(tmp_path / "pal.png")
    t = read_mask(tmp_path / "pal.png")
    assert t.kind == "palette" and t.ids == (2, 5)
    assert np.array_equal(t.targets[2] > 0, idx == 2) and np.array_equal(t.targets[5] > 0, idx == 5)


def test_label_masks_8_and_16_bit(tmp_path):
    for dtype in (np.uint8, np.uint16):
        lab = np.zeros((48, 64), dtype)
        lab[5:15, 5:15] = 1
        lab[20:40, 30:60] = 3
        cv2.imwrite(str(tmp_path / "lab.png"), lab)
        t = read_mask(tmp_path / "lab.png")
        assert t.kind == "labels" and t.ids == (1, 3)
        assert np.array_equal(t.targets[3] > 0, lab == 3)


def test_mask_a_few_pixels_off_is_resized_with_a_warning():
    m = as_target_mask(_square(1080, 1920))
    with pytest.warns(MaskSizeWarning, match="1920x1080 but the video is 1920x1088; resized") as rec:
        fitted = fit_to_frame(m, (1088, 1920))
    assert "very different" not in str(rec[0].message)
    assert fitted.shape == (1088, 1920) and fitted.targets[1].max() == 255
    with pytest.warns(MaskSizeWarning, match="very different size"):
        assert fit_to_frame(as_target_mask(_square()), (96, 128)).shape == (96, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit_to_frame(m, (1080, 1920)) is m  # same size: no warning


@needs_fixture
def test_mask_size_fix_in_a_run(weights, cache, tmp_path):
    mask = cv2.imread(str(CASE / "mask.png"), cv2.IMREAD_GRAYSCALE)
    off = cv2.resize(mask, (256, 136), interpolation=cv2.INTER_NEAREST)  # 8 px short, as 1080 vs 1088
    matter = vmatte.load_matter(
        "matanyone", weights=weights["pth"], mask=off, device="cpu", warmup_frames=0, erode=0, dilate=0
    )
    matter.reset()
    with pytest.warns(MaskSizeWarning, match="256x136 but the video is 256x144; resized"):
        _, alpha = matter.step(_case_frames(1)[0], foreground=False)
    assert alpha.shape == (144, 256)


def test_empty_mask_is_a_clear_error(tmp_path, clip_factory, capsys, cache):
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((48, 64), np.uint8))
    with pytest.raises(InputError, match="no target pixel"):
        read_mask(tmp_path / "empty.png")
    with pytest.raises(VmatteError, match="no target pixel"):
        as_target_mask(np.zeros((4, 4, 3), np.uint8))
    clip = clip_factory("c.mp4", n=2, w=64, h=48)
    rc = main(
        ["matte", str(clip), "--model", "matanyone", "--mask", str(tmp_path / "empty.png"), "-o", str(tmp_path / "out")]
    )
    assert rc == 2 and "no target pixel" in _one_line_error(capsys)
    tiny = np.zeros((480, 640), np.uint8)
    tiny[5, 5] = 255  # one pixel: gone at a tenth of the size
    with warnings.catch_warnings():  # the error comes alone: no size warning before it
        warnings.simplefilter("error", MaskSizeWarning)
        with pytest.raises(InputError, match="vanished"):
            fit_to_frame(as_target_mask(tiny), (48, 64))
