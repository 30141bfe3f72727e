"""The offline target mode (``--model rvm-target``, and ``auto`` without MatAnyone weights).

Pure stages on synthetic maps (region assignment, fusion, memory, colour re-identification),
then the shipped RVM on real footage: the two children of ``sam2/bedroom.mp4`` picked by
``--click`` stay apart, cutie-judo's keyframe targets each get a matte from their first mask
on, and ``vmatte eval vos`` scores the mode on DAVIS frames. Real media skip when absent.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from vmatte import load_matter
from vmatte.cli import main
from vmatte.engine.segment.clicks import masks_from_clicks
from vmatte.engine.tracking.appearance import AppearanceMemory
from vmatte.engine.tracking.assign import assign_regions, region_adaptive_fusion
from vmatte.engine.tracking.colour import find_by_colour, histogram

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BEDROOM = SHARED / "media" / "sam2" / "bedroom.mp4"
JUDO = SHARED / "media" / "cutie-judo"
DAVIS = SHARED / "media" / "davis2016"
BOY, GIRL = (240, 260), (400, 140)  # frame 0 of bedroom.mp4 (see test_target_click.py)


def _disc(h, w, centre, r):
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, centre, r, 1, -1)
    return m.astype(bool)


def _probs(*targets, shape):
    p = np.zeros((1 + len(targets),) + shape, np.float32)
    for k, t in enumerate(targets):
        p[k + 1] = t
    p[0] = 1 - p[1:].sum(0)
    return p


# --- pure stages --------------------------------------------------------------------------------


def test_region_kept_whole_when_the_target_holds_enough_of_it():
    shape = (100, 200)
    person = _disc(*shape, (50, 50), 30) | _disc(*shape, (150, 50), 30)
    lagging = _disc(*shape, (44, 50), 30)  # the warp lags: only part of the left person
    out = assign_regions(person, _probs(lagging, shape=shape), np.zeros(shape, np.float32), 0.3, 0.02)
    assert out.shape == (1,) + shape
    assert (out[0] == _disc(*shape, (50, 50), 30)).all()  # the whole left person, none of the right


def test_touching_people_split_by_nearest_core():
    shape = (100, 200)
    left, right = _disc(*shape, (70, 50), 35), _disc(*shape, (130, 50), 35)
    person = left | right  # one connected region
    target = _disc(*shape, (65, 50), 20)  # core of the target
    other = _disc(*shape, (135, 50), 20).astype(np.float32)  # core of someone else
    out = assign_regions(person, _probs(target, shape=shape), other, 0.3, 0.02)[0]
    assert out[:, :95].sum() > 0.95 * (person[:, :95]).sum()
    assert out[:, 105:].sum() < 0.02 * person[:, 105:].sum()
    # Two targets sharing the region: each gets its own side.
    both = assign_regions(person, _probs(target, other > 0, shape=shape), np.zeros(shape, np.float32), 0.3, 0.02)
    assert not (both[0] & both[1]).any()
    assert both[1][:, 105:].mean() > 0.9 * person[:, 105:].mean()


def test_region_adaptive_fusion_keeps_the_core_and_reads_memory_at_changes():
    readout, last = np.full(4, 0.2, np.float32), np.full(4, 0.9, np.float32)
    change = np.array([0, 0.25, 0.5, 1], np.float32)
    np.testing.assert_allclose(region_adaptive_fusion(readout, last, change), [0.9, 0.725, 0.55, 0.2], rtol=1e-6)


def test_memory_keeps_permanent_frames_and_a_fifo_and_reads_the_most_similar():
    mem = AppearanceMemory(max_frames=2, top_k=1, temperature=0.05)
    keys = torch.eye(4)  # 4 orthogonal tokens
    mem.add(keys, torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0]], dtype=torch.float32), permanent=True)
    for _ in range(5):
        mem.add(keys, torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.float32))
    assert len(mem) == 3  # 1 permanent + FIFO of 2
    query = torch.eye(4)[:, [0, 3]]
    only_given = mem.readout(query, 2, permanent_only=True)
    np.testing.assert_allclose(only_given.numpy(), [[0, 1], [1, 0]], atol=1e-6)
    # A target added later (3 labels now) reads 0 in older memory frames.
    assert mem.readout(query, 3)[2].abs().max() == 0


def test_colour_finds_the_region_that_looks_like_the_target():
    hsv = np.zeros((60, 120, 3), np.uint8)
    hsv[:, :60] = (110, 200, 200)  # blue person
    hsv[:, 60:] = (10, 200, 200)  # orange person
    candidates = np.zeros((60, 120), bool)
    candidates[10:50, 10:50] = candidates[10:50, 70:110] = True
    blue = histogram(hsv, hsv[..., 0] == 110)
    orange = histogram(hsv, hsv[..., 0] == 10)
    found = find_by_colour(hsv, candidates, blue, orange, 100, 0.5)
    assert found[10:50, 10:50].all() and not found[:, 60:].any()
    assert not find_by_colour(hsv, candidates & (np.arange(120) >= 60), blue, orange, 100, 0.5).any()


# --- real footage ---------------------------------------------------------------------------------

needs_bedroom = pytest.mark.skipif(not BEDROOM.is_file(), reason=f"no {BEDROOM}")


def _frames(path, count):
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= count:
                return
            yield f.to_ndarray(format="rgb24")


@needs_bedroom
def test_bedroom_children_picked_by_click_stay_apart():
    """All 200 frames, each child in turn as the target (as issue 4 asks): the two mattes share
    under 2% of either's pixels, the girl is never lost, and the boy (hidden behind her from
    about frame 30 to 110) is found again and matted whole by the end."""
    mattes = {}
    for name, xy in (("boy", BOY), ("girl", GIRL)):
        mask = masks_from_clicks(BEDROOM, [(*xy, 0)], device="cpu")[0]
        matter = load_matter("rvm-target", mask=mask, device="cpu")
        matter.reset()
        mattes[name] = np.array([matter.step(img, foreground=False)[1] >= 0.5 for img in _frames(BEDROOM, 200)])
    boy, girl = mattes["boy"].reshape(200, -1), mattes["girl"].reshape(200, -1)
    overlap = (boy & girl).sum()
    assert overlap < 0.02 * boy.sum() and overlap < 0.02 * girl.sum(), (overlap, boy.sum(), girl.sum())
    assert boy[0].sum() > 8000 and girl[0].sum() > 20000
    assert girl.sum(1).min() > 0.5 * girl[0].sum()  # the girl is never lost
    assert boy[150:].sum(1).min() > boy[0].sum()  # the boy is back, standing (larger than kneeling)


@pytest.mark.skipif(not (JUDO / "masks").is_dir(), reason=f"no {JUDO}")
def test_judo_keyframe_targets_have_a_matte_from_their_first_mask_on(tmp_path, capsys):
    """Each id has no matte before its first mask. From it on, an id RVM mattes as a person has
    a matte every frame; an id whose mask holds no person RVM sees (the mode mattes people
    only) gets an empty matte and one warning naming it (issue 20: no coarse carried mask)."""
    out = tmp_path / "out"
    code = main(
        [
            "matte",
            str(JUDO / "frames"),
            "-o",
            str(out),
            "--model",
            "rvm-target",
            "--masks-dir",
            str(JUDO / "masks"),
            "-f",
            "alpha-png",
            "-q",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    first = {1: 0, 2: 5, 3: 8, 4: 13}  # the frame of each id's first mask
    matted = 0
    for target_id, start in first.items():
        files = sorted(glob.glob(str(out / f"frames_id{target_id}_alpha" / "*.png")))
        assert len(files) == 16
        areas = [int((cv2.imread(f, 0) >= 128).sum()) for f in files]
        assert all(a == 0 for a in areas[:start]), (target_id, areas)
        warned = err.count(f"no person found in the mask of target {target_id} ")
        if warned:
            assert warned == 1 and not any(areas[start : start + 1]), (target_id, areas)
        else:
            assert all(a > 500 for a in areas[start:]), (target_id, areas)
            matted += 1
    assert matted >= 1  # id 1, a person RVM sees from frame 0


def test_auto_without_matanyone_weights_uses_the_target_mode_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("VMATTE_CACHE", str(tmp_path / "empty-cache"))
    mask = np.zeros((64, 96), np.uint8)
    mask[10:50, 30:60] = 255
    matter = load_matter("auto", mask=mask, device="cpu")
    assert "rvm-target" in matter.description and "no MatAnyone weights" in matter.description


@pytest.mark.skipif(not (DAVIS / "JPEGImages" / "parkour").is_dir(), reason=f"no {DAVIS}")
def test_eval_vos_scores_the_target_mode_on_davis_frames(tmp_path, capsys):
    root = tmp_path / "davis"
    for sub, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        (root / sub / "parkour").mkdir(parents=True)
        for i in range(8):
            name = f"{i:05d}.{ext}"
            (root / sub / "parkour" / name).write_bytes((DAVIS / sub / "parkour" / name).read_bytes())
    code = main(
        [
            "eval",
            "vos",
            str(root),
            "--sequences",
            "parkour",
            "--models",
            "rvm-target",
            "-o",
            str(tmp_path / "rep"),
            "-q",
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "rep" / "vos.json").read_text())
    text = json.dumps(data)
    assert "rvm-target" in text
    assert "parkour" in capsys.readouterr().out


# --- robust decisions (issue 20), each on a constructed case -----------------------------------


def test_region_much_larger_than_the_target_is_not_given_whole():
    """A crowd joined to the target in RVM's matte: the region is many times the target's size,
    so the target keeps only its predicted position, not the crowd."""
    shape = (120, 240)
    target = _disc(*shape, (60, 60), 25)
    crowd = np.zeros(shape, bool)
    crowd[20:110, 80:235] = True  # touches the target: one region, ~6x its area
    person = target | crowd
    prior = _disc(*shape, (60, 60), 24)  # motion + memory put the target here
    out = assign_regions(
        person, _probs(prior, shape=shape), np.zeros(shape, np.float32), 0.0, 0.02, size=np.array([float(target.sum())])
    )[0]
    assert out[target].mean() > 0.95
    assert out[:, 100:].sum() == 0  # the crowd away from the target stays free
    # Without the size reference the same region is still cut: most of it lies outside the
    # target's predicted position.
    out = assign_regions(person, _probs(prior, shape=shape), np.zeros(shape, np.float32), 0.0, 0.02)[0]
    assert out[:, 100:].sum() == 0 and out[target].mean() > 0.95


def test_region_mostly_outside_the_predicted_position_is_cut_to_it():
    shape = (100, 200)
    region = np.zeros(shape, bool)
    region[30:70, 40:160] = True  # a bar, the target predicted at its left end only
    prior = np.zeros(shape, bool)
    prior[30:70, 40:80] = True
    out = assign_regions(
        region, _probs(prior, shape=shape), np.zeros(shape, np.float32), 0.3, 0.02, size=np.array([float(region.sum())])
    )[0]
    assert out[30:70, 40:80].all() and not out[:, 100:].any()
    # Unless the appearance memory recalls the target over the whole bar (it stretched out after
    # a curl, about its known size): then the region is its whole.
    out = assign_regions(
        region,
        _probs(prior, shape=shape),
        np.zeros(shape, np.float32),
        0.3,
        0.02,
        size=np.array([float(region.sum())]),
        recalled=region[None],
    )[0]
    assert (out == region).all()
    # Mostly inside its predicted position (the warp lags a little): the whole region.
    lagging = np.zeros(shape, bool)
    lagging[30:70, 40:150] = True
    out = assign_regions(
        region,
        _probs(lagging, shape=shape),
        np.zeros(shape, np.float32),
        0.3,
        0.02,
        size=np.array([float(region.sum())]),
    )[0]
    assert (out == region).all()


def test_touching_split_leaves_what_is_far_from_every_core():
    shape = (100, 300)
    person = np.zeros(shape, bool)
    person[30:70, 20:290] = True  # the target (left), a bystander (middle), a long untracked tail
    target, other = np.zeros(shape, bool), np.zeros(shape, np.float32)
    target[30:70, 20:60] = True
    other[30:70, 80:120] = 1.0
    out = assign_regions(person, _probs(target, shape=shape), other, 0.3, 0.02, split_reach=24)[0]
    assert out[30:70, 20:60].all()
    assert not out[:, 75:].any()  # the bystander's side and the far tail are not the target's
