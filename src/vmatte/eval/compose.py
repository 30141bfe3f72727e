"""VideoMatte-style benchmark clips with exact alpha.

A foreground with a known alpha (a VideoMatte240K ``fgr/`` + ``pha/`` video pair, or a still image
with its alpha) is moved by a smooth random affine motion and composited over an image or video
background::

    ROOT/0000/com/00000.png   composite, RGB
    ROOT/0000/fgr/00000.png   foreground colour, RGB (straight)
    ROOT/0000/pha/00000.png   alpha, 8-bit grey
    ROOT/0000/clip.json       source, background, seed, size, frames, motion keys

The PNGs are the ground truth: ``com`` is computed from the 8-bit ``fgr`` and ``pha`` as written,
so com = fgr * pha + bg * (1 - pha) holds up to the final rounding. Each clip is written into a
temporary folder and renamed when complete. Everything is drawn from ``seed`` and the clip index,
so the same call gives the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vmatte.errors import InputError, OutputError, VmatteError
from vmatte.io.background import Background
from vmatte.io.pixels import code_max
from vmatte.io.reader import IMAGE_EXTENSIONS, natural_key, open_source, read_image_rgb
from vmatte.io.writers import prepare_output_dir

__all__ = [
    "VIDEO_EXTENSIONS",
    "ComposeSettings",
    "ForegroundSource",
    "Motion",
    "MotionRange",
    "compose_clips",
    "find_backgrounds",
    "find_foregrounds",
    "parse_size",
]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
SIZES = {"512x288": (512, 288), "1920x1080": (1920, 1080)}  # the published VideoMatte sizes
PARAMS = ("rotation", "tx", "ty", "scale", "shear")


def parse_size(text: str) -> tuple[int, int]:
    """'512x288' -> (512, 288) (width, height)."""
    parts = str(text).lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise VmatteError(f"bad size {text!r}; give WIDTHxHEIGHT such as 512x288 or 1920x1080")
    return int(parts[0]), int(parts[1])


# --------------------------------------------------------------------------------------------
# Motion
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionRange:
    """How far the random motion goes (each parameter is drawn uniformly in +-range at keyframes)."""

    rotation: float = 10.0  # degrees
    translation: float = 0.1  # fraction of the frame's width / height
    scale: float = 0.15  # zoom factor in [1/(1+s), 1+s] (log-uniform)
    shear: float = 5.0  # degrees
    keyframe_every: int = 25  # frames between keyframes


@dataclass(frozen=True)
class Motion:
    """Affine parameters at keyframes, eased in between (smoothstep: C1, no overshoot).

    Between keys a and b, s frames apart, a parameter moves at most 1.5 * |b - a| / s per frame
    (smoothstep's peak slope), and its speed is 0 at every key: no jumps, no reversals mid-way."""

    key_frames: tuple[float, ...]
    keys: tuple[tuple[float, ...], ...]  # per key: rotation (deg), tx, ty (fractions), scale, shear (deg)

    @staticmethod
    def random(rng: np.random.Generator, frames: int, rng_range: MotionRange = MotionRange()) -> Motion:
        n_keys = max(2, math.ceil((frames - 1) / max(1, rng_range.keyframe_every)) + 1)
        key_frames = np.linspace(0.0, max(frames - 1, 1), n_keys)
        r = rng_range
        lo = np.array([-r.rotation, -r.translation, -r.translation, -math.log1p(r.scale), -r.shear])
        vals = rng.uniform(lo, -lo, size=(n_keys, 5))
        vals[:, 3] = np.exp(vals[:, 3])
        return Motion(tuple(float(f) for f in key_frames), tuple(tuple(float(v) for v in row) for row in vals))

    def params(self, frame: float) -> np.ndarray:
        """(rotation, tx, ty, scale, shear) at ``frame``."""
        kf = np.asarray(self.key_frames)
        keys = np.asarray(self.keys)
        j = int(np.clip(np.searchsorted(kf, frame, side="right") - 1, 0, len(kf) - 2))
        u = float(np.clip((frame - kf[j]) / (kf[j + 1] - kf[j]), 0.0, 1.0))
        ease = u * u * (3.0 - 2.0 * u)
        # Scale is eased in log space so zooming in and out are symmetric.
        a, b = keys[j].copy(), keys[j + 1].copy()
        a[3], b[3] = math.log(a[3]), math.log(b[3])
        out = a + (b - a) * ease
        out[3] = math.exp(out[3])
        return out

    def matrix(self, frame: float, src_wh: tuple[int, int], dst_wh: tuple[int, int], base_scale: float) -> np.ndarray:
        """2x3 matrix mapping source pixels to output pixels at ``frame``.

        The source centre goes to the output centre + (tx * W, ty * H); around it the source is
        scaled by base_scale * scale, sheared along x, then rotated."""
        rot, tx, ty, scale, shear = self.params(frame)
        (sw, sh), (dw, dh) = src_wh, dst_wh
        th, sk = math.radians(rot), math.tan(math.radians(shear))
        rotation = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        linear = rotation @ np.array([[1.0, sk], [0.0, 1.0]]) * (base_scale * scale)
        # OpenCV's pixel centres are at integer coordinates: the centre of a w-wide image is (w-1)/2.
        src_c = np.array([(sw - 1) / 2.0, (sh - 1) / 2.0])
        dst_c = np.array([(dw - 1) / 2.0 + tx * dw, (dh - 1) / 2.0 + ty * dh])
        return np.hstack([linear, (dst_c - linear @ src_c)[:, None]])


# --------------------------------------------------------------------------------------------
# Foregrounds
# --------------------------------------------------------------------------------------------


@dataclass
class ForegroundSource:
    """A foreground with exact alpha: a still (image + alpha, or RGBA) or a fgr/pha video pair."""

    name: str
    kind: str  # "still" or "video"
    image: Path  # the still's image, or the fgr video / image folder
    alpha: Path | None  # the alpha image / pha video; None for an RGBA still

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "image": str(self.image),
            "alpha": str(self.alpha) if self.alpha else None,
        }


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS


