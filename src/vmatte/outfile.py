"""``-o FILE``: one output file named by the user instead of a folder of outputs.

``vmatte matte in.mp4 -o out.mov`` writes ProRes 4444 with alpha to exactly ``out.mov``: the file's
extension picks the format when ``-f`` is not given (.mov ProRes 4444, .webm VP9 with alpha,
.mp4 the alpha matte), and must agree with it when it is. Any other ``-o`` is a folder, as before.
The run writes under a hidden name beside the file (so ``--resume`` finds its journal there) and
the finished file is renamed onto the name asked for: nothing is ever half-written under it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import OutputError, VmatteError
from .io.formats import DEFAULT_FORMATS, FORMATS, parse_formats

# extension -> the formats that write it, the first being what the extension alone asks for
FILE_FORMATS: dict[str, tuple[str, ...]] = {".mov": ("prores",), ".webm": ("webm",), ".mp4": ("alpha", "comp", "fgr")}
# video containers vmatte does not write: a name ending so is a mistake, not a folder
OTHER_VIDEO = (".mkv", ".avi", ".m4v", ".mxf", ".gif", ".mpg", ".ts")


@dataclass(frozen=True)
class OutputPlan:
    folder: Path  # where matte() writes
    formats: tuple[str, ...]
    file: Path | None = None  # the one file asked for (None: a folder of outputs)
    stem: str | None = None  # the run's own name for it until it is complete

    def finish(self, outputs: dict[str, Path]) -> dict[str, Path]:
        """Rename the finished outputs onto the file asked for (``NAME_idN.ext`` per target when a
        label mask gave several)."""
        if self.file is None:
            return outputs
        done = {}
        for key, path in outputs.items():
            target = self.file
            if len(outputs) > 1:  # several targets: key is FORMAT_idN
                target = self.file.with_name(f"{self.file.stem}_{key.rsplit('_', 1)[1]}{self.file.suffix}")
            os.replace(path, target)
            done[key] = target
        return done

    def check_free(self, overwrite: bool) -> None:
        if self.file is not None and os.path.lexists(self.file) and not overwrite:
            raise OutputError(f"output already exists: {self.file}; use --overwrite to replace it or choose another -o")


def plan_output(output: str | os.PathLike, formats: str | None) -> OutputPlan:
    """Where and what to write for ``-o output`` and ``-f formats`` (None: not given)."""
    if not os.fspath(output):  # Path("") is ".": the current folder would be written silently
        raise VmatteError("the output folder is an empty name; give --output a folder name ('.' for here)")
    path = Path(os.fspath(output)).expanduser()
    suffix = path.suffix.lower()
    if suffix in (".exr", ".dpx") and not path.is_dir():  # shot.####.exr: frames are named by vmatte
        raise VmatteError(
            f"-o {output}: EXR/DPX outputs are a folder of frames named by the plate's numbers "
            f"(STEM_exr/STEM_exr.1001.exr); give -o a folder and -f exr, exr-layers, alpha-exr or dpx"
        )
    if path.is_dir() or (suffix not in FILE_FORMATS and suffix not in OTHER_VIDEO):
        return OutputPlan(path, tuple(parse_formats(formats if formats is not None else DEFAULT_FORMATS)))
    if suffix in OTHER_VIDEO:
        raise VmatteError(
            f"-o {output}: vmatte writes .mov (ProRes 4444 with alpha), .webm (VP9 with alpha) or .mp4 "
            f"files; name one of those, or give a folder for several outputs"
        )
    names = parse_formats(formats) if formats is not None else [FILE_FORMATS[suffix][0]]
    if len(names) != 1:
        raise VmatteError(
            f"-o {output} names one file but -f asks for {len(names)} outputs ({', '.join(names)}); "
            f"give a folder (-o {path.with_suffix('')}/) or one format"
        )
    name = names[0]
    if name not in FILE_FORMATS[suffix]:
        wants = FORMATS[name].output_name("x")
        where = "a folder" if FORMATS[name].is_dir else f"a {Path(wants).suffix} file"
        raise VmatteError(
            f"-f {name} writes {where}, not {suffix}; give -o {path.with_suffix('')}"
            f"{'/' if FORMATS[name].is_dir else Path(wants).suffix}, or leave out -f to get "
            f"{FILE_FORMATS[suffix][0]} in {path.name}"
        )
    return OutputPlan(path.parent, (name,), path, f".{path.name}.vmatte")
