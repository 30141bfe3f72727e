"""`vmatte batch`: manifests, shards, local workers and a real two-node Ray cluster.

The Ray tests run a head and a second node (1 CPU each) on 127.0.0.1 inside a network and pid
namespace of their own (``unshare``), drive `vmatte batch --ray` there, and compare every output
frame for frame with a sequential `vmatte matte` of the same shot; one run SIGKILLs the second
node while a shot runs on it and checks that the shot is retried, resumed from its journal
and still identical, with nothing half-written left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import make_clip
from vmatte.batch import load_manifest, parse_shard, shard
from vmatte.batch.manifest import ManifestError
from vmatte.cli import main

REPO = Path(__file__).resolve().parents[1]
VMATTE = [sys.executable, "-m", "vmatte.cli"]
FRAMES, W, H, CHUNK = 20, 96, 64, 4
FORMATS = "alpha-png16,alpha"


def _env(tmp: Path) -> dict:
    # One thread per process, as each Ray task and each of 2 local workers gets on 2 cores, and an
    # empty weights cache: `auto` with a mask is then rvm-target everywhere.
    return dict(
        os.environ,
        PYTHONPATH=str(REPO / "src"),
        OMP_NUM_THREADS="1",
        VMATTE_CACHE=str(tmp / "cache"),
        RAY_USAGE_STATS_ENABLED="0",
    )


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Six short shots of mixed models (CSV manifest), and each one's sequential `vmatte matte` outputs."""
    d = tmp_path_factory.mktemp("batch")
    for i in range(6):
        make_clip(d / f"clip{i}.mp4", FRAMES, W, H)
    m = np.zeros((H, W), np.uint8)
    m[:20, :40] = 255
    cv2.imwrite(str(d / "m.png"), m)
    m2 = np.zeros((H, W), np.uint8)
    m2[10:50, 30:80] = 255
    cv2.imwrite(str(d / "m2.png"), m2)
    rows = [
        ("s1", "clip0.mp4", "rvm", "", "", ""),
        ("s2", "clip1.mp4", "rvm", "", "", "blue"),
        ("s3", "clip2.mp4", "rvm-target", "m.png", "", ""),
        ("s4", "clip3.mp4", "rvm-target", "", "0:m.png;10:m2.png", ""),
        ("s5", "clip4.mp4", "auto", "", "", ""),
        ("s6", "clip5.mp4", "auto", "m2.png", "", ""),
    ]
    lines = ["id,input,model,mask,mask_at,bg,formats,backend"]
    lines += [
        f'{i},{c},{mo},{ma},{at},{bg},"{FORMATS + (",comp" if bg else "")}",{"torch" if i == "s2" else ""}'
        for i, c, mo, ma, at, bg in rows
    ]
    (d / "shots.csv").write_text("\n".join(lines) + "\n")
    commands = []
    for sid, clip, model, mask, at, bg in rows:  # the reference: one `vmatte matte` per shot, in turn
        cmd = [
            "matte",
            str(d / clip),
            "-o",
            str(d / "ref" / sid),
            "-m",
            model,
            "-q",
            "-f",
            FORMATS + (",comp" if bg else ""),
            "--chunk-frames",
            str(CHUNK),
        ]
        cmd += ["--mask", str(d / mask)] if mask else []
        for spec in filter(None, at.split(";")):
            cmd += ["--mask-at", f"{spec.split(':')[0]}:{d / spec.split(':')[1]}"]
        cmd += ["--bg", bg] if bg else []
        cmd += ["--backend", "torch"] if sid == "s2" else []
        commands.append(cmd)
    # The six commands in one fresh process (a process start costs seconds on a loaded machine).
    code = f"from vmatte.cli import main\nfor argv in {commands!r}:\n    assert main(argv) == 0, argv\n"
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(d), timeout=200, capture_output=True)
    for sid, clip, *_ in rows:
        for p in (d / "ref" / sid).iterdir():  # named by the shot id, as the batch names them
            p.rename(p.with_name(p.name.replace(Path(clip).stem, sid, 1)))
    return d


