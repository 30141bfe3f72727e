"""MatAnyone keyframe masks on a real clip: targets that enter later, and corrections.

``../shared/media/cutie-judo``: 16 frames (854x480, run here at 256x144 to stay fast) with
palette label masks at frames 0 (id 1), 5 (id 2), 8 (id 3) and 13 (id 4). The weights are the
fixture's recipe (random but deterministic), so these tests check behaviour, not quality: a
target has alpha 0 before its first mask and a matte from it on, a correction at a keyframe
makes that frame's alpha the (cleaned-up) mask as the official ``step(image, mask)`` does and
leaves the other targets alone, and the image encoder still runs once per frame.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmatte.cli import main
from vmatte.errors import InputError
from vmatte.io.masks import TargetMask, fit_to_frame, mask_schedule, parse_mask_at, read_mask, read_masks_dir

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURE = SHARED / "fixtures" / "matanyone"
JUDO = SHARED / "media" / "cutie-judo"
SIZE = (256, 144)  # w, h
FIRST = {1: 0, 2: 5, 3: 8, 4: 13}  # id -> frame of its first mask

pytestmark = pytest.mark.skipif(
    not ((FIXTURE / "recipe.py").is_file() and (JUDO / "masks").is_dir()),
    reason=f"no MatAnyone fixture or cutie-judo clip under {SHARED}",
)


@pytest.fixture(scope="module")
def weights(matanyone_recipe_file) -> Path:
    return matanyone_recipe_file


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    paths = sorted((JUDO / "frames").iterdir())
    return [
        cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), SIZE, interpolation=cv2.INTER_AREA)
        for p in paths
    ]


@pytest.fixture(scope="module")
def masks() -> dict[int, TargetMask]:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, p in read_masks_dir(JUDO / "masks").items():
            out[k] = fit_to_frame(read_mask(p, labels=True), (SIZE[1], SIZE[0]))
    return out


OPTS = dict(device="cpu", warmup_frames=1, erode=0, dilate=0)


def _run(weights, frames, keyframes):
    from vmatte.matte import load_matter

    matter = load_matter("matanyone", weights=weights, keyframes=keyframes, **OPTS)
    matter.reset()
    return matter, [matter.step_all(f, foreground=False)[1] for f in frames]


def test_masks_dir_is_read_by_frame_number_with_label_ids():
    found = read_masks_dir(JUDO / "masks")
    assert sorted(found) == [0, 5, 8, 13]
    assert {k: read_mask(p, labels=True).ids for k, p in found.items()} == {0: (1,), 5: (2,), 8: (3,), 13: (4,)}
    assert parse_mask_at("13:a/b:c.png") == (13, "a/b:c.png")
    for bad in ("x.png", "-1:x.png", "5:"):
        with pytest.raises(InputError):
            parse_mask_at(bad)
    with pytest.raises(InputError):
        mask_schedule(np.full((4, 4), 255, np.uint8), {0: np.full((4, 4), 255, np.uint8)})


def test_targets_enter_at_their_first_mask_and_a_correction_resets_one(weights, frames, masks):
    matter, plain = _run(weights, frames, masks)
    assert matter.targets == (1, 2, 3, 4)
    assert matter.network.encodes == len(frames)  # one image encoding per frame for all targets
    for t, alphas in enumerate(plain):
        assert sorted(alphas) == [1, 2, 3, 4]
        for i, first in FIRST.items():
            a = alphas[i]
            assert a.shape == (SIZE[1], SIZE[0]) and a.dtype == np.float32
            if t < first:
                assert not a.any(), (i, t)
            else:
                assert a.max() > 0.1, (i, t)  # a matte from the first mask on

    # a correction for id 1 at frame 10: the box around the id-3 mask (somewhere else entirely)
    fix = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    ys, xs = np.nonzero(masks[8].targets[3])
    fix[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 255
    corrected = dict(masks)
    corrected[10] = TargetMask({1: fix})
    _, got = _run(weights, frames, corrected)
    assert np.array_equal(got[10][1], fix / np.float32(255))  # the mask step's output is the mask
    for t in range(len(frames)):
        for i in (2, 3, 4):
            assert np.array_equal(got[t][i], plain[t][i])  # other targets untouched
        if t < 10:
            assert np.array_equal(got[t][1], plain[t][1])
    after = np.mean([np.abs(got[t][1] - plain[t][1]).mean() for t in range(11, len(frames))])
    assert after > 1e-3  # the correction carries on after its frame


def test_cli_masks_dir_and_mask_at(weights, frames, masks, tmp_path, capsys):
    clip, mdir = tmp_path / "judo", tmp_path / "masks"
    clip.mkdir()
    mdir.mkdir()
    for t, f in enumerate(frames):
        cv2.imwrite(str(clip / f"{t:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    for k, m in masks.items():
        if k == 13:
            continue  # given with --mask-at instead
        labels = np.zeros((SIZE[1], SIZE[0]), np.uint8)
        for i, t in m.targets.items():
            labels[t > 0] = i
        cv2.imwrite(str(mdir / f"{k:05d}.png"), labels)  # grey, one id each: ids kept as labels
    late = np.where(masks[13].targets[4] > 0, 4, 0).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "late.png"), late)
    out = tmp_path / "out"
    code = main(
        [
            "matte",
            str(clip),
            "--model",
            "matanyone",
            "--weights",
            str(weights),
            "--masks-dir",
            str(mdir),
            "--mask-at",
            f"13:{tmp_path / 'late.png'}",
            "-f",
            "alpha-png",
            "-o",
            str(out),
            "-q",
            "--warmup-frames",
            "1",
            "--erode",
            "0",
            "--dilate",
            "0",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    for i, first in FIRST.items():
        pngs = sorted((out / f"judo_id{i}_alpha").glob("*.png"))
        assert len(pngs) == len(frames)  # every frame, before the first mask too
        levels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED).max() for p in pngs]
        assert all(v == 0 for v in levels[:first]) and all(v > 0 for v in levels[first:]), (i, levels)
