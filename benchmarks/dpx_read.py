"""DPX 10-bit reading: PyAV (FFmpeg's dpx decoder, what vmatte uses) against OpenImageIO.

    python benchmarks/dpx_read.py [--oiio-path DIR] [--frames 8] [--rounds 5]

Writes 2048x1080 10-bit DPX frames (random codes) with FFmpeg's encoder, then reads them back
with each library, alternating A B A B per round; prints per-frame ms (min, median over rounds)
and whether both give the exact code values. OpenImageIO is not a vmatte dependency: install it
somewhere aside (``pip install --target DIR openimageio``) and pass ``--oiio-path DIR``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np


def write_dpx(path: Path, codes: np.ndarray) -> None:
    ctx = av.CodecContext.create("dpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = codes.shape[1], codes.shape[0], "gbrp10le", 1
    c = codes.astype(np.uint16)
    frame = av.VideoFrame.from_ndarray((c << 6) | (c >> 4), format="rgb48le").reformat(format="gbrp10le")
    with open(path, "wb") as f:
        f.writelines(bytes(p) for p in list(ctx.encode(frame)) + list(ctx.encode(None)))


def read_pyav(path: Path) -> np.ndarray:
    from vmatte.io.sequence import _read_dpx

    return _read_dpx(path)


def read_oiio(path: Path) -> np.ndarray:
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    try:
        return inp.read_image(0, 0, 0, 3, "float")
    finally:
        inp.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--oiio-path", help="folder where openimageio is installed (added to sys.path)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if args.oiio_path:
        sys.path.insert(0, args.oiio_path)
    readers = {"pyav": read_pyav}
    try:
        import OpenImageIO  # noqa: F401

        readers["oiio"] = read_oiio
    except ImportError:
        print("OpenImageIO not importable: timing PyAV only", file=sys.stderr)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(args.frames):
            codes = rng.integers(0, 1024, (1080, 2048, 3))
            files.append(Path(tmp) / f"scan.{i:04d}.dpx")
            write_dpx(files[-1], codes)
        last_codes = codes
        times: dict[str, list[float]] = {k: [] for k in readers}
        for _ in range(args.rounds):
            for name, read in readers.items():  # A B A B ...
                t = time.perf_counter()
                for f in files:
                    out = read(f)
                times[name].append((time.perf_counter() - t) / len(files) * 1000)
                err = float(np.abs(out * 1023.0 - last_codes).max())
                assert err < 0.02, f"{name} differs from the written codes by {err} codes"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs)")
    for name, ts in times.items():
        print(
            f"{name:5s} ms/frame 2048x1080 10-bit: min {min(ts):.1f}  median {statistics.median(ts):.1f}  (exact codes)"
        )
    if "oiio" in times:
        ratios = [a / b for a, b in zip(times["pyav"], times["oiio"])]
        print(f"pyav/oiio time ratio per round: min {min(ratios):.2f} median {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