def _is_video(p: Path) -> bool:
    return (p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS) or (
        p.is_dir() and any(_is_image(c) for c in p.iterdir())
    )


def _alpha_partner(img: Path) -> Path | None:
    """The grey alpha of ``img``: NAME.png next to NAME.jpg (the AM-2k / matting-set layout)."""
    if img.suffix.lower() == ".png":
        return None
    for ext in (".png", ".PNG"):
        cand = img.with_suffix(ext)
        if cand.is_file():
            return cand
    return None


def _has_alpha_channel(p: Path) -> bool:
    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    return img is not None and img.ndim == 3 and img.shape[2] == 4


def _still(p: Path) -> ForegroundSource | None:
    partner = _alpha_partner(p)
    if partner is not None:
        return ForegroundSource(p.stem, "still", p, partner)
    if p.suffix.lower() in (".png", ".tif", ".tiff") and _has_alpha_channel(p):
        return ForegroundSource(p.stem, "still", p, None)
    return None


def _videomatte_pairs(folder: Path) -> list[ForegroundSource]:
    fgr, pha = folder / "fgr", folder / "pha"
    out = []
    for entry in sorted(fgr.iterdir(), key=lambda e: natural_key(e.name)):
        if entry.name.startswith(".") or not _is_video(entry):
            continue
        stem = entry.stem if entry.is_file() else entry.name
        matches = [c for c in pha.iterdir() if (c.stem if c.is_file() else c.name) == stem and _is_video(c)]
        if not matches:
            raise InputError(f"{entry} has no alpha in {pha} (same name expected); add pha/{stem} or remove it")
        out.append(ForegroundSource(f"{folder.name}-{stem}", "video", entry, matches[0]))
    if not out:
        raise InputError(f"{fgr} contains no videos or image folders; put the foreground clips there")
    return out


