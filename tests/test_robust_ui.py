"""Robustness suite, the web app (issue 21): it reads only what was uploaded, its errors say
nothing about other paths, and ``vmatte ui`` on a busy port or a bad host is one line, exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import make_clip
from vmatte.errors import VmatteError
from vmatte.io.probe import read_rgba
from vmatte.ui.job import Job, RunSettings, run_job
from vmatte.ui.session import Session, UiSettings


@pytest.fixture
def session(tmp_path) -> Session:
    s = Session(tmp_path / "work" / "s", UiSettings(tmp_path / "work", device="cpu"))
    s.open_video(make_clip(tmp_path / "clip.mp4", 3, 64, 48))
    return s


def _secret(tmp_path):
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    img = np.zeros((48, 64, 3), np.uint8)
    cv2.putText(img, "PIN", (2, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    cv2.imwrite(str(secret), img)
    return secret


def test_typed_background_path_is_never_read(session, tmp_path):
    """A server path typed into 'Composite background' is refused with the same words whether it
    exists, is a folder or is missing: no file is read and nothing tells them apart."""
    secret = _secret(tmp_path)
    messages = set()
    for typed in (str(secret), str(secret.parent), str(tmp_path / "missing.png"), "/etc/passwd", "../secret.png"):
        with pytest.raises(VmatteError) as e:
            run_job(session, RunSettings(model="rvm", formats=("comp",), background=typed), Job(3))
        messages.add(str(e.value))
    assert len(messages) == 1, messages
    (msg,) = messages
    assert "secret" not in msg and "upload" in msg
    assert not list(session.folder.glob("run-*/*_comp.mp4"))


def test_background_file_must_be_an_upload(session, tmp_path):
    with pytest.raises(VmatteError) as e:
        run_job(session, RunSettings(model="rvm", formats=("comp",), background_file=str(_secret(tmp_path))), Job(3))
    assert "secret" not in str(e.value) and "upload" in str(e.value)


def test_uploaded_background_and_colour_work(session, tmp_path):
    up = session.settings.workdir / "gradio" / "abc" / "bg.png"  # where Gradio puts an upload
    up.parent.mkdir(parents=True)
    cv2.imwrite(str(up), np.full((48, 64, 3), (0, 0, 255), np.uint8))  # red (BGR)
    r = run_job(session, RunSettings(model="rvm", formats=("comp",), background_file=str(up)), Job(3))
    first = next(iter(read_rgba(r.downloads[0])))
    assert first[0, 0, 0] > 150 and first[0, 0, 0] > 2 * first[0, 0, 1]  # the corner (no person) shows the red upload
    r = run_job(session, RunSettings(model="rvm", formats=("comp",), background="#0000ff"), Job(3))
    assert next(iter(read_rgba(r.downloads[0])))[0, 0, 2] > 150


def _ui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmatte.cli", "ui", *args], capture_output=True, text=True, timeout=120
    )


def test_ui_on_a_port_in_use_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = _ui("--port", str(busy.getsockname()[1]))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "in use" in done.stderr, done.stderr


@pytest.mark.parametrize("host", ["no.such.host.invalid", "999.1.1.1"])
def test_ui_on_an_invalid_host_is_one_line(host):
    done = _ui("--host", host, "--port", "7999")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--host" in done.stderr, done.stderr
