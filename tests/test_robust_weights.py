"""Robustness suite, untrusted weights, through the real CLI: a hostile pickle never runs, a
tampered shipped ONNX or download is refused (sha256), wrong keys are named. One line, exit 2.

(tests/test_weights.py checks the same functions one by one; here the whole command is run.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

import vmatte.weights as weights
from conftest import make_clip, serve_bytes
from robust_cases import ERROR, Case, Expect, check_outcome, run_case


class _CreatesFile:
    """Unpickling this calls ``open(target, "w")``: the file appearing proves the payload ran."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _marker(tmp: Path) -> Path:
    return tmp / "payload-ran"


def _clip(tmp: Path) -> Path:
    return make_clip(tmp / "clip.mp4", 3, 64, 48)


def _hostile_pth(model: str):
    def make(tmp: Path) -> list:
        pth = tmp / "evil.pth"
        sd = dict(weights.resolve_rvm().state_dict)
        sd["zz_payload"] = _CreatesFile(str(_marker(tmp)))  # a real state_dict with one hostile entry
        torch.save(sd, pth)
        extra = ["--mask", _box_mask(tmp)] if model != "rvm" else []
        return [_clip(tmp), "--model", model, "--weights", pth, "--device", "cpu", "-f", "alpha", *extra]
    return make


def _box_mask(tmp: Path) -> Path:
    import cv2
    import numpy as np

    m = np.zeros((48, 64), np.uint8)
    m[10:40, 20:44] = 255
    cv2.imwrite(str(tmp / "mask.png"), m)
    return tmp / "mask.png"


def _partial_pth(tmp: Path) -> list:
    sd = {k: v for k, v in weights.resolve_rvm().state_dict.items() if not k.startswith("refiner.")}
    sd["head.extra"] = torch.zeros(3)
    torch.save(sd, tmp / "partial.pth")
    return [_clip(tmp), "--model", "rvm", "--weights", tmp / "partial.pth", "--device", "cpu", "-f", "alpha"]


def _garbage_safetensors(tmp: Path) -> list:
    (tmp / "w.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    return [_clip(tmp), "--model", "rvm", "--weights", tmp / "w.safetensors", "--device", "cpu", "-f", "alpha"]


CASES = [
    Case("pickle payload in a .pth (rvm)", _hostile_pth("rvm"), Expect(ERROR, ("arbitrary python objects",))),
    Case("pickle payload in a .pth (matanyone)", _hostile_pth("matanyone"),
         Expect(ERROR, ("arbitrary python objects",))),
    Case("checkpoint with missing and unexpected keys", _partial_pth,
         Expect(ERROR, ("missing keys: refiner.", "1 unexpected keys: head.extra"))),
    Case("corrupt .safetensors", _garbage_safetensors, Expect(ERROR, ("corrupt",))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_weights_case(case: Case, tmp_path, capsys):
    code, stdout, err, out = run_case(case, tmp_path, capsys)
    check_outcome(case, code, stdout, err, out)
    assert not _marker(tmp_path).exists()  # the payload never ran


TAMPERED_ONNX = Case("shipped ONNX with one flipped byte (sha256)", lambda tmp: [_clip(tmp), "--model", "rvm",
                                                                                "--device", "cpu", "-f", "alpha"],
                     Expect(ERROR, ("sha256 mismatch", "reinstall")))


def test_tampered_shipped_onnx_is_refused(tmp_path, monkeypatch, capsys):
    """The ONNX copied into a fake package with one byte flipped; the resolver pointed at it."""
    pkg = tmp_path / "site" / "tampered_rvm_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    data = bytearray(weights.packaged_path().read_bytes())
    data[len(data) // 3] ^= 0x01
    (pkg / "rvm.onnx").write_bytes(bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    shipped = weights.RVM_PACKAGED
    monkeypatch.setattr(weights.rvm, "RVM_PACKAGED", weights.PackagedFile("tampered_rvm_pkg", shipped.version, "rvm.onnx",
                                                                      shipped.size, shipped.sha256, shipped.license))
    monkeypatch.setenv("VMATTE_CACHE", str(tmp_path / "cache"))  # nothing converted earlier to fall back on
    code, stdout, err, out = run_case(TAMPERED_ONNX, tmp_path, capsys)
    check_outcome(TAMPERED_ONNX, code, stdout, err, out)



BAD_DOWNLOAD = Case("download whose sha256 differs from the pinned one",
                    lambda tmp: [_clip(tmp), "--model", "rvm-resnet50", "--weights", "download", "--device", "cpu",
                                 "-f", "alpha"],
                    Expect(ERROR, ("sha256",)))


def test_download_with_wrong_sha256_is_refused(tmp_path, monkeypatch, capsys):
    good = weights.resolve_rvm().state_dict
    buf = tmp_path / "served.pth"
    torch.save(good, buf)
    served = bytearray(buf.read_bytes())
    served[len(served) // 2] ^= 0x01  # one bit: what a man in the middle or a bad mirror serves
    with serve_bytes(bytes(served), "rvm_resnet50.pth") as url:
        pinned = hashlib.sha256(buf.read_bytes()).hexdigest()
        remote = weights.RemoteFile("rvm_resnet50.pth", url, pinned, weights.RVM_LICENSE)
        monkeypatch.setitem(weights.RVM_REMOTE, "resnet50", remote)
        cache = tmp_path / "cache"
        monkeypatch.setenv("VMATTE_CACHE", str(cache))
        code, stdout, err, out = run_case(BAD_DOWNLOAD, tmp_path, capsys)
    check_outcome(BAD_DOWNLOAD, code, stdout, err, out)
    assert not cache.exists() or [p.name for p in cache.iterdir() if "resnet50" in p.name] == []
