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
    Case(
        "pickle payload in a .pth (matanyone)", _hostile_pth("matanyone"), Expect(ERROR, ("arbitrary python objects",))
    ),
    Case(
        "checkpoint with missing and unexpected keys",
        _partial_pth,
        Expect(ERROR, ("missing keys: refiner.", "1 unexpected keys: head.extra")),
    ),
    Case("corrupt .safetensors", _garbage_safetensors, Expect(ERROR, ("corrupt",))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_weights_case(case: Case, tmp_path, capsys):
    code, stdout, err, out = run_case(case, tmp_path, capsys)
    check_outcome(case, code, stdout, err, out)
    assert not _marker(tmp_path).exists()  # the payload never ran


TAMPERED_ONNX = Case(
    "shipped ONNX with one flipped byte (sha256)",
    lambda tmp: [_clip(tmp), "--model", "rvm", "--device", "cpu", "-f", "alpha"],
    Expect(ERROR, ("sha256 mismatch", "reinstall")),
)


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
    monkeypatch.setattr(
        weights.rvm,
        "RVM_PACKAGED",
        weights.PackagedFile(
            "tampered_rvm_pkg", shipped.version, "rvm.onnx", shipped.size, shipped.sha256, shipped.license
        ),
    )
    monkeypatch.setenv("VMATTE_CACHE", str(tmp_path / "cache"))  # nothing converted earlier to fall back on
    code, stdout, err, out = run_case(TAMPERED_ONNX, tmp_path, capsys)
    check_outcome(TAMPERED_ONNX, code, stdout, err, out)


BAD_DOWNLOAD = Case(
    "download whose sha256 differs from the pinned one",
    lambda tmp: [_clip(tmp), "--model", "rvm-resnet50", "--weights", "download", "--device", "cpu", "-f", "alpha"],
    Expect(ERROR, ("sha256",)),
)


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


# --- issue 21: caches, bombs, offline, messages --------------------------------------------


def _bomb_pth(tmp: Path) -> list:
    """A real checkpoint plus one deflated entry of 1 GiB of zeros: ~1 MB on disk. torch would
    allocate the full size; the zip directory says so before anything is read."""
    import zipfile

    small = tmp / "small.pth"
    torch.save({"w": torch.zeros(4)}, small)
    with zipfile.ZipFile(small) as z, zipfile.ZipFile(tmp / "bomb.pth", "w", zipfile.ZIP_DEFLATED) as o:
        for i in z.infolist():
            o.writestr(i.filename, z.read(i.filename))
        o.writestr("small/data/99", b"\0" * (1 << 30))
    return [_clip(tmp), "--model", "rvm", "--weights", tmp / "bomb.pth", "--device", "cpu", "-f", "alpha"]


def _garbage_pth(tmp: Path) -> list:
    (tmp / "notes.pth").write_bytes(b"this is a text file, not a checkpoint\n" * 20)
    return [_clip(tmp), "--model", "rvm", "--weights", tmp / "notes.pth", "--device", "cpu", "-f", "alpha"]


ISSUE21_CASES = [
    Case(
        ".pth that inflates 1 MB -> 1 GiB (zip bomb, legal under weights_only)",
        _bomb_pth,
        Expect(ERROR, ("expands to 1.0 GiB",)),
    ),
    Case("non-zip, non-pickle .pth (a text file)", _garbage_pth, Expect(ERROR, ("not a pytorch checkpoint",))),
]


@pytest.mark.parametrize("case", ISSUE21_CASES, ids=[c.name for c in ISSUE21_CASES])
def test_weights_case_issue21(case: Case, tmp_path, capsys):
    code, stdout, err, out = run_case(case, tmp_path, capsys)
    check_outcome(case, code, stdout, err, out)
    assert "malicious" not in err or "payload" in case.name


def test_tampered_converted_cache_is_rebuilt(tmp_path, cache, capsys):
    """NaNs written into the cached RVM safetensors (converted from the shipped ONNX): the cache is
    checked against the digest recorded when it was made, rebuilt, and the matte is the same."""
    from safetensors.torch import load_file, save_file

    clip = _clip(tmp_path)
    argv = ["matte", str(clip), "--model", "rvm", "--backend", "torch", "--device", "cpu", "-f", "alpha-png", "-q"]
    from vmatte.cli import main

    assert main([*argv, "-o", str(tmp_path / "a")]) == 0
    (converted,) = cache.glob("rvm_mobilenetv3_from_onnx_*.safetensors")
    sd = load_file(str(converted))
    save_file(
        {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in sd.items()}, str(converted)
    )
    capsys.readouterr()
    assert main([*argv, "-o", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "do not match the digest" in err and "Traceback" not in err
    first, second = sorted((tmp_path / "a" / "clip_alpha").iterdir()), sorted((tmp_path / "b" / "clip_alpha").iterdir())
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]  # not an all-white matte
    assert weights.store.matches_record(converted)


OFFLINE_CASES = [
    Case(
        "VMATTE_OFFLINE=1 with -m rvm-resnet50",
        lambda tmp: [_clip(tmp), "--model", "rvm-resnet50", "--device", "cpu", "-f", "alpha"],
        Expect(ERROR, ("VMATTE_OFFLINE",)),
    ),
    Case(
        "VMATTE_OFFLINE=1 with --weights download",
        lambda tmp: [_clip(tmp), "--model", "rvm", "--weights", "download", "--device", "cpu", "-f", "alpha"],
        Expect(ERROR, ("VMATTE_OFFLINE",)),
    ),
]


@pytest.mark.parametrize("case", OFFLINE_CASES, ids=[c.name for c in OFFLINE_CASES])
def test_offline_is_honoured_by_rvm_downloads(case: Case, tmp_path, cache, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("a download was tried although VMATTE_OFFLINE=1")

    monkeypatch.setenv("VMATTE_OFFLINE", "1")
    monkeypatch.setattr(weights.store.urllib.request, "urlopen", no_network)
    monkeypatch.setattr(weights.download, "__defaults__", (None, True, no_network))
    code, stdout, err, out = run_case(case, tmp_path, capsys)
    check_outcome(case, code, stdout, err, out)
