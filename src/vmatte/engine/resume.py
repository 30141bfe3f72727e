"""Resumable runs: outputs written in chunks into a journal folder, joined at the end.

``OUTDIR/.vmatte-partial-STEM/`` holds:

* ``manifest.json``: what the run is (input path, size, mtime, an options fingerprint, chunk
  length) and how many chunks are complete;
* ``chunk_K/``: chunk K's outputs, written by an ordinary :class:`~vmatte.io.writers.OutputSet`
  (so each is complete or absent), every video chunk an independent encode with the run's
  settings and the global frame numbers as timestamps;
* ``state_K.safetensors`` + ``state_K.json``: the model's streaming state after chunk K (RVM's
  recurrent tensors; the target tracker's arrays, tensors and memory).

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


# --- the model's streaming state as tensors + a JSON skeleton ------------------------------

# Attributes that are configuration or per-frame scratch, not streaming state.
_NOT_STATE = {"rvm", "model", "device", "dtype", "settings", "rvm_settings", "description", "schedule",
              "_features", "onnx", "onnx_path", "threads", "_sessions", "_make_torch", "_torch",
              "_concurrent_io", "_active", "_dis", "_src"}


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
        # The layout too: RVM's recurrent state is channels-last, and a convolution given the
        # same values in another layout takes another kernel and rounds differently.
        channels_last = (value.dim() == 4 and not value.is_contiguous()
                         and value.is_contiguous(memory_format=torch.channels_last))
        return {"pt": key, "device": str(value.device), "channels_last": channels_last}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [_encode(v, tensors) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if type(value).__module__.startswith("vmatte."):
        return {"obj": {k: _encode(v, tensors) for k, v in vars(value).items() if k not in _NOT_STATE}}
    return {"skip": type(value).__name__}  # e.g. an OpenCV flow object: stateless, kept as it is


def _decode(node, tensors: dict[str, torch.Tensor], live=None):
    if "v" in node:
        return node["v"]
    if "np" in node:
        return tensors[node["np"]].numpy()
    if "pt" in node:
        t = tensors[node["pt"]].to(node["device"])
        return t.contiguous(memory_format=torch.channels_last) if node.get("channels_last") else t
    if "list" in node:
        return [_decode(v, tensors) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, tensors) for v in node["tuple"])
    if "dict" in node:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in node["dict"]}
    if "obj" in node:
        _restore_into(live, node["obj"], tensors)
        return live
    return live


def _restore_into(obj, attrs: dict, tensors) -> None:
    for k, node in attrs.items():
        setattr(obj, k, _decode(node, tensors, getattr(obj, k, None)))


def stream_state(matter) -> tuple[dict, dict[str, torch.Tensor]]:
    """The matter's streaming state: (JSON skeleton, tensors). MatAnyone is not resumable."""
    active = getattr(matter, "_active", None)
    tensors: dict[str, torch.Tensor] = {}
    if hasattr(matter, "choose"):  # RVMAuto: the runtime it chose for this video, and that one's state
        inner = {"onnx": matter.onnx is active, "state": _encode({k: v for k, v in vars(active).items()
                                                                  if k not in _NOT_STATE}, tensors)}
        return {"auto": inner}, tensors
    return {"attrs": _encode({k: v for k, v in vars(matter).items() if k not in _NOT_STATE}, tensors)}, tensors


def load_stream_state(matter, skeleton: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Put a state saved by :func:`stream_state` back into a (reset) matter of the same kind."""
    if "auto" in skeleton:
        if skeleton["auto"]["onnx"]:
            active = matter.onnx
        else:
            if matter._torch is None:
                matter._torch = matter._make_torch()
            active = matter._torch
        active.reset(matter._concurrent_io)
        _set_attrs(active, skeleton["auto"]["state"], tensors)
        matter._active = active
        return
    _set_attrs(matter, skeleton["attrs"], tensors)


def _set_attrs(obj, node: dict, tensors) -> None:
    for knode, vnode in node["dict"]:
        key = knode["v"]
        setattr(obj, key, _decode(vnode, tensors, getattr(obj, key, None)))


def resumable(matter) -> bool:
    """RVM (both runtimes) and the target tracker; MatAnyone's memory and chunked matters
    (VideoMaMa) are not saved, so their runs are not journaled."""
    return type(matter).__name__ in ("RVMTorch", "RVMOnnx", "RVMAuto", "TargetTracker")


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

    def load_state(self, matter) -> None:
        from safetensors.torch import load_file

        k = self.completed - 1
        skeleton = json.loads((self.folder / f"state_{k}.json").read_text())
        load_stream_state(matter, skeleton, load_file(str(self.folder / f"state_{k}.safetensors")))

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
        else:
            h.update(repr(v).encode())
    feed(parts)
    return h.hexdigest()


def open_journal(outdir: Path, stem: str, input_path: Path, options: dict, chunk_frames: int,
                 resume: bool) -> Journal:
    """The journal for this run: the one left by an interrupted run (``resume``) or a new one."""
    folder = Path(outdir) / f"{JOURNAL_PREFIX}{stem}"
    st = os.stat(input_path)
    manifest = {"version": 1, "input": str(Path(input_path).resolve()), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "options": fingerprint(options), "chunk_frames": chunk_frames,
                "completed": 0}
    found = folder / "manifest.json"
    if resume and found.is_file():
        try:
            old = json.loads(found.read_text())
        except (OSError, ValueError):
            raise OutputError(f"the journal {folder} of the interrupted run is damaged; run again without "
                              f"--resume to start over") from None
        same = all(old.get(k) == manifest[k] for k in ("version", "input", "size", "mtime_ns", "options",
                                                      "chunk_frames"))
        if not same:
            raise OutputError(f"the interrupted run in {folder} was for another input or other options; run "
                              f"again with the same input and options, or without --resume to start over")
        journal = Journal(folder, old)
        for extra in folder.glob("chunk_*"):  # the chunk in progress when it was stopped
            if int(extra.name.split("_")[1]) >= journal.completed:
                shutil.rmtree(extra, ignore_errors=True)
        return journal
    if os.path.lexists(folder):
        if not resume:
            warnings.warn(f"replacing the unfinished run in {folder} (use --resume to continue it instead)",
                          stacklevel=2)
        shutil.rmtree(folder, ignore_errors=True)
    elif resume:
        warnings.warn(f"nothing to resume in {outdir} for {stem}; starting from the first frame", stacklevel=2)
    folder.mkdir(parents=True)
    journal = Journal(folder, manifest)
    journal._write_json("manifest.json", manifest)
    return journal
