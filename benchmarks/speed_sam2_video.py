"""SAM 2 video tracking: vmatte's streaming tracker vs the official ``SAM2VideoPredictor`` (CPU).

    .venv/bin/python benchmarks/speed_sam2_video.py speed --frames 6 --rounds 3
    .venv/bin/python benchmarks/speed_sam2_video.py profile --frames 8 --rounds 3 --image-size 512
    .venv/bin/python benchmarks/speed_sam2_video.py rss --frames 100 1000 --image-size 256

Both run the same random-weight SAM 2.1 Hiera-T network (the official yaml, 1024x1024 input unless
``--image-size`` says otherwise; the official model built by ``sam2`` 1.1.0, its weights copied into
vmatte's) on the same 854x480 frames (the sam2 juggle clip from ../shared/media when present, else a
synthetic clip), one click on frame 0. The frames are written once as JPEGs, the official
predictor's input format. ``--image-size S`` (a multiple of 32; the network's input side, which
the official yaml fixes at 1024) makes a smaller network of the same architecture and weights
shapes: on a CPU, 1,000 frames at 1024 take hours, at 256 minutes. The memory *growth* with the
video's length is what the RSS mode shows; the official keeps every frame's resized image
(3 x S x S float32: 12 MiB at 1024, 0.75 MiB at 256) and outputs, so its growth scales with S**2.

* ``speed``: frames/s of the tracking pass, alternating official / vmatte in one process
  (A B A B ...), min and median over the rounds. The official's up-front loading of the whole
  video (``init_state``: every frame decoded and resized) is reported on its own and *not*
  counted in its frames/s; vmatte's frames/s includes decoding and resizing each frame.
* ``profile``: milliseconds per frame of each stage (image encoder, memory attention, mask
  decoder, memory encoder, the rest), both implementations alternating, min and median.
* ``rss``: peak resident memory (ru_maxrss) of a fresh process per (implementation, length),
  the same frames for both (written once), plus the bytes the tracker state holds at the end; then
  each implementation's growth from the shortest to the longest video.

With random weights nothing about tracking quality can be read from these runs: they measure
time and memory only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from abtest import cpu_model  # benchmarks/ is on sys.path: this runs as a script there

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "media" / "sam2" / "05_default_juggle.mp4"
SIZE = (854, 480)
CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
OVERRIDES = [  # what build_sam2_video_predictor sets (hole filling off: a CUDA kernel, skipped on CPU anyway)
    "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
    "++model.fill_hole_area=0",
]
CLICK = (np.array([[427.0, 240.0]], np.float32), np.array([1], np.int32))


def write_frames(folder: Path, n: int) -> None:
    """``n`` JPEGs 00000.jpg ... of 854x480: the real clip looped, or a synthetic moving disc."""
    base: list[np.ndarray] = []
    if CLIP.exists():
        import av

        with av.open(str(CLIP)) as c:
            for i, f in enumerate(c.decode(video=0)):
                base.append(np.asarray(f.to_image().convert("RGB").resize(SIZE)))
                if i >= 59:
                    break
    if not base:
        yy, xx = np.mgrid[: SIZE[1], : SIZE[0]]
        for i in range(30):
            img = np.full((SIZE[1], SIZE[0], 3), 60, np.uint8)
            img[(yy - 240) ** 2 + (xx - 300 - 8 * i) ** 2 < 80**2] = (220, 200, 40)
            base.append(img)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(base[i % len(base)]).save(folder / f"{i:05d}.jpg", quality=95)


def build_models(image_size: int = 1024, vmatte: bool = True):
    """(official predictor, vmatte model): one random-weight SAM 2.1 Hiera-T, the same tensors, for
    ``image_size`` x ``image_size`` input (the RoPE grids of the memory attention follow it)."""
    import sam2  # noqa: F401  (initialises hydra with the package's configs)
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from vmatte.models.sam2 import SAM2_CONFIGS, sam2_video_from_state_dict

    if image_size % 32:
        raise SystemExit(f"--image-size {image_size}: must be a multiple of 32 (the trunk's total stride)")
    overrides = list(OVERRIDES)
    if image_size != 1024:
        side = image_size // 16
        overrides.append(f"model.image_size={image_size}")
        for attn in ("self_attention", "cross_attention"):
            overrides.append(f"model.memory_attention.layer.{attn}.feat_sizes=[{side},{side}]")
    torch.manual_seed(0)
    cfg = compose(config_name=CONFIG, overrides=overrides)
    OmegaConf.resolve(cfg)
    official = instantiate(cfg.model, _recursive_=True).eval()
    if not vmatte:
        return official, None
    sd = {k: v.clone() for k, v in official.state_dict().items()}
    config = replace(SAM2_CONFIGS["sam2.1_hiera_tiny"], image_size=image_size)
    ours = sam2_video_from_state_dict(sd, "random SAM 2.1 Hiera-T", config)
    return official, ours


def frames_of(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


def run_official(model, folder: Path) -> tuple[float, float, int]:
    """(seconds loading, seconds tracking, frames) of the official predictor over ``folder``."""
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = model.init_state(str(folder))
        t1 = time.perf_counter()
        model.add_new_points_or_box(state, 0, 1, points=CLICK[0], labels=CLICK[1])
        n = sum(1 for _ in model.propagate_in_video(state))
    run_official.state = state
    return t1 - t0, time.perf_counter() - t1, n


def run_vmatte(model, folder: Path, acc: dict[str, float] | None = None) -> tuple[float, float, int]:
    """(0, seconds tracking, frames) of vmatte's tracker over ``folder``; ``acc``: JPEG decoding seconds are
    added to its "decode + resize"."""
    from vmatte.engine.sam2video import Prompt, Sam2VideoTracker

    paths = frames_of(folder)
    t1 = time.perf_counter()
    tracker = Sam2VideoTracker(model, (SIZE[1], SIZE[0]), num_frames=len(paths))
    tracker.add_prompt(0, 1, Prompt(points=CLICK[0], labels=CLICK[1]))
    for p in paths:  # decoded one at a time: the whole video is never held
        t = time.perf_counter()
        rgb = np.asarray(Image.open(p).convert("RGB"))
        if acc is not None:
            acc["decode + resize"] += time.perf_counter() - t
        tracker.step(rgb)
    run_vmatte.tracker = tracker
    return 0.0, time.perf_counter() - t1, len(paths)


def speed(args) -> None:
    torch.set_num_threads(args.threads)
    official, ours = build_models(args.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames"
        write_frames(folder, args.frames)
        fps: dict[str, list[float]] = {"official": [], "vmatte": []}
        loads = []
        for r in range(args.rounds):
            for name, fn, model in (("official", run_official, official), ("vmatte", run_vmatte, ours)):
                load, secs, n = fn(model, folder)
                fps[name].append(n / secs)
                if name == "official":
                    loads.append(load)
                print(
                    f"round {r + 1} {name:8s} {n / secs:.3f} frames/s" + (f" (+ {load:.2f} s loading)" if load else ""),
                    flush=True,
                )
    ratio = [b / a for a, b in zip(fps["official"], fps["vmatte"])]
    print(
        json.dumps(
            {
                "machine": f"{cpu_model()}, {args.threads} torch threads, load average {os.getloadavg()[0]:.1f} (shared)",
                "frames": args.frames,
                "input": f"{args.image_size}x{args.image_size} (854x480 frames)",
                "official_fps_min_median": [min(fps["official"]), statistics.median(fps["official"])],
                "vmatte_fps_min_median": [min(fps["vmatte"]), statistics.median(fps["vmatte"])],
                "ratio_min_median": [min(ratio), statistics.median(ratio)],
                "official_loading_s_min_median": [min(loads), statistics.median(loads)],
            },
            indent=1,
        )
    )


# (module attribute, method) timed per stage; the two share SAM2Base's module names
STAGES = {
    "image encoder": ("image_encoder", "forward", "forward"),
    "memory attention": ("memory_attention", "forward", "forward"),
    "mask decoder": ("sam_mask_decoder", "forward", "predict_all"),
    "memory encoder": ("memory_encoder", "forward", "forward"),
}


def _time_stages(model, impl: str, acc: dict[str, float]) -> None:
    """Wrap each stage's method on the instance so its seconds add up in ``acc``."""
    for stage, (attr, official_method, vmatte_method) in STAGES.items():
        module = getattr(model, attr)
        method = official_method if impl == "official" else vmatte_method
        inner = getattr(module, method)

        def timed(*a, _inner=inner, _stage=stage, **k):
            t = time.perf_counter()
            out = _inner(*a, **k)
            acc[_stage] += time.perf_counter() - t
            return out

        setattr(module, method, timed)


