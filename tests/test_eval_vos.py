"""`vmatte eval vos`: J and F on a tiny DAVIS-layout folder made from real DAVIS-2016 frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmatte.cli import main
from vmatte.eval.vos import evaluate_vos
from vmatte.eval.vos_data import VosSequence, read_labels
from vmatte.eval.vos_report import table, write_vos

DAVIS = Path("/work/shared/media/davis2016")
FRAMES = 6
SIZE = (427, 240)  # half of 854x480: keeps the RVM run short


def _copy_sequence(root: Path, name: str, size: tuple[int, int] = SIZE) -> None:
    (root / "JPEGImages" / name).mkdir(parents=True)
    (root / "Annotations" / name).mkdir(parents=True)
    for i in range(FRAMES):
        img = cv2.imread(str(DAVIS / "JPEGImages" / "parkour" / f"{i:05d}.jpg"))
        ann = cv2.imread(str(DAVIS / "Annotations" / "parkour" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
        small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / "JPEGImages" / name / f"{i:05d}.jpg"), small)
        cv2.imwrite(
            str(root / "Annotations" / name / f"{i:05d}.png"), cv2.resize(ann, size, interpolation=cv2.INTER_NEAREST)
        )


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    if not (DAVIS / "JPEGImages" / "parkour").is_dir():
        pytest.skip("DAVIS-2016 sample frames not on this machine")
    root = tmp_path_factory.mktemp("davis")
    _copy_sequence(root, "parkour")
    return root


class Oracle:
    """A target "model" that returns the ground truth: J = F = 100 whatever the protocol details."""

    description = "oracle"

    def __init__(self, seq: VosSequence):
        self.seq = seq
        self.targets = seq.ids
        self.i = 0

    def reset(self, concurrent_io: bool = False) -> None:
        self.i = 0

    def step_all(self, image, foreground=True):
        labels = read_labels(self.seq.annotations[self.i], self.seq.binary)
        self.i += 1
        return None, {i: (labels == i).astype(np.float32) for i in self.targets}


def _split(mask: np.ndarray) -> np.ndarray:
    """A binary mask as two objects: id 1 left of the mask's median column, id 2 right of it."""
    out = mask.astype(np.uint8)
    middle = int(np.median(np.nonzero(mask)[1]))
    out[:, middle:] *= 2
    return out


def test_ground_truth_scores_100(davis):
    result = evaluate_vos(davis, ["parkour"], ["oracle"], matters={"oracle": Oracle})
    s = result.score("oracle", "parkour")
    assert s.frames == FRAMES - 1  # frame 0 is the guidance, not scored
    assert (s.j, s.f, s.jf) == (100.0, 100.0, 100.0)
    assert result.mean("oracle").jf == 100.0
    assert "oracle  parkour" in table(result)


class FakeTarget:
    """Stands in for a registered target model (rvm-target, matanyone): returns the annotations
    of the folder of the mask it was given, and records how it was loaded and re-targeted."""

    description = "fake target model"
    targets = (1,)

    def __init__(self, mask):
        self.masks = [Path(mask)]
        self.i = 0

    def set_mask(self, mask):
        self.masks.append(Path(mask))

    def reset(self, concurrent_io: bool = False) -> None:
        self.i = 0

    def step_all(self, image, foreground=True):
        labels = read_labels(self.masks[-1].parent / f"{self.i:05d}.png", binary=True)
        self.i += 1
        return None, {1: labels.astype(np.float32)}


def test_named_target_model_loads_once_and_gets_each_first_annotation(davis, tmp_path, monkeypatch):
    import importlib

    api = importlib.import_module("vmatte.matte")  # the module: vmatte.matte is also the function
    root = tmp_path / "two"
    shutil.copytree(davis, root)
    for top in ("JPEGImages", "Annotations"):
        shutil.copytree(root / top / "parkour", root / top / "parkour-again")
    loads = []

    def fake_load(model, *, mask=None, device="auto", **options):
        loads.append((model, mask, device))
        return FakeTarget(mask)

    monkeypatch.setitem(api.MODELS, "fake-target", "test double")
    monkeypatch.setattr(api, "load_matter", fake_load)
    result = evaluate_vos(root, ["parkour", "parkour-again"], ["fake-target"], device="cpu")
    first = root / "Annotations" / "parkour" / "00000.png"
    assert loads == [("fake-target", first, "cpu")]  # one load, given the frame-0 annotation
    assert result.mean("fake-target").jf == 100.0
    assert result.score("fake-target", "parkour-again").jf == 100.0


def test_multi_object_palette_scores_each_id(tmp_path, davis):
    # Palette PNGs with two ids; the oracle gets id 2 wrong on every frame: J(id 1) = 100, J(id 2) = 0.
    from PIL import Image

    root = tmp_path / "d17"
    shutil.copytree(davis, root)
    for p in sorted((root / "Annotations" / "parkour").iterdir()):
        labels = _split(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) != 0)
        im = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
        im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 - 3) * 3)
        im.save(p)

    class Wrong(Oracle):
        def step_all(self, image, foreground=True):
            _, alphas = super().step_all(image, foreground)
            alphas[2] = np.zeros_like(alphas[2]) if self.i > 1 else alphas[2]
            return None, alphas

    result = evaluate_vos(root, ["parkour"], ["wrong"], matters={"wrong": Wrong})
    s = result.score("wrong", "parkour")
    assert [o.id for o in s.objects] == [1, 2]
    assert s.objects[0].j_mean == 100.0 and s.objects[1].j_mean == 0.0
    assert s.j == 50.0  # objects averaged within the sequence


