"""--reduce-chatter: temporal stability gained against motion smear, on clips with exact alpha.

    vmatte bench compose --fg ../shared/media/am2k --bg ../shared/media/davis2016/JPEGImages/* \
        -o /tmp/chatter --frames 40
    python benchmarks/refine_chatter.py /tmp/chatter --davis ../shared/media/davis2016 --sheet out/sheet.png

For every composed clip the model (default rvm) runs once; the refinement is applied afterwards
to the stored alphas (it is a post-process, so this equals running ``vmatte matte`` once per
setting). Printed per setting, mean over clips:

- dtSSD x100 against the exact alpha (temporal coherence; lower is better),
- MAD x1000 (whole frame),
- motion error: MAD x1000 over the pixels where the exact alpha changes between consecutive
  frames by more than 0.02 (moving edges: this grows if the filter smears motion).

With ``--davis``: J (IoU x100 of alpha >= 0.5 against the union of the annotated objects) on every
DAVIS-2016 sequence, frames 1..N, before/after, to show the filter does not cost tracking.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from vmatte.engine.refine import Refiner, RefineSettings
from vmatte.eval.metrics import dtssd, jaccard
from vmatte.matte import iter_matte, load_matter

SETTINGS = {
    "raw": None,
    "chatter 2": RefineSettings(reduce_chatter=2),
    "chatter 4": RefineSettings(reduce_chatter=4),
    "chatter 8": RefineSettings(reduce_chatter=8),
}
SHEET = RefineSettings(reduce_chatter=4, choke=1.0, feather=2.0)


def run_model(folder: Path, matter) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images, alphas = [], []
    for r in iter_matte(folder, model=matter):
        images.append(r.image)
        alphas.append(r.alpha.copy())
    return images, alphas


def refine_all(images, alphas, settings: RefineSettings | None) -> list[np.ndarray]:
    if settings is None:
        return alphas
    refiner = Refiner(settings)
    return [refiner.step(img, None, {None: a})[1][None] for img, a in zip(images, alphas)]


def read_alphas(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0 for f in sorted(folder.glob("*.png"))]


def clip_scores(pred: list[np.ndarray], true: list[np.ndarray]) -> dict[str, float]:
    d, mad, motion = [], [], []
    for t, (p, g) in enumerate(zip(pred, true)):
        mad.append(float(np.abs(p - g).mean()))
        if t:
            d.append(dtssd(p, g, pred[t - 1], true[t - 1]))
            moving = np.abs(g - true[t - 1]) > 0.02
            if moving.any():
                motion.append(float(np.abs(p - g)[moving].mean()))
    return {
        "dtSSD": 100 * float(np.mean(d)),
        "MAD": 1000 * float(np.mean(mad)),
        "motion": 1000 * float(np.mean(motion)) if motion else float("nan"),
    }


def contact_sheet(images, raw, refined, true, path: Path, picks=(8, 16, 24, 32)) -> None:
    picks = [i for i in picks if i < len(images)]
    rows = []
    for i in picks:
        img = images[i]
        img8 = (img / 257).astype(np.uint8) if img.dtype == np.uint16 else img
        tiles = [cv2.cvtColor(img8, cv2.COLOR_RGB2BGR)]
        for a in (raw[i], refined[i], true[i]):
            tiles.append(cv2.cvtColor((np.clip(a, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
        rows.append(np.hstack(tiles))
    sheet = np.vstack(rows)
    head = np.full((28, sheet.shape[1], 3), 255, np.uint8)
    w = img.shape[1]
    for k, label in enumerate(["composite", "rvm alpha", "refined: chatter 4, choke 1, feather 2", "exact alpha"]):
        cv2.putText(head, label, (k * w + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack([head, sheet]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="clips from vmatte bench compose (NNNN/com, NNNN/pha)")
    ap.add_argument("--model", default="rvm")
    ap.add_argument("--davis", type=Path, help="DAVIS-2016 folder (JPEGImages/, Annotations/) for J before/after")
    ap.add_argument("--sheet", type=Path, help="write a contact sheet PNG of a refined matte here")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    matter = load_matter(args.model, device="cpu")
    print(
        f"machine: {platform.processor() or platform.machine()}, {cv2.getNumThreads()} OpenCV threads; "
        f"model: {matter.description}",
        file=sys.stderr,
    )
    clips = sorted(p for p in args.root.iterdir() if (p / "com").is_dir())
    per: dict[str, list[dict]] = {k: [] for k in SETTINGS}
    start = time.perf_counter()
    for n, clip in enumerate(clips):
        images, alphas = run_model(clip / "com", matter)
        true = read_alphas(clip / "pha")
        for name, settings in SETTINGS.items():
            per[name].append(clip_scores(refine_all(images, alphas, settings), true))
        if n == 0 and args.sheet:
            contact_sheet(images, alphas, refine_all(images, alphas, SHEET), true, args.sheet)
        print(f"{clip.name}: " + "  ".join(f"{k} dtSSD {v[-1]['dtSSD']:.2f}" for k, v in per.items()), file=sys.stderr)
    result = {"clips": len(clips), "model": matter.description, "composed": {}}
    print(f"\n{len(clips)} composed clips ({time.perf_counter() - start:.0f} s); mean over clips")
    print(f"{'setting':<10} {'dtSSD x100':>10} {'MAD x1e3':>9} {'motion x1e3':>11}")
    for name, rows in per.items():
        mean = {k: float(np.nanmean([r[k] for r in rows])) for k in ("dtSSD", "MAD", "motion")}
        result["composed"][name] = mean
        print(f"{name:<10} {mean['dtSSD']:>10.3f} {mean['MAD']:>9.3f} {mean['motion']:>11.3f}")
    if args.davis:
        result["davis_J"] = davis_j(args.davis, matter)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def davis_j(root: Path, matter) -> dict:
    seqs = sorted(p.name for p in (root / "JPEGImages").iterdir() if p.is_dir())
    scores: dict[str, dict[str, float]] = {}
    for seq in seqs:
        images, alphas = run_model(root / "JPEGImages" / seq, matter)
        gts = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) > 0 for f in sorted((root / "Annotations" / seq).glob("*.png"))]
        scores[seq] = {}
        for name, settings in SETTINGS.items():
            pred = refine_all(images, alphas, settings)
            scores[seq][name] = 100 * float(
                np.mean([jaccard(p, g.astype(np.float32)) for p, g in list(zip(pred, gts))[1:]])
            )
    print(f"\nDAVIS-2016 J x100 ({len(seqs)} sequences, frames 1..N, alpha >= 0.5 vs all objects)")
    print("sequence".ljust(20) + "".join(n.rjust(11) for n in SETTINGS))
    for seq, row in scores.items():
        print(seq.ljust(20) + "".join(f"{row[n]:>11.2f}" for n in SETTINGS))
    means = {n: float(np.mean([row[n] for row in scores.values()])) for n in SETTINGS}
    print("mean".ljust(20) + "".join(f"{means[n]:>11.2f}" for n in SETTINGS))
    return {"per_sequence": scores, "mean": means}


if __name__ == "__main__":
    sys.exit(main())
