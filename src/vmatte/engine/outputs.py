"""A run's outputs: one :class:`~vmatte.io.writers.OutputSet` per target, named ``STEM`` or ``STEM_idN``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..io.reader import VideoInfo
from ..io.writers import Background, OutputSet
from .loop import FrameResult


@dataclass(frozen=True)
class OutputPlan:
    """What a run writes: ``names`` (formats) for each target id of ``ids`` into ``folder``."""

    folder: str | os.PathLike
    stem: str
    ids: tuple
    names: list[str]
    background: str | None = None
    overwrite: bool = False

    def stem_of(self, target) -> str:
        return self.stem if len(self.ids) == 1 else f"{self.stem}_id{target}"

    def key(self, name: str, target) -> str:
        """The result's key of format ``name`` for ``target`` (``NAME_idN`` when several)."""
        return name if len(self.ids) == 1 else f"{name}_id{target}"


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
            for i in plan.ids:
                self.sets[i] = OutputSet(
                    plan.folder if folder is None else folder,
                    plan.stem_of(i),
                    plan.names,
                    info,
                    background=bg,
                    overwrite=plan.overwrite and folder is None,
                    lock=(locks or {}).get(plan.stem_of(i)),
                )
        except BaseException:
            self.abort()
            raise

    def write(self, r: FrameResult) -> None:
        for i, out in self.sets.items():
            out.write(r.index, r.image, r.foreground, r.alpha if i is None or r.alphas is None else r.alphas[i])

    def close(self) -> dict[str, Path]:
        paths: dict[str, Path] = {}
        for i, out in self.sets.items():
            paths.update({self.plan.key(k, i): p for k, p in out.close().items()})
        return paths

    def abort(self) -> None:
        for out in self.sets.values():
            out.abort()