def test_rvm_end_to_end_cli(davis, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "eval",
            "vos",
            str(davis),
            "--sequences",
            "parkour",
            "--models",
            "rvm",
            "--device",
            "cpu",
            "--output",
            str(out),
        ]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "J&F" in stdout.splitlines()[0] and "rvm    mean" in stdout
    data = json.loads((out / "vos.json").read_text())
    seq = data["models"]["rvm"]["sequences"]["parkour"]
    assert seq["frames"] == FRAMES - 1
    assert 50 < seq["jf"] <= 100 and 50 < seq["j"] <= 100 and 50 < seq["f"] <= 100
    assert data["models"]["rvm"]["mean"]["jf"] == pytest.approx(seq["jf"])
    assert "| rvm | parkour |" in (out / "vos.md").read_text()


def _one_line_error(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vmatte: error:"), err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_layout_errors_are_one_line(davis, tmp_path, capsys):
    code = main(["eval", "vos", str(tmp_path / "nowhere"), "--sequences", "parkour"])
    _one_line_error(code, capsys.readouterr().err, "not found", "JPEGImages/<seq>")
    (tmp_path / "empty").mkdir()
    code = main(["eval", "vos", str(tmp_path / "empty"), "--sequences", "parkour"])
    _one_line_error(code, capsys.readouterr().err, "no JPEGImages/", "Annotations/<seq>")
    code = main(["eval", "vos", str(davis), "--sequences", "parkour,cartwheel"])
    _one_line_error(code, capsys.readouterr().err, "'cartwheel' not found", "parkour")
    code = main(["eval", "vos", str(davis), "--sequences", "parkour", "--models", "nope"])
    _one_line_error(code, capsys.readouterr().err, "unknown model 'nope'")


def test_missing_first_annotation_is_an_error(davis, tmp_path, capsys):
    root = tmp_path / "d"
    shutil.copytree(davis, root)
    (root / "Annotations" / "parkour" / "00000.png").unlink()
    code = main(["eval", "vos", str(root), "--sequences", "parkour"])
    _one_line_error(code, capsys.readouterr().err, "no frame-0 annotation", "00000.png")


class Leaky(Oracle):
    """The ground truth plus a box outside it that RVM calls a person (a bystander matted too),
    every frame; its ``person_alpha`` says where RVM's people are."""

    BOX = (slice(0, 40), slice(0, 60))

    def step_all(self, image, foreground=True):
        _, alphas = super().step_all(image, foreground)
        alpha = alphas[1].copy()
        alpha[self.BOX] = 1.0
        self.truth = alphas[1]
        self.person_alpha = alpha
        return None, {1: alpha}


def test_precision_recall_and_leak_tell_identity_errors_apart(davis, tmp_path):
    result = evaluate_vos(davis, ["parkour"], ["leaky"], matters={"leaky": Leaky}, thumbs=3)
    s = result.score("leaky", "parkour")
    truth = sum(int(read_labels(p, True).sum()) for p in _seq(davis).annotations[1:])
    box = 40 * 60 * s.frames
    outside = box - sum(int(read_labels(p, True)[Leaky.BOX].sum()) for p in _seq(davis).annotations[1:])
    assert s.recall == 1.0
    assert s.precision == pytest.approx(truth / (truth + outside))
    assert s.leak == pytest.approx(outside / (truth + outside))
    assert len(s.j_curve) == s.frames and s.scored == list(range(1, FRAMES))
    paths = write_vos(result, tmp_path / "rep")
    sheet = cv2.imread(str(paths["sheet:parkour"]))
    assert sheet is not None and sheet.shape[1] > 3 * 200
    md = (tmp_path / "rep" / "vos.md").read_text()
    assert "sheets/parkour.png" in md and "| leaky | parkour |" in md
    data = json.loads((tmp_path / "rep" / "vos.json").read_text())["models"]["leaky"]["sequences"]["parkour"]
    assert data["precision"] == pytest.approx(s.precision) and len(data["objects"]["1"]["per_frame"]["j"]) == s.frames


def test_max_frames_scores_the_first_frames_only(davis):
    result = evaluate_vos(davis, ["parkour"], ["oracle"], matters={"oracle": Oracle}, max_frames=3)
    assert result.score("oracle", "parkour").frames == 2
    with pytest.raises(Exception, match="at least 2"):
        evaluate_vos(davis, ["parkour"], ["oracle"], matters={"oracle": Oracle}, max_frames=1)


def _seq(root: Path) -> VosSequence:
    from vmatte.eval.vos_data import find_sequences

    return find_sequences(root, ["parkour"])[0]


def test_rvm_precision_is_rvm_own_precision_on_the_regions_that_touch_the_truth():
    """RVM P: RVM's person regions that touch the ground truth (a region far from it, someone
    else, is left out), and the share of their pixels inside it (what RVM's edge allows)."""
    from vmatte.eval.vos import ObjectScore

    true = np.zeros((40, 60), bool)
    true[10:30, 10:20] = True  # 200 px
    person = np.zeros_like(true)
    person[8:32, 10:22] = True  # the target with a 2 px wider edge: 288 px, 200 inside
    person[5:15, 40:55] = True  # someone else, apart
    score = ObjectScore(1)
    score.add(person.astype(np.float32), true, person)
    assert score.rvm_precision == pytest.approx(200 / 288)
    assert score.precision == pytest.approx(200 / (288 + 150))
