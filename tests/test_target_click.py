"""Picking the target with clicks: the pure point -> mask step on synthetic mattes, the shipped
RVM on real footage (two children on a bed), and the ``--click`` / ``--exclude`` CLI.

Real media: ``../shared/media/sam2/bedroom.mp4`` (960x540); tests skip when it is not there.
The CLI end-to-end run uses the MatAnyone fixture's recipe (synthetic) weights, so it checks the
wiring (clicked mask -> keyframe -> outputs), not matte quality.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from conftest import matanyone_recipe_state_dict, write_h264  # noqa: E402
from vmatte.cli import main
from vmatte.engine.segment.clicks import Click, as_clicks, mask_from_points, masks_from_clicks, parse_point
from vmatte.errors import InputError, VmatteError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BEDROOM = SHARED / "media" / "sam2" / "bedroom.mp4"
FIXTURE = SHARED / "fixtures" / "matanyone"
# Frame 0 of bedroom.mp4 (found by looking at it): the boy kneeling on the left (white and navy
# shirt), the girl jumping in the middle (grey top, blue skirt).
BOY = (240, 260)
GIRL = (400, 140)

needs_bedroom = pytest.mark.skipif(not BEDROOM.is_file(), reason=f"no {BEDROOM}")


def _disc(h: int, w: int, centre: tuple[int, int], r: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, centre, r, 1, -1)
    return m.astype(bool)


def _matte(*discs: np.ndarray) -> np.ndarray:
    """A person-like matte: the discs at alpha 1 with soft (blurred) edges."""
    a = np.zeros(discs[0].shape, np.float32)
    for d in discs:
        a[d] = 1.0
    return cv2.GaussianBlur(a, (7, 7), 0)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


# --- pure: mask_from_points -------------------------------------------------------------------


def test_click_picks_one_of_two_separate_people():
    left, right = _disc(200, 300, (70, 100), 40), _disc(200, 300, (220, 100), 50)
    alpha = _matte(left, right)
    mask = mask_from_points(alpha, [(70, 100)])
    assert mask.dtype == np.uint8 and mask.shape == (200, 300)
    core = mask >= 128
    assert _iou(core, left) > 0.9
    assert not (mask[right] > 0).any()  # nothing of the other person, not even its soft edge
    soft = mask[(mask > 0) & (mask < 255)]
    assert soft.size > 0  # RVM's soft edge is kept, not binarised
    both = mask_from_points(alpha, [Click(70, 100), Click(220, 100)]) >= 128  # several clicks: one target
    assert _iou(both, left | right) > 0.9


@pytest.mark.parametrize("keep, drop", [("left", "right"), ("right", "left")])
def test_exclude_splits_touching_people_at_the_contact(keep, drop):
    discs = {"left": _disc(200, 300, (90, 100), 50), "right": _disc(200, 300, (200, 100), 62)}
    discs["right"] &= ~discs["left"]  # overlapping discs: one region joined through a neck
    centres = {"left": (90, 100), "right": (200, 100)}
    alpha = _matte(discs["left"], discs["right"])
    assert mask_from_points(alpha, [centres[keep]]).astype(bool)[discs[drop]].mean() > 0.95  # joined without --exclude
    core = mask_from_points(alpha, [centres[keep]], [centres[drop]]) >= 128
    assert core[discs[keep]].mean() > 0.95
    assert core[discs[drop]].mean() < 0.05


def test_exclude_near_the_edge_and_split_follows_the_image():
    # Two people of the same matte joined by a wide band; the frame shows where one ends.
    h, w = 120, 200
    alpha = np.zeros((h, w), np.float32)
    alpha[20:100, 20:180] = 1.0
    image = np.zeros((h, w, 3), np.uint8)
    image[:, :110] = (200, 40, 40)
    image[:, 110:] = (40, 40, 200)
    core = mask_from_points(alpha, [(40, 60)], [(178, 21)], image) >= 128  # exclude on a corner
    assert core[20:100, 20:105].mean() > 0.95
    assert core[20:100, 115:180].mean() < 0.05


def test_click_on_background_and_bad_points_are_one_line_errors():
    alpha = _matte(_disc(100, 160, (50, 50), 30))
    with pytest.raises(InputError, match=r"no person under --click 150,90 at frame 0 \(RVM alpha there is 0\.00\)"):
        mask_from_points(alpha, [(150, 90)])
    with pytest.raises(InputError, match=r"outside the 160x100 frame"):
        mask_from_points(alpha, [(160, 10)])
    with pytest.raises(InputError, match=r"--exclude 50,50 is on the same pixel as a --click"):
        mask_from_points(alpha, [(50, 50)], [(50, 50)])
    with pytest.raises(InputError, match="no --click given"):
        mask_from_points(alpha, [], [(50, 50)])
    # a click on the soft edge (alpha < 0.5) snaps to the person a few pixels away
    assert mask_from_points(alpha, [(50, 50 + 32)]).any()


def test_parse_point():
    assert parse_point("412,90") == Click(412, 90, 0)
    assert parse_point(" 3,4@17 ", negative=True) == Click(3, 4, 17, True)
    assert parse_point("3,4@17").option == "--click 3,4@17"
    assert as_clicks([(1.4, 2, 5), (7, 8)], frame=2) == [Click(1, 2, 5), Click(7, 8, 2)]
    for bad in ("412", "4,5,6", "a,b", "1,2@x", "1,2@-3", "1.5,2"):
        with pytest.raises(InputError, match="--click"):
            parse_point(bad)


# --- real footage: the shipped RVM under the clicks ---------------------------------------------


@pytest.fixture(scope="module")
def children() -> dict[str, np.ndarray]:
    if not BEDROOM.is_file():
        pytest.skip(f"no {BEDROOM}")
    return {
        name: masks_from_clicks(BEDROOM, [(*xy, 0)], device="cpu")[0] for name, xy in (("boy", BOY), ("girl", GIRL))
    }


def test_clicks_on_two_children_give_two_separate_masks(children):
    boy, girl = children["boy"] >= 128, children["girl"] >= 128
    assert _iou(boy, girl) < 0.01
    h, w = boy.shape
    assert (h, w) == (540, 960)
    for name, core, (x, y), (lo, hi) in (("boy", boy, BOY, (0.015, 0.06)), ("girl", girl, GIRL, (0.03, 0.10))):
        assert core[y, x], name
        assert lo < core.mean() < hi, (name, core.mean())  # a child, not a speck nor the whole room
    ys, xs = np.nonzero(boy)
    assert xs.max() < GIRL[0] and ys.min() > 100  # the boy's box: left of the girl, below the top
    ys, xs = np.nonzero(girl)
    assert xs.min() > BOY[0]


@needs_bedroom
def test_exclude_cuts_a_bridged_neighbour_on_real_matte(children):
    """The two children's real matte joined by a painted bridge: a click on the boy with an
    exclude on the girl gives back the boy alone."""
    with av.open(str(BEDROOM)) as c:
        image = next(c.decode(video=0)).to_ndarray(format="rgb24")
    alpha = np.maximum(children["boy"], children["girl"]).astype(np.float32) / 255.0
    cv2.line(alpha, (280, 180), (330, 200), 1.0, 12)  # boy's head to the girl's arm
    boy = children["boy"] >= 128
    joined = mask_from_points(alpha, [BOY], [], image) >= 128
    assert joined[children["girl"] >= 128].mean() > 0.9
    cut = mask_from_points(alpha, [BOY], [GIRL], image) >= 128
    assert _iou(cut, boy) > 0.9
    assert cut[children["girl"] >= 128].mean() < 0.05


@needs_bedroom
def test_masks_from_clicks_errors():
    with pytest.raises(InputError, match=r"--click at frame 500 but the video has 200 frames"):
        masks_from_clicks(BEDROOM, [(10, 10, 500)], device="cpu")
    with pytest.raises(InputError, match=r"outside the 960x540 frame"):
        masks_from_clicks(BEDROOM, [(960, 10, 0)], device="cpu")
    with pytest.raises(InputError, match=r"--exclude 400,140@3 is at frame 3, where no --click is"):
        masks_from_clicks(BEDROOM, [(*BOY, 0)], [(*GIRL, 3)], device="cpu")
    with pytest.raises(InputError, match=r"no person under --click 900,30 at frame 0"):
        masks_from_clicks(BEDROOM, [(900, 30, 0)], device="cpu")


# --- CLI --------------------------------------------------------------------------------------


def _one_line_error(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vmatte: error:"), err
    for word in words:
        assert word in lines[0], (word, lines[0])


@needs_bedroom
@pytest.mark.parametrize(
    "extra, words",
    [
        (["--model", "rvm", "--click", "240,260"], ["--model rvm mattes every person", "--click"]),
        (["--click", "240,260", "--mask", "m.png"], ["--click 240,260 and --mask both give the target at frame 0"]),
        (["--click", "1000,20"], ["outside the 960x540 frame"]),
        (["--click", "240,260@999"], ["frame 999 but the video has 200 frames"]),
        (["--click", "900,30", "--model", "matanyone"], ["no person under --click 900,30 at frame 0"]),
        (["--exclude", "400,140"], ["--exclude needs a --click"]),
        (["--click", "240;260"], ["bad --click '240;260'"]),
    ],
)
def test_cli_click_errors(extra, words, tmp_path, capsys):
    code = main(["matte", str(BEDROOM), "-o", str(tmp_path / "out"), "--device", "cpu", "-q", *extra])
    _one_line_error(code, capsys.readouterr().err, *words)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _small_bedroom(path: Path, frames: int = 2) -> Path:
    """The bedroom's first frames at a third of the size (320x180): a MatAnyone run stays quick on a CPU."""
    with av.open(str(BEDROOM)) as src:
        small = (
            cv2.resize(f.to_ndarray(format="rgb24"), (320, 180), interpolation=cv2.INTER_AREA)
            for f in itertools.islice(src.decode(video=0), frames)
        )
        return write_h264(path, small, fps=30, crf=10)