def _official_profiled(model, folder: Path, acc: dict[str, float]) -> tuple[float, float, int]:
    """(seconds of loading alone, seconds of model work, frames): ``init_state`` also encodes frame 0
    (its features cached for the first prompt), which counts as model work here, not as loading."""
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = model.init_state(str(folder))
        t1 = time.perf_counter()
        encode0 = acc["image encoder"]
        model.add_new_points_or_box(state, 0, 1, points=CLICK[0], labels=CLICK[1])
        n = sum(1 for _ in model.propagate_in_video(state))
    return t1 - t0 - encode0, time.perf_counter() - t1 + encode0, n


def profile(args) -> None:
    """Per-stage seconds per frame of both implementations, alternating, on the same frames. "model
    work" leaves out decoding and resizing the frames on both sides (the official's ``init_state``,
    vmatte's per-frame preprocessing), which are reported as "decode + resize"."""
    torch.set_num_threads(args.threads)
    official, ours = build_models(args.image_size)
    acc = {impl: dict.fromkeys([*STAGES, "decode + resize"], 0.0) for impl in ("official", "vmatte")}
    _time_stages(official, "official", acc["official"])
    _time_stages(ours, "vmatte", acc["vmatte"])
    from vmatte.engine.sam2video import Sam2VideoTracker

    preprocess = Sam2VideoTracker.preprocess

    def timed_preprocess(self, rgb):
        t = time.perf_counter()
        out = preprocess(self, rgb)
        acc["vmatte"]["decode + resize"] += time.perf_counter() - t
        return out

    Sam2VideoTracker.preprocess = timed_preprocess
    rows: dict[str, dict[str, list[float]]] = {"official": {}, "vmatte": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames"
        write_frames(folder, args.frames)
        for r in range(args.rounds):
            for impl in ("official", "vmatte"):
                for k in acc[impl]:
                    acc[impl][k] = 0.0
                if impl == "official":
                    load, work, n = _official_profiled(official, folder, acc[impl])
                else:
                    _, secs, n = run_vmatte(ours, folder, acc[impl])
                    load = acc[impl]["decode + resize"]
                    work = secs - load
                per = {k: 1000 * v / n for k, v in acc[impl].items() if k in STAGES}
                per["other"] = 1000 * work / n - sum(per.values())
                per["model work"] = 1000 * work / n
                per["decode + resize"] = 1000 * load / n
                for k, v in per.items():
                    rows[impl].setdefault(k, []).append(v)
                print(f"round {r + 1} {impl:8s} " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()), flush=True)
    print(
        f"ms per frame, min / median of {args.rounds} alternating rounds; {args.frames} frames; "
        f"{args.image_size}x{args.image_size} input; {cpu_model()}, {args.threads} torch threads, "
        f"load average {os.getloadavg()[0]:.1f} (shared). decode + resize: the official's init_state "
        f"(all frames up front), vmatte's per-frame JPEG decoding and resize"
    )
    print(f"{'stage':18s} {'official min/med':>17s} {'vmatte min/med':>17s} {'official/vmatte':>16s}")
    for k in [*STAGES, "other", "model work", "decode + resize"]:
        a, b = rows["official"][k], rows["vmatte"][k]
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{k:18s} {min(a):8.1f} {ma:8.1f} {min(b):8.1f} {mb:8.1f} {ma / mb if mb > 0 else float('nan'):16.2f}")
    ratio = [x / y for x, y in zip(rows["official"]["model work"], rows["vmatte"]["model work"])]
    print(
        f"model work, official/vmatte per round (> 1: vmatte faster): min {min(ratio):.2f}, median {statistics.median(ratio):.2f}"
    )


