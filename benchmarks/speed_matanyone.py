"""MatAnyone speed and memory on the CPU, with the fixture's recipe weights, side by side.

    .venv/bin/python benchmarks/speed_matanyone.py                 # model figures, 512x288 and 1280x720
    .venv/bin/python benchmarks/speed_matanyone.py --only model --sizes 512x288 --frames 20
    .venv/bin/python benchmarks/speed_matanyone.py --only file --only rss --lengths 100,2000
    .venv/bin/python benchmarks/speed_matanyone.py --only targets --targets 1,2,4 --sizes 512x288
    taskset -c 0,1 .venv/bin/python benchmarks/speed_matanyone.py --threads 2   # pin on a shared machine

* model (the speed-up): two streaming cores in one process on the same frames, one with the
  official layout (the plain network the numeric fixture proves equal to the official code:
  ``tests/test_matanyone_fixture.py``), one with the network as vmatte runs it
  (:func:`vmatte.engine.matanyone.prepare_network`). Each normal frame is stepped by both,
  A B then B A (``benchmarks/abtest.py``), after the first-frame steps and 3 more frames. Printed:
  min and median s/frame of each, the speed-up of the medians and of the minima, and the largest
  alpha difference between the two over the run. ``--compile`` adds a third core, the network as
  with ``VMATTE_COMPILE=1`` (torch.compile), with its compile time. Input: DAVIS dance-twirl frames from the
  fixture, resized and looped (a real image, so features are not degenerate).
* targets: s/frame of normal frames through ``MatAnyoneMatter.step_all`` with N targets from
  one first-frame label mask (the fixture mask cut into N column bands), for each ``--targets``.
* file: file-to-file through ``vmatte.matte`` (decode, network, encode of alpha H.264), frames/s.
* rss: peak RSS of a file-to-file run of 100 and 2,000 frames (``--lengths``) at ``--rss-size``.

There is no stored anchor: every ratio is against the reference measured in the same run. The
machine (CPU, cores, threads, load average) is printed before and after; on a shared machine the
absolute figures move with the load, the A/B ratio much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "matanyone"
sys.path.insert(0, str(ROOT / "tests"))

from conftest import matanyone_recipe_state_dict as recipe_state_dict  # noqa: E402 - the tests' loader


def _frames(w: int, h: int, n: int = 8):
    import cv2

    case = FIXTURE / "case_dance_twirl"
    out = []
    for i in range(n):
        img = cv2.cvtColor(cv2.imread(str(case / f"{i:05d}.png")), cv2.COLOR_BGR2RGB)
        out.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR))
    mask = cv2.resize(cv2.imread(str(case / "mask.png"), cv2.IMREAD_GRAYSCALE), (w, h), interpolation=cv2.INTER_NEAREST)
    return out, mask


# --- child processes --------------------------------------------------------------------------


def _network(official: bool, compile: bool = False):
    """The recipe-weights network: ``official`` = the official layout as loaded (the path the
    fixture test proves equal to the official code), else as vmatte loads it for the CPU
    (``compile``: as with ``VMATTE_COMPILE=1``)."""
    from vmatte.engine.matanyone import prepare_network
    from vmatte.models.matanyone import MatAnyone

    net = MatAnyone()
    net.load_state_dict(recipe_state_dict())
    net.eval()
    return net if official else prepare_network(net, "cpu", compile=compile)


def child_model(w: int, h: int, frames: int, compile: bool = False, bf16: bool = False) -> dict:
    """Official layout (A) and vmatte (B) side by side: two cores on the same frames, one step
    of each per frame, A B then B A. -> per-step seconds of each, and the largest alpha
    difference between them (fixture tolerance: 5e-4)."""
    import torch

    from abtest import alternate
    from vmatte.engine.matanyone import InferenceCore, MatAnyoneSettings, start
    from vmatte.engine.matanyone.preprocess import image_to_tensor

    imgs, mask = _frames(w, h)
    cores = {}
    setup = {}
    variants = [("official layout", True, False), ("vmatte", False, False)]
    variants += [("vmatte compiled", False, True)] if compile else []
    variants += [("vmatte bf16", False, False)] if bf16 else []  # as --precision bf16: autocast
    for name, official, compiled in variants:
        t = time.perf_counter()
        cores[name] = InferenceCore(_network(official, compiled), MatAnyoneSettings(warmup_frames=1))
        start(cores[name], imgs[0], mask)
        for i in range(1, 4):  # past the first-frame steps and the one-off kernel set-up (and compile)
            cores[name].step(image_to_tensor(imgs[i % len(imgs)]))
        setup[name] = time.perf_counter() - t
    alphas: dict[str, list] = {name: [] for name in cores}

    def runner(name):
        def run(i):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name.endswith("bf16")):
                alphas[name].append(cores[name].step(image_to_tensor(imgs[(4 + i) % len(imgs)])).alpha.float())

        return run

    timing = alternate({name: runner(name) for name in cores}, frames)
    ref = alphas["official layout"]
    diffs = {name: max(float((a - b).abs().max()) for a, b in zip(ref, got)) for name, got in alphas.items()}
    return {name: t.times for name, t in timing.items()} | {
        "max_alpha_diff": diffs["vmatte"],
        "compiled_max_alpha_diff": diffs.get("vmatte compiled"),
        "bf16_max_alpha_diff": diffs.get("vmatte bf16"),
        "setup_s": setup,
        "threads": torch.get_num_threads(),
    }


def _band_labels(mask, n: int):
    """The target mask cut into ``n`` column bands of its bounding box: ``{id: HxW uint8}``."""
    import numpy as np

    ys, xs = np.nonzero(mask)
    edges = np.linspace(xs.min(), xs.max() + 1, n + 1).astype(int)
    out = {}
    for i in range(n):
        band = np.zeros_like(mask)
        band[:, edges[i] : edges[i + 1]] = mask[:, edges[i] : edges[i + 1]]
        out[i + 1] = band
    return out


def child_targets(w: int, h: int, frames: int, targets: int) -> dict:
    import numpy as np
    import torch

    from vmatte.engine.matanyone import MatAnyoneSettings, prepare_network
    from vmatte.engine.matanyone.matter import MatAnyoneMatter
    from vmatte.models.matanyone import MatAnyone

    net = MatAnyone()
    net.load_state_dict(recipe_state_dict())
    prepare_network(net.eval(), "cpu")
    imgs, mask = _frames(w, h)
    matter = MatAnyoneMatter(
        net, _band_labels(mask, targets), MatAnyoneSettings(warmup_frames=1, r_erode=0, r_dilate=0)
    )
    for i in range(4):  # first frame (mask step, warm-up) and 3 more
        matter.step_all(imgs[i % len(imgs)], foreground=False)
    times = []
    for i in range(frames):
        t = time.perf_counter()
        matter.step_all(imgs[(4 + i) % len(imgs)], foreground=False)
        times.append(time.perf_counter() - t)
    return {
        "s_per_frame": float(np.median(times)),
        "min_s_per_frame": float(min(times)),
        "threads": torch.get_num_threads(),
    }


def _write_clip(path: Path, w: int, h: int, n: int) -> Path:
    import av

    imgs, mask = _frames(w, h)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "18", "preset": "ultrafast"}
        for i in range(n):
            f = av.VideoFrame.from_ndarray(imgs[i % len(imgs)], format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return mask


def child_file(w: int, h: int, frames: int) -> dict:
    import cv2
    import torch

    import vmatte

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.save(recipe_state_dict(), tmp / "matanyone.pth")
        mask = _write_clip(tmp / "clip.mp4", w, h, frames)
        cv2.imwrite(str(tmp / "mask.png"), mask)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        result = vmatte.matte(
            tmp / "clip.mp4",
            tmp / "out",
            model="matanyone",
            weights=tmp / "matanyone.pth",
            mask=tmp / "mask.png",
            formats=["alpha"],
            device="cpu",
            warmup_frames=1,
        )
        seconds = time.perf_counter() - t
    return {
        "frames": result.frames,
        "seconds": seconds,
        "fps": result.frames / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_run_mb": rss_before / 1024,
        "threads": torch.get_num_threads(),
    }


# --- parent -------------------------------------------------------------------------------------


def _in_child(kind: str, threads: int, **kwargs) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    code = (
        f"import sys, json; sys.path.insert(0, {str(ROOT / 'src')!r}); sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
        f"import speed_matanyone as b; import torch; torch.set_num_threads({threads}); "
        f"print('RESULT', json.dumps(b.child_{kind}(**{kwargs!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="512x288,1280x720")
    p.add_argument("--frames", type=int, default=10, help="normal frames timed per model run (default 10)")
    p.add_argument("--file-frames", type=int, default=30)
    p.add_argument("--lengths", default="100,2000", help="clip lengths for peak RSS ('none' skips)")
    p.add_argument("--rss-size", default="256x144")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", choices=("model", "file", "rss", "targets"), action="append")
    p.add_argument("--targets", default="1,2,4", help="target counts for --only targets (default 1,2,4)")
    p.add_argument("--repeats", type=int, default=3, help="runs per target count, best kept (default 3)")
    p.add_argument("--json", metavar="PATH", help="also write the figures here")
    p.add_argument(
        "--compile", action="store_true", help="model: also time the network as with VMATTE_COMPILE=1 (torch.compile)"
    )
    p.add_argument("--bf16", action="store_true", help="model: also time --precision bf16 (autocast) and its error")
    args = p.parse_args(argv)
    if not (FIXTURE / "recipe.py").is_file():
        print(f"no MatAnyone fixture at {FIXTURE}", file=sys.stderr)
        return 2
    only = set(args.only or ("model",))
    sizes = [_size(s) for s in args.sizes.split(",") if s.strip()]
    results: dict = {"threads": args.threads, "model": [], "file": [], "rss": []}
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from abtest import Timing, machine

    print(f"MatAnyone on the CPU, recipe weights, fp32; {machine(args.threads)}", flush=True)
    if "model" in only:
        print(
            f"{'size':>10} {'official layout s/frame':>24} {'vmatte s/frame':>16} {'speed-up':>16} {'max |d alpha|':>14}"
        )
        print(f"{'':>10} {'min':>11} {'median':>12} {'min':>7} {'median':>8} {'median':>8} {'min':>7}")
        for w, h in sizes:
            r = _in_child("model", args.threads, w=w, h=h, frames=args.frames, compile=args.compile, bf16=args.bf16)
            bf16 = Timing("vmatte bf16", r.pop("vmatte bf16")) if args.bf16 else None
            ref, new = Timing("official layout", r.pop("official layout")), Timing("vmatte", r.pop("vmatte"))
            compiled = Timing("vmatte compiled", r.pop("vmatte compiled")) if args.compile else None
            r.update(
                size=f"{w}x{h}",
                official_layout_s=ref.times,
                vmatte_s=new.times,
                speedup_median=ref.median / new.median,
                speedup_min=ref.min / new.min,
            )
            results["model"].append(r)
            print(
                f"{w}x{h:<5} {ref.min:11.3f} {ref.median:12.3f} {new.min:7.3f} {new.median:8.3f} "
                f"{r['speedup_median']:7.2f}x {r['speedup_min']:6.2f}x {r['max_alpha_diff']:14.1e}",
                flush=True,
            )
            if bf16 is not None:
                r.update(bf16_s=bf16.times, bf16_speedup_median=ref.median / bf16.median)
                print(
                    f"{'':>10} bf16 autocast (--precision bf16): min {bf16.min:.3f} median {bf16.median:.3f} s/frame, "
                    f"{ref.median / bf16.median:.2f}x (median) {ref.min / bf16.min:.2f}x (min) the official layout, "
                    f"max |d alpha| {r['bf16_max_alpha_diff']:.1e} (the fixture allows 5e-4)",
                    flush=True,
                )
            if compiled is not None:
                r.update(
                    compiled_s=compiled.times,
                    compiled_speedup_median=ref.median / compiled.median,
                    compiled_speedup_min=ref.min / compiled.min,
                )
                print(
                    f"{'':>10} compiled (VMATTE_COMPILE=1): min {compiled.min:.3f} median {compiled.median:.3f} "
                    f"s/frame, {r['compiled_speedup_median']:.2f}x (median) {r['compiled_speedup_min']:.2f}x (min) "
                    f"the official layout, max |d alpha| {r['compiled_max_alpha_diff']:.1e}; set-up (first frame, "
                    f"warm-up, 3 frames, compile) {r['setup_s']['vmatte compiled']:.0f} s vs "
                    f"{r['setup_s']['vmatte']:.0f} s uncompiled",
                    flush=True,
                )
    if "targets" in only:  # not in the default set: an explicit --only targets
        print(f"{'size':>10} {'targets':>7} {'s/frame':>8} {'per target':>10}")
        results["targets"] = []
        for w, h in sizes:
            for n in (int(v) for v in args.targets.split(",") if v.strip()):
                runs = [
                    _in_child("targets", args.threads, w=w, h=h, frames=args.frames, targets=n)
                    for _ in range(args.repeats)
                ]
                r = min(runs, key=lambda x: x["s_per_frame"])
                r.update(size=f"{w}x{h}", targets=n, runs=[x["s_per_frame"] for x in runs])
                results["targets"].append(r)
                print(f"{w}x{h:<5} {n:>7} {r['s_per_frame']:8.3f} {r['s_per_frame'] / n:10.3f}", flush=True)
    if "file" in only:
        for w, h in sizes:
            r = _in_child("file", args.threads, w=w, h=h, frames=args.file_frames)
            r["size"] = f"{w}x{h}"
            results["file"].append(r)
            print(
                f"file-to-file {w}x{h}: {r['frames']} frames in {r['seconds']:.1f} s = {r['fps']:.2f} frames/s "
                f"(first frame + warm-up included), peak RSS {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    if "rss" in only and args.lengths.strip().lower() != "none":
        w, h = _size(args.rss_size)
        for n in (int(v) for v in args.lengths.split(",") if v.strip()):
            r = _in_child("file", args.threads, w=w, h=h, frames=n)
            r.update(size=f"{w}x{h}", length=n)
            results["rss"].append(r)
            print(
                f"peak RSS, {n} frames at {w}x{h}: {r['peak_rss_mb']:.0f} MB "
                f"({r['fps']:.2f} frames/s, {r['seconds']:.0f} s)",
                flush=True,
            )
    print(f"after: {machine(args.threads)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