@needs_bedroom
@pytest.mark.skipif(not (FIXTURE / "recipe.py").is_file(), reason=f"no MatAnyone fixture at {FIXTURE}")
def test_cli_click_end_to_end_with_matanyone(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VMATTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VMATTE_OFFLINE", "1")
    torch.save(matanyone_recipe_state_dict(), tmp_path / "matanyone.pth")
    clip = _small_bedroom(tmp_path / "bed.mp4")
    out = tmp_path / "out"
    code = main(
        [
            "matte",
            str(clip),
            "-o",
            str(out),
            "--device",
            "cpu",
            "--model",
            "matanyone",
            "--weights",
            str(tmp_path / "matanyone.pth"),
            "--click",
            "80,87",
            "--exclude",
            "133,47",
            "-f",
            "alpha-png",
            "--warmup-frames",
            "0",
            "--erode",
            "0",
            "--dilate",
            "0",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    line = next(l for l in captured.err.splitlines() if l.startswith("target at frame 0"))
    assert "--click 80,87 --exclude 133,47" in line and "box x " in line and "area " in line
    x0, x1 = (int(v) for v in line.split("box x ")[1].split(",")[0].split(".."))
    assert 40 < x0 < x1 < 133  # the boy, left of the girl
    assert len(list((out / "bed_alpha").glob("*.png"))) == 2


def test_api_refuses_clicks_with_an_every_person_model_or_a_built_matter(tmp_path):
    import vmatte

    with pytest.raises(VmatteError, match="--model rvm mattes every person"):
        next(vmatte.iter_matte(tmp_path / "never_read.mp4", model="rvm", clicks=[(1, 1, 0)]))
    matter = object()  # clicks are turned into masks before a model is built: a built one cannot take them
    with pytest.raises(VmatteError, match="pass model= as a name"):
        vmatte.matte(tmp_path / "never_read.mp4", tmp_path / "out", model=matter, clicks=[(1, 1, 0)])
