"""A batch manifest: one shot per row, every row checked before anything runs.

Three forms:

* CSV with a header row (``id,input,model,mask,...``);
* JSONL, one JSON object per line (same keys);
* a folder of videos: one shot per video, id = file stem; ``NAME.png`` (or ``.jpg``/``.tif``)
  beside ``NAME.mp4`` is its first-frame mask.

Relative paths are read from the manifest's folder, so a manifest travels with its media.
Every problem found is one line naming the row, the field and the fix; all of them are
reported together (:class:`ManifestError`), and nothing runs.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VmatteError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mxf")
MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MAX_ERRORS = 50  # a broken 100,000-row manifest should not print 100,000 lines

# Column -> what it holds (the fix of an unknown column lists these). Any `vmatte matte` option.
COLUMNS = {
    "id": "the shot's name: its outputs go to ROOT/<id>/",
    "input": "video file or image folder",
    "model": "model name (default: --model of the batch)",
    "formats": "comma-separated output formats",
    "bg": "composite background (colour, image or video)",
    "mask": "first-frame mask of the target(s)",
    "mask_at": "keyframe masks FRAME:PATH, several separated by ';'",
    "masks_dir": "folder of keyframe masks named by frame number",
    "masks": "folder of one coarse mask per frame (mask-to-matte)",
    "click": "X,Y[@FRAME] on the target, several separated by ';'",
    "exclude": "X,Y[@FRAME] on what is not the target, several separated by ';'",
    "segmenter": "what turns clicks into masks",
    "tracker": "what follows the target: sam2, rvm, auto, or a SAM 2 checkpoint NAME/PATH",
    "weights": "checkpoint path or 'download'",
    "device": "auto, cpu, cuda, cuda:N or mps",
    "backend": "auto, torch or onnx",
    "precision": "fp32, bf16 or fp16",
    "max_size": "long side of the internal resolution (pixels)",
    "downsample_ratio": "RVM downsample ratio in (0, 1]",
    "fps": "frame rate of an image-folder input",
    "warmup_frames": "MatAnyone first-frame refinement passes",
    "erode": "MatAnyone mask erosion (px)",
    "dilate": "MatAnyone mask dilation (px)",
    "chunk_frames": "frames per journal chunk (resume granularity)",
    "frames": "EXR/DPX plate frames to matte, e.g. 1001-1100",
    "input_colorspace": "the plate's OpenColorIO colour space",
    "exr_compression": "EXR output compression: zip, piz, dwaa or none",
    "choke": "shrink (> 0) or grow (< 0) the matte, px",
    "feather": "soften the edge over about this many px",
    "shift_edge": "move the soft edge out (> 0) or in (< 0), -100..100 %",
    "reduce_chatter": "average the edge over the last N still frames",
    "despill": "remove green or blue screen spill: green or blue",
}
ALIASES = {
    "background": "bg",
    "masks-dir": "masks_dir",
    "mask-at": "mask_at",
    "max-size": "max_size",
    "downsample-ratio": "downsample_ratio",
    "warmup-frames": "warmup_frames",
    "chunk-frames": "chunk_frames",
    "input-colorspace": "input_colorspace",
    "exr-compression": "exr_compression",
    "shift-edge": "shift_edge",
    "reduce-chatter": "reduce_chatter",
}
_INTS = ("max_size", "warmup_frames", "erode", "dilate", "chunk_frames", "reduce_chatter")
_FLOATS = ("downsample_ratio", "fps", "choke", "feather", "shift_edge")
_REFINE = ("choke", "feather", "shift_edge", "reduce_chatter", "despill")  # -> one RefineSettings
_TARGET_FIELDS = ("mask", "mask_at", "masks_dir", "click", "exclude")


@dataclass(frozen=True)
class Shot:
    """One validated row: everything a worker needs, as plain picklable values."""

    id: str
    input: str  # absolute path
    row: int  # 1-based row of the manifest (for messages)
    model: str
    formats: tuple[str, ...]
    options: dict = field(default_factory=dict)  # keyword arguments of vmatte.matte beyond the above

    @property
    def has_targets(self) -> bool:
        """Whether the model needs per-shot target input (so a loaded model cannot be reused as is)."""
        o = self.options
        return any(o.get(k) for k in ("mask", "keyframes", "clicks", "excludes", "masks"))


class ManifestError(VmatteError):
    """The manifest has bad rows: one line each (``lines``); nothing was run."""

    def __init__(self, lines: list[str]):
        self.lines = [" ".join(str(line).split()) for line in lines]
        super().__init__(lines[0] if lines else "bad manifest")


@dataclass(frozen=True)
class Defaults:
    """Batch-wide values that rows may override."""

    model: str = "auto"
    formats: str = "alpha,fgr,comp"
    device: str = "auto"
    backend: str = "auto"


def read_rows(path: Path) -> tuple[list[tuple[int, dict]], Path, list[str]]:
    """(row number, raw fields) per shot, the folder relative paths start from, and header problems."""
    if path.is_dir():
        return _folder_rows(path), path, []
    if not path.is_file():
        raise VmatteError(f"manifest not found: {path}; give a CSV or JSONL file, or a folder of videos")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise VmatteError(
            f"cannot read manifest {path}: {getattr(e, 'strerror', None) or e}; give a UTF-8 CSV or JSONL file"
        ) from None
    if path.suffix.lower() in (".jsonl", ".ndjson") or text.lstrip().startswith("{"):
        return _jsonl_rows(path, text), path.parent, []
    return _csv_rows(path, text)


def _csv_rows(path: Path, text: str) -> tuple[list[tuple[int, dict]], Path, list[str]]:
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    problems = []
    for required in ("id", "input"):
        if required not in header:
            problems.append(
                f"{path.name} header: missing column {required!r} ({COLUMNS[required]}); "
                f"add it to the first line, e.g. id,input,model"
            )
    rows = []
    for n, raw in enumerate(reader, start=1):
        fields = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else v for k, v in raw.items()}
        if None in raw:  # more cells than the header has names
            fields.pop("", None)
            fields["__extra__"] = raw[None]
        rows.append((n, fields))
    return rows, path.parent, problems


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            obj = {"__json__": str(e)}
        if not isinstance(obj, dict):
            obj = {"__json__": "not a JSON object"}
        rows.append((n, {k: ("" if v is None else v) for k, v in obj.items()}))
    return rows


def _folder_rows(folder: Path) -> list[tuple[int, dict]]:
    videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    rows = []
    for n, video in enumerate(videos, start=1):
        fields = {"id": video.stem, "input": str(video)}
        mask = next((video.with_suffix(s) for s in MASK_SUFFIXES if video.with_suffix(s).is_file()), None)
        if mask is not None:
            fields["mask"] = str(mask)
        rows.append((n, fields))
    if not rows:
        raise VmatteError(
            f"no videos in {folder} ({', '.join(VIDEO_SUFFIXES)}); give a folder of videos, or a CSV/JSONL manifest"
        )
    return rows


def load_manifest(path: str | os.PathLike, defaults: Defaults = Defaults(), models=None) -> list[Shot]:
    """Read and validate ``path``; a :class:`ManifestError` lists every bad row."""
    from ..engine import registry

    path = Path(os.fspath(path)).expanduser()
    rows, base, problems = read_rows(path)
    base = base.resolve()
    models = tuple(models or registry.names())
    shots: list[Shot] = []
    seen: dict[str, int] = {}
    if not problems:
        for n, fields in rows:
            where = f"{path.name} row {n}"
            shot, errors = _check_row(n, fields, base, defaults, models, where)
            sid = str(fields.get("id", "")).strip()
            # by case too: on macOS/Windows file systems `Shot` and `shot` would share ROOT/<id>/
            key = sid.casefold()
            if sid and key in seen:
                errors.insert(
                    0,
                    f"{where} (id {sid!r}), id: duplicate of row {seen[key]} (ids are compared "
                    f"ignoring case: each is a folder name); give every shot its own id",
                )
            seen.setdefault(key, n)
            problems.extend(errors)
            if shot is not None and not errors:
                shots.append(shot)
            if len(problems) >= MAX_ERRORS:
                problems.append(f"{path.name}: stopped after {MAX_ERRORS} problems; fix these first")
                break
    if not problems and not shots:
        problems.append(f"{path.name}: no shots; add rows (id,input,...) after the header")
    if problems:
        raise ManifestError(problems)
    return shots


def _check_row(n: int, fields: dict, base: Path, defaults: Defaults, models: tuple, where: str):
    errors: list[str] = []
    sid = str(fields.get("id", "")).strip()
    label = f"{where} (id {sid!r})" if sid else where

    def bad(name: str, what: str) -> None:
        errors.append(f"{label}, {name}: {what}")

    if "__json__" in fields:
        return None, [f"{where}: not valid JSON ({fields['__json__']}); write one JSON object per line"]
    if "__extra__" in fields:
        bad(
            "(extra cells)",
            f"{len(fields['__extra__'])} more cells than the header has columns; quote "
            f'values that contain commas, e.g. "alpha,comp"',
        )
    clean: dict[str, object] = {}
    for key, value in fields.items():
        if key.startswith("__"):
            continue
        name = ALIASES.get(key.strip().lower(), key.strip().lower())
        if name not in COLUMNS:
            bad(key, f"unknown column; columns are: {', '.join(COLUMNS)}")
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        clean[name] = value.strip() if isinstance(value, str) else value
    if not sid:
        bad("id", "missing; give each shot a name (its outputs go to ROOT/<id>/)")
    elif sid in (".", "..") or any(c in sid for c in "/\\\x00") or sid.startswith("."):
        bad("id", "must be a plain folder name (no '/', not starting with '.'); rename the shot")

    def path_of(name: str, must: str) -> str | None:
        raw = clean.get(name)
        if raw is None:
            return None
        p = Path(str(raw)).expanduser()
        p = p if p.is_absolute() else base / p
        if must == "dir" and not p.is_dir():
            bad(name, f"folder not found: {p}; fix the path (relative paths start at the manifest's folder)")
        elif must == "any" and not p.exists():
            bad(name, f"file not found: {p}; fix the path (relative paths start at the manifest's folder)")
        return str(p.resolve())

    src = path_of("input", "any")
    if "input" not in clean:
        bad("input", "missing; give the video file or image folder of the shot")
    model = str(clean.get("model", defaults.model))
    if model not in models:
        bad("model", f"unknown model {model!r}; use one of: {', '.join(models)}")
    options: dict[str, object] = {}
    try:
        from ..io.formats import parse_formats

        formats = tuple(parse_formats(str(clean.get("formats", defaults.formats))))
    except VmatteError as e:
        bad("formats", str(e))
        formats = ()
    for name in _INTS + _FLOATS:
        if name in clean:
            try:
                value = (int if name in _INTS else float)(clean[name])
                if name in _INTS and value < 0:
                    raise ValueError
                options[name] = value
            except (TypeError, ValueError):
                kind = "a whole number from 0" if name in _INTS else "a number"
                bad(name, f"{clean[name]!r} is not {kind}; give {COLUMNS[name]}")
    if "bg" in clean:
        from ..io.background import Background

        raw = str(clean["bg"])
        p = Path(raw).expanduser()
        spec = str(p if p.is_absolute() or not (base / p).exists() else base / p)
        try:
            Background.parse(spec)
            options["background"] = spec
        except VmatteError as e:
            bad("bg", str(e))
    _check_plate_and_refine(clean, src, options, bad)
    mask = path_of("mask", "any")
    if mask:
        options["mask"] = mask
    keyframes: dict[int, str] = {}
    masks_dir = path_of("masks_dir", "dir")
    if masks_dir and Path(masks_dir).is_dir():
        from ..io.masks import read_masks_dir

        try:
            keyframes.update({k: str(v) for k, v in read_masks_dir(masks_dir).items()})
        except VmatteError as e:
            bad("masks_dir", str(e))
    for spec in filter(None, (s.strip() for s in str(clean.get("mask_at", "")).split(";"))):
        from ..io.masks import parse_mask_at

        try:
            index, mpath = parse_mask_at(spec)
        except VmatteError as e:
            bad("mask_at", str(e))
            continue
        p = Path(mpath).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.exists():
            bad("mask_at", f"file not found: {p}; fix the path (relative paths start at the manifest's folder)")
        elif index in keyframes:
            bad("mask_at", f"two masks for frame {index}; give one")
        keyframes[index] = str(p.resolve())
    if keyframes:
        options["keyframes"] = keyframes
    per_frame = path_of("masks", "dir")
    if per_frame:
        options["masks"] = per_frame
    for name, key in (("click", "clicks"), ("exclude", "excludes")):
        specs = [s.strip() for s in str(clean.get(name, "")).split(";") if s.strip()]
        if specs:
            from ..engine.segment.clicks import parse_point

            try:
                for s in specs:
                    parse_point(s, negative=name == "exclude")
                options[key] = tuple(specs)
            except VmatteError as e:
                bad(name, str(e))
    if options.get("excludes") and not options.get("clicks"):
        bad("exclude", "needs a click on the target too; add a click column value")
    for name, default in (("device", defaults.device), ("backend", defaults.backend)):
        options[name] = str(clean.get(name, default))
    for name in ("weights", "segmenter", "precision", "tracker"):
        if name in clean:
            value = str(clean[name])
            if name == "weights" and value != "download":
                value = path_of("weights", "any") or value
            elif name == "tracker" and (base / value).is_file():  # a checkpoint beside the manifest
                value = str((base / value).resolve())
            options[name] = value
    _check_model_inputs(model, clean, bad)
    if errors:
        return None, errors
    return Shot(sid, src, n, model, formats, options), []


def _check_plate_and_refine(clean: dict, src: str | None, options: dict, bad) -> None:
    """The plate columns (frames, input_colorspace, exr_compression) and the matte refinement
    columns (one RefineSettings, checked as `vmatte matte` checks its flags)."""
    if "exr_compression" in clean:
        from ..io.exr import COMPRESSIONS

        value = str(clean["exr_compression"]).lower()
        if value in COMPRESSIONS:
            options["exr_compression"] = value
        else:
            bad("exr_compression", f"{clean['exr_compression']!r} is not one of: {', '.join(COMPRESSIONS)}")
    plate_only = [n for n in ("frames", "input_colorspace") if n in clean]
    if plate_only and src is not None and Path(src).exists():
        from ..io.sequence import frame_set, is_plate_input

        if not is_plate_input(src):
            bad(plate_only[0], f"applies to EXR/DPX plate sequences; {Path(src).name} is not one: leave it empty")
        else:
            if "frames" in clean:
                try:
                    frame_set(str(clean["frames"]))
                    options["frames"] = str(clean["frames"])
                except VmatteError as e:
                    bad("frames", str(e))
            if "input_colorspace" in clean:
                options["input_colorspace"] = str(clean["input_colorspace"])
    refine = {n: options.pop(n) for n in _REFINE if n in options}
    if "despill" in clean:
        refine["despill"] = str(clean["despill"]).lower()
    if refine:
        from ..engine.refine import RefineSettings

        try:
            if RefineSettings(**refine).active:
                options["refine"] = refine  # plain values: a Shot crosses process and Ray boundaries
        except VmatteError as e:
            message = str(e).replace("--shift-edge", "shift_edge").replace("--reduce-chatter", "reduce_chatter")
            bad(next(iter(refine)), message.replace("--", ""))


def _check_model_inputs(model: str, clean: dict, bad) -> None:
    """The cheap model/input mismatches that would otherwise fail only when the shot runs, read
    from the model's registry spec (what it ``takes``), so no model names are listed here."""
    from ..engine import registry
    from ..engine.device import PRECISIONS

    has_target = any(clean.get(k) for k in _TARGET_FIELDS)
    has_masks = bool(clean.get("masks"))
    if has_target and has_masks:
        bad("masks", "one mask per frame (masks) replaces mask, mask_at, masks_dir and click; keep only one of them")
    spec = registry.SPECS.get(model)
    if spec is None:  # auto (an unknown name is already reported): it picks a model for what is given
        pass
    elif spec.takes == registry.EVERY_PERSON and has_target:
        keyed = ", ".join(s.name for s in registry.SPECS.values() if s.takes == registry.KEYFRAMES)
        bad(
            "model",
            f"{model} mattes every person in frame and takes no mask or click; use one of {keyed} "
            f"for the target of a mask",
        )
    elif spec.takes == registry.FRAME_MASKS and not has_masks:
        bad("masks", f"--model {model} needs one coarse mask per frame: give a masks folder")
    elif has_masks and spec.takes != registry.FRAME_MASKS and not spec.frame_masks:
        bad(
            "masks",
            f"--model {model} takes no per-frame masks; give its target as a mask, mask_at or masks_dir value instead",
        )
    elif spec.takes == registry.KEYFRAMES and not has_target and not has_masks:
        bad("mask", f"--model {model} follows a target: give a mask, mask_at, masks_dir or click value")
    if clean.get("backend", "auto") not in registry.BACKENDS:
        bad("backend", f"unknown backend {clean['backend']!r}; use one of: {', '.join(registry.BACKENDS)}")
    if clean.get("precision", "fp32") not in PRECISIONS:
        bad("precision", f"unknown precision {clean['precision']!r}; use one of: {', '.join(PRECISIONS)}")


