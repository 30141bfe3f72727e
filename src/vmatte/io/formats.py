"""The output formats: names, what they contain, where they go, and which writer makes them."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vmatte.errors import VmatteError

from . import encoders, plate_writers
from .background import Background

__all__ = ["Background", "DEFAULT_FORMATS", "FORMATS", "PLATE_FORMATS", "FormatSpec", "parse_formats"]


@dataclass(frozen=True)
class FormatSpec:
    name: str
    description: str
    pattern: str  # output name under OUTDIR; "{stem}" is replaced; a trailing "/" marks a folder
    factory: Callable[..., encoders.Writer]  # factory(final_path, temp_path, info, options) -> Writer
    alpha: bool  # whether the output carries the matte
    container: str | None  # FFmpeg muxer for file outputs (None for image folders)
    uses_foreground: bool = True  # False: alpha-only, the engine can skip the foreground
    # Image folders: the regex of the frame files it holds ("{name}" = the folder's name); what
    # --overwrite may remove (anything else in the folder is the user's).
    frame_files: str = r"\d{5,}\.png"

    def frame_file(self, folder_name: str) -> re.Pattern:
        return re.compile(self.frame_files.replace("{name}", re.escape(folder_name)))

    @property
    def is_dir(self) -> bool:
        return self.pattern.endswith("/")

    def output_name(self, stem: str) -> str:
        return self.pattern.format(stem=stem).rstrip("/")


_EXR_FRAMES = r"{name}\.\d{4,}\.exr"  # STEM_exr/STEM_exr.1001.exr
_DPX_FRAMES = r"{name}\.\d{4,}\.dpx"

FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            "alpha",
            "alpha matte as grey H.264 video (.mp4), opens in any editor",
            "{stem}_alpha.mp4",
            encoders.AlphaH264Writer,
            True,
            "mp4",
            False,
        ),
        FormatSpec(
            "alpha-png",
            "alpha matte as 8-bit grey PNG images (folder)",
            "{stem}_alpha/",
            encoders.AlphaPngWriter,
            True,
            None,
            False,
        ),
        FormatSpec(
            "alpha-png16",
            "alpha matte as 16-bit grey PNG images (folder), full precision",
            "{stem}_alpha16/",
            encoders.AlphaPng16Writer,
            True,
            None,
            False,
        ),
        FormatSpec(
            "fgr",
            "foreground colour (straight, not premultiplied) as H.264 video (.mp4)",
            "{stem}_fgr.mp4",
            encoders.FgrH264Writer,
            False,
            "mp4",
        ),
        FormatSpec(
            "comp",
            "subject composited over a background (--bg, default green) as H.264 (.mp4)",
            "{stem}_comp.mp4",
            encoders.CompH264Writer,
            False,
            "mp4",
        ),
        FormatSpec(
            "mask-png",
            "the target's mask (alpha >= 1/2) as 0/255 PNG images (folder), the layout "
            "--masks DIR reads: e.g. SAM 2's tracked masks with --model sam2-matte",
            "{stem}_mask/",
            encoders.MaskPngWriter,
            True,
            None,
            False,
        ),
        FormatSpec(
            "rgba-png",
            "foreground + alpha as 8-bit RGBA PNG images (folder)",
            "{stem}_rgba/",
            encoders.RgbaPngWriter,
            True,
            None,
        ),
        FormatSpec(
            "prores",
            "foreground + alpha as ProRes 4444 (.mov), for editors/compositors",
            "{stem}_prores4444.mov",
            encoders.ProResWriter,
            True,
            "mov",
        ),
        FormatSpec(
            "webm",
            "foreground + alpha as VP9 WebM (.webm), transparent video for browsers",
            "{stem}_alpha.webm",
            encoders.WebmWriter,
            True,
            "webm",
        ),
        # Compositing (one file per frame named by the plate's frame numbers; see vmatte.io.plate_writers)
        FormatSpec(
            "exr",
            "RGBA half EXR images, premultiplied, scene-linear, plate frame numbers (folder)",
            "{stem}_exr/",
            plate_writers.ExrWriter,
            True,
            None,
            True,
            frame_files=_EXR_FRAMES,
        ),
        FormatSpec(
            "exr-layers",
            "multi-part EXR per frame: premultiplied RGBA + one alpha layer per target (folder)",
            "{stem}_layers/",
            plate_writers.ExrLayersWriter,
            True,
            None,
            True,
            frame_files=_EXR_FRAMES,
        ),
        FormatSpec(
            "alpha-exr",
            "alpha matte as single-channel (A) half EXR images (folder)",
            "{stem}_alpha_exr/",
            plate_writers.AlphaExrWriter,
            True,
            None,
            False,
            frame_files=_EXR_FRAMES,
        ),
        FormatSpec(
            "dpx",
            "alpha matte as 10-bit DPX images, R=G=B=alpha (folder)",
            "{stem}_alpha_dpx/",
            plate_writers.AlphaDpxWriter,
            True,
            None,
            False,
            frame_files=_DPX_FRAMES,
        ),
    )
}

DEFAULT_FORMATS = ("alpha", "fgr", "comp")
#: One file per frame, named by the plate's frame numbers.
PLATE_FORMATS = ("exr", "exr-layers", "alpha-exr", "dpx")


def parse_formats(spec: str | Sequence[str]) -> list[str]:
    """``"alpha,prores"`` or ``["alpha", "prores"]`` -> ``["alpha", "prores"]`` (order kept,
    duplicates dropped). Unknown names raise :class:`VmatteError` listing the valid ones."""
    if isinstance(spec, str):
        items = spec.split(",")
    else:
        items = [part for s in spec for part in str(s).split(",")]
    names: list[str] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in FORMATS:
            raise VmatteError(f"unknown output format {raw.strip()!r}; choose from: {', '.join(FORMATS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise VmatteError(f"no output format given; choose from: {', '.join(FORMATS)}")
    return names
