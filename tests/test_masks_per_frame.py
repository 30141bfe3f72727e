"""``--masks DIR``: one coarse mask per frame, read by FrameMasks and used by RVM as mask-to-matte.

RVM runs on real footage (DAVIS parkour, whose per-frame annotations are the masks) with the
weights that ship; the gated alpha must be RVM's own alpha times the dilated mask, zero far from
the mask, and unchanged on it.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmatte.cli import main
from vmatte.engine.mask_to_matte import FrameMasks, GateSettings, gate
from vmatte.errors import InputError
from vmatte.matte import iter_matte, load_matter

DAVIS = Path("/work/shared/media/davis2016")


def _write(folder: Path, names_and_masks) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, m in names_and_masks:
        cv2.imwrite(str(folder / name), m)
    return folder


def test_numbering_from_one_labels_soft_and_size(tmp_path):
    box = np.zeros((20, 30), np.uint8)
    box[5:15, 5:15] = 255
    labels = np.zeros((20, 30), np.uint8)
    labels[0:5, 0:5], labels[15:20, 25:30] = 1, 2  # two ids: both are the target
    soft = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (20, 1))
    masks = FrameMasks(_write(tmp_path / "m", [("f0001.png", box), ("f0002.png", labels), ("f0003.png", soft)]))
    assert len(masks) == 3
    first = masks.mask(0, (20, 30))  # the lowest number is frame 0
    assert first.dtype == np.float32 and first[10, 10] == 1 and first[0, 0] == 0
    both = masks.mask(1, (20, 30))
    assert both[2, 2] == 1 and both[17, 27] == 1 and both[10, 10] == 0
    assert 0.4 < masks.mask(2, (20, 30))[0, 15] < 0.6  # a soft mask stays soft
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert masks.mask(0, (40, 60)).shape == (40, 60)
        assert masks.mask(1, (40, 60)).shape == (40, 60)
    assert len(caught) == 1  # a size mismatch is said once, not once per frame
    with pytest.raises(InputError, match="no mask for frame 3"):
        masks.mask(3, (20, 30))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masks.finish(2)
    assert "were not used" in str(caught[0].message)


def test_gaps_and_empty_folders_are_errors(tmp_path):
    m = np.full((4, 4), 255, np.uint8)
    with pytest.raises(InputError, match=r"frame number\(s\) 2 have no file"):
        FrameMasks(_write(tmp_path / "gap", [("00000.png", m), ("00001.png", m), ("00003.png", m)]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no mask images"):
        FrameMasks(tmp_path / "empty")


def test_gate_keeps_the_mask_and_a_feathered_band():
    mask = np.zeros((100, 100), np.float32)
    mask[40:60, 40:60] = 1
    g = gate(mask, GateSettings(dilate=6))
    assert g[40:60, 40:60].min() == 1  # on the mask: RVM's alpha untouched
    assert g[50, 63] == 1 and g[50, 75] == 0 and 0 < g[50, 67] < 1  # grown, then feathered, then nothing
    assert gate(mask, GateSettings(dilate=0)).sum() == mask.sum()


@pytest.fixture(scope="module")
def parkour(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("parkour")
    frames, masks = root / "frames", root / "masks"
    frames.mkdir(), masks.mkdir()
    for i in range(4):  # 4 frames at 854x480 are enough: the gate is per frame
        shutil.copy(DAVIS / "JPEGImages" / "parkour" / f"{i:05d}.jpg", frames / f"{i:05d}.jpg")
        shutil.copy(DAVIS / "Annotations" / "parkour" / f"{i:05d}.png", masks / f"{i:05d}.png")
    return frames, masks


def test_rvm_gated_by_per_frame_masks_on_real_footage(parkour):
    frames, masks = parkour
    plain = [r.alpha for r in iter_matte(frames, model="rvm", device="cpu", backend="torch")]
    gated = [r.alpha for r in iter_matte(frames, model="rvm", device="cpu", backend="torch", masks=masks, dilate=8)]
    fm = FrameMasks(masks)
    assert len(gated) == len(plain) == 4
    for i, (a, b) in enumerate(zip(plain, gated)):
        m = fm.mask(i, a.shape)
        g = gate(m, GateSettings(8))
        assert np.allclose(b, a * g, atol=1e-6)
        assert np.array_equal(b[m >= 0.5], a[m >= 0.5])  # on the mask: RVM's own alpha
        assert b[g == 0].max() == 0  # far from the mask: nothing, whatever RVM saw there
        assert a[m >= 0.5].mean() > 0.5  # the runner is a person RVM mattes: the check above is not vacuous


def test_cli_mask_options_are_checked(parkour, tmp_path, capsys):
    frames, masks = parkour
    out = tmp_path / "out"
    for extra in (
        ["--model", "matanyone"],
        ["--model", "rvm", "--mask", str(masks / "00000.png")],
        ["--model", "rvm", "--erode", "3"],
    ):
        rc = main(["matte", str(frames), "--masks", str(masks), "-o", str(out), "-f", "alpha", "-q", *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith("vmatte: error:") and len(err.splitlines()) == 1, err
    assert not out.exists() or not any(out.iterdir())
    m = load_matter("rvm-target", masks=masks, device="cpu")  # rvm-target with per-frame masks: RVM gated
    assert "per-frame masks" in m.description


def test_the_masks_ride_on_the_frame_and_leftovers_are_said(tmp_path):
    """The folder is the run's mask source: each result carries its frame's mask (read by the frame's own
    index, not by a count kept elsewhere), and masks the video did not reach are one warning."""
    from conftest import make_clip

    clip = make_clip(tmp_path / "c.mp4", 4, 64, 48)
    boxes = []
    for i in range(5):  # five masks for four frames, the box moving 3 px a frame
        m = np.zeros((48, 64), np.uint8)
        m[10:30, 5 + 3 * i : 25 + 3 * i] = 255
        boxes.append((f"{i:05d}.png", m))
    folder = _write(tmp_path / "m", boxes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = list(iter_matte(clip, model="rvm", device="cpu", masks=folder))
    fm = FrameMasks(folder)
    assert [r.index for r in got] == [0, 1, 2, 3]
    assert all(set(r.masks) == {1} and np.array_equal(r.masks[1], fm.mask(r.index, (48, 64))) for r in got)
    assert not np.array_equal(got[0].masks[1], got[3].masks[1])
    assert sum("were not used" in str(w.message) for w in caught) == 1