def shard(shots: list[Shot], index: int, count: int) -> list[Shot]:
    """The ``index``-th of ``count`` contiguous, near-equal slices (0-based): every shot is in
    exactly one slice, and a slice does not depend on which others run."""
    lo, hi = len(shots) * index // count, len(shots) * (index + 1) // count
    return shots[lo:hi]


def parse_shard(spec: str, environ=os.environ) -> tuple[int, int]:
    """``I/N`` (0-based I), or ``N`` alone with I read from ``SLURM_ARRAY_TASK_ID`` (an array
    ``--array=1-N`` is fine too: ``SLURM_ARRAY_TASK_MIN`` is subtracted)."""
    text = spec.strip()
    index_text, sep, count_text = text.rpartition("/")
    try:
        count = int(count_text)
        if sep and index_text:
            index = int(index_text)
        else:
            task = environ.get("SLURM_ARRAY_TASK_ID")
            if task is None:
                raise VmatteError(
                    f"--shard {spec}: no shard index given and SLURM_ARRAY_TASK_ID is not set; give "
                    f"--shard I/N (I from 0 to N-1) or run it as a Slurm array task"
                )
            index = int(task) - int(environ.get("SLURM_ARRAY_TASK_MIN", "0") or 0)
    except ValueError:
        raise VmatteError(
            f"bad --shard {spec!r}; give I/N with whole numbers, e.g. --shard 0/4 (I from 0 to "
            f"N-1), or N alone inside a Slurm array"
        ) from None
    if count < 1 or not 0 <= index < count:
        raise VmatteError(
            f"bad --shard {spec!r}: the index must be from 0 to N-1 and N at least 1, e.g. --shard 0/{max(count, 1)}"
        )
    return index, count
