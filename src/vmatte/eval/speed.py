"""``vmatte bench speed``: frames/s and peak memory per model, resolution and video length.

For each model and size::

    model-only     matter.step() on decoded frames already in memory (best of ``rounds`` runs)
    file-to-file   vmatte.matte(clip.mp4 -> formats): decode + matte + encode, as the CLI runs it

and, at one size, file-to-file runs on clips of each of ``lengths`` frames: peak RSS against video
length (streaming should keep it flat). Every measurement runs in its own subprocess so that its
peak RSS (``ru_maxrss``) and, on CUDA, its peak device memory (``torch.cuda.max_memory_allocated``)
are its own. Input clips are made here: a user clip (``--clip``) or the demo's synthetic clip,
resized to each size and looped back and forth (continuous motion for recurrent models) to length.

Written into the output folder: ``speed.json`` (every figure + machine and settings),
``speed.md`` (tables), ``fps_vs_resolution.png`` and ``rss_vs_length.png``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vmatte.engine.registry import BASELINE
from vmatte.errors import InputError, OutputError, VmatteError
from vmatte.io.clip import write_h264
from vmatte.io.pixels import to_uint8

__all__ = ["SpeedSettings", "looped", "make_clip", "peak_rss_mb", "run_speed"]

BASE_FRAMES = 48  # source frames kept per size for looping (in the parent, never in a measured worker)
WORKER_FRAMES = 16  # frames a model-only worker holds in memory
CLIP_FPS = 30
THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS", "ORT_NUM_THREADS")


@dataclass(frozen=True)
class SpeedSettings:
    models: tuple[str, ...] = (BASELINE,)
    sizes: tuple[tuple[int, int], ...] = ((512, 288), (1920, 1080))
    lengths: tuple[int, ...] = (100, 2000)  # RSS vs length; () skips it
    memory_size: tuple[int, int] | None = None  # size of the RSS-vs-length clips (None: the first size)
    model_frames: int = 100  # frames per model-only run
    file_frames: int = 100  # frames of the file-to-file clip at each size
    rounds: int = 3  # speed figures are the best of this many runs (the machine may be shared)
    formats: tuple[str, ...] = ("alpha",)  # file-to-file outputs
    memory_formats: tuple[str, ...] = ("alpha", "fgr", "comp")  # RSS-vs-length outputs
    device: str = "auto"
    options: dict = field(default_factory=dict)  # model options given (backend, max size ...); the rest automatic
    source: str | None = None  # a video to resize and loop; None: the demo's synthetic clip

    def check(self) -> None:
        from vmatte.matte import MODELS

        if not self.models:
            raise VmatteError("no models given; pass --models, e.g. --models rvm")
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise VmatteError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
        if not self.sizes:
            raise VmatteError("no sizes given; pass --sizes, e.g. --sizes 512x288,1920x1080")
        for name, v, low in (
            ("--frames", self.model_frames, 1),
            ("--file-frames", self.file_frames, 1),
            ("--rounds", self.rounds, 1),
        ):
            if v < low:
                raise VmatteError(f"{name} must be at least {low}, got {v}")
        bad = [n for n in self.lengths if n < 1]
        if bad:
            raise VmatteError(f"--lengths must be positive frame counts, got {bad[0]}")
        if self.source is not None and not Path(self.source).expanduser().is_file():
            raise InputError(f"clip not found: {self.source}; give a video file for --clip")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


# --------------------------------------------------------------------------------------------
# Input clips
# --------------------------------------------------------------------------------------------


def _base_frames(source: str | None, size: tuple[int, int]) -> list[np.ndarray]:
    """Up to BASE_FRAMES RGB frames of ``source`` (or the demo clip) resized to ``size``."""
    import cv2

    out: list[np.ndarray] = []
    if source is None:
        from vmatte.demo import sample_frames

        frames: Iterable[np.ndarray] = sample_frames(BASE_FRAMES)
        for rgb in frames:
            out.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
        return out
    from vmatte.io.reader import open_source

    with open_source(source) as src:
        for frame in src:
            img = to_uint8(frame.image)
            out.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
            if len(out) >= BASE_FRAMES:
                break
    if not out:
        raise InputError(f"{source} has no frames; give another --clip")
    return out


def looped(base: Sequence[np.ndarray], n: int) -> Iterator[np.ndarray]:
    """``n`` frames of ``base`` played forward, backward, forward...: motion never jumps."""
    if len(base) == 1:
        yield from (base[0] for _ in range(n))
        return
    period = 2 * len(base) - 2
    for i in range(n):
        k = i % period
        yield base[k if k < len(base) else period - k]


def make_clip(path: Path, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int = CLIP_FPS) -> Path:
    """Encode RGB ``frames`` as H.264 (crf 18) at ``path``; written under a temporary name."""
    return write_h264(path, frames, size, fps)


# --------------------------------------------------------------------------------------------
# Workers: each runs in a fresh `python -m vmatte.eval.speed` process
# --------------------------------------------------------------------------------------------


def _load(job: dict):
    import vmatte
    from vmatte.engine.runtime import tune_allocator

    tune_allocator()  # as the CLI does
    return vmatte.load_matter(job["model"], device=job["device"], **job["options"])


def _device_peak_mb(device: str) -> float | None:
    """Peak CUDA memory allocated by this process (MiB), or None off CUDA."""
    from vmatte.matte import resolve_device

    dev = resolve_device(device)
    if dev.type != "cuda":
        return None
    import torch

    torch.cuda.synchronize(dev)
    return torch.cuda.max_memory_allocated(dev) / 2**20


def _worker_model(job: dict) -> dict:
    import av

    matter = _load(job)
    held: list[np.ndarray] = []
    with av.open(job["clip"]) as c:
        for f in c.decode(video=0):
            held.append(f.to_ndarray(format="rgb24"))
            if len(held) >= WORKER_FRAMES:
                break
    frames = job["frames"]
    matter.reset()
    for img in held[:3]:  # warm-up: allocator, graph optimisation, kernel selection
        matter.step(img)
    dt = math.inf
    for _ in range(job["rounds"]):  # best of: the minimum is the signal on a shared machine
        matter.reset()
        t0 = time.perf_counter()
        for img in looped(held, frames):
            matter.step(img)
        dt = min(dt, time.perf_counter() - t0)
    return {
        "fps": frames / dt,
        "ms_per_frame": 1000 * dt / frames,
        "frames": frames,
        "peak_rss_mb": peak_rss_mb(),
        "peak_device_mb": _device_peak_mb(job["device"]),
        "description": matter.description,
    }


def _worker_file(job: dict) -> dict:
    import vmatte

    matter = _load(job)
    with vmatte.io.open_source(job["clip"]) as src:  # warm up on one frame, as model-only does
        first = next(iter(src)).image
    matter.reset(True)
    matter.step(first)
    dt, frames = math.inf, 0
    for _ in range(job["rounds"]):
        with tempfile.TemporaryDirectory(prefix="vmatte-speed-out-") as out:
            t0 = time.perf_counter()
            result = vmatte.matte(job["clip"], out, model=matter, formats=job["formats"])
            dt = min(dt, time.perf_counter() - t0)
            frames = result.frames
    return {
        "fps": frames / dt,
        "frames": frames,
        "peak_rss_mb": peak_rss_mb(),
        "peak_device_mb": _device_peak_mb(job["device"]),
        "description": matter.description,
    }


def _run_worker(job: dict) -> dict:
    r = subprocess.run([sys.executable, "-m", "vmatte.eval.speed", json.dumps(job)], capture_output=True, text=True)
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit code {r.returncode}"
        raise VmatteError(f"{job['kind']} measurement of {job['model']} on {Path(job['clip']).name} failed: {why}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def _size_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def run_speed(output: str | os.PathLike, settings: SpeedSettings = SpeedSettings(), progress: bool = False) -> dict:
    """Measure, write speed.json / speed.md / plots into ``output``; returns the JSON document."""
    settings.check()
    out = Path(os.fspath(output)).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {out}: {e.strerror}; choose another -o") from None
    from .report import require_matplotlib

    require_matplotlib()  # before minutes of measuring, not after

    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    from vmatte.engine import registry

    def common(model: str) -> dict:  # each model gets the options it takes (a --backend is RVM's)
        return {"device": settings.device, "options": registry.taken(model, settings.options)}

    doc: dict = {
        "machine": _machine(settings.device),
        "settings": asdict(settings),
        "model_only": [],
        "file_to_file": [],
        "memory": [],
    }
    clips_dir = Path(tempfile.mkdtemp(prefix="vmatte-speed-clips-"))
    try:
        for size in settings.sizes:
            base = _base_frames(settings.source, size)
            clip = make_clip(clips_dir / f"clip_{_size_name(size)}.mp4", looped(base, settings.file_frames), size)
            del base
            for model in settings.models:
                m = _run_worker(
                    {
                        "kind": "model",
                        "model": model,
                        "clip": str(clip),
                        "frames": settings.model_frames,
                        "rounds": settings.rounds,
                        **common(model),
                    }
                )
                f = _run_worker(
                    {
                        "kind": "file",
                        "model": model,
                        "clip": str(clip),
                        "formats": list(settings.formats),
                        "rounds": settings.rounds,
                        **common(model),
                    }
                )
                doc["model_only"].append({"model": model, "size": _size_name(size), **m})
                doc["file_to_file"].append({"model": model, "size": _size_name(size), **f})
                say(
                    f"{model}\t{_size_name(size)}\tmodel-only {m['fps']:.1f} frames/s\t"
                    f"file-to-file {f['fps']:.1f} frames/s\tpeak RSS {f['peak_rss_mb']:.0f} MiB"
                )
        if settings.lengths:
            size = settings.memory_size or settings.sizes[0]
            base = _base_frames(settings.source, size)
            for n in settings.lengths:
                clip = make_clip(clips_dir / f"len_{_size_name(size)}_{n}.mp4", looped(base, n), size)
                for model in settings.models:
                    f = _run_worker(
                        {
                            "kind": "file",
                            "model": model,
                            "clip": str(clip),
                            "formats": list(settings.memory_formats),
                            "rounds": 1,
                            **common(model),
                        }
                    )
                    doc["memory"].append({"model": model, "size": _size_name(size), "length": n, **f})
                    say(
                        f"{model}\t{_size_name(size)}\t{n} frames\tpeak RSS {f['peak_rss_mb']:.0f} MiB\t"
                        f"{f['fps']:.1f} frames/s"
                    )
                clip.unlink()
    finally:
        shutil.rmtree(clips_dir, ignore_errors=True)
    _write(out, doc, settings)
    return doc


def _machine(device: str) -> dict:
    import torch

    from vmatte.matte import resolve_device

    dev = resolve_device(device)
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(dev),
        # Thread settings change CPU figures a lot (OpenMP spin-waiting beside encoder threads).
        "env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
        # CPU figures from a busy machine are not figures: the load before the run says if it was idle.
        "loadavg_start": list(os.getloadavg()),
    }
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    return info


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def _mb(v: float | None) -> str:
    return "" if v is None else f"{v:.0f}"


def _write(out: Path, doc: dict, settings: SpeedSettings) -> None:
    from .results import atomic_write, md_table

    atomic_write(out / "speed.json", json.dumps(doc, indent=1) + "\n")
    f2f = {(r["model"], r["size"]): r for r in doc["file_to_file"]}
    rows = []
    for m in doc["model_only"]:
        f = f2f[(m["model"], m["size"])]
        rows.append(
            [
                m["model"],
                m["size"],
                f"{m['fps']:.1f}",
                f"{m['ms_per_frame']:.1f}",
                f"{f['fps']:.1f}",
                f"{f['fps'] / m['fps']:.2f}",
                _mb(f["peak_rss_mb"]),
                _mb(f["peak_device_mb"]),
            ]
        )
    mc = doc["machine"]
    md = [
        f"# Speed on {mc['cpu_count']} CPU cores, device {mc['device']}" + (f" ({mc['gpu']})" if "gpu" in mc else ""),
        "",
        f"load average before the run {mc['loadavg_start'][0]:.2f} (other work on the machine slows every figure);",
        f"best of {settings.rounds} runs; model-only {settings.model_frames} frames, file-to-file "
        f"{settings.file_frames} frames to {','.join(settings.formats)}; peak memory of the file-to-file run.",
        "",
        md_table(
            [
                "model",
                "size",
                "model-only fps",
                "ms/frame",
                "file-to-file fps",
                "f2f/model",
                "peak RSS MiB",
                "peak GPU MiB",
            ],
            rows,
        ),
    ]
    if doc["memory"]:
        md += [
            "",
            f"Peak RSS against video length (file-to-file to {','.join(settings.memory_formats)}):",
            "",
            md_table(
                ["model", "size", "frames", "peak RSS MiB", "peak GPU MiB", "fps"],
                [
                    [
                        r["model"],
                        r["size"],
                        str(r["length"]),
                        _mb(r["peak_rss_mb"]),
                        _mb(r["peak_device_mb"]),
                        f"{r['fps']:.1f}",
                    ]
                    for r in doc["memory"]
                ],
            ),
        ]
    atomic_write(out / "speed.md", "\n".join(md) + "\n")
    atomic_write(out / "fps_vs_resolution.png", _plot_fps(doc))
    if doc["memory"]:
        atomic_write(out / "rss_vs_length.png", _plot_rss(doc))


def _plot_fps(doc: dict) -> bytes:
    from .report import fig_png, new_figure

    fig = new_figure(7, 4)
    ax = fig.subplots()
    sizes = list(dict.fromkeys(r["size"] for r in doc["model_only"]))
    mpix = {s: math.prod(int(v) for v in s.split("x")) / 1e6 for s in sizes}
    for kind, style in (("model_only", "-o"), ("file_to_file", "--s")):
        for model in dict.fromkeys(r["model"] for r in doc[kind]):
            rs = sorted((r for r in doc[kind] if r["model"] == model), key=lambda r: mpix[r["size"]])
            ax.plot(
                [mpix[r["size"]] for r in rs], [r["fps"] for r in rs], style, label=f"{model} {kind.replace('_', '-')}"
            )
    ax.set_xscale("log")
    ax.set_xticks([mpix[s] for s in sizes], sizes)
    ax.minorticks_off()
    ax.set_xlabel("resolution (log megapixels)")
    ax.set_ylabel("frames/s")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"frames/s vs resolution ({doc['machine']['device']}, {doc['machine']['cpu_count']} CPU cores)")
    return fig_png(fig)


def _plot_rss(doc: dict) -> bytes:
    from .report import fig_png, new_figure

    fig = new_figure(7, 4)
    ax = fig.subplots()
    for model in dict.fromkeys(r["model"] for r in doc["memory"]):
        rs = sorted((r for r in doc["memory"] if r["model"] == model), key=lambda r: r["length"])
        ax.plot([r["length"] for r in rs], [r["peak_rss_mb"] for r in rs], "-o", label=f"{model} peak RSS")
        if any(r["peak_device_mb"] is not None for r in rs):
            ax.plot(
                [r["length"] for r in rs],
                [r["peak_device_mb"] or math.nan for r in rs],
                "--s",
                label=f"{model} peak GPU memory",
            )
    ax.set_xscale("log")
    ax.set_xlabel("video length (frames, log)")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"peak memory vs video length ({doc['memory'][0]['size']}, file-to-file)")
    return fig_png(fig)


def _worker_main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    out = _worker_model(job) if job["kind"] == "model" else _worker_file(job)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
