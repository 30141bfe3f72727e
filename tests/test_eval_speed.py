"""`vmatte bench speed` (vmatte.eval.speed): one tiny real run through the CLI, and the cheap parts."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vmatte.cli import main
from vmatte.eval.speed import _device_peak_mb, looped

pytest.importorskip("matplotlib")


def test_cli_tiny_run(tmp_path, capsys):
    out = tmp_path / "speed"
    code = main(
        [
            "bench",
            "speed",
            "-o",
            str(out),
            "--models",
            "rvm",
            "--sizes",
            "64x36",
            "--lengths",
            "6",
            "--frames",
            "4",
            "--file-frames",
            "5",
            "--rounds",
            "1",
            "--device",
            "cpu",
            "-q",
        ]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout.strip() == str(out / "speed.md")
    doc = json.loads((out / "speed.json").read_text())
    assert set(doc) == {"machine", "settings", "model_only", "file_to_file", "memory"}
    assert doc["machine"]["device"] == "cpu" and doc["machine"]["cpu_count"] >= 1
    assert doc["settings"]["sizes"] == [[64, 36]] and doc["settings"]["lengths"] == [6]
    (m,), (f,), (r,) = doc["model_only"], doc["file_to_file"], doc["memory"]
    assert m["model"] == f["model"] == r["model"] == "rvm" and m["size"] == f["size"] == r["size"] == "64x36"
    assert m["fps"] > 0 and m["ms_per_frame"] > 0 and m["frames"] == 4 and "RVM" in m["description"]
    assert f["fps"] > 0 and f["frames"] == 5
    assert r["fps"] > 0 and r["frames"] == r["length"] == 6
    for rec in (m, f, r):
        # Each measurement in its own process: a real peak RSS (torch alone is > 50 MiB), no GPU here.
        assert 50 < rec["peak_rss_mb"] < 100_000
        assert rec["peak_device_mb"] is None
    md = (out / "speed.md").read_text()
    assert "| rvm | 64x36 |" in md and "Peak RSS against video length" in md
    for name in ("fps_vs_resolution.png", "rss_vs_length.png"):
        img = cv2.imread(str(out / name))
        assert img is not None and img.std() > 5, name


@pytest.mark.parametrize(
    "args, words",
    [
        (["--models", "sam"], "unknown model"),
        (["--sizes", "64by36"], "bad size"),
        (["--lengths", "10,x"], "bad --lengths"),
        (["--lengths", "0"], "--lengths must be positive"),
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--clip", "/nonexistent/clip.mp4"], "clip not found"),
    ],
)
def test_cli_errors(tmp_path, capsys, args, words):
    code = main(["bench", "speed", "-o", str(tmp_path / "s"), *args])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_looped_and_cpu_device_memory():
    base = [np.full((2, 2, 3), i, np.uint8) for i in range(4)]
    assert [int(f[0, 0, 0]) for f in looped(base, 10)] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert [int(f[0, 0, 0]) for f in looped(base[:1], 3)] == [0, 0, 0]
    assert _device_peak_mb("cpu") is None  # the CUDA path only runs on a GPU