def _frames(path: Path) -> list[np.ndarray]:
    if path.is_dir():
        return [cv2.imread(str(f), cv2.IMREAD_UNCHANGED) for f in sorted(path.iterdir())]
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _assert_same_as_reference(d: Path, root: Path) -> None:
    for ref in sorted((d / "ref").iterdir()):
        got = root / ref.name
        names = sorted(p.name for p in ref.iterdir())
        assert sorted(p.name for p in got.iterdir() if p.name != "report.json") == names, ref.name
        for name in names:
            a, b = _frames(ref / name), _frames(got / name)
            assert len(a) == len(b) == FRAMES, (ref.name, name)
            for i, (x, y) in enumerate(zip(a, b)):
                assert np.array_equal(x, y), f"{ref.name}/{name} frame {i} differs"
        report = json.loads((got / "report.json").read_text())
        assert report["status"] == "done" and report["frames"] == FRAMES and len(report["weights_sha256"]) == 64


def _no_leftovers(root: Path) -> None:
    left = [p for p in root.rglob("*") if p.name.startswith(".")]  # journals, .partial outputs, temp reports
    assert not left, left


def _unshare_ok() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    r = subprocess.run(
        ["unshare", "-n", "-p", "-f", "--mount-proc", "ip", "link", "set", "lo", "up"], capture_output=True, check=False
    )
    return None if r.returncode == 0 else "needs root for a network namespace (unshare -n): " + r.stderr.decode()[:200]


# --- manifest errors, one line each ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("id,model\na,rvm\n", "header: missing column 'input'"),
        ("id,input,model\na,{clip},rvx\n", "row 1 (id 'a'), model: unknown model 'rvx'; use one of: auto,"),
        ("id,input\na,missing.mp4\n", "row 1 (id 'a'), input: file not found:"),
        ("id,input\na,{clip}\nA,{clip}\n", "row 2 (id 'A'), id: duplicate of row 1 (ids are compared ignoring case"),
        ("id,input,choke\na,{clip},abc\n", "row 1 (id 'a'), choke: 'abc' is not a number"),
        ("id,input,shift-edge\na,{clip},300\n", "shift_edge: shift_edge must be between -100 and 100 (%), got 300"),
        ("id,input,despill\na,{clip},red\n", "despill: despill must be one of: green, blue"),
        ("id,input,frames\na,{clip},1001-1010\n", "frames: applies to EXR/DPX plate sequences; c.mp4 is not one"),
        (
            "id,input,exr_compression\na,{clip},rar\n",
            "exr_compression: exr_compression must be one of: zip, piz, dwaa, none; got 'rar'",
        ),
    ],
)
def test_manifest_error_is_one_line_and_nothing_runs(tmp_path, capsys, text, expected):
    clip = make_clip(tmp_path / "c.mp4", 3, 32, 32)
    manifest = tmp_path / "m.csv"
    manifest.write_text(text.format(clip=clip))
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vmatte: error: m.csv ") and expected in err[0], err
    assert not (tmp_path / "out").exists()


