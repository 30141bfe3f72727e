"""Batch throughput: 1 local worker vs 2 local workers vs a 2-node Ray cluster, same 12 shots.

    PYTHONPATH=src python benchmarks/batch.py [--rounds 2] [--frames 40] [--size 192x108]

Each configuration is one `vmatte batch` command (its process start, model loads and Ray
scheduling included) into a fresh output folder, alternating 1w, 2w, ray, 1w, 2w, ray ...;
the figures are min and median over rounds of wall time, as shots/hour and frames/s, and the
ratios against 1 worker measured in the same round. Every worker uses 1 thread (the 1-worker
run too: --threads 1), so 2 workers on 2 cores can approach 2x.

Ray runs on two nodes of 1 CPU each on 127.0.0.1 in a network namespace of the benchmark's own
(tests/ray_cluster.py): the script re-runs itself under `unshare -n -p -f` (root needed).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def make_shots(d: Path, n: int, frames: int, w: int, h: int) -> Path:
    import cv2
    import numpy as np

    from conftest import make_clip

    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : 3 * h // 4, w // 3 : 2 * w // 3] = 255
    cv2.imwrite(str(d / "mask.png"), mask)
    rows = ["id,input,model,mask,formats"]
    for i in range(n):
        make_clip(d / f"clip{i:02d}.mp4", frames, w, h)
        target = i % 4 == 3  # a quarter of the shots follow a masked target
        rows.append(
            f"shot{i:02d},clip{i:02d}.mp4,{'rvm-target' if target else 'rvm'},"
            f'{"mask.png" if target else ""},"alpha,comp"'
        )
    (d / "shots.csv").write_text("\n".join(rows) + "\n")
    return d / "shots.csv"


def machine() -> str:
    from abtest import cpu_model

    return f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores usable, load average {os.getloadavg()[0]:.1f}"


def inside(args) -> None:
    from ray_cluster import TwoNodes

    work = Path(tempfile.mkdtemp(prefix="vmatte-batch-bench-"))
    manifest = make_shots(work, args.shots, args.frames, *map(int, args.size.split("x")))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), RAY_USAGE_STATS_ENABLED="0")
    configs = {
        "1 worker": ["--workers", "1", "--threads", "1"],
        "2 workers": ["--workers", "2", "--threads", "1"],
        "ray 2 nodes": ["--ray", "{address}", "--cpus-per-shot", "1"],
    }
    if args.no_ray:  # the local A/B alone: no idle Ray nodes beside it
        del configs["ray 2 nodes"]
    times: dict[str, list[float]] = {k: [] for k in configs}
    frames = args.shots * args.frames
    print(f"machine: {machine()} (shared with other jobs: figures are ratios within a round)")
    print(f"{args.shots} shots x {args.frames} frames at {args.size} (3/4 rvm, 1/4 rvm-target), formats alpha+comp")
    with contextlib.nullcontext() if args.no_ray else TwoNodes() as cluster:
        for r in range(args.rounds):
            for name, extra in configs.items():
                out = work / f"out-{r}-{name.replace(' ', '')}"
                cmd = [
                    sys.executable,
                    "-m",
                    "vmatte.cli",
                    "batch",
                    str(manifest),
                    "-o",
                    str(out),
                    "-q",
                    *[e.replace("{address}", getattr(cluster, "address", "")) for e in extra],
                ]
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, env=env, capture_output=True)
                times[name].append(time.perf_counter() - t0)
                reports = [json.loads(p.read_text()) for p in out.glob("*/report.json")]
                per_shot = [rep["seconds"] for rep in reports]
                spread = sorted(collections.Counter(rep["pid"] for rep in reports).values(), reverse=True)
                print(
                    f"round {r + 1} {name:12s} {times[name][-1]:6.1f} s wall; per shot in the worker: "
                    f"min {min(per_shot):.2f} s, median {statistics.median(per_shot):.2f} s; shots per worker "
                    f"process {spread}; load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    print(
        "\n| configuration | wall s (min / median) | shots/hour (best) | frames/s (best) | vs 1 worker "
        "(min / median of per-round ratios) |\n|---|---|---|---|---|"
    )
    base = times["1 worker"]
    for name, ts in times.items():
        ratios = [b / t for b, t in zip(base, ts)]
        print(
            f"| {name} | {min(ts):.1f} / {statistics.median(ts):.1f} | {args.shots * 3600 / min(ts):.0f} | "
            f"{frames / min(ts):.1f} | {min(ratios):.2f}x / {statistics.median(ratios):.2f}x |"
        )
    if not args.no_ray:
        local2, ray = times["2 workers"], times["ray 2 nodes"]
        overhead = [t_ray / t_loc - 1 for t_ray, t_loc in zip(ray, local2)]
        print(
            f"\nRay vs 2 local workers: {min(overhead) * 100:+.0f}% / {statistics.median(overhead) * 100:+.0f}% "
            f"wall time (min / median over rounds)"
        )
    print(f"machine after: load average {os.getloadavg()[0]:.1f}")
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--shots", type=int, default=12)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--size", default="192x108")
    p.add_argument("--no-ray", action="store_true", help="1 vs 2 local workers only")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inside:
        inside(args)
        return
    cmd = ["unshare", "-n", "-p", "-f", "--mount-proc", sys.executable, __file__, "--inside", *sys.argv[1:]]
    sys.exit(subprocess.run(cmd, check=False).returncode)


if __name__ == "__main__":
    main()