def find_foregrounds(paths: Sequence[str | os.PathLike]) -> list[ForegroundSource]:
    """Foregrounds from files and folders (see ``vmatte bench compose --help``)."""
    out: list[ForegroundSource] = []
    for raw in paths:
        p = Path(os.fspath(raw)).expanduser()
        if not p.exists():
            raise InputError(f"foreground not found: {p}; check the path")
        if p.is_dir():
            if (p / "fgr").is_dir() and (p / "pha").is_dir():
                out += _videomatte_pairs(p)
                continue
            found = [
                s
                for c in sorted(p.iterdir(), key=lambda e: natural_key(e.name))
                if _is_image(c) and not c.name.startswith(".") and (s := _still(c)) is not None
            ]
            if not found:
                raise InputError(
                    f"folder {p} has no foreground with alpha; give NAME.jpg + NAME.png (alpha) pairs, "
                    f"RGBA PNGs, or a folder with fgr/ and pha/"
                )
            out += found
        elif _is_image(p):
            if p.suffix.lower() == ".png" and not _has_alpha_channel(p):
                # NAME.png next to NAME.jpg is that image's alpha: take the pair.
                imgs = [p.with_suffix(e) for e in (".jpg", ".jpeg", ".JPG", ".JPEG") if p.with_suffix(e).is_file()]
                if imgs:
                    out.append(ForegroundSource(p.stem, "still", imgs[0], p))
                    continue
            s = _still(p)
            if s is None:
                raise InputError(
                    f"no alpha for {p}; put its alpha as {p.with_suffix('.png').name} next to it or give an RGBA PNG"
                )
            out.append(s)
        elif p.suffix.lower() in VIDEO_EXTENSIONS:
            raise InputError(
                f"foreground video {p} has no alpha; give a folder with fgr/ and pha/ (VideoMatte240K layout)"
            )
        else:
            raise InputError(f"cannot use {p} as a foreground; give an image with alpha or a folder with fgr/ and pha/")
    # A jpg/png pair found from both files must not count twice.
    unique: dict[tuple, ForegroundSource] = {}
    for s in out:
        unique.setdefault((s.image.resolve(), s.alpha.resolve() if s.alpha else None), s)
    return list(unique.values())


