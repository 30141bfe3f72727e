"""VideoMaMa speed and memory with random weights (the real weights are not needed for timing).

    .venv/bin/python benchmarks/speed_videomama.py                 # CPU: the tiny test config, 32x20
    .venv/bin/python benchmarks/speed_videomama.py --real --device cuda   # SVD-xt shapes, 1024x576, fp16

Prints seconds per chunk (one UNet evaluation + VAE encode/decode of its frames), frames/s of
the chunk loop (overlap 4 of 16: 12 new frames per chunk), and peak GPU memory on CUDA.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vmatte.engine.videomama import VideoMaMaMatter, VideoMaMaSettings
from vmatte.models.videomama import VideoMaMa, svd_unet_config, svd_vae_config, tiny_unet_config, tiny_vae_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--real", action="store_true", help="SVD-xt shapes (1.5 B-parameter UNet) instead of the tiny config"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default=None, help="canvas WxH (default 1024x576 real, 32x20 tiny)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    dev = torch.device(args.device)
    size = tuple(int(v) for v in (args.size or ("1024x576" if args.real else "32x20")).split("x"))
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    torch.manual_seed(0)
    with dev:  # random init straight on the device
        model = (
            VideoMaMa.from_config(svd_unet_config(), svd_vae_config())
            if args.real
            else VideoMaMa.from_config(tiny_unet_config(), tiny_vae_config())
        )
    params = sum(p.numel() for p in model.parameters())
    matter = VideoMaMaMatter(model, None, dev, VideoMaMaSettings(size=size), dtype=dtype)
    w, h = size
    t = matter.settings.chunk_frames
    frames = np.random.default_rng(0).uniform(-1, 1, (t, 3, h, w)).astype(np.float32)
    masks = (np.random.default_rng(1).uniform(0, 1, (t, 1, h, w)) > 0.5).astype(np.float32)
    matter.run_chunk(frames, masks)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    best = float("inf")
    for _ in range(args.rounds):
        start = time.perf_counter()
        matter.run_chunk(frames, masks)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    new = t - matter.settings.overlap
    print(
        f"{'SVD-xt' if args.real else 'tiny'} config ({params / 1e6:.1f} M parameters), {dev.type} {dtype}, "
        f"canvas {w}x{h}, {t}-frame chunks: {best:.3f} s/chunk (best of {args.rounds}), "
        f"{new / best:.2f} frames/s at overlap {matter.settings.overlap}"
    )
    if dev.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
