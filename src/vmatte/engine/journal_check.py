"""What ``--resume`` must check before it trusts a journal (see :mod:`vmatte.engine.resume`).

* :func:`input_fingerprint`: what the run read, so a resumed run refuses an input that changed
  in place. An image folder or an EXR/DPX plate: every frame file's name, size and mtime (a re-render that keeps the
  folder's own size and mtime still changes these); a video file: its size, mtime and a hash of
  its first, middle and last MiB.
* :func:`check_journal`: a journal is damaged when its manifest is not what vmatte wrote, the
  state after the last complete chunk is missing or cut, or a complete chunk lacks an output,
  holds a cut video or misses PNG frames. Any of these is one line, never a run with gaps.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import av

from ..errors import OutputError
from ..io.formats import FORMATS, FormatSpec
from ..io.reader import IMAGE_EXTENSIONS

_SAMPLE = 1 << 20
_PNG_FILES = FormatSpec.frame_files  # the default: frame PNGs 00000.png ...


def input_fingerprint(path: Path, files: tuple[Path, ...] | None = None) -> str:
    h = hashlib.sha256()
    path = Path(path)
    if files:  # an EXR/DPX plate: the frame files it reads
        for f in files:
            st = os.stat(f)
            h.update(os.fsencode(str(f)) + b"\0" + f"{st.st_size}:{st.st_mtime_ns}".encode() + b"\n")
        return h.hexdigest()
    if path.is_dir():
        entries = sorted(
            (e.name, e.stat().st_size, e.stat().st_mtime_ns)
            for e in os.scandir(path)
            if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS and e.is_file()
        )
        for name, size, mtime in entries:
            h.update(os.fsencode(name) + b"\0" + f"{size}:{mtime}".encode() + b"\n")
        return h.hexdigest()
    st = path.stat()
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        for at in sorted({0, max(0, st.st_size // 2 - _SAMPLE // 2), max(0, st.st_size - _SAMPLE)}):
            f.seek(at)
            h.update(f.read(_SAMPLE))
    return h.hexdigest()


def _damaged(folder: Path, what: str) -> OutputError:
    return OutputError(
        f"the journal {folder} of the interrupted run is damaged ({what}); run again without --resume to start over"
    )


def check_manifest(folder: Path, manifest) -> None:
    if not isinstance(manifest, dict):
        raise _damaged(folder, "manifest.json is not a manifest")
    for key, kind in (("completed", int), ("chunk_frames", int)):
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise _damaged(folder, f"manifest.json has no valid {key!r}")
    if manifest["completed"] < 0 or manifest["chunk_frames"] < 1:
        raise _damaged(folder, "manifest.json counts are out of range")


def check_journal(journal, parts: list[tuple[str, list[str]]]) -> None:
    """Raise :class:`OutputError` (one line) unless every chunk the manifest counts is complete
    on disk (``parts``: each output set's stem and formats) and the state after the last one loads."""
    folder, done, chunk = journal.folder, journal.completed, journal.chunk_frames
    present = sorted(p.name for p in folder.glob("chunk_*") if p.is_dir())
    if done > len(present):
        raise _damaged(folder, f"the manifest counts {done} chunks but {len(present)} are there")
    if done:
        _check_state(folder, done - 1)
    for k in range(done):
        expected = None
        for stem, names in parts:
            for n in names:
                spec = FORMATS[n]
                part = journal.chunk_dir(k) / spec.output_name(stem)
                if not spec.is_dir:
                    got = _video_frames(folder, part)
                elif spec.frame_files == _PNG_FILES:
                    got = _png_frames(folder, part, k * chunk)
                else:
                    got = _plate_frames(folder, part, spec.frame_file(part.name))
                if k < done - 1 and got != chunk:
                    raise _damaged(folder, f"{part.parent.name}/{part.name} holds {got} of {chunk} frames")
                if expected is None:
                    expected = got
                if got != expected or not 0 < got <= chunk:
                    raise _damaged(folder, f"{part.parent.name}/{part.name} holds {got} frames, not {expected}")


def _check_state(folder: Path, k: int) -> None:
    from safetensors import safe_open

    skeleton, tensors = folder / f"state_{k}.json", folder / f"state_{k}.safetensors"
    try:
        json.loads(skeleton.read_text())
        with safe_open(str(tensors), "pt") as f:
            for key in f.keys():
                f.get_slice(key)  # the header's offsets are checked against the file's size here
    except FileNotFoundError:
        raise _damaged(folder, f"the state after chunk {k} is missing") from None
    except Exception:  # noqa: BLE001 - cut or garbled: any failure to read it
        raise _damaged(folder, f"the state after chunk {k} is cut or garbled") from None


def _png_frames(folder: Path, part: Path, first: int) -> int:
    if not part.is_dir():
        raise _damaged(folder, f"{part.parent.name}/{part.name} is missing")
    n = 0
    while True:
        frame = part / f"{first + n:05d}.png"
        try:
            with open(frame, "rb") as f:
                f.seek(-12, os.SEEK_END)
                if f.read(12)[4:8] != b"IEND":
                    raise _damaged(folder, f"{part.parent.name}/{part.name}/{frame.name} is cut")
        except FileNotFoundError:
            break
        except OSError:
            raise _damaged(folder, f"{part.parent.name}/{part.name}/{frame.name} is cut") from None
        n += 1
    extra = len(os.listdir(part)) - n
    if extra:
        raise _damaged(folder, f"{part.parent.name}/{part.name} misses frames ({extra} after a gap)")
    return n


def _plate_frames(folder: Path, part: Path, frames) -> int:
    """EXR/DPX frames (named by plate frame number, which may have gaps): every file in the folder
    one of them, none empty."""
    if not part.is_dir():
        raise _damaged(folder, f"{part.parent.name}/{part.name} is missing")
    n = 0
    for e in os.scandir(part):
        if not frames.fullmatch(e.name) or not e.is_file(follow_symlinks=False) or e.stat().st_size == 0:
            raise _damaged(folder, f"{part.parent.name}/{part.name}/{e.name} is not a complete frame")
        n += 1
    return n


def _video_frames(folder: Path, part: Path) -> int:
    if not part.is_file():
        raise _damaged(folder, f"{part.parent.name}/{part.name} is missing")
    try:
        with av.open(str(part)) as c:
            return sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    except (av.error.FFmpegError, IndexError, OSError):
        raise _damaged(folder, f"{part.parent.name}/{part.name} is cut or unreadable") from None