def test_every_bad_row_is_listed_jsonl(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", 3, 32, 32)
    rows = [
        {"id": "a", "input": str(clip), "colour": "red"},
        {"id": "b/c", "input": str(clip)},
        {"id": "d", "input": str(clip), "model": "matanyone"},
        {"id": "e", "input": str(clip), "max_size": "big"},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path / "m.jsonl")
    fields = [line.split(", ", 1)[1].split(":")[0] for line in e.value.lines]
    assert fields == ["colour", "id", "mask", "max_size"], e.value.lines


def test_model_inputs_are_checked_from_the_registry(tmp_path):
    """What each model takes (every person, keyframe masks, one mask per frame) comes from its spec."""
    make_clip(tmp_path / "c.mp4", 3, 32, 32)
    cv2.imwrite(str(tmp_path / "m.png"), np.full((32, 32), 255, np.uint8))
    (tmp_path / "masks").mkdir()
    rows = [
        {"id": "a", "input": "c.mp4", "model": "rvm", "mask": "m.png"},
        {"id": "b", "input": "c.mp4", "model": "rvm-target"},
        {"id": "c", "input": "c.mp4", "model": "videomama"},
        {"id": "d", "input": "c.mp4", "model": "matanyone", "masks": "masks"},
        {"id": "e", "input": "c.mp4", "mask": "m.png", "masks": "masks"},
        {"id": "f", "input": "c.mp4", "precision": "fp8"},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path / "m.jsonl")
    got = [(line.split("(id '")[1][0], line.split(", ", 1)[1].split(":")[0]) for line in e.value.lines]
    assert got == [("a", "model"), ("b", "mask"), ("c", "masks"), ("d", "masks"), ("e", "masks"), ("f", "precision")], (
        e.value.lines
    )
    assert "use one of rvm-target, matanyone, matanyone2" in e.value.lines[0]
    # a keyframe model that also takes per-frame masks through RVM's gate: accepted
    (tmp_path / "ok.jsonl").write_text(
        json.dumps({"id": "g", "input": "c.mp4", "model": "rvm-target", "masks": "masks"})
    )
    assert [s.id for s in load_manifest(tmp_path / "ok.jsonl")] == ["g"]
    # the tracker option (SAM 2 or RVM identity) passes through as a column
    (tmp_path / "t.csv").write_text("id,input,model,mask,tracker\nh,c.mp4,rvm-target,m.png,rvm\n")
    assert load_manifest(tmp_path / "t.csv")[0].options["tracker"] == "rvm"


def test_a_shot_another_batch_holds_is_refused_in_one_line_and_left_alone(tmp_path, capsys):
    """The same batch started twice: a shot the other run holds is refused (one line, exit 1) and
    nothing of it is touched; run again once that run has ended, only what is left is matted."""
    from vmatte.batch.shot import SHOT_LOCK
    from vmatte.io.ownership import OutputLock, lock_path

    for i in range(2):
        make_clip(tmp_path / f"c{i}.mp4", 4, 32, 32)
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,input,formats\na,c0.mp4,alpha-png\nb,c1.mp4,alpha-png\n")
    root = tmp_path / "out"
    (root / "a").mkdir(parents=True)
    with OutputLock(root / "a", SHOT_LOCK):  # another open file: flock refuses this process too
        assert main(["batch", str(manifest), "-o", str(root), "-q"]) == 1
        assert [p.name for p in (root / "a").iterdir()] == [lock_path(root / "a", SHOT_LOCK).name]
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vmatte: shot")]
    assert len(err) == 1 and err[0].startswith("vmatte: shot a failed (retryable): another vmatte batch (pid "), err
    assert "is running this shot in " in err[0] and "; run this batch again when that one" in err[0]
    summary = json.loads((root / "batch.json").read_text())
    assert [(r["id"], r["status"]) for r in summary["reports"]] == [("a", "failed"), ("b", "done")]
    assert main(["batch", str(manifest), "-o", str(root), "-q"]) == 0
    assert "2/2 shots done (1 already done)" in capsys.readouterr().err
    _no_leftovers(root)


def test_the_same_batch_twice_at_once_mattes_each_shot_once(tmp_path):
    """Two real `vmatte batch` processes on one manifest and ROOT: however they interleave, each shot
    is matted by one of them only, a refused shot is one line, and nothing half-written is left."""
    for i in range(4):
        make_clip(tmp_path / f"c{i}.mp4", 8, 48, 32)
    (tmp_path / "m.csv").write_text("id,input,formats\n" + "".join(f"s{i},c{i}.mp4,alpha-png\n" for i in range(4)))
    cmd = [*VMATTE, "batch", str(tmp_path / "m.csv"), "-o", str(tmp_path / "out"), "-q", "--chunk-frames", "4"]
    procs = [
        subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    pids = {p.pid for p in procs}
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode in (0, 1), err
        refused = [line for line in err.splitlines() if line.startswith("vmatte: shot")]
        assert all("another vmatte batch (pid " in line for line in refused), refused
    for i in range(4):
        folder = tmp_path / "out" / f"s{i}"
        report = json.loads((folder / "report.json").read_text())
        assert (report["status"], report["attempt"], report["frames"]) == ("done", 1, 8), report
        assert report["pid"] in pids and len(list((folder / report["outputs"]["alpha-png"]).iterdir())) == 8
    _no_leftovers(tmp_path / "out")
    again = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "4/4 shots done (4 already done)" in again.stderr, again.stderr


# --- shards ---------------------------------------------------------------------------------------


def test_shards_cover_the_manifest_exactly_once():
    for n_shots in range(12):
        items = list(range(n_shots))
        for count in range(1, 8):
            parts = [shard(items, i, count) for i in range(count)]
            assert [x for part in parts for x in part] == items  # every shot once, in order
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parse_shard("2/5") == (2, 5)
    assert parse_shard("4", {"SLURM_ARRAY_TASK_ID": "3"}) == (3, 4)
    assert parse_shard("4", {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1"}) == (3, 4)
    for bad in ("5/5", "x/2", "-1/2", "4"):
        with pytest.raises(Exception, match="shard"):
            parse_shard(bad, {})


def test_shard_runs_then_summary_merge(tmp_path, capsys, monkeypatch):
    for i in range(3):
        make_clip(tmp_path / f"c{i}.mp4", 4, 32, 32)
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,input,formats\n" + "".join(f"s{i},c{i}.mp4,alpha-png\n" for i in range(3)))
    root = tmp_path / "out"
    assert main(["batch", str(manifest), "-o", str(root), "--shard", "0/2", "-q"]) == 0
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    assert main(["batch", str(manifest), "-o", str(root), "--shard", "2", "-q"]) == 0
    ran = [json.loads((root / f"batch-shard-{i}-of-2.json").read_text())["reports"] for i in range(2)]
    assert [[r["id"] for r in part] for part in ran] == [["s0"], ["s1", "s2"]]
    assert main(["batch", str(manifest), "-o", str(root), "--summary"]) == 0
    summary = json.loads((root / "batch.json").read_text())
    assert (summary["done"], summary["failed"], summary["missing"]) == (3, 0, 0)
    # run again: all done, nothing matted; --redo mattes again
    capsys.readouterr()
    assert main(["batch", str(manifest), "-o", str(root), "-q"]) == 0
    assert "3/3 shots done (3 already done)" in capsys.readouterr().err
    assert main(["batch", str(manifest), "-o", str(root), "-q", "--redo"]) == 0
    assert json.loads((root / "batch.json").read_text())["skipped"] == 0


def test_refine_columns_equal_the_matte_flags(tmp_path):
    """Every `vmatte matte` option is a manifest column: the refinement controls of a row give
    the same frames as the flags on `vmatte matte` (and a row without them, the plain matte)."""
    make_clip(tmp_path / "c.mp4", 6, 64, 48)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,input,model,formats,choke,feather,reduce-chatter\nr,c.mp4,rvm,alpha-png16,2,3,2\np,c.mp4,rvm,alpha-png16,,,\n"
    )
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out"), "-q", "--workers", "1"]) == 0
    flags = ["--choke", "2", "--feather", "3", "--reduce-chatter", "2"]
    for sid, extra in (("r", flags), ("p", [])):
        ref = tmp_path / f"ref-{sid}"
        assert (
            main(["matte", str(tmp_path / "c.mp4"), "-o", str(ref), "-m", "rvm", "-q", "-f", "alpha-png16", *extra])
            == 0
        )
        a, b = _frames(next(ref.iterdir())), _frames(next((tmp_path / "out" / sid).glob("*alpha*")))
        assert len(a) == len(b) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b)), sid
    reports = {s: json.loads((tmp_path / "out" / s / "report.json").read_text()) for s in "rp"}
    assert [reports[s]["model_reused"] for s in "rp"] == [False, True]  # one worker: RVM loaded once
    refined, plain = (_frames(next((tmp_path / "out" / s).glob("*alpha*"))) for s in "rp")
    assert any(not np.array_equal(x, y) for x, y in zip(refined, plain))  # the columns did something


def test_failed_shot_does_not_stop_the_others(tmp_path, capsys):
    make_clip(tmp_path / "good.mp4", 4, 32, 32)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,input,formats\nbad,broken.mp4,alpha\ngood,good.mp4,alpha\n")
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "vmatte: shot bad failed (bad input):" in err
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert [(r["id"], r["status"], r["retryable"]) for r in summary["reports"]] == [
        ("bad", "failed", False),
        ("good", "done", None),
    ]
    assert "| bad | failed (bad input) |" in (tmp_path / "out" / "batch.md").read_text()


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **k)

    make_clip(tmp_path / "c.mp4", 3, 32, 32)
    (tmp_path / "m.csv").write_text("id,input\na,c.mp4\n")
    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main(["batch", str(tmp_path / "m.csv"), "-o", str(tmp_path / "out"), "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        (
            "vmatte: error: --ray needs Ray, which is not installed; install it with: pip install "
            "'vmatte[cluster]' (or pip install 'ray[default]')"
        )
    ]


