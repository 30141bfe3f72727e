"""RVM speed and memory: vmatte against plain onnxruntime side by side, file-to-file, peak RSS.

    .venv/bin/python benchmarks/speed.py                 # the full table (~10 min on 2 busy cores)
    .venv/bin/python benchmarks/speed.py --quick         # fewer frames, no 2,000-frame run
    .venv/bin/python benchmarks/speed.py --model matanyone   # MatAnyone (benchmarks/speed_matanyone.py)
    taskset -c 0,1 .venv/bin/python benchmarks/speed.py      # pin on a shared machine

model-only (the ratio): one process holds plain onnxruntime (the shipped ONNX, default session
options, numpy in and out: the reference) and vmatte's matters (``auto`` = the default, and the
``torch`` and ``onnx`` backends), and runs them on the same frames in alternating blocks of
``BLOCK`` frames (A B C D, then D C B A, ...; blocks rather than single frames so that one
runtime's idle-spinning workers do not land in the other's timing). Each runs its own recurrent
state over the same frame sequence. vmatte steps alpha-only (``foreground=False``, as an
alpha-only file run does); the reference computes and copies out everything. Printed per
variant: min and median ms/frame over the blocks and the speed-up of the medians (and minima).

file-to-file: decode + matte + write the alpha mp4 in a fresh subprocess, alternating with a
model-only subprocess of the same backend (A B A B): frames/s of each, and their ratio.
Peak RSS (ru_maxrss) of a 100- and a 2,000-frame file run: flat in video length.

Input clips are made from the sam2 juggle clip in ../shared/media when present (real footage),
otherwise from the demo's synthetic clip, resized to each resolution and looped to length.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
BACKENDS = ("auto", "onnx", "torch")
ROUNDS = 3  # file-to-file / model-only subprocess pairs, alternating
BLOCK = 5  # frames per block in the in-process A/B


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


def worker_ab(res: str, frames: int) -> dict:
    """Plain onnxruntime and vmatte's backends in one process, alternating blocks of frames."""
    import onnxruntime as ort

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import vmatte
    from abtest import alternate
    from vmatte.engine.runtime import tune_allocator
    from vmatte.weights import packaged_path

    tune_allocator()  # as the CLI does
    clip = list(source_frames(min(frames, 60), RESOLUTIONS[res]))
    sess = ort.InferenceSession(str(packaged_path()), providers=["CPUExecutionProvider"])
    zero = np.zeros((1, 1, 1, 1), np.float32)
    state = {"rec": [zero] * 4}

    def plain(i: int) -> None:
        for k in range(i * BLOCK, (i + 1) * BLOCK):
            src = clip[k % len(clip)].transpose(2, 0, 1)[None].astype(np.float32) / 255
            feeds = {"src": src, "downsample_ratio": np.array([RATIO], np.float32)}
            feeds.update({f"r{j + 1}i": r for j, r in enumerate(state["rec"])})
            state["rec"] = sess.run(None, feeds)[2:]

    matters = {b: vmatte.load_matter("rvm", device="cpu", backend=b, downsample_ratio=RATIO) for b in BACKENDS}
    descriptions = {}

    def ours(backend: str):
        m = matters[backend]

        def run(i: int) -> None:
            for k in range(i * BLOCK, (i + 1) * BLOCK):
                m.step(clip[k % len(clip)], foreground=False)

        return run

    variants = {"plain onnxruntime": plain} | {b: ours(b) for b in BACKENDS}
    for m in matters.values():
        m.reset()
    for run in variants.values():  # warm-up: allocator, ORT graph optimisation, oneDNN primitives
        run(0)
    for b, m in matters.items():
        descriptions[b] = getattr(getattr(m, "_active", None), "description", m.description)
    # 0.2 s idle before each block: onnxruntime's default pool (the reference) spins on after a
    # run returns; without the pause whichever variant follows it is timed on busy cores (seen:
    # vmatte's onnxruntime path at 0.60x the reference with no pause, 0.92x with one).
    timing = alternate(variants, max(2, frames // BLOCK), pause=0.2)
    return {name: [x / BLOCK for x in t.times] for name, t in timing.items()} | {"descriptions": descriptions}


def worker_model_only(backend: str, res: str, frames: int) -> dict:
    import vmatte
    from vmatte.engine.runtime import tune_allocator

    tune_allocator()  # as the CLI does

    matter = vmatte.load_matter("rvm", device="cpu", backend=backend, downsample_ratio=RATIO)
    clip = list(source_frames(min(frames, 60), RESOLUTIONS[res]))
    matter.reset()
    for img in clip[:3]:  # warm-up: allocator, ORT graph optimisation, oneDNN primitives
        matter.step(img, foreground=False)
    matter.reset()
    t0 = time.perf_counter()
    for i in range(frames):  # alpha only, as the file run below writes
        matter.step(clip[i % len(clip)], foreground=False)
    dt = time.perf_counter() - t0
    return {
        "fps": frames / dt,
        "ms_per_frame": 1000 * dt / frames,
        "peak_rss_mb": peak_rss_mb(),
        "model": matter.description,
    }


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
    ap.add_argument(
        "--model",
        choices=("rvm", "matanyone"),
        default="rvm",
        help="matanyone runs benchmarks/speed_matanyone.py (recipe weights, official anchor)",
    )
    args, rest = ap.parse_known_args()
    if args.model == "matanyone":
        raise SystemExit(subprocess.call([sys.executable, str(Path(__file__).with_name("speed_matanyone.py")), *rest]))
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.worker:
        kind, *rest = args.worker
        if kind == "ab":
            out = worker_ab(rest[0], int(rest[1]))
        elif kind == "model":
            out = worker_model_only(rest[0], rest[1], int(rest[2]))
        elif kind == "ortref":
            out = worker_ort_reference(rest[0], int(rest[1]))
        else:
            out = worker_file(*rest)  # backend, clip, formats[, rounds]
        print(json.dumps(out))
        return

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from abtest import Timing, machine

    n_model = 30 if args.quick else 60
    cache = Path(tempfile.gettempdir()) / "vmatte-bench"
    cache.mkdir(exist_ok=True)
    print(
        f"RVM MobileNetV3 (shipped ONNX / its PyTorch conversion), downsample_ratio {RATIO}; input: "
        f"{'sam2 juggle (real)' if SHARED_CLIP.is_file() else 'demo clip (synthetic)'}\n{machine()}"
    )
    report: dict = {"model_only": {}, "file_to_file": {}, "memory": {}}
    print("\nmodel-only, side by side in one process (auto = vmatte's default):")
    print(f"{'resolution':<11} {'variant':<18} {'min ms':>7} {'median ms':>10} {'vs plain ORT (median, min)':>27}")
    for res in RESOLUTIONS:
        r = run_worker("ab", res, str(n_model))
        desc = r.pop("descriptions")
        ref = Timing("plain onnxruntime", r["plain onnxruntime"])
        report["model_only"][res] = r | {"descriptions": desc}
        for name, times in r.items():
            t = Timing(name, times)
            ratio = f"{ref.median / t.median:.2f}x, {ref.min / t.min:.2f}x"
            print(f"{res:<11} {name:<18} {t.min * 1000:7.1f} {t.median * 1000:10.1f} {ratio:>27}", flush=True)
        print(f"{'':<11} auto ran: {desc['auto']}")

    print("\nfile-to-file (decode + matte + alpha mp4) vs model-only of the same backend, subprocesses A B A B:")
    print(
        f"{'resolution':<11} {'backend':<8} {'model-only fps':>15} {'file-to-file fps':>17} {'f2f/model':>10} "
        f"{'peak RSS MB':>12}"
    )
    for res, size in RESOLUTIONS.items():
        n_file = 60 if args.quick else (90 if res == "1920x1080" else 200)
        clip = make_clip(cache / f"clip_{res}_{n_file}.mp4", n_file, size)
        for backend in ("auto",):
            ms, fs = [], []
            for _ in range(2 if args.quick else ROUNDS):
                ms.append(run_worker("model", backend, res, str(n_model)))
                fs.append(run_worker("file", backend, str(clip), "alpha", "1"))
            m_fps = statistics.median(x["fps"] for x in ms)
            f_fps = statistics.median(x["fps"] for x in fs)
            rss = max(x["peak_rss_mb"] for x in fs)
            report["file_to_file"][f"{res}/{backend}"] = {
                "model_fps": [x["fps"] for x in ms],
                "file_fps": [x["fps"] for x in fs],
                "peak_rss_mb": rss,
            }
            print(f"{res:<11} {backend:<8} {m_fps:15.1f} {f_fps:17.1f} {f_fps / m_fps:10.2f} {rss:12.0f}", flush=True)

    if not args.quick:
        print("\npeak RSS vs video length (512x288, file-to-file, formats alpha,fgr,comp, default backend):")
        for n in (100, 2000):
            clip = make_clip(cache / f"clip_512x288_{n}.mp4", n, RESOLUTIONS["512x288"])
            f = run_worker("file", "auto", str(clip), "alpha,fgr,comp", "1")
            report["memory"][n] = f
            print(f"  {n:>5} frames: peak RSS {f['peak_rss_mb']:.0f} MB, {f['fps']:.1f} frames/s")
        a, b = report["memory"][100]["peak_rss_mb"], report["memory"][2000]["peak_rss_mb"]
        print(f"  2,000-frame / 100-frame peak RSS: {b / a:.3f}")
    print(f"after: {machine()}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
