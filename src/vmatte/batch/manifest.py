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
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.options import MODEL, OPTIONS, PROMPT, REFINE, TARGET, OptionError, group
from ..errors import VmatteError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mxf")
MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MAX_ERRORS = 50  # a broken 100,000-row manifest should not print 100,000 lines

# Column -> what it holds (the fix of an unknown column lists these): the shot's own columns, then
# every declared option that has one (engine/options.py): any `vmatte matte` option.
COLUMNS = {
    "id": "the shot's name: its outputs go to ROOT/<id>/",
    "input": "video file or image folder",
    "model": "model name (default: --model of the batch)",
    "formats": "comma-separated output formats",
    **{o.column_name: o.help for o in OPTIONS if o.column_name},
}
ALIASES = {alias: o.column_name for o in OPTIONS if o.column_name for alias in o.aliases}
_BY_COLUMN = {o.column_name: o for o in OPTIONS if o.column_name}


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
        return any(o.get(o_.name) for o_ in group(TARGET)) or bool(o.get("clicks") or o.get("excludes"))


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
    for column, value in clean.items():  # the declared options, parsed as declared (paths, lists, plates: below)
        o = _BY_COLUMN.get(column)
        if o is None or o.path or o.repeat or o.plates_only:
            continue
        try:
            options[o.name] = o.parse(value, name=column)
        except OptionError as e:
            bad(column, str(e))
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
    for o in OPTIONS:  # the other path options: a file or folder beside the manifest, or a word
        if not o.path or o.group in (TARGET, PROMPT) or o.column_name not in clean:
            continue
        value = str(clean[o.column_name])
        if o.path == "maybe":  # a name or a colour, or a file beside the manifest
            p = Path(value).expanduser()
            options[o.name] = str(p if p.is_absolute() or not (base / p).exists() else (base / p).resolve())
        else:
            options[o.name] = value if value in o.words else (path_of(o.column_name, "any") or value)
    if "background" in options:
        from ..io.background import Background

        try:
            Background.parse(options["background"])
        except VmatteError as e:
            bad("bg", str(e))
    options.setdefault("device", defaults.device)
    _check_model_inputs(model, clean, options, defaults, bad)
    if errors:
        return None, errors
    return Shot(sid, src, n, model, formats, options), []


def _check_plate_and_refine(clean: dict, src: str | None, options: dict, bad) -> None:
    """The plate columns that apply to plates only (frames, input_colorspace) and the matte
    refinement columns (one RefineSettings, checked as `vmatte matte` checks its flags)."""
    plate_only = [o for o in OPTIONS if o.plates_only and o.column_name in clean]
    if plate_only and src is not None and Path(src).exists():
        from ..io.sequence import frame_set, is_plate_input

        if not is_plate_input(src):
            bad(
                plate_only[0].column_name,
                f"applies to EXR/DPX plate sequences; {Path(src).name} is not one: leave it empty",
            )
            plate_only = []
        for o in plate_only:
            try:
                options[o.name] = o.parse(clean[o.column_name], name=o.column_name)
                if o.name == "frames":
                    frame_set(options[o.name])  # a range the plate reader takes
            except VmatteError as e:
                options.pop(o.name, None)
                bad(o.column_name, str(e))
    refine = {o.name: options.pop(o.name) for o in group(REFINE) if o.name in options}
    if refine:
        from ..engine.refine import RefineSettings

        try:
            if RefineSettings(**refine).active:
                options["refine"] = refine  # plain values: a Shot crosses process and Ray boundaries
        except OptionError as e:
            bad(e.option.column_name, in_columns(str(e)))


def in_columns(message: str) -> str:
    """A message naming flags (``--max-size``) as the manifest names them (``max_size``)."""
    by_flag = {f: o.column_name for o in OPTIONS if o.column_name for f in o.cli_flags}
    return re.sub(r"--[a-z][a-z-]*", lambda m: by_flag.get(m.group(0), m.group(0)[2:]), message)


def _check_model_inputs(model: str, clean: dict, options: dict, defaults: Defaults, bad) -> None:
    """The cheap model/input mismatches that would otherwise fail only when the shot runs, read
    from the model's registry spec (what it ``takes`` and which options), so no model names are
    listed here. The batch's backend goes to the rows whose model takes one."""
    from ..engine import registry

    has_target = bool(
        options.get("mask") or options.get("keyframes") or options.get("clicks") or options.get("excludes")
    )
    has_masks = bool(options.get("masks"))
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
    if spec is None and model != registry.AUTO:
        return
    probe = registry.MatterOptions(
        **{o.name: options[o.name] for o in group(MODEL) if o.name in options},
        mask="a target" if has_target else None,  # what the route depends on, not the files
        masks="masks" if has_masks else None,
    )
    try:
        spec = spec or registry.choose_auto(probe)[0]
        if "backend" not in options and defaults.backend != registry.AUTO and "backend" in spec.options:
            options["backend"] = defaults.backend
            probe = probe.replace(backend=defaults.backend)
        spec.check_options(probe)  # the registry's one refusal, in the manifest's words
    except OptionError as e:
        bad(e.option.column_name, in_columns(str(e)))
    except VmatteError as e:  # auto's choice looked at the device
        bad("device", str(e))


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
