"""Robustness suite, fuzzing (hypothesis, bounded): random and mutated bytes as mask files and as
video files. The only exceptions allowed are vmatte's documented one-line errors (VmatteError);
anything else (a crash, a raw PyAV/OpenCV error) fails. Examples are capped so this stays ~10 s."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_clip
from vmatte.errors import VmatteError
from vmatte.io.masks import MaskSizeWarning, fit_to_frame, read_mask
from vmatte.io.reader import open_source

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_SEEDS: dict[str, bytes] = {}


def _seed(name: str, make) -> bytes:
    """Real files, made once, that the mutations start from."""
    if name not in _SEEDS:
        _SEEDS[name] = make()
    return _SEEDS[name]


def _mask_png(tmp: Path) -> bytes:
    m = np.zeros((24, 32), np.uint8)
    m[4:20, 8:24] = 255
    ok, buf = cv2.imencode(".png", m)
    return buf.tobytes()


def _clip_bytes(tmp: Path, ext: str) -> bytes:
    return make_clip(tmp / f"seed{ext}", 6, 48, 32).read_bytes()


def _mutate(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    out = bytearray(data[: max(1, int(len(data) * cut))])
    for where, value in flips:
        out[int(where * (len(out) - 1))] = value
    return bytes(out)


mutations = st.tuples(st.floats(0.0, 1.0), st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8))


def _read_mask_or_documented_error(path: Path) -> None:
    try:
        mask = read_mask(path)
    except VmatteError:
        return
    assert mask.targets and all(m.dtype == np.uint8 and m.ndim == 2 for m in mask.targets.values())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MaskSizeWarning)  # the resize warning is expected here
            fit_to_frame(mask, (30, 40))
    except VmatteError:
        pass


@FUZZ
@given(data=st.binary(max_size=2048))
def test_mask_reader_random_bytes(tmp_path, data):
    path = tmp_path / "mask.png"
    path.write_bytes(data)
    _read_mask_or_documented_error(path)


@FUZZ
@given(m=mutations)
def test_mask_reader_mutated_png(tmp_path, m):
    path = tmp_path / "mask.png"
    path.write_bytes(_mutate(_seed("png", lambda: _mask_png(tmp_path)), *m))
    _read_mask_or_documented_error(path)


def _open_and_decode_or_documented_error(path: Path) -> None:
    try:
        with open_source(path) as src:
            for frame in src:
                assert frame.image.ndim == 3 and frame.image.shape[2] == 3
                assert frame.image.shape[:2] == (src.info.height, src.info.width)
    except VmatteError:
        pass


@FUZZ
@given(data=st.binary(max_size=4096))
def test_video_open_random_bytes(tmp_path, data):
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    _open_and_decode_or_documented_error(path)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
@FUZZ
@given(m=mutations)
def test_video_open_mutated_file(tmp_path, ext, m):
    path = tmp_path / f"clip{ext}"
    path.write_bytes(_mutate(_seed(ext, lambda: _clip_bytes(tmp_path, ext)), *m))
    _open_and_decode_or_documented_error(path)