def find_backgrounds(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Background specs: image and video files, image folders (as videos), folders of those."""
    out: list[str] = []
    for raw in paths:
        p = Path(os.fspath(raw)).expanduser()
        if p.is_dir() and not any(_is_image(c) for c in p.iterdir()):
            # A folder of backgrounds: each video, image or frame folder in it is one.
            items = [
                c
                for c in sorted(p.iterdir(), key=lambda e: natural_key(e.name))
                if not c.name.startswith(".") and (_is_image(c) or _is_video(c))
            ]
            if not items:
                raise InputError(f"folder {p} has no images or videos; put backgrounds there")
            out += [str(c) for c in items]
        elif p.is_dir():
            # A folder of images: each image is a still background.
            out += [
                str(c)
                for c in sorted(p.iterdir(), key=lambda e: natural_key(e.name))
                if _is_image(c) and not c.name.startswith(".")
            ]
        else:
            out.append(str(raw))
    for spec in out:
        Background.parse(spec).close()  # validates now: a bad file fails before any work
    if not out:
        raise InputError("no backgrounds given; pass --bg with an image, a video or a folder of them")
    return out


def _read_alpha(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read alpha {path}; give an 8- or 16-bit grey PNG")
    if img.ndim == 3:
        img = img[:, :, 3] if img.shape[2] == 4 else img[:, :, 0]
    return _unit(img)


def _unit(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / np.float32(code_max(img.dtype))


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colour from image + alpha with pymatting's multi-level estimator."""
    try:
        from pymatting import estimate_foreground_ml
    except ImportError:
        raise VmatteError(
            "foreground estimation needs pymatting; install it with: pip install 'vmatte[eval]'"
        ) from None
    fg = estimate_foreground_ml(image.astype(np.float64), alpha.astype(np.float64))
    return np.clip(fg, 0.0, 1.0).astype(np.float32)


def load_still(src: ForegroundSource, max_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(fgr, alpha) of a still, shrunk first when the clip never shows it larger than ``max_scale``."""
    if src.alpha is None:
        raw = cv2.imread(str(src.image), cv2.IMREAD_UNCHANGED)
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB)
        alpha = _unit(raw[:, :, 3])
    else:
        rgb = read_image_rgb(src.image)
        if rgb is None:
            raise InputError(f"cannot read foreground image {src.image}; give a valid PNG/JPEG")
        alpha = _read_alpha(src.alpha)
    if alpha.shape != rgb.shape[:2]:
        raise InputError(
            f"alpha {src.alpha} is {alpha.shape[1]}x{alpha.shape[0]} but {src.image} is "
            f"{rgb.shape[1]}x{rgb.shape[0]}; give an alpha of the image's size"
        )
    image = _unit(rgb)
    if max_scale < 1.0:
        # Resampling the still once (area filter) instead of every frame makes the estimator cheap
        # and avoids aliasing; the alpha written out is whatever is then warped, so it stays exact.
        h, w = alpha.shape
        size = (max(1, round(w * max_scale)), max(1, round(h * max_scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    # An RGBA file's colour is taken as the foreground as it is; image + alpha needs estimating.
    fgr = image if src.alpha is None else estimate_foreground(image, alpha)
    return fgr, alpha


def _video_frames(src: ForegroundSource) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    with open_source(src.image) as fsrc, open_source(src.alpha) as asrc:
        for i, (f, a) in enumerate(zip(fsrc, asrc)):
            if f.image.shape[:2] != a.image.shape[:2]:
                raise InputError(
                    f"frame {i} of {src.image} and {src.alpha} differ in size; give fgr and pha of one size"
                )
            yield _unit(f.image), _unit(a.image[:, :, 0])


# --------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComposeSettings:
    size: tuple[int, int] = (512, 288)  # width, height
    frames: int = 100
    clips: int | None = None  # None: one clip per foreground
    seed: int = 0
    fps: float = 25.0  # recorded in clip.json (for matting the com/ folder)
    still_fill: float = 0.8  # a still fits inside this fraction of the frame at scale 1
    motion: MotionRange = field(default_factory=MotionRange)
    overwrite: bool = False


@dataclass
class ClipInfo:
    name: str
    path: Path
    frames: int
    foreground: dict
    background: str


def _write_png(path: Path, rgb_or_grey: np.ndarray) -> None:
    img = rgb_or_grey if rgb_or_grey.ndim == 2 else cv2.cvtColor(rgb_or_grey, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OutputError(f"cannot write {path}; check free space and permissions")


def _q8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def _clip_rng(seed: int, index: int) -> np.random.Generator:
    # Keyed by (seed, clip index): clip 3 is the same whether 4 or 40 clips are made.
    return np.random.default_rng([int(seed), int(index)])


def compose_clip(out_dir: Path, fg: ForegroundSource, bg_spec: str, settings: ComposeSettings, index: int) -> int:
    """Write one clip's com/fgr/pha PNGs and clip.json into ``out_dir`` (which exists); returns frames."""
    W, H = settings.size
    rng = _clip_rng(settings.seed, index)
    motion = Motion.random(rng, settings.frames, settings.motion)
    for sub in ("com", "fgr", "pha"):
        (out_dir / sub).mkdir()
    bg = Background.parse(bg_spec)
    max_zoom = max(k[3] for k in motion.keys)
    try:
        if fg.kind == "still":
            probe = read_image_rgb(fg.image) if fg.alpha is not None else cv2.imread(str(fg.image))
            if probe is None:
                raise InputError(f"cannot read foreground image {fg.image}; give a valid PNG/JPEG")
            h0, w0 = probe.shape[:2]
            fit = settings.still_fill * min(W / w0, H / h0)
            shrink = min(1.0, fit * max_zoom)
            fgr, alpha = load_still(fg, shrink)
            base = fit / shrink  # the shrunk still needs that much more scale
            frames_iter: Iterator[tuple[np.ndarray, np.ndarray]] = ((fgr, alpha) for _ in range(settings.frames))
        else:
            frames_iter = _video_frames(fg)
            base = None
        n = 0
        for i, (fgr, alpha) in enumerate(frames_iter):
            if i >= settings.frames:
                break
            h, w = alpha.shape
            scale = base if base is not None else max(W / w, H / h)  # videos cover the frame, like VideoMatte
            m = motion.matrix(i, (w, h), (W, H), scale)
            # Replicated colour outside the source keeps edges free of a dark fringe; alpha is 0 there.
            fw = cv2.warpAffine(fgr, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            aw = cv2.warpAffine(alpha, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            fgr8, pha8 = _q8(fw), _q8(aw)
            # The composite is made from the 8-bit truth as written, so the files agree exactly.
            a = pha8.astype(np.float32)[:, :, None] / np.float32(255.0)
            com = fgr8.astype(np.float32) / np.float32(255.0) * a + bg.frame(i, H, W) * (np.float32(1.0) - a)
            _write_png(out_dir / "com" / f"{i:05d}.png", _q8(com))
            _write_png(out_dir / "fgr" / f"{i:05d}.png", fgr8)
            _write_png(out_dir / "pha" / f"{i:05d}.png", pha8)
            n += 1
    finally:
        bg.close()
    if n == 0:
        raise InputError(f"foreground {fg.image} gave no frames; check the file")
    meta = {
        "source": fg.describe(),
        "background": bg_spec,
        "seed": settings.seed,
        "clip_index": index,
        "size": [W, H],
        "frames": n,
        "fps": settings.fps,
        "motion": {
            "params": list(PARAMS),
            "key_frames": list(motion.key_frames),
            "keys": [list(k) for k in motion.keys],
            "range": asdict(settings.motion),
        },
    }
    (out_dir / "clip.json").write_text(json.dumps(meta, indent=2) + "\n")
    return n


def compose_clips(
    foregrounds: Sequence[str | os.PathLike],
    backgrounds: Sequence[str | os.PathLike],
    root: str | os.PathLike,
    settings: ComposeSettings = ComposeSettings(),
    progress: bool = False,
) -> list[ClipInfo]:
    """Make ``settings.clips`` clips (default: one per foreground) under ``root`` as NNNN/ folders."""
    if settings.frames < 1:
        raise VmatteError(f"--frames must be at least 1, got {settings.frames}")
    if settings.clips is not None and settings.clips < 1:
        raise VmatteError(f"--clips must be at least 1, got {settings.clips}")
    W, H = settings.size
    if W < 2 or H < 2:
        raise VmatteError(f"size {W}x{H} is too small; give at least 2x2")
    fgs = find_foregrounds(foregrounds)
    bgs = find_backgrounds(backgrounds)
    n_clips = settings.clips if settings.clips is not None else len(fgs)
    root = Path(os.fspath(root)).expanduser()
    names = [f"{i:04d}" for i in range(n_clips)]
    if not settings.overwrite:
        existing = [n for n in names if (root / n).exists()]
        if existing:
            raise OutputError(f"clip {root / existing[0]} already exists; use --overwrite or another output folder")
    prepare_output_dir(root, option="-o")
    out = []
    for i, name in enumerate(names):
        # Foregrounds and backgrounds both in turn; the shift after every lcm(F, B) clips makes
        # every (foreground, background) pair come up once in F x B clips.
        nf, nb = len(fgs), len(bgs)
        fg = fgs[i % nf]
        bg = bgs[(i + i // math.lcm(nf, nb)) % nb]
        tmp = root / f".{name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            frames = compose_clip(tmp, fg, bg, settings, i)
            final = root / name
            if final.exists():
                old = root / f".{name}.old-{os.getpid()}"
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        out.append(ClipInfo(name, final, frames, fg.describe(), bg))
        if progress:
            print(f"{final}\t{frames} frames\t{fg.name} over {Path(bg).name}", flush=True)
    return out
