"""RVM speed and memory: model-only and file-to-file frames/s, peak RSS, vmatte vs onnxruntime.

    .venv/bin/python benchmarks/speed.py                 # the full table (a few minutes on 2 cores)
    .venv/bin/python benchmarks/speed.py --quick         # fewer frames, no 2,000-frame run
    .venv/bin/python benchmarks/speed.py --model matanyone   # MatAnyone (benchmarks/speed_matanyone.py)

Each measurement runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own. Input clips
are made from the sam2 juggle clip in ../shared/media when present (real footage), otherwise from
the demo's synthetic clip, resized to each resolution and looped to length.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

# Shared with `vmatte bench speed`, the generalised version of this script (models x sizes x lengths).
from vmatte.eval.speed import make_clip as encode_clip
from vmatte.eval.speed import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
SHARED_CLIP = ROOT.parent / "shared" / "media" / "sam2" / "05_default_juggle.mp4"
RESOLUTIONS = {"512x288": (512, 288), "1920x1080": (1920, 1080)}
RATIO = 0.25
ROUNDS = 3  # speed figures are the best of 3 runs


def source_frames(n: int, size: tuple[int, int]):
    """Real footage if ../shared is beside the repo, else the demo clip; looped to ``n`` frames."""
    base: list[np.ndarray] = []
    if SHARED_CLIP.is_file():
        with av.open(str(SHARED_CLIP)) as c:
            for i, f in enumerate(c.decode(video=0)):
                base.append(f.to_ndarray(format="rgb24"))
                if i >= 119:
                    break
    else:
        from vmatte.demo import sample_frames

        base = list(sample_frames(72))
    for i in range(n):
        # Ping-pong loop keeps motion continuous for the recurrent state.
        k = i % (2 * len(base) - 2)
        yield cv2.resize(base[k if k < len(base) else 2 * len(base) - 2 - k], size, interpolation=cv2.INTER_AREA)


def make_clip(path: Path, n: int, size: tuple[int, int]) -> Path:
    if path.is_file():
        return path
    return encode_clip(path, source_frames(n, size), size)  # H.264 crf 18, 30 fps


# --- workers (run in a subprocess) ---------------------------------------------------------

def worker_model_only(backend: str, res: str, frames: int) -> dict:
    import vmatte
    from vmatte.engine.runtime import tune_allocator

    tune_allocator()  # as the CLI does

    matter = vmatte.load_matter("rvm", device="cpu", backend=backend, downsample_ratio=RATIO)
    clip = list(source_frames(min(frames, 60), RESOLUTIONS[res]))
    matter.reset()
    for img in clip[:3]:  # warm-up: allocator, ORT graph optimisation, oneDNN primitives
        matter.step(img)
    dt = float("inf")
    for _ in range(ROUNDS):  # best of ROUNDS: the machine is shared, the minimum is the signal
        matter.reset()
        t0 = time.perf_counter()
        for i in range(frames):
            matter.step(clip[i % len(clip)])
        dt = min(dt, time.perf_counter() - t0)
    return {"fps": frames / dt, "ms_per_frame": 1000 * dt / frames, "peak_rss_mb": peak_rss_mb(), "model": matter.description}


def worker_ort_reference(res: str, frames: int) -> dict:
    """Plain onnxruntime (default session options) on the same frames and the same ONNX file."""
    import onnxruntime as ort

    from vmatte.weights import packaged_path

    sess = ort.InferenceSession(str(packaged_path()), providers=["CPUExecutionProvider"])
    clip = list(source_frames(min(frames, 60), RESOLUTIONS[res]))
    zero = np.zeros((1, 1, 1, 1), np.float32)

    def run(n: int) -> None:
        rec = [zero] * 4
        for i in range(n):
            src = clip[i % len(clip)].transpose(2, 0, 1)[None].astype(np.float32) / 255
            feeds = {"src": src, "downsample_ratio": np.array([RATIO], np.float32)}
            feeds.update({f"r{k + 1}i": r for k, r in enumerate(rec)})
            rec = sess.run(None, feeds)[2:]

    run(3)
    dt = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        run(frames)
        dt = min(dt, time.perf_counter() - t0)
    return {"fps": frames / dt, "ms_per_frame": 1000 * dt / frames, "peak_rss_mb": peak_rss_mb()}


def worker_file(backend: str, clip: str, formats: str, rounds: str = "1") -> dict:
    """Decode + matte + encode ``clip``; best of ``rounds`` runs (peak RSS over all of them)."""
    import vmatte
    from vmatte.engine.runtime import tune_allocator

    tune_allocator()  # as the CLI does

    matter = vmatte.load_matter("rvm", device="cpu", backend=backend, downsample_ratio=RATIO)
    with vmatte.io.open_source(clip) as src:  # warm up on one frame, as the model-only figure does
        first = next(iter(src)).image
    matter.reset(True)
    matter.step(first)
    dt = float("inf")
    for _ in range(int(rounds)):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = vmatte.matte(clip, out, model=matter, formats=formats.split(","))
            dt = min(dt, time.perf_counter() - t0)
    return {"fps": result.frames / dt, "frames": result.frames, "peak_rss_mb": peak_rss_mb()}


def run_worker(*args: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"worker {args} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer frames; skip the 2,000-frame memory run")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--model", choices=("rvm", "matanyone"), default="rvm",
                    help="matanyone runs benchmarks/speed_matanyone.py (recipe weights, official anchor)")
    args, rest = ap.parse_known_args()
    if args.model == "matanyone":
        raise SystemExit(subprocess.call([sys.executable, str(Path(__file__).with_name("speed_matanyone.py")), *rest]))
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.worker:
        kind, *rest = args.worker
        if kind == "model":
            out = worker_model_only(rest[0], rest[1], int(rest[2]))
        elif kind == "ortref":
            out = worker_ort_reference(rest[0], int(rest[1]))
        else:
            out = worker_file(*rest)  # backend, clip, formats[, rounds]
        print(json.dumps(out))
        return

    n_model = 30 if args.quick else 100
    cache = Path(tempfile.gettempdir()) / "vmatte-bench"
    cache.mkdir(exist_ok=True)
    print(f"machine: {os.cpu_count()} CPU cores, torch threads default; downsample_ratio {RATIO}; "
          f"input: {'sam2 juggle (real)' if SHARED_CLIP.is_file() else 'demo clip (synthetic)'}")
    report: dict = {"model_only": {}, "file_to_file": {}, "ort_reference": {}, "memory": {}}
    print("backend auto = vmatte's default (onnxruntime for small network inputs, PyTorch otherwise);"
          " file-to-file = decode + matte + write the alpha mp4")
    print(f"\n{'resolution':<11} {'backend':<8} {'model-only fps':>15} {'ms/frame':>9} {'vs ORT':>7} "
          f"{'file-to-file fps':>17} {'f2f/model':>10} {'peak RSS MB':>12}")
    for res, size in RESOLUTIONS.items():
        n_file = 60 if args.quick else (120 if res == "1920x1080" else 300)
        clip = make_clip(cache / f"clip_{res}_{n_file}.mp4", n_file, size)
        ref = report["ort_reference"][res] = run_worker("ortref", res, str(n_model))
        print(f"{res:<11} {'ORT ref':<8} {ref['fps']:>15.1f} {ref['ms_per_frame']:>9.1f} {'1.00':>7}"
              f" {'':>17} {'':>10} {ref['peak_rss_mb']:>12.0f}   (plain onnxruntime, default options)")
        for backend in ("auto", "torch", "onnx"):
            m = run_worker("model", backend, res, str(n_model))
            f = run_worker("file", backend, str(clip), "alpha", str(ROUNDS))
            report["model_only"][f"{res}/{backend}"] = m
            report["file_to_file"][f"{res}/{backend}"] = f
            print(f"{res:<11} {backend:<8} {m['fps']:>15.1f} {m['ms_per_frame']:>9.1f} {m['fps'] / ref['fps']:>7.2f}"
                  f" {f['fps']:>17.1f} {f['fps'] / m['fps']:>10.2f} {f['peak_rss_mb']:>12.0f}")

    if not args.quick:
        print("\npeak RSS vs video length (512x288, file-to-file, formats alpha,fgr,comp, default backend):")
        for n in (100, 2000):
            clip = make_clip(cache / f"clip_512x288_{n}.mp4", n, RESOLUTIONS["512x288"])
            f = run_worker("file", "auto", str(clip), "alpha,fgr,comp", "1")
            report["memory"][n] = f
            print(f"  {n:>5} frames: peak RSS {f['peak_rss_mb']:.0f} MB, {f['fps']:.1f} frames/s")
        a, b = report["memory"][100]["peak_rss_mb"], report["memory"][2000]["peak_rss_mb"]
        print(f"  2,000-frame / 100-frame peak RSS: {b / a:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
