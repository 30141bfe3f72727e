"""A run's outputs: one :class:`~vmatte.io.writers.OutputSet` per target, named ``STEM`` or ``STEM_idN``
(plus, with several targets, one set ``STEM`` for the formats that hold every target: ``exr-layers``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..io.ownership import lock_outputs
from ..io.reader import VideoInfo
from ..io.writers import Background, OutputSet, prepare_output_dir
from .loop import FrameResult

#: Formats that hold every target in one file (a layer per target): one set for all of them.
SHARED_FORMATS = ("exr-layers",)
ALL = "all"  # the key of that set (target ids are ints or None)


@dataclass(frozen=True)
class OutputPlan:
    """What a run writes: ``names`` (formats) for each target id of ``ids`` into ``folder``."""

    folder: str | os.PathLike
    stem: str
    ids: tuple
    names: list[str]
    background: str | None = None
    overwrite: bool = False
    exr_compression: str = "zip"  # the EXR outputs' compression (vmatte.io.exr.COMPRESSIONS)
    model: str = ""  # the model's description, recorded in the EXR headers (set once it is loaded)

    def stem_of(self, target) -> str:
        return self.stem if len(self.ids) == 1 or target == ALL else f"{self.stem}_id{target}"

    def key(self, name: str, target) -> str:
        """The result's key of format ``name`` for ``target`` (``NAME_idN`` when several)."""
        return name if len(self.ids) == 1 or target == ALL else f"{name}_id{target}"

    def groups(self) -> list[tuple[object, str, list[str]]]:
        """``(target, stem, formats)`` of each output set: one per target, and with several targets
        one more (target :data:`ALL`, stem ``STEM``) for the :data:`SHARED_FORMATS` asked for."""
        if len(self.ids) == 1:
            return [(self.ids[0], self.stem, list(self.names))]
        own = [n for n in self.names if n not in SHARED_FORMATS]
        shared = [n for n in self.names if n in SHARED_FORMATS]
        sets: list[tuple[object, str, list[str]]] = [(i, self.stem_of(i), own) for i in self.ids] if own else []
        if shared:
            sets.append((ALL, self.stem, shared))
        return sets


class TargetOutputs:
    """The plan's output sets, opened now (a bad folder or an existing file fails here): frames in,
    final files out at :meth:`close`, nothing left by :meth:`abort`."""

    def __init__(
        self, plan: OutputPlan, info: VideoInfo, folder: str | os.PathLike | None = None, locks: dict | None = None
    ):
        self.plan = plan
        self.sets: dict = {}
        bg = Background.parse(plan.background) if plan.background else None
        try:
            for i, stem, names in plan.groups():
                self.sets[i] = OutputSet(
                    plan.folder if folder is None else folder,
                    stem,
                    names,
                    info,
                    background=bg,
                    overwrite=plan.overwrite and folder is None,
                    lock=(locks or {}).get(stem),
                    exr_compression=plan.exr_compression,
                )
            if plan.model:
                self.annotate(plan.model)
        except BaseException:
            self.abort()
            raise

    def annotate(self, model: str) -> None:
        """The model's description into the EXR headers (known once the model is loaded)."""
        for out in self.sets.values():
            out.annotate(model=model)

    def write(self, r: FrameResult) -> None:
        for i, out in self.sets.items():
            alpha = r.alpha if i is None or i == ALL or r.alphas is None else r.alphas[i]
            out.write(r.index, r.image, r.foreground, alpha, plate=r.plate, alphas=r.alphas)

    def close(self) -> dict[str, Path]:
        paths: dict[str, Path] = {}
        for i, out in self.sets.items():
            paths.update({self.plan.key(k, i): p for k, p in out.close().items()})
        return paths

    def abort(self) -> None:
        for out in self.sets.values():
            out.abort()


def default_stem(info: VideoInfo) -> str:
    """The outputs' name: the input's (``shot.####.exr`` -> ``shot``, a folder's own name)."""
    if info.plate is not None:
        return info.plate.stem
    return info.path.name if info.is_image_sequence else info.path.stem


def own_outputs(plan: OutputPlan, info: VideoInfo, owned) -> tuple[TargetOutputs, dict]:
    """Take the plan's folder for this run: create it, lock every stem (the journal's too: it
    shares ``plan.stem``) until ``owned`` (an ExitStack) closes, so a second run is refused,
    and open the outputs (an existing file or a bad folder fails here, before the model loads).
    -> (outputs, {stem: lock})."""
    outdir = Path(os.fspath(plan.folder)).expanduser()
    prepare_output_dir(outdir)
    locks = {}
    for lk in lock_outputs(outdir, [plan.stem, *(plan.stem_of(i) for i in plan.ids)]):
        locks[lk.stem] = lk
        owned.callback(lk.release)
    return TargetOutputs(plan, info, locks=locks), locks
