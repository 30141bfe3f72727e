"""Which segmenter clicks use: named SAM / SAM 2 checkpoints in the cache, their order, their
sha256 checks, and the one-line errors of ``--segmenter`` and ``vmatte weights``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_clip, serve_bytes
from vmatte.engine.segment.prompts import (
    AUTO,
    RVM,
    _family,
    check_segmenter,
    choose_segmenter,
    segmenter_choices,
)
from vmatte.errors import WeightsError
from vmatte.weights import (
    SEGMENTERS,
    RemoteFile,
    cached_segmenters,
    download,
    resolve_segmenter,
    segmenter_cache_path,
)


def _saved(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _put(name: str, data: bytes = b"x") -> Path:
    path = segmenter_cache_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_auto_is_rvm_until_a_checkpoint_is_cached_then_prefers_small_on_cpu_and_best_on_gpu(cache):
    assert choose_segmenter(AUTO, "cpu") == RVM and choose_segmenter(None, "cpu") == RVM
    for name in ("sam-vit-h", "sam2.1-hiera-large", "sam2.1-hiera-tiny", "sam-vit-b"):
        _put(name)
    assert cached_segmenters() == ["sam2.1-hiera-tiny", "sam-vit-b", "sam2.1-hiera-large", "sam-vit-h"]
    assert choose_segmenter(AUTO, "cpu") == "sam2.1-hiera-tiny"
    assert cached_segmenters(prefer_gpu=True)[0] == "sam2.1-hiera-large"
    assert choose_segmenter(RVM, "cpu") == RVM  # an explicit choice is kept
    labels = dict((v, k) for k, v in segmenter_choices(AUTO, "cpu"))
    assert labels[AUTO] == "Auto (SAM 2.1 Hiera-T)" and labels["sam-vit-h"] == "SAM ViT-H"
    assert list(labels)[:2] == [AUTO, RVM]


def test_every_source_has_an_official_url_and_sam1_a_pinned_sha256():
    for s in SEGMENTERS.values():
        assert s.remote.url.startswith("https://dl.fbaipublicfiles.com/") and s.remote.url.endswith(s.remote.filename)
        assert "Apache-2.0" in s.remote.license
    assert all(len(SEGMENTERS[n].remote.sha256) == 64 for n in ("sam-vit-b", "sam-vit-l", "sam-vit-h"))
    assert len({s.rank_cpu for s in SEGMENTERS.values()}) == len(SEGMENTERS)
    assert len({s.rank_gpu for s in SEGMENTERS.values()}) == len(SEGMENTERS)


def test_a_swapped_sam1_file_is_refused_and_a_checked_one_is_not_hashed_again(cache, monkeypatch):
    _put("sam-vit-b", b"not the official file")
    with pytest.raises(WeightsError, match="changed since download"):
        resolve_segmenter("sam-vit-b")
    # a verified file is stamped (size + mtime) and not hashed again: count sha256 calls
    payload = _saved({"image_encoder.blocks.0.norm1.weight": torch.ones(4)})
    path = _put("sam-vit-b", payload)
    import hashlib

    import vmatte.weights as w

    monkeypatch.setitem(
        w.SEGMENTERS,
        "sam-vit-b",
        w.SegmenterSource(
            "sam-vit-b",
            "SAM ViT-B",
            RemoteFile(path.name, "https://example.invalid/x", hashlib.sha256(payload).hexdigest(), w.SAM_LICENSE),
            6,
            10,
        ),
    )
    calls = []
    real = w.sha256_file
    monkeypatch.setattr(w.store, "sha256_file", lambda p: calls.append(p) or real(p))
    sd, source, label = resolve_segmenter("sam-vit-b")
    assert list(sd) == ["image_encoder.blocks.0.norm1.weight"] and label == "SAM ViT-B" and source == str(path)
    assert len(calls) == 1 and path.with_name(path.name + ".verified.json").is_file()
    resolve_segmenter("sam-vit-b")
    assert len(calls) == 1  # stamped: no second hash
    path.write_bytes(b"swapped bytes, other size")
    with pytest.raises(WeightsError, match="changed since download"):
        resolve_segmenter("sam-vit-b")


def test_missing_weights_offline_name_the_url_and_the_cache_path(cache, monkeypatch):
    monkeypatch.setenv("VMATTE_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        resolve_segmenter("sam2.1-hiera-tiny")
    text = str(e.value)
    assert "sam2.1_hiera_tiny.pt" in text and str(segmenter_cache_path("sam2.1-hiera-tiny")) in text
    assert "vmatte weights fetch sam2.1-hiera-tiny" in text


def test_sam2_download_records_its_sha256_and_a_later_swap_is_caught(cache):
    sd = {"image_encoder.trunk.pos_embed": torch.zeros(1, 2, 3, 3)}
    payload = _saved({"model": sd})
    dest = segmenter_cache_path("sam2.1-hiera-tiny")
    with serve_bytes(payload, "sam2.1_hiera_tiny.pt") as url:
        download(RemoteFile(dest.name, url, None, ""), dest, progress=False)
    record = json.loads(dest.with_name(dest.name + ".sha256.json").read_text())
    assert record["size"] == len(payload)
    got, source, label = resolve_segmenter("sam2.1-hiera-tiny", allow_download=False)
    assert list(got) == list(sd) and label == "SAM 2.1 Hiera-T" and source == str(dest)
    swapped = bytearray(payload)
    swapped[len(swapped) // 2] ^= 0xFF  # same size, one byte changed
    dest.write_bytes(bytes(swapped))
    dest.with_name(dest.name + ".verified.json").unlink(missing_ok=True)
    with pytest.raises(WeightsError, match="changed since download"):
        resolve_segmenter("sam2.1-hiera-tiny")


def test_bad_specs_and_foreign_checkpoints_are_one_line_errors(tmp_path):
    check_segmenter("auto"), check_segmenter("rvm"), check_segmenter("sam-vit-b")
    with pytest.raises(WeightsError, match="no such file and not a segmenter name"):
        check_segmenter(str(tmp_path / "nope.pth"))
    with pytest.raises(WeightsError, match="neither Segment Anything"):
        _family({"backbone.features.0.0.weight": torch.zeros(1)})
    assert _family({"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(1)}) == "sam2"
    assert (
        _family(
            {"image_encoder.blocks.0.attn.qkv.weight": torch.zeros(1), "mask_decoder.iou_token.weight": torch.zeros(1)}
        )
        == "sam1"
    )


def _vmatte(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vmatte.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_segmenter_errors_and_warning(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", 3, 64, 48)
    r = _vmatte(
        "matte",
        str(clip),
        "-o",
        str(tmp_path / "o"),
        "--click",
        "10,10",
        "--model",
        "rvm-target",
        "--segmenter",
        str(tmp_path / "missing.pth"),
    )
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "no such file and not a segmenter name" in lines[0], r.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    r = _vmatte(
        "matte",
        str(clip),
        "-o",
        str(tmp_path / "o2"),
        "--model",
        "rvm",
        "-f",
        "alpha",
        "-q",
        "--segmenter",
        "sam-vit-b",
    )
    assert r.returncode == 0 and "--segmenter sam-vit-b is ignored" in r.stderr, r.stderr


def test_weights_list_shows_what_is_cached(cache):
    import os

    _put("sam2.1-hiera-small", b"y" * (3 << 20))
    r = _vmatte("weights", "list", env={**os.environ, "VMATTE_CACHE": str(cache)})
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert "cached 3 MB" in rows["sam2.1-hiera-small"] and "not cached" in rows["sam-vit-h"]
    assert "GPL-3.0" in rows["rvm"] and "non-commercial" in rows["matanyone"]
    r = _vmatte("weights", "fetch", "sam-vit-x", env={**os.environ, "VMATTE_CACHE": str(cache)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown weights sam-vit-x" in r.stderr
