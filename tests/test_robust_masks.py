"""Robustness suite, masks: odd and bad ``--mask`` files through the real CLI (rvm-target, which
ships). One table (``CASES``), outcomes checked by ``robust_cases``; docs/robustness.md lists it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import make_clip
from robust_cases import ERROR, HANDLED, Case, Expect, check_outcome, run_case

W, H, N = 64, 48, 3


def _box(h: int = H, w: int = W, value: int = 255, dtype=np.uint8) -> np.ndarray:
    m = np.zeros((h, w), dtype)
    m[h // 4 : 3 * h // 4, w // 3 : 2 * w // 3] = value
    return m


def _with(write):
    """A case input: a clip plus the mask file ``write(tmp) -> path`` makes."""

    def make(tmp: Path) -> list:
        clip = make_clip(tmp / "clip.mp4", N, W, H)
        return [clip, "--mask", write(tmp), "--model", "rvm-target", "--device", "cpu", "-f", "alpha"]

    return make


def _png(name: str, array: np.ndarray):
    def write(tmp: Path) -> Path:
        path = tmp / name
        assert cv2.imwrite(str(path), array)
        return path

    return write


def _pil(name: str, make_image, **save):
    def write(tmp: Path) -> Path:
        path = tmp / name
        make_image().save(path, **save)
        return path

    return write


def _palette():
    from PIL import Image

    labels = np.zeros((H, W), np.uint8)
    labels[5:20, 5:25] = 1
    labels[25:45, 35:60] = 2
    img = Image.fromarray(labels, mode="P")
    img.putpalette([0, 0, 0, 200, 30, 30, 30, 200, 30] + [0] * (256 * 3 - 9))
    return img


def _cmyk():
    from PIL import Image

    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[12:36, 21:42] = 255
    return Image.fromarray(rgb, mode="RGB").convert("CMYK")


def _labels(n: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    for i in range(1, n + 1):
        m[:, (i - 1) * W // n + 2 : i * W // n - 2] = i
    return m


def _rgb() -> np.ndarray:
    m = np.zeros((H, W, 3), np.uint8)
    m[12:36, 21:42] = (0, 0, 255)  # a red target (BGR on disk)
    return m


def _rgba() -> np.ndarray:
    m = np.zeros((H, W, 4), np.uint8)
    m[..., :3] = 90  # colour everywhere: only the alpha marks the target
    m[12:36, 21:42, 3] = 255
    return m


def _text(tmp: Path) -> Path:
    (tmp / "mask.png").write_text("not an image")
    return tmp / "mask.png"


def _ok(outputs: int = 1, warn: str | None = None) -> Expect:
    return Expect(HANDLED, frames=N, size=(W, H), outputs=outputs, stderr_has=(warn,) if warn else ())


CASES = [
    Case("mask grey 8-bit 0/255", _with(_png("m.png", _box())), _ok()),
    Case("mask RGB (non-black = target)", _with(_png("m.png", _rgb())), _ok()),
    Case("mask RGBA (alpha = target)", _with(_png("m.png", _rgba())), _ok()),
    Case("mask grey 16-bit 0/65535", _with(_png("m.png", _box(value=65535, dtype=np.uint16))), _ok()),
    Case("mask palette PNG, 2 ids", _with(_pil("m.png", _palette)), _ok(outputs=2)),
    Case("mask CMYK JPEG", _with(_pil("m.jpg", _cmyk, quality=95)), _ok()),
    Case("mask values 1 instead of 255", _with(_png("m.png", _box(value=1))), _ok()),
    Case("label mask ids 0..3", _with(_png("m.png", _labels(3))), _ok(outputs=3)),
    Case("mask 2 px off the frame size", _with(_png("m.png", _box(H + 2, W - 2))), _ok(warn="resized")),
    Case(
        "mask much smaller than the frame (1/4)",
        _with(_png("m.png", _box(H // 4, W // 4))),
        _ok(warn="very different size"),
    ),
    Case("empty mask (all black)", _with(_png("m.png", np.zeros((H, W), np.uint8))), Expect(ERROR, ("no target",))),
    # one target pixel at (1, 1) of a 256x192 mask: nearest-neighbour resizing to 64x48 skips it
    Case(
        "target vanishes when a large mask is resized",
        _with(_png("m.png", np.pad(np.full((1, 1), 255, np.uint8), ((1, 190), (1, 254))))),
        Expect(ERROR, ("vanished",)),
    ),
    Case(
        "mask of another shape (200x200 on 64x48)",
        _with(_png("m.png", _box(200, 200))),
        Expect(ERROR, ("200x200", "another shape")),
    ),
    Case("mask is a text file named .png", _with(_text), Expect(ERROR, ("cannot read the mask",))),
    Case("mask file missing", _with(lambda tmp: tmp / "none.png"), Expect(ERROR, ("mask not found",))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_mask_case(case: Case, tmp_path, capsys):
    code, stdout, err, out = run_case(case, tmp_path, capsys)
    check_outcome(case, code, stdout, err, out)
