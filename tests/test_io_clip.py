"""The one H.264 clip writer (demo sample, speed benchmark inputs) and the one 8-bit conversion."""

from __future__ import annotations

import av
import numpy as np
import pytest

from vmatte.io.clip import write_h264
from vmatte.io.pixels import to_uint8


def _frames(n: int):
    for i in range(n):
        yield np.full((32, 48, 3), (40 * i, 200 - 30 * i, 90), np.uint8)


def test_clip_has_every_frame_and_the_tone_when_asked(tmp_path):
    plain = write_h264(tmp_path / "a.mp4", _frames(5), (48, 32), 10)
    toned = write_h264(tmp_path / "sub" / "b.mp4", _frames(5), (48, 32), 10, tone_hz=440.0)
    with av.open(str(plain)) as c:
        assert [s.type for s in c.streams] == ["video"]
        got = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(got) == 5 and all(np.abs(g.astype(int) - w).mean() < 4 for g, w in zip(got, _frames(5)))
    with av.open(str(toned)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        audio = sum(f.samples for f in c.decode(audio=0))
    assert abs(audio - 48000 * 5 / 10) < 2048  # as long as the video (AAC frames of 1024)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.mp4", "b.mp4", "sub"]


def test_a_failed_clip_leaves_nothing(tmp_path):
    def broken():
        yield from _frames(2)
        raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError):
        write_h264(tmp_path / "c.mp4", broken(), (48, 32), 10)
    assert list(tmp_path.iterdir()) == []


def test_to_uint8_keeps_8_bits_takes_the_high_byte_of_16_and_rounds_floats():
    a8 = np.array([[0, 7, 255]], np.uint8)
    assert to_uint8(a8) is a8
    assert to_uint8(np.array([[0, 255, 256, 65535]], np.uint16)).tolist() == [[0, 0, 1, 255]]
    assert to_uint8(np.array([[-0.5, 0.5, 1.0, 2.0]], np.float32)).tolist() == [[0, 128, 255, 255]]
