"""How many Python calls a frame passes through, and the model stack it meets (not a timing).

    .venv/bin/python benchmarks/calls_per_frame.py                       # rvm-target --tracker sam2 --choke 2
    .venv/bin/python benchmarks/calls_per_frame.py -- -m sam2-matte      # other matte arguments

Runs ``vmatte matte CLIP --mask M -o OUT -f alpha-png -q --device cpu ARGS`` in this process on a
synthetic 64x48 clip (a disc moving over a gradient, H.264 through PyAV) with a small random SAM 2
(the real classes, the tests' tiny configuration: no checkpoint is needed), and prints:

* the stack of matters the loop runs, outermost first (each object's ``inner``, and RVM's chosen
  runtime), and the mask source beside it when there is one;
* the call path of one frame in the model's thread, from ``cli.main`` to each innermost step it
  reaches (RVM's runtime, SAM 2's tracker): every vmatte function on the stack at that moment,
  outermost first, and its depth;
* calls per frame in the model's thread (cProfile, which profiles the thread that enables it:
  decoding and writing run in their own threads and are the same for every model stack): the
  difference between a run of ``LONG`` and one of ``SHORT`` frames divided by ``LONG - SHORT``, so
  loading and per-video set-up cancel out; all calls, and calls to vmatte's own functions.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import traceback
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

DEFAULT = ["-m", "rvm-target", "--tracker", "sam2", "--choke", "2"]
W, H = 64, 48


def tiny_sam2():
    """A random SAM 2.1 of the tests' tiny size whose object score keeps the target present."""
    from vmatte.models.sam2 import SAM2_CONFIGS, Sam2Video

    cfg = replace(
        SAM2_CONFIGS["sam2.1_hiera_tiny"],
        name="tiny benchmark",
        embed_dim=16,
        stages=(1, 2, 2, 1),
        global_att_blocks=(4,),
        window_spec=(8, 4, 6, 3),
        d_model=32,
        image_size=64,
        mem_dim=8,
        mem_attn_layers=2,
        mem_attn_ffn=64,
    )
    torch.manual_seed(0)
    model = Sam2Video(cfg)
    with torch.no_grad():
        for t in model.state_dict().values():
            t.copy_(torch.randn(t.shape) / max(1, t[0].numel() if t.ndim > 1 else 1) ** 0.5)
        model.state_dict()["sam_mask_decoder.pred_obj_score_head.layers.2.bias"].fill_(5.0)
    return model.eval()


def write_clip(path: Path, n: int) -> Path:
    yy, xx = np.mgrid[:H, :W]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"crf": "8", "preset": "ultrafast"}
        for i in range(n):
            img = np.zeros((H, W, 3), np.uint8)
            img[..., 0] = xx * 192 // W
            img[..., 1] = yy * 192 // H
            img[((yy - H / 2) ** 2 + (xx - W / 3 - i) ** 2) < (H / 5) ** 2] = 230
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def chain(matter) -> list[str]:
    """Class names from the loop's matter inwards (``inner`` links; RVM's chosen runtime)."""
    names, seen = [], set()
    while matter is not None and id(matter) not in seen:
        seen.add(id(matter))
        names.append(type(matter).__name__)
        matter = getattr(matter, "inner", None) or getattr(matter, "_active", None)
    return names


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--short", type=int, default=4)
    p.add_argument("--long", type=int, default=12)
    p.add_argument("--size", default="64x48", help="the clip's WxH (RVM picks onnxruntime above ~512 px)")
    p.add_argument("--by-function", action="store_true", help="calls per frame of each vmatte function")
    p.add_argument("args", nargs="*", help="vmatte matte arguments (after --)")
    a = p.parse_args()
    args = a.args or DEFAULT
    global W, H
    W, H = map(int, a.size.split("x"))

    import vmatte.engine.loop as loop
    import vmatte.engine.sam2video.masks as masks_mod
    from vmatte.cli import main as cli
    from vmatte.engine import rvm

    torch.set_num_threads(1)
    model = tiny_sam2()
    masks_mod.load_video_model = lambda spec, device="cpu", **kw: (model, "tiny random SAM 2")
    seen: dict = {}
    results = loop.results

    def spy(matter, frames, *rest, **kw):
        seen["matter"] = matter
        yield from results(matter, frames, *rest, **kw)

    loop.results = spy
    from vmatte.engine.sam2video.tracker import Sam2VideoTracker

    paths: dict[str, list[str]] = {}  # the innermost steps: RVM's runtimes, SAM 2's tracker
    for cls in (rvm.RVMOnnx, rvm.RVMTorch, Sam2VideoTracker):
        step = cls.step

        def traced(self, *args, _step=step, **kw):
            name = f"{type(self).__name__}.step"
            if name not in paths:
                stack = traceback.extract_stack()[:-1]
                start = max(i for i, f in enumerate(stack) if f.name == "main" and f.filename.endswith("cli.py"))
                paths[name] = [f.name for f in stack[start:] if "/vmatte/" in f.filename] + [name]
            return _step(self, *args, **kw)

        cls.step = traced

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mask = np.zeros((H, W), np.uint8)
        mask[H // 4 : 3 * H // 4, W // 8 : W // 2] = 255
        Image.fromarray(mask).save(tmp / "m.png")
        calls = {}
        for n in (a.short, a.long, a.short, a.long):  # twice each: the second of each is counted (warm)
            clip = write_clip(tmp / f"clip{n}.mp4", n)
            out = tmp / f"out{n}"
            argv = ["matte", str(clip), "--mask", str(tmp / "m.png"), "-o", str(out), "-f", "alpha-png", "-q"]
            argv += ["--device", "cpu", "--overwrite", *args]
            prof = cProfile.Profile()
            prof.enable()
            rc = cli(argv)
            prof.disable()
            if rc != 0:
                print(f"vmatte matte {' '.join(args)} failed (exit {rc})", file=sys.stderr)
                return 1
            stats = pstats.Stats(prof).stats
            total = sum(v[1] for v in stats.values())  # primitive + recursive calls
            own = sum(v[1] for k, v in stats.items() if "/vmatte/" in k[0])
            plumbing = {k: v[1] for k, v in stats.items() if "/vmatte/" in k[0] and "/vmatte/models/" not in k[0]}
            calls[n] = (total, own, sum(plumbing.values()), plumbing)
    matter = seen["matter"]
    per = [(calls[a.long][i] - calls[a.short][i]) / (a.long - a.short) for i in (0, 1, 2)]
    print(f"vmatte matte CLIP --mask M {' '.join(args)}  ({W}x{H}, {a.short} and {a.long} frames)")
    print("model stack, outermost first: " + " > ".join(chain(matter)))
    source = getattr(matter, "mask_source", None)
    if source is not None:
        print(f"mask source (a step of the loop, beside the stack): {type(source).__name__}")
    for name, path in paths.items():
        print(f"a frame's path to {name} in the model's thread ({len(path)} vmatte calls deep from cli.main):")
        print("  " + " > ".join(path))
    print(
        f"calls per frame in the model's thread: {per[0]:.0f} in all, {per[1]:.0f} to vmatte's own functions, "
        f"{per[2]:.0f} of them outside the networks (vmatte.models)"
    )
    if a.by_function:
        long, short = calls[a.long][3], calls[a.short][3]
        rows = {k: (long.get(k, 0) - short.get(k, 0)) / (a.long - a.short) for k in long}
        for (file, line, name), c in sorted(rows.items(), key=lambda kv: -kv[1]):
            if c >= 0.5:
                print(f"  {c:6.1f}  {name}  ({file.split('/vmatte/')[-1]}:{line})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
