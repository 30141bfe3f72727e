"""vmatte.eval.quality and `vmatte bench quality`: plumbing checked with fake models whose scores
are known (an oracle that returns the truth, a model that returns nothing), and one real RVM run."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import write_blob_still  # noqa: E402
from vmatte.cli import main
from vmatte.eval.compose import ComposeSettings, compose_clips
from vmatte.eval.quality import QualitySettings, evaluate


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bench")
    write_blob_still(d / "blob.png")
    bg = np.full((36, 64, 3), (30, 120, 220), np.uint8)
    cv2.imwrite(str(d / "bg.png"), bg)
    compose_clips([d / "blob.png"], [d / "bg.png"], d / "root", ComposeSettings(size=(64, 36), frames=4, clips=2))
    return d / "root"


class Oracle:
    """Returns the ground truth of whichever composite it is shown."""

    description = "oracle"

    def __init__(self, root: Path):
        self.truth = {}
        for clip in root.iterdir():
            if not (clip / "com").is_dir():
                continue
            for com in sorted((clip / "com").iterdir()):
                img = cv2.cvtColor(cv2.imread(str(com)), cv2.COLOR_BGR2RGB)
                pha = cv2.imread(str(clip / "pha" / com.name), cv2.IMREAD_GRAYSCALE)
                fgr = cv2.cvtColor(cv2.imread(str(clip / "fgr" / com.name)), cv2.COLOR_BGR2RGB)
                self.truth[hashlib.sha1(img.tobytes()).hexdigest()] = (fgr / 255.0, pha / 255.0)

    def reset(self, concurrent_io: bool = False) -> None:
        pass

    def step(self, image, foreground=True):
        fgr, pha = self.truth[hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()]
        return fgr.astype(np.float32), pha.astype(np.float32)


class Nothing:
    description = "empty matte"

    def reset(self, concurrent_io: bool = False) -> None:
        pass

    def step(self, image, foreground=True):
        h, w = image.shape[:2]
        return np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32)


def test_known_scores_and_outputs(bench, tmp_path):
    res = evaluate(
        bench, ["oracle", "nothing"], tmp_path / "q", matters={"oracle": Oracle(bench), "nothing": Nothing()}
    )
    assert {(s.model, s.clip, s.frames) for s in res.clips} == {
        (m, c, 4) for m in ("oracle", "nothing") for c in ("0000", "0001")
    }
    o = res.means["oracle"]
    # (the oracle's float32 copy of pha/255 is off by ~1e-8 from the float64 truth)
    for k in ("mad", "mse", "grad", "conn", "dtssd", "core_mad", "fgr_mad"):
        assert o[k] == pytest.approx(0, abs=1e-4), k
    assert o["j"] == 100 and o["f"] == 100
    # An empty matte: MAD = mean true alpha (x1e3), J = F = 0
    phas = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) / 255.0 for p in sorted(bench.glob("*/pha/*.png"))]
    assert res.means["nothing"]["mad"] == pytest.approx(1000 * np.mean([p.mean() for p in phas]))
    assert res.means["nothing"]["j"] == 0 and res.means["nothing"]["f"] == 0
    out = tmp_path / "q"
    assert sorted(p.name for p in out.iterdir()) == ["per_clip.csv", "per_frame.csv", "report.md", "results.json"]
    rows = list(csv.DictReader((out / "per_frame.csv").open()))
    assert len(rows) == 2 * 2 * 4 and rows[0]["model"] == "oracle" and rows[0]["frame"] == "0"
    assert float(rows[-1]["mad"]) == pytest.approx(1000 * phas[-1].mean(), rel=1e-5)
    assert len(list(csv.DictReader((out / "per_clip.csv").open()))) == 4
    doc = json.loads((out / "results.json").read_text())
    assert doc["means"]["oracle"]["j"] == 100 and len(doc["clips"]) == 4
    md = (out / "report.md").read_text()
    assert "| model | MAD (x1e3) |" in md and "| oracle | " in md and "## nothing" in md


def test_max_frames(bench, tmp_path):
    res = evaluate(bench, ["nothing"], tmp_path, QualitySettings(max_frames=2), matters={"nothing": Nothing()})
    assert [s.frames for s in res.clips] == [2, 2]


def test_cli_rvm_and_errors(bench, tmp_path, capsys):
    code = main(
        [
            "bench",
            "quality",
            str(bench / "0000"),
            "--models",
            "rvm",
            "--device",
            "cpu",
            "-o",
            str(tmp_path / "q"),
            "--max-frames",
            "2",
            "-q",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == str(tmp_path / "q" / "report.html")  # the HTML report is on by default
    doc = json.loads((tmp_path / "q" / "results.json").read_text())
    assert 0 <= doc["means"]["rvm"]["mad"] < 1000 and doc["clips"][0]["frames"] == 2

    for args, words in [
        ([str(tmp_path / "nope")], "not found"),
        ([str(tmp_path / "q")], "no clips"),
        ([str(bench), "--models", "sam"], "unknown model"),
    ]:
        code = main(["bench", "quality", *args])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_target_models_get_each_clips_first_frame_mask(bench, tmp_path, capsys):
    code = main(
        [
            "bench",
            "quality",
            str(bench),
            "--models",
            "rvm,rvm-target",
            "--device",
            "cpu",
            "-o",
            str(tmp_path / "q"),
            "--max-frames",
            "3",
            "-q",
            "--no-html",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    doc = json.loads((tmp_path / "q" / "results.json").read_text())
    target = [c for c in doc["clips"] if c["model"] == "rvm-target"]
    assert len(target) == 2 and all(c["frames"] == 3 for c in target)
    # The blob is no person for RVM: the target mode (people only) got the mask, says it holds
    # no person, and mattes nothing, as RVM does.
    assert "no person found in the mask of target 1 (frame 0)" in err
    assert doc["means"]["rvm-target"]["mad"] == pytest.approx(doc["means"]["rvm"]["mad"], rel=0.05, abs=1e-3)
    assert "frame 0's true alpha" in (tmp_path / "q" / "report.md").read_text()
