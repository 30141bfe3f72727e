"""The checks of ``benchmarks/gpu_check.sh``; see there. Prints one table (and --json)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "matanyone"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from abtest import machine  # noqa: E402 - found through the sys.path entry above
from conftest import matanyone_fixture_settings, matanyone_recipe_state_dict  # noqa: E402

ROWS: list[tuple[str, str, str]] = []  # (check, figure, note)


def row(check: str, figure: str, note: str = "") -> None:
    ROWS.append((check, figure, note))
    print(f"  {check}: {figure} {note}", flush=True)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak(dev: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if dev.type == "cuda" else "n/a (CPU)"


def _matanyone(dev: torch.device):
    from vmatte.engine.matanyone import prepare_network
    from vmatte.models.matanyone import MatAnyone

    net = MatAnyone()
    net.load_state_dict(matanyone_recipe_state_dict())
    return prepare_network(net.eval(), dev).to(dev)


def check_fixture(dev: torch.device, dry: bool) -> None:
    """The fixture's official call sequence on ``dev``: fp32 against the reference (tolerance
    5e-4), then bf16 / fp16 autocast (reported, no tolerance: reduced precision)."""
    import cv2

    from vmatte.engine.matanyone import InferenceCore
    from vmatte.engine.matanyone.preprocess import image_to_tensor, mask_to_tensor

    case = FIXTURE / ("case_short" if dry else "case_dance_twirl")
    ref = np.load(case / "reference.npz")
    settings = matanyone_fixture_settings(case)
    n = ref["alpha"].shape[0]
    frames = [cv2.cvtColor(cv2.imread(str(case / f"{i:05d}.png")), cv2.COLOR_BGR2RGB) for i in range(n)]
    mask = cv2.imread(str(case / "mask.png"), cv2.IMREAD_GRAYSCALE)
    net = _matanyone(dev)
    precisions = ["fp32", "bf16"] + (["fp16"] if dev.type == "cuda" else [])
    for precision in precisions:
        core = InferenceCore(net, settings)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        saved = []
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            vframes = [frames[0]] * settings.warmup_frames + frames
            for ti, frame in enumerate(vframes):
                image = image_to_tensor(frame, dev)
                if ti == 0:
                    core.step(image, mask_to_tensor(mask, dev))
                    out = core.step(image, first_frame_pred=True)
                elif ti <= settings.warmup_frames:
                    out = core.step(image, first_frame_pred=True)
                else:
                    out = core.step(image)
                if ti >= settings.warmup_frames:
                    saved.append(out.alpha[0].float().cpu().numpy())
        d = max(float(np.abs(a - r).max()) for a, r in zip(saved, ref["alpha"]))
        verdict = ("PASS" if d <= 5e-4 else "FAIL") if precision == "fp32" else "reported"
        row(f"MatAnyone fixture {case.name} {precision}", f"max |d alpha| {d:.1e}", verdict + " (fp32 tolerance 5e-4)")


def check_matanyone_speed(dev: torch.device, dry: bool) -> None:
    from vmatte.engine.matanyone import InferenceCore, MatAnyoneSettings, start

    w, h, n = (128, 72, 2) if dry else (1920, 1080, 10)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : 3 * h // 4, w // 3 : 2 * w // 3] = 255
    core = InferenceCore(_matanyone(dev), MatAnyoneSettings(warmup_frames=1))
    from vmatte.engine.matanyone.preprocess import image_to_tensor

    start(core, img, mask)
    core.step(image_to_tensor(img, dev))
    _reset_peak(dev)
    t = time.perf_counter()
    for _ in range(n):
        core.step(image_to_tensor(img, dev))
    _sync(dev)
    row(f"MatAnyone {w}x{h} fp32", f"{n / (time.perf_counter() - t):.2f} frames/s", f"peak device memory {_peak(dev)}")


def check_rvm(dev: torch.device, dry: bool) -> None:
    """vmatte's RVM against plain onnxruntime (CUDA provider on a GPU) on the same frame,
    alternating blocks of frames (A B, then B A, ...), min and median of each."""
    import vmatte
    from abtest import Timing, alternate

    sizes = [(128, 72)] if dry else [(1920, 1080), (3840, 2160)]
    block, rounds = (2, 4) if dry else (5, 8)
    for w, h in sizes:
        img = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
        m = vmatte.load_matter("rvm", device=str(dev), backend="torch" if dev.type == "cuda" else "auto")
        m.reset()
        m.step(img, foreground=False)
        _reset_peak(dev)

        def ours(i: int, m=m, img=img) -> None:
            for _ in range(block):
                m.step(img, foreground=False)
            _sync(dev)

        variants = {"vmatte": ours}
        why_not = None
        try:
            import onnxruntime as ort
        except ImportError:
            ort, why_not = None, "onnxruntime not installed"
        provider = "CUDAExecutionProvider" if dev.type == "cuda" else "CPUExecutionProvider"
        if ort is not None and provider not in ort.get_available_providers():
            why_not = "onnxruntime-gpu not installed (no CUDAExecutionProvider)"
        if why_not is None:
            from vmatte.models.rvm import auto_downsample_ratio
            from vmatte.weights import packaged_path

            sess = ort.InferenceSession(str(packaged_path()), providers=[provider])
            state = {"rec": [np.zeros((1, 1, 1, 1), np.float32)] * 4}
            src = img.transpose(2, 0, 1)[None].astype(np.float32) / 255
            ratio = np.array([auto_downsample_ratio(h, w, None)], np.float32)

            def plain(i: int, sess=sess, src=src, ratio=ratio, state=state) -> None:
                for _ in range(block):
                    feeds = {"src": src, "downsample_ratio": ratio} | {
                        f"r{k + 1}i": r for k, r in enumerate(state["rec"])
                    }
                    state["rec"] = sess.run(None, feeds)[2:]

            plain(0)  # warm-up: session optimisation, first allocations
            variants["plain onnxruntime"] = plain
        timing = alternate(variants, rounds, pause=0.2)  # pause: onnxruntime's pool spins on after a run
        ours_t = Timing("vmatte", [t / block for t in timing["vmatte"].times])
        row(
            f"RVM {w}x{h} vmatte ({dev.type})",
            f"{1 / ours_t.median:.1f} frames/s",
            f"{ours_t.min * 1000:.1f} / {ours_t.median * 1000:.1f} ms/frame min / median; "
            f"peak device memory {_peak(dev)}",
        )
        if why_not is not None:
            row(f"RVM {w}x{h} onnxruntime", "skipped", why_not)
            continue
        ref = Timing("ort", [t / block for t in timing["plain onnxruntime"].times])
        row(
            f"RVM {w}x{h} plain onnxruntime ({provider})",
            f"{1 / ref.median:.1f} frames/s",
            f"vmatte vs onnxruntime {ref.median / ours_t.median:.2f}x (median) {ref.min / ours_t.min:.2f}x (min), "
            f"{rounds} alternating blocks of {block} frames",
        )


def check_videomama(dev: torch.device, dry: bool) -> None:
    from vmatte.engine.videomama import VideoMaMaMatter, VideoMaMaSettings
    from vmatte.models.videomama import (
        VideoMaMa,
        svd_unet_config,
        svd_vae_config,
        tiny_unet_config,
        tiny_vae_config,
    )

    size = (32, 20) if dry else (1024, 576)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    torch.manual_seed(0)
    with dev:
        model = (
            VideoMaMa.from_config(tiny_unet_config(), tiny_vae_config())
            if dry
            else VideoMaMa.from_config(svd_unet_config(), svd_vae_config())
        )
    matter = VideoMaMaMatter(model, None, dev, VideoMaMaSettings(size=size), dtype=dtype)
    w, h = size
    t = matter.settings.chunk_frames
    frames = np.random.default_rng(0).uniform(-1, 1, (t, 3, h, w)).astype(np.float32)
    masks = (np.random.default_rng(1).uniform(0, 1, (t, 1, h, w)) > 0.5).astype(np.float32)
    matter.run_chunk(frames, masks)
    _reset_peak(dev)
    start = time.perf_counter()
    matter.run_chunk(frames, masks)
    _sync(dev)
    row(
        f"VideoMaMa {'tiny' if dry else 'SVD-xt'} random weights {w}x{h} {str(dtype)[6:]}",
        f"{time.perf_counter() - start:.2f} s/chunk of {t}",
        f"peak device memory {_peak(dev)}",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: the code paths only")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    dry = args.dry_run or not torch.cuda.is_available()
    dev = torch.device("cpu" if dry else "cuda")
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "no GPU: CPU dry run at toy sizes"
    print(f"gpu_check on {name}; torch {torch.__version__}; {machine()}", flush=True)
    checks = [check_rvm, check_matanyone_speed, check_videomama]
    if (FIXTURE / "recipe.py").is_file():
        checks.insert(0, check_fixture)
    else:
        row("MatAnyone fixture", "skipped", f"no fixture at {FIXTURE}")
    failed = False
    for check in checks:
        try:
            check(dev, dry)
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others' figures
            failed = True
            traceback.print_exc()
            row(check.__name__, "ERROR", f"{type(exc).__name__}: {exc}"[:200])
    width = max(len(r[0]) for r in ROWS)
    print(f"\n{'check':<{width}}  {'figure':<28} note")
    for check, figure, note in ROWS:
        print(f"{check:<{width}}  {figure:<28} {note}")
    if args.json:
        args.json.write_text(json.dumps([dict(zip(("check", "figure", "note"), r)) for r in ROWS], indent=2))
    return 1 if failed or any("FAIL" in r[2] for r in ROWS) else 0


if __name__ == "__main__":
    sys.exit(main())