# --- local workers and Ray: the same frames as `vmatte matte` ---------------------------------------


def test_two_local_workers_equal_sequential_matte_even_when_one_is_killed(shots, tmp_path):
    """`--workers 2`: the same frames as `vmatte matte`; a worker SIGKILLed mid-shot is replaced and the
    shots it (and its pool) had in hand continue from their journals."""
    import signal
    import time

    sys.path.insert(0, str(REPO / "tests"))
    from ray_cluster import _running_there

    root = tmp_path / "out"
    proc = subprocess.Popen(
        [
            *VMATTE,
            "batch",
            str(shots / "shots.csv"),
            "-o",
            str(root),
            "--workers",
            "2",
            "-q",
            "--chunk-frames",
            str(CHUNK),
        ],
        env=_env(shots),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = None
    while proc.poll() is None and killed is None:
        killed = _running_there(root, None)
        time.sleep(0.02)
    if killed is not None:
        os.kill(json.loads((root / killed / "report.json").read_text())["pid"], signal.SIGKILL)  # our worker
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert killed is not None, "no shot was caught between two chunks"
    _assert_same_as_reference(shots, root)
    _no_leftovers(root)
    report = json.loads((root / killed / "report.json").read_text())
    assert report["attempt"] == 2 and report["resumed"] is True, report
    pids = {json.loads((root / s / "report.json").read_text())["pid"] for s in ("s1", "s2", "s3", "s4", "s5", "s6")}
    assert len(pids) >= 2


def test_ray_two_nodes_equal_sequential_and_survive_node_loss(shots, tmp_path):
    why = _unshare_ok()
    if why:
        pytest.skip(why)
    pytest.importorskip("ray")
    batch = [*VMATTE, "batch", str(shots / "shots.csv"), "--ray", "{address}", "-q", "--chunk-frames", str(CHUNK)]
    scenario = {
        "runs": [
            {"cmd": batch + ["-o", str(tmp_path / "run1")]},
            {"cmd": batch + ["-o", str(tmp_path / "run2")], "kill_worker_node": True, "root": str(tmp_path / "run2")},
        ]
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    # -p -f --mount-proc: a pid namespace too, so every Ray process goes when the scenario ends
    subprocess.run(
        [
            "unshare",
            "-n",
            "-p",
            "-f",
            "--mount-proc",
            sys.executable,
            str(REPO / "tests" / "ray_cluster.py"),
            str(path),
        ],
        env=_env(shots),
        check=True,
        timeout=600,
    )
    result = json.loads(path.with_suffix(".result.json").read_text())
    first, second = result["runs"]
    assert first["rc"] == 0, first["stderr"]
    _assert_same_as_reference(shots, tmp_path / "run1")
    nodes = {
        json.loads((tmp_path / "run1" / s / "report.json").read_text())["ray_node"]
        for s in ("s1", "s2", "s3", "s4", "s5", "s6")
    }
    assert len(nodes) == 2, "the shots did not spread over both nodes"
    _no_leftovers(tmp_path / "run1")

    assert second["killed"] is not None, "no shot was caught running on the second node"
    assert second["rc"] == 0, second["stderr"]
    _assert_same_as_reference(shots, tmp_path / "run2")
    report = json.loads((tmp_path / "run2" / second["killed"] / "report.json").read_text())
    assert report["attempt"] >= 2 and report["resumed"] is True, report
    assert report["ray_node"] != result["worker_node"]
    _no_leftovers(tmp_path / "run2")


def test_folder_of_videos_is_a_manifest_masks_by_name(tmp_path):
    make_clip(tmp_path / "hero.mp4", 3, 32, 32)
    make_clip(tmp_path / "wide.mov", 3, 32, 32)
    cv2.imwrite(str(tmp_path / "hero.png"), np.full((32, 32), 255, np.uint8))
    (tmp_path / "notes.txt").write_text("not a shot")
    shots = load_manifest(tmp_path)
    assert [(s.id, s.model, s.options.get("mask")) for s in shots] == [
        ("hero", "auto", str((tmp_path / "hero.png").resolve())),
        ("wide", "auto", None),
    ]
