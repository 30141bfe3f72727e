"""Resumable runs: outputs written in chunks into a journal folder, joined at the end.

``OUTDIR/.vmatte-partial-STEM/`` holds:

* ``manifest.json``: what the run is (input path, size, mtime, an options fingerprint, chunk
  length) and how many chunks are complete;
* ``chunk_K/``: chunk K's outputs, written by an ordinary :class:`~vmatte.io.writers.OutputSet`
  (so each is complete or absent), every video chunk an independent encode with the run's
  settings and the global frame numbers as timestamps;
* ``state_K.safetensors`` + ``state_K.json``: the model's streaming state after chunk K, what
  its :meth:`~vmatte.engine.matter.Matter.state` returns (RVM's recurrent tensors; the target
  tracker's arrays and memory; MatAnyone's memory per target group).

A chunk counts once its outputs, then its state, then the manifest are written (each by an
atomic rename), so a SIGKILL anywhere loses at most the chunk in progress. A resumed run
decodes and skips the completed frames, loads the state and goes on. At the end the chunks are
joined by copying packets (no re-encode; the source's audio is muxed in then) into the final
names, and the journal is deleted. Uninterrupted and resumed runs thus write the same packets.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import OutputError, VmatteError

JOURNAL_PREFIX = ".vmatte-partial-"
DEFAULT_CHUNK_FRAMES = 250  # 10 s at 25 fps: at most that much work is lost to a kill


class Interrupted(VmatteError):
    """Ctrl-C during a journaled run: the completed chunks are kept for ``--resume``."""

    exit_code = 130


# --- the model's streaming state (Matter.state()) as tensors + a JSON skeleton -------------


def _encode(value, tensors: dict[str, torch.Tensor]):
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"v": value}
    if isinstance(value, np.generic):
        return {"v": value.item()}
    if type(value).__name__ == "OrtValue":  # RVMOnnx's recurrent state: saved as numpy, rebound on load
        value = value.numpy()
    if isinstance(value, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"np": key}
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().to("cpu").contiguous().clone()
        # The layout too (the strides): RVM's recurrent state is channels-last, MatAnyone's memory
        # keys are views of channels-last maps, and a kernel given the same values in another
        # layout takes another path and rounds differently: the next frame would not be identical.
        return {"pt": key, "device": str(value.device), "stride": list(value.stride())}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [_encode(v, tensors) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    raise TypeError(
        f"a matter's state holds a {type(value).__name__}; state() must return plain data, tensors and arrays"
    )


def _decode(node, tensors: dict[str, torch.Tensor]):
    if "v" in node:
        return node["v"]
    if "np" in node:
        return tensors[node["np"]].numpy()
    if "pt" in node:
        return _with_strides(tensors[node["pt"]], node.get("stride"), node["device"])
    if "list" in node:
        return [_decode(v, tensors) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, tensors) for v in node["tuple"])
    if "dict" in node:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in node["dict"]}
    raise ValueError(f"unknown node in a saved state: {sorted(node)}")


def _with_strides(t: torch.Tensor, stride: list[int] | None, device: str) -> torch.Tensor:
    """``t`` on ``device`` laid out with the saved ``stride`` (a dense layout; an expanded or
    overlapping one, which cannot be written into, stays contiguous)."""
    t = t.to(device)
    if stride is None or tuple(stride) == t.stride() or 0 in stride:
        return t
    out = torch.empty_strided(t.shape, stride, dtype=t.dtype, device=t.device)
    try:
        out.copy_(t)
    except RuntimeError:  # overlapping memory: keep the values, contiguous
        return t
    return out


def encode_state(state) -> tuple[dict, dict[str, torch.Tensor]]:
    """A :meth:`~vmatte.engine.matter.Matter.state` tree as (JSON skeleton, tensors for safetensors)."""
    tensors: dict[str, torch.Tensor] = {}
    return {"state": _encode(state, tensors)}, tensors


def decode_state(skeleton: dict, tensors: dict[str, torch.Tensor]):
    return _decode(skeleton["state"], tensors)


def stream_state(matter) -> tuple[dict, dict[str, torch.Tensor]]:
    """The matter's streaming state, encoded (:func:`encode_state`)."""
    return encode_state(matter.state())


