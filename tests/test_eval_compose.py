"""vmatte.eval.compose and `vmatte bench compose`: tiny clips (64x36, 8 frames) so this runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import make_clip
from vmatte.cli import main
from vmatte.errors import VmatteError
from vmatte.eval.compose import ComposeSettings, Motion, MotionRange, compose_clips, find_foregrounds, parse_size

SIZE = (64, 36)
FRAMES = 8
BG_RGB = (10, 200, 30)


def _soft_disc(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot((x - w / 2) / (w / 3), (y - h / 2) / (h / 3))
    return np.clip((1.0 - r) * 4, 0, 1)  # opaque core, a soft ramp at the edge, 0 outside


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    alpha = _soft_disc(30, 40)
    # An RGBA still: colour gradient (so warps show up in fgr), soft alpha.
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 0] = np.linspace(40, 250, 40)[None, :]
    rgba[..., 1] = np.linspace(250, 40, 30)[:, None]
    rgba[..., 2] = 90
    rgba[..., 3] = np.rint(alpha * 255)
    cv2.imwrite(str(d / "blob.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    # A JPEG + grey PNG alpha pair (AM-2k layout): red foreground composited over blue.
    img = alpha[..., None] * np.array([230, 20, 20]) + (1 - alpha[..., None]) * np.array([20, 20, 230])
    cv2.imwrite(
        str(d / "photo.jpg"),
        cv2.cvtColor(np.rint(img).astype(np.uint8), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, 100],
    )
    cv2.imwrite(str(d / "photo.png"), np.rint(alpha * 255).astype(np.uint8))
    # Backgrounds: a flat image (so the expected composite is known) and a short video.
    bg = np.zeros((40, 80, 3), np.uint8)
    bg[:] = BG_RGB
    cv2.imwrite(str(d / "flat.png"), cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))
    make_clip(d / "bg.mp4", 5, 64, 48)
    # VideoMatte240K layout with image folders, 3 frames (shorter than the clip).
    for sub in ("fgr", "pha"):
        (d / "vm" / sub / "0000").mkdir(parents=True)
    for i in range(3):
        f = np.zeros((36, 48, 3), np.uint8)
        f[:] = (200, 100 + 20 * i, 50)
        cv2.imwrite(str(d / "vm" / "fgr" / "0000" / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(d / "vm" / "pha" / "0000" / f"{i:04d}.png"), np.rint(_soft_disc(36, 48) * 255).astype(np.uint8))
    (d / "clip.mp4").write_bytes((d / "bg.mp4").read_bytes())
    return {
        "dir": d,
        "rgba": d / "blob.png",
        "jpg": d / "photo.jpg",
        "alpha": d / "photo.png",
        "flat": d / "flat.png",
        "video": d / "bg.mp4",
        "vm": d / "vm",
        "fgvideo": d / "clip.mp4",
    }


def _settings(**kw) -> ComposeSettings:
    return ComposeSettings(**{"size": SIZE, "frames": FRAMES, **kw})


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def test_layout_and_clip_json(media, tmp_path):
    clips = compose_clips([media["rgba"]], [media["flat"]], tmp_path / "root", _settings(seed=3))
    assert [c.name for c in clips] == ["0000"]
    clip = tmp_path / "root" / "0000"
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["0000"]  # no temp folder left
    assert sorted(p.name for p in clip.iterdir()) == ["clip.json", "com", "fgr", "pha"]
    for sub in ("com", "fgr", "pha"):
        assert sorted(p.name for p in (clip / sub).iterdir()) == [f"{i:05d}.png" for i in range(FRAMES)]
    pha, com, fgr = (
        _read(clip / "pha" / "00000.png"),
        _read(clip / "com" / "00000.png"),
        _read(clip / "fgr" / "00000.png"),
    )
    assert pha.shape == (36, 64) and pha.dtype == np.uint8  # grey 8-bit
    assert com.shape == fgr.shape == (36, 64, 3)
    assert 0 < pha.mean() < 255 and (pha == 255).any() and (pha == 0).any()
    meta = json.loads((clip / "clip.json").read_text())
    assert meta["seed"] == 3 and meta["size"] == [64, 36] and meta["frames"] == FRAMES
    assert meta["source"]["image"] == str(media["rgba"]) and meta["background"] == str(media["flat"])
    assert meta["motion"]["params"] == ["rotation", "tx", "ty", "scale", "shear"]


def test_same_seed_same_bytes(media, tmp_path):
    def make(root, seed):
        compose_clips([media["rgba"]], [media["video"]], root, _settings(seed=seed, clips=2))
        return [(p.relative_to(root), p.read_bytes()) for p in sorted(root.rglob("*.png"))]

    a, b, c = make(tmp_path / "a", 7), make(tmp_path / "b", 7), make(tmp_path / "c", 8)
    assert len(a) == 2 * 3 * FRAMES
    assert a == b
    pha_a = [x for x in a if x[0].parts[1] == "pha"]
    pha_c = [x for x in c if x[0].parts[1] == "pha"]
    assert pha_a != pha_c  # another seed, another motion


def test_composite_equation(media, tmp_path):
    compose_clips([media["rgba"]], [media["flat"]], tmp_path, _settings(seed=1))
    for i in range(FRAMES):
        com = _read(tmp_path / "0000" / "com" / f"{i:05d}.png").astype(np.float64) / 255
        fgr = _read(tmp_path / "0000" / "fgr" / f"{i:05d}.png").astype(np.float64) / 255
        pha = _read(tmp_path / "0000" / "pha" / f"{i:05d}.png").astype(np.float64)[..., None] / 255
        expected = fgr * pha + np.array(BG_RGB) / 255 * (1 - pha)
        assert np.abs(com - expected).max() <= 0.5 / 255 + 1e-6  # one rounding to 8 bits


def test_motion_is_smooth():
    rng_range = MotionRange()
    m = Motion.random(np.random.default_rng(0), 100, rng_range)
    p = np.array([m.params(i) for i in range(100)])
    assert p.shape == (100, 5)
    assert np.allclose(p[0], m.keys[0]) and np.allclose(p[-1], m.keys[-1])
    seg = np.diff(m.key_frames).min()
    # smoothstep moves at most 1.5 x (key difference) / (frames between keys) per frame; key
    # differences are at most twice the range
    limits = (
        1.5
        * 2
        * np.array(
            [
                rng_range.rotation,
                rng_range.translation,
                rng_range.translation,
                np.log1p(rng_range.scale),
                rng_range.shear,
            ]
        )
        / seg
    )
    steps = np.abs(np.diff(np.column_stack([p[:, :3], np.log(p[:, 3]), p[:, 4]]), axis=0))
    assert (steps <= limits + 1e-12).all()
    assert steps[:, 0].max() < 1.3  # < 1.3 degrees of rotation per frame at 25 frames between keys
    # no jumps in speed either: the per-frame change itself changes slowly
    assert np.abs(np.diff(steps, axis=0)).max(axis=0).tolist() <= (limits / 4).tolist()
    assert (np.abs(p[:, 0]) <= rng_range.rotation).all() and (p[:, 3] >= 1 / 1.15 - 1e-9).all()


def test_alpha_moves_smoothly(media, tmp_path):
    compose_clips([media["rgba"]], [media["flat"]], tmp_path, _settings(seed=5, frames=24))
    cents = []
    for i in range(24):
        a = _read(tmp_path / "0000" / "pha" / f"{i:05d}.png").astype(np.float64)
        y, x = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
        cents.append(((a * x).sum() / a.sum(), (a * y).sum() / a.sum()))
    steps = np.hypot(*np.diff(np.array(cents), axis=0).T)
    assert steps.max() < 2.0  # px per frame in a 64x36 frame


def test_videomatte_layout_and_video_background(media, tmp_path):
    clips = compose_clips([media["vm"]], [media["video"]], tmp_path, _settings())
    assert len(clips) == 1 and clips[0].frames == 3  # the source has 3 frames
    assert len(list((tmp_path / "0000" / "pha").iterdir())) == 3
    fgr = _read(tmp_path / "0000" / "fgr" / "00002.png")
    pha = _read(tmp_path / "0000" / "pha" / "00002.png")
    assert np.allclose(fgr[pha > 250], (200, 140, 50), atol=1)


def test_jpeg_with_alpha_estimates_foreground(media, tmp_path):
    pytest.importorskip("pymatting")
    srcs = find_foregrounds([media["jpg"]])
    assert len(srcs) == 1 and srcs[0].alpha == media["alpha"]
    assert len(find_foregrounds([media["alpha"], media["jpg"]])) == 1  # the pair, named either way
    compose_clips([media["jpg"]], [media["flat"]], tmp_path, _settings(frames=2))
    fgr = _read(tmp_path / "0000" / "fgr" / "00000.png").astype(int)
    pha = _read(tmp_path / "0000" / "pha" / "00000.png")
    # The image is red over blue; the estimated foreground is red even where alpha is low.
    soft = (pha > 25) & (pha < 230)
    assert soft.sum() > 10
    assert np.abs(fgr[soft] - (230, 20, 20)).max() < 40


def test_cli_compose_and_overwrite(media, tmp_path, capsys):
    args = [
        "bench",
        "compose",
        "--fg",
        str(media["rgba"]),
        "--bg",
        str(media["flat"]),
        str(media["video"]),
        "-o",
        str(tmp_path),
        "--size",
        "64x36",
        "--frames",
        "3",
        "--clips",
        "2",
        "--seed",
        "4",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "0000" in out and "0001" in out
    meta = json.loads((tmp_path / "0001" / "clip.json").read_text())
    assert meta["background"] == str(media["video"]) and meta["frames"] == 3
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert main(args + ["--overwrite", "--frames", "2"]) == 0
    assert len(list((tmp_path / "0000" / "pha").iterdir())) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "fg,bg,extra,words",
    [
        ("missing.png", "flat", [], "not found"),
        ("fgvideo", "flat", [], "fgr/ and pha/"),
        ("flat", "flat", [], "no alpha"),
        ("rgba", "missing.mp4", [], "not found"),
        ("rgba", "flat", ["--size", "64by36"], "WIDTHxHEIGHT"),
        ("rgba", "flat", ["--frames", "0"], "at least 1"),
    ],
)
def test_bad_input_is_one_line_error(media, tmp_path, capsys, fg, bg, extra, words):
    def resolve(k):
        return str(media[k]) if k in media else str(media["dir"] / k)

    code = main(
        [
            "bench",
            "compose",
            "--fg",
            resolve(fg),
            "--bg",
            resolve(bg),
            "-o",
            str(tmp_path / "out"),
            "--size",
            "64x36",
            "--frames",
            "2",
            *extra,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_every_pair_comes_up(media, tmp_path):
    clips = compose_clips(
        [media["rgba"], media["vm"]], [media["flat"], media["video"]], tmp_path, _settings(frames=1, clips=4)
    )
    pairs = {(c.foreground["image"], c.background) for c in clips}
    assert len(pairs) == 4


def test_parse_size():
    assert parse_size("512x288") == (512, 288) and parse_size("1920X1080") == (1920, 1080)
    with pytest.raises(VmatteError):
        parse_size("0x10")
