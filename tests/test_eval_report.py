"""The HTML report of `vmatte bench quality` (vmatte.eval.report): a real RVM run through the CLI on
tiny synthetic clips, and a two-model run with fake models to check the side-by-side layout."""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmatte.cli import main
from vmatte.eval.compose import ComposeSettings, compose_clips
from vmatte.eval.quality import evaluate
from vmatte.eval.report import GAP, HEADER, contact_size, sample_indices

pytest.importorskip("matplotlib")

W, H, FRAMES = 64, 36, 6

from conftest import write_blob_still  # noqa: E402


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bench")
    write_blob_still(d / "blob.png")
    bg = np.zeros((H, W, 3), np.uint8)
    bg[:, :, 0] = np.linspace(0, 255, W, dtype=np.uint8)[None]  # a gradient: the input cell is not flat
    bg[:, :, 1] = 120
    cv2.imwrite(str(d / "bg.png"), bg)
    compose_clips([d / "blob.png"], [d / "bg.png"], d / "root", ComposeSettings(size=(W, H), frames=FRAMES, clips=2))
    return d / "root"


def _embedded_pngs(html: str) -> list[np.ndarray]:
    imgs = []
    for b64 in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html):
        img = cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None
        imgs.append(img)
    return imgs


def _non_trivial(img: np.ndarray) -> bool:
    return img.std() > 5 and len(np.unique(img.reshape(-1, 3), axis=0)) > 8


def _cell(sheet: np.ndarray, row: int, col: int) -> np.ndarray:
    y, x = HEADER + GAP + row * (H + GAP), GAP + col * (W + GAP)
    return sheet[y : y + H, x : x + W]


def test_cli_rvm_html_report(bench, tmp_path, capsys):
    out = tmp_path / "q"
    code = main(
        [
            "bench",
            "quality",
            str(bench),
            "--models",
            "rvm",
            "--device",
            "cpu",
            "-o",
            str(out),
            "--contact-rows",
            "3",
            "-q",
        ]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout.strip() == str(out / "report.html")
    html = (out / "report.html").read_text()

    # Every image is embedded (the file stands alone) and kept as a file: bars, then curves +
    # contact sheet per clip.
    names = ["bars.png"] + [f"{k}_{c}.png" for c in ("0000", "0001") for k in ("curves", "contact")]
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(names)
    embedded = _embedded_pngs(html)
    assert len(embedded) == len(names)
    for img in embedded:
        assert _non_trivial(img)
    for name in names:
        img = cv2.imread(str(out / "plots" / name))
        assert img is not None and _non_trivial(img), name
        assert any(img.shape == e.shape and np.array_equal(img, e) for e in embedded), name

    # Contact sheet: 3 rows (frames 0, 2, 5 of 6), columns input | rvm | truth | error rvm.
    sheet = cv2.cvtColor(cv2.imread(str(out / "plots" / "contact_0001.png")), cv2.COLOR_BGR2RGB)
    assert sample_indices(FRAMES, 3) == [0, 2, 5]
    assert (sheet.shape[1], sheet.shape[0]) == contact_size((W, H), 3, 1) == (4 * W + 5 * GAP, HEADER + 3 * H + 4 * GAP)
    for row, frame in enumerate([0, 2, 5]):
        true = cv2.imread(str(bench / "0001" / "pha" / f"{frame:05d}.png"), cv2.IMREAD_GRAYSCALE)
        com = cv2.cvtColor(cv2.imread(str(bench / "0001" / "com" / f"{frame:05d}.png")), cv2.COLOR_BGR2RGB)
        assert np.array_equal(_cell(sheet, row, 2)[:, :, 0], true)  # the truth column, exactly
        assert np.array_equal(_cell(sheet, row, 0)[H // 2 :], com[H // 2 :])  # the input (label at its top)

    # The CSV numbers are the table's numbers, formatted alike.
    for row in csv.DictReader((out / "per_clip.csv").open()):
        for k in ("mad", "mse", "grad", "conn", "dtssd", "j"):
            assert f">{row[k]}<" in html, (row["clip"], k, row[k])
    assert "<h2>Mean over clips</h2>" in html and "MAD (x1e3)" in html and "blob over bg.png" in html


class Truth:
    """Returns the true alpha of the composite it is shown (composites are told apart by bytes)."""

    description = "truth"

    def __init__(self, root: Path, scale: float = 1.0):
        self.scale = scale
        self.truth = {}
        for com in sorted(root.glob("*/com/*.png")):
            img = cv2.imread(str(com))
            self.truth[cv2.cvtColor(img, cv2.COLOR_BGR2RGB).tobytes()] = (
                cv2.imread(str(com.parent.parent / "pha" / com.name), cv2.IMREAD_GRAYSCALE) / 255.0
            )

    def reset(self, concurrent_io: bool = False) -> None:
        pass

    def step(self, image, foreground=True):
        a = (self.truth[np.ascontiguousarray(image).tobytes()] * self.scale).astype(np.float32)
        return np.zeros(image.shape, np.float32), a


def test_two_models_side_by_side(bench, tmp_path):
    out = tmp_path / "q"
    evaluate(
        bench,
        ["exact", "faint"],
        out,
        matters={"exact": Truth(bench), "faint": Truth(bench, 0.5)},
        html=True,
        contact_rows=4,
    )
    # Columns: input | exact | faint | truth | error exact | error faint.
    sheet = cv2.cvtColor(cv2.imread(str(out / "plots" / "contact_0000.png")), cv2.COLOR_BGR2RGB)
    assert (sheet.shape[1], sheet.shape[0]) == contact_size((W, H), 4, 2) == (6 * W + 7 * GAP, HEADER + 4 * H + 5 * GAP)
    true = cv2.imread(str(bench / "0000" / "pha" / "00005.png"), cv2.IMREAD_GRAYSCALE)
    last = len(sample_indices(FRAMES, 4)) - 1
    assert np.array_equal(_cell(sheet, last, 1)[:, :, 0], true)  # exact = truth
    assert np.abs(_cell(sheet, last, 2)[:, :, 0].astype(int) - true // 2).max() <= 1  # faint = half
    assert _cell(sheet, last, 4).max() == 0  # no error, no colour
    err = _cell(sheet, last, 5)
    assert err[:, :, 2].max() > 100 and err[:, :, 0].max() == 0  # too little alpha: blue only
    html = (out / "report.html").read_text()
    assert html.count('<td class="best">') >= 3  # the lower error of each pair is marked
    assert len(_embedded_pngs(html)) == 1 + 2 * 2