def load_stream_state(matter, skeleton: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Put a state saved by :func:`stream_state` back into a (reset) matter of the same kind."""
    matter.load_state(decode_state(skeleton, tensors))


def resumable(matter) -> bool:
    """Whether the matter's state can be saved (:attr:`~vmatte.engine.matter.Matter.resumable`)."""
    return bool(getattr(matter, "resumable", False))


def should_journal(matter, num_frames: int | None, resume: bool, chunk_frames: int | None) -> bool:
    """Whether a run goes chunk by chunk into a journal: asked for (``resume``, ``chunk_frames``),
    or longer than two chunks; never for a matter whose state is not saved (``resume`` then is an error)."""
    if not resumable(matter):
        if resume:
            raise VmatteError(
                f"--resume does not work with {matter.description.split(' ')[0]}: its runs cannot be "
                f"resumed (its state is not saved); run again without --resume"
            )
        return False
    if chunk_frames is not None and chunk_frames < 1:
        raise VmatteError(f"--chunk-frames must be at least 1, got {chunk_frames}")
    chunk = chunk_frames or DEFAULT_CHUNK_FRAMES
    return resume or chunk_frames is not None or (num_frames or 0) > 2 * chunk


# --- the journal ---------------------------------------------------------------------------


@dataclass
class Journal:
    folder: Path
    manifest: dict

    @property
    def completed(self) -> int:
        return int(self.manifest["completed"])

    @property
    def chunk_frames(self) -> int:
        return int(self.manifest["chunk_frames"])

    def chunk_dir(self, k: int) -> Path:
        return self.folder / f"chunk_{k:05d}"

    def _write_json(self, name: str, data: dict) -> None:
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.folder / name)

    def commit_chunk(self, k: int, state: tuple[dict, dict[str, torch.Tensor]]) -> None:
        """Chunk ``k``'s outputs are complete: save the model state after it (``stream_state``),
        then count the chunk."""
        from safetensors.torch import save_file

        skeleton, tensors = state
        tmp = self.folder / f".state_{k}.tmp"
        save_file(tensors, str(tmp))
        os.replace(tmp, self.folder / f"state_{k}.safetensors")
        self._write_json(f"state_{k}.json", skeleton)
        self.manifest["completed"] = k + 1
        self._write_json("manifest.json", self.manifest)
        for old in (self.folder / f"state_{k - 1}.safetensors", self.folder / f"state_{k - 1}.json"):
            old.unlink(missing_ok=True)

    def saved_state(self):
        """The model's state after the last complete chunk (None before the first)."""
        from safetensors.torch import load_file

        if not self.completed:
            return None
        k = self.completed - 1
        skeleton = json.loads((self.folder / f"state_{k}.json").read_text())
        return decode_state(skeleton, load_file(str(self.folder / f"state_{k}.safetensors")))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def fingerprint(parts: dict) -> str:
    """sha256 of the run's options (arrays such as masks by their bytes)."""
    h = hashlib.sha256()

    def feed(v) -> None:
        if isinstance(v, np.ndarray):
            h.update(str((v.dtype, v.shape)).encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                h.update(repr(k).encode())
                feed(v[k])
        elif isinstance(v, (list, tuple)):
            for x in v:
                feed(x)
        elif hasattr(v, "targets") and hasattr(v, "source"):  # a TargetMask
            feed(v.targets)
            if getattr(v, "points", None):  # clicks for SAM 2 (their masks are empty placeholders)
                feed(v.points)
        else:
            h.update(repr(v).encode())

    feed(parts)
    return h.hexdigest()


def open_journal(
    outdir: Path,
    stem: str,
    input_path: Path,
    options: dict,
    chunk_frames: int,
    resume: bool,
    files: tuple[Path, ...] | None = None,
) -> Journal:
    """The journal for this run: the one left by an interrupted run (``resume``) or a new one.
    ``files``: the frames an EXR/DPX plate reads (its ``input_path`` may be a pattern such as
    ``shot.####.exr``, which is no file)."""
    from ..io.ownership import _fit
    from .journal_check import check_manifest, input_fingerprint

    folder = Path(outdir) / _fit(f"{JOURNAL_PREFIX}{stem}")
    if files:
        stats = [os.stat(f) for f in files]
        size, mtime = sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)
    else:
        st = os.stat(input_path)
        size, mtime = st.st_size, st.st_mtime_ns
    # "read": what the run read (every frame file of a folder), so an input changed in place is refused
    manifest = {
        "version": 3,  # 3: the per-frame-mask models' state is the gate's and its mask source's
        "input": str(Path(input_path).resolve()),
        "size": size,
        "mtime_ns": mtime,
        "read": input_fingerprint(input_path, files),
        "options": fingerprint(options),
        "chunk_frames": chunk_frames,
        "completed": 0,
    }
    found = folder / "manifest.json"
    if resume and found.is_file():
        try:
            old = json.loads(found.read_text())
        except (OSError, ValueError):
            raise OutputError(
                f"the journal {folder} of the interrupted run is damaged; run again without --resume to start over"
            ) from None
        check_manifest(folder, old)
        if old.get("version") != manifest["version"]:
            raise OutputError(
                f"the interrupted run in {folder} was written by another version of vmatte; run again "
                f"without --resume to start over"
            )
        same = all(
            old.get(k) == manifest[k]
            for k in ("version", "input", "size", "mtime_ns", "read", "options", "chunk_frames")
        )
        if not same and all(old.get(k) == manifest[k] for k in ("version", "input", "options", "chunk_frames")):
            raise OutputError(
                f"the input {input_path} changed since the interrupted run in {folder} (its frames "
                f"were rewritten); run again without --resume to start over"
            )
        if not same:
            raise OutputError(
                f"the interrupted run in {folder} was for another input or other options; run "
                f"again with the same input and options, or without --resume to start over"
            )
        journal = Journal(folder, old)
        for extra in folder.glob("chunk_*"):  # the chunk in progress when it was stopped
            if int(extra.name.split("_")[1]) >= journal.completed:
                shutil.rmtree(extra, ignore_errors=True)
        return journal
    if os.path.lexists(folder):
        if not resume:
            warnings.warn(
                f"replacing the unfinished run in {folder} (use --resume to continue it instead)", stacklevel=2
            )
        shutil.rmtree(folder, ignore_errors=True)
    elif resume:
        warnings.warn(f"nothing to resume in {outdir} for {stem}; starting from the first frame", stacklevel=2)
    folder.mkdir(parents=True)
    journal = Journal(folder, manifest)
    journal._write_json("manifest.json", manifest)
    return journal
