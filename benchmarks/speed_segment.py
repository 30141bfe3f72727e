"""Click-to-mask speed of the official SAM / SAM 2 sizes, with random weights (timing does not
need the real ones): seconds to encode a frame (once per clicked frame) and per click after it.

    .venv/bin/python benchmarks/speed_segment.py                       # CPU, 1280x720 frame
    .venv/bin/python benchmarks/speed_segment.py --device cuda --models sam-vit-h,sam2.1_hiera_large

Prints one line per model: parameters, set_image seconds (best of --rounds), predict seconds
for one click and for three clicks, and peak memory on CUDA.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vmatte.engine.segment.sam1 import Sam1Predictor
from vmatte.engine.segment.sam2 import Sam2Predictor
from vmatte.models.sam import SAM_CONFIGS, Sam
from vmatte.models.sam2 import SAM2_CONFIGS, Sam2


def build(name: str):
    torch.manual_seed(0)
    if name.startswith("sam-vit-"):
        model = Sam(SAM_CONFIGS[name.removeprefix("sam-").replace("-", "_")])
        model.reset_pixel_stats()
        return model, Sam1Predictor
    return Sam2(SAM2_CONFIGS[name]), Sam2Predictor


def best_of(rounds: int, fn, sync) -> float:
    times = []
    for _ in range(rounds):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--models",
        default="sam2.1_hiera_tiny,sam2.1_hiera_small,sam-vit-b",
        help=f"comma-separated: sam-vit-b/l/h or {', '.join(SAM2_CONFIGS)}",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="1280x720", help="frame WxH")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    one, three = np.array([[w / 2, h / 2]]), np.array([[w / 2, h / 2], [w / 3, h / 3], [w / 4, h / 2]])
    print(f"device {dev}, torch threads {torch.get_num_threads()}, frame {w}x{h}")
    for name in args.models.split(","):
        model, predictor_cls = build(name.strip())
        params = sum(p.numel() for p in model.parameters()) / 1e6
        predictor = predictor_cls(model, device=dev)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        enc = best_of(args.rounds, lambda p=predictor: p.set_image(frame), sync)
        p1 = best_of(args.rounds + 2, lambda p=predictor: p.predict(one, np.array([1])), sync)
        p3 = best_of(args.rounds + 2, lambda p=predictor: p.predict(three, np.array([1, 0, 1])), sync)
        mem = f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if dev.type == "cuda" else ""
        print(
            f"{name:20s} {params:6.1f} M params  set_image {enc:6.2f} s  predict 1 click {p1 * 1e3:6.0f} ms  "
            f"3 clicks {p3 * 1e3:6.0f} ms{mem}"
        )
        del model, predictor


if __name__ == "__main__":
    main()