def state_bytes_official(state) -> int:
    seen, total = set(), 0

    def add(x):
        nonlocal total
        if isinstance(x, torch.Tensor):
            key = (x.untyped_storage().data_ptr(), x.untyped_storage().nbytes())
            if key not in seen:
                seen.add(key)
                total += x.untyped_storage().nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                add(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                add(v)

    add(state)
    return total


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _settle() -> None:
    """Free what building the network left behind, so the tracking peak is measured from a clean start."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def rss_one(args) -> None:
    """One implementation over the frames of ``--folder`` in a fresh process. The network's tensors come
    from ``--weights`` (written by the parent), so each process builds only its own model (vmatte's
    never imports ``sam2``). The peak is read twice: the process's high-water mark (``ru_maxrss``) and
    the high-water mark of the tracking pass alone (``VmHWM``, reset through /proc/self/clear_refs
    once the model is built)."""
    torch.set_num_threads(args.threads)
    sd = torch.load(args.weights, weights_only=True)
    if args.impl == "official":
        model, _ = build_models(args.image_size, vmatte=False)
        model.load_state_dict(sd, strict=True)
        run = run_official
    else:
        from vmatte.models.sam2 import SAM2_CONFIGS, sam2_video_from_state_dict

        config = replace(SAM2_CONFIGS["sam2.1_hiera_tiny"], image_size=args.image_size)
        model = sam2_video_from_state_dict(sd, "random SAM 2.1 Hiera-T", config)
        run = run_vmatte
    del sd
    _settle()
    start = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    load, secs, n = run(model, Path(args.folder))
    peak_tracking = _status_mb("VmHWM")
    held = state_bytes_official(run.state) if args.impl == "official" else run.tracker.state_nbytes()
    print(
        json.dumps(
            {
                "impl": args.impl,
                "frames": n,
                "peak_rss_tracking_mb": round(peak_tracking, 1),
                "rss_at_start_mb": round(start, 1),
                "peak_rss_process_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "state_mb": round(held / 2**20, 1),
                "seconds": round(load + secs, 1),
            }
        )
    )


def rss(args) -> None:
    """Each (length, implementation) in a fresh process on the same JPEGs; growth from the shortest to
    the longest video per implementation."""
    lengths = sorted(args.frames)
    print(
        f"machine: {cpu_model()}, {args.threads} torch threads, load average {os.getloadavg()[0]:.1f} (shared); "
        f"random SAM 2.1 Hiera-T at {args.image_size}x{args.image_size} input, 854x480 frames, one click",
        flush=True,
    )
    peaks: dict[str, dict[int, float]] = {"official": {}, "vmatte": {}}
    with tempfile.TemporaryDirectory() as tmp:
        every = Path(tmp) / "all"
        write_frames(every, lengths[-1])
        weights = Path(tmp) / "weights.pt"  # one random network for every process
        official, _ = build_models(args.image_size, vmatte=False)
        torch.save(official.state_dict(), weights)
        del official
        for n in lengths:
            folder = Path(tmp) / f"first{n}"  # the first n frames (links: the same files for both)
            folder.mkdir()
            for f in frames_of(every)[:n]:
                (folder / f.name).symlink_to(f)
            for impl in ("official", "vmatte"):
                cmd = [
                    sys.executable,
                    __file__,
                    "rss-one",
                    "--impl",
                    impl,
                    "--folder",
                    str(folder),
                    "--threads",
                    str(args.threads),
                    "--image-size",
                    str(args.image_size),
                    "--weights",
                    str(weights),
                ]
                out = subprocess.run(
                    cmd, check=False, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
                )
                if out.returncode:
                    print(f"{impl} {n}: failed {out.stderr[-500:]}", flush=True)
                    continue
                line = out.stdout.strip().splitlines()[-1]
                peaks[impl][n] = json.loads(line)["peak_rss_tracking_mb"]
                print(line, flush=True)
    lo, hi = lengths[0], lengths[-1]
    for impl, p in peaks.items():
        if lo in p and hi in p and lo != hi:
            print(
                f"{impl}: peak RSS while tracking {p[lo]:.0f} MB at {lo} frames, {p[hi]:.0f} MB at {hi} "
                f"({100 * (p[hi] / p[lo] - 1):+.1f}%)",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["speed", "profile", "rss", "rss-one"])
    ap.add_argument("--frames", type=int, nargs="+", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--impl", choices=["official", "vmatte"])
    ap.add_argument("--folder", help="rss-one: the JPEG frames to track")
    ap.add_argument("--weights", help="rss-one: the network's state_dict (torch.save)")
    ap.add_argument("--image-size", type=int, default=1024, help="the network's input side (1024 as released)")
    args = ap.parse_args()
    if args.mode in ("speed", "profile"):
        args.frames = (args.frames or [6])[0]
        (speed if args.mode == "speed" else profile)(args)
    elif args.mode == "rss":
        args.frames = args.frames or [100, 1000]
        rss(args)
    else:
        rss_one(args)


if __name__ == "__main__":
    main()
