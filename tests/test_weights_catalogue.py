"""The weights catalogue: each family module exports its names, files, sizes, sha256, licence and URL;
``cached()`` and ``vmatte weights list/fetch`` read them all (fetch tested against a loopback server
standing in for the publishers, through ``VMATTE_WEIGHTS_MIRROR``)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import pytest

from vmatte import weights
from vmatte.cli import main
from vmatte.engine import registry


@pytest.fixture
def mirror(monkeypatch):
    """A loopback server answering GET /<file name> with ``files[name]`` (404 otherwise)."""
    files: dict[str, bytes] = {}
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            name = self.path.lstrip("/")
            asked.append(name)
            body = files.get(name)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("VMATTE_WEIGHTS_MIRROR", f"http://127.0.0.1:{httpd.server_address[1]}/")
    monkeypatch.delenv("VMATTE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield files, asked
    httpd.shutdown()


def _rows(capsys) -> dict[str, str]:
    assert main(["weights", "list"]) == 0
    return {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}


def test_every_family_is_listed_and_every_model_weights_name_is_answered(cache, capsys):
    entries = weights.catalogue()
    assert {"rvm", "rvm-resnet50", "matanyone", "matanyone2", "videomama"} <= set(entries)
    assert {e.family for e in entries.values()} >= {"sam", "sam2"}
    for spec in registry.SPECS.values():  # a model's weights: a catalogue name or a family
        if spec.weights is not None:
            assert weights.cached(spec.weights) is False, spec.name
    for e in entries.values():
        assert e.license and e.url.startswith("https://"), e.name
        assert all(f.url.startswith("https://") for f in e.files), e.name
    assert all(len(e.files[0].sha256) == 64 for e in entries.values() if e.name.startswith("sam-vit"))
    rows = _rows(capsys)
    assert set(rows) == set(entries)
    assert "ships with vmatte" in rows["rvm"] and "--model rvm-target / rvm" in rows["rvm"]
    assert "not cached (about 108 MB)" in rows["rvm-resnet50"] and "--model rvm-resnet50" in rows["rvm-resnet50"]
    assert "--model videomama" in rows["videomama"] and "non-commercial" in rows["matanyone2"]
    assert "--model sam2-matte" in rows["sam2.1-hiera-tiny"] and "--model" not in rows["sam-vit-b"]
    # a hub folder counts: VideoMaMa's two snapshots, MatAnyone's hub layout
    mama, svd = weights.videomama_cache_paths()
    for config in (mama / "unet" / "config.json", svd / "vae" / "config.json"):
        config.parent.mkdir(parents=True)
        config.write_text("{}")
    (weights.matanyone_cache_paths("matanyone2")[1] / "model.safetensors").parent.mkdir(parents=True)
    (weights.matanyone_cache_paths("matanyone2")[1] / "model.safetensors").write_bytes(b"x")
    assert weights.cached("videomama") and weights.cached("matanyone2") and not weights.cached("matanyone")
    with pytest.raises(KeyError):
        weights.cached("no-such-weights")


def test_fetch_downloads_each_family_into_its_cache_place_once(cache, mirror, capsys):
    files, asked = mirror
    names = ["rvm-resnet50", "matanyone", "sam2.1-hiera-tiny"]
    entries = weights.catalogue()
    for n in names:
        files[entries[n].files[0].filename] = n.encode() * 1000
    assert main(["weights", "fetch", *names]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == names
    for n in names:
        (path,) = entries[n].cache_paths()
        assert path.read_bytes() == n.encode() * 1000 and weights.cached(n)
        record = json.loads(path.with_name(path.name + ".sha256.json").read_text())  # no published sha256
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert weights.cached("sam2") and not weights.cached("sam")
    rows = _rows(capsys)
    assert all("cached 0 MB" in rows[n] for n in names)
    # fetched again: checked against the recorded digest, not downloaded; a swapped file is caught
    asked.clear()
    assert main(["weights", "fetch", "matanyone"]) == 0 and asked == []
    path = entries["matanyone"].cache_paths()[0]
    path.write_bytes(b"y" * path.stat().st_size)
    capsys.readouterr()
    assert main(["weights", "fetch", "matanyone"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "changed since download" in err


def test_fetch_refuses_a_file_that_is_not_the_published_one(cache, mirror, capsys):
    files, _ = mirror
    files["sam_vit_b_01ec64.pth"] = b"not the official checkpoint"  # SAM ViT-B's sha256 is pinned
    assert main(["weights", "fetch", "sam-vit-b"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vmatte:")]
    assert len(errors) == 1 and "sha256" in errors[0] and "corrupt" in errors[0], errors
    assert not weights.cached("sam-vit-b") and not list(cache.rglob("sam_vit_b*"))


def test_fetch_offline_and_unknown_names_are_one_line(cache, monkeypatch, capsys):
    assert main(["weights", "fetch", "rvm-resnet5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown weights rvm-resnet5" in err and "rvm-resnet50" in err
    monkeypatch.setenv("VMATTE_OFFLINE", "1")
    assert main(["weights", "fetch", "videomama"]) == 2
    assert "downloads are off" in capsys.readouterr().err
