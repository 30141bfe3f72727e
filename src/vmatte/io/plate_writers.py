"""Compositor outputs: EXR (premultiplied RGBA, one layer per target, alpha only) and DPX alpha.

One file per frame in a folder, named by the plate's frame numbers (``STEM_exr/STEM_exr.1001.exr``,
padding as in the plate, at least 4), so Nuke/Fusion read them as ``STEM_exr.####.exr`` on the
plate's frame range. The folder is written under its temporary name and renamed by
:class:`~vmatte.io.writers.OutputSet` like every output: a run never leaves a partial folder.

Colour: RGB is written scene-linear and premultiplied: in the plate's own space when the plate is
scene-linear (EXR plates), else the config's ``scene_linear`` role (DPX log plates); video inputs
are taken as sRGB-encoded Rec.709 and linearised. See :mod:`vmatte.io.colour` for how the
model's display-referred foreground returns to the plate's space. The header records the source
file, the model, the vmatte version, the colour space and the frame number.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np

from .colour import EXR_DEFAULT_SPACE, PlateColour, video_colour
from .encoders import FrameData, Writer
from .exr import write_exr

__all__ = ["AlphaDpxWriter", "AlphaExrWriter", "ExrLayersWriter", "ExrWriter"]


def _version() -> str:
    # The package's own __version__; read from the loaded package (io must not import the API,
    # and the package is always loaded before any of its modules).
    return str(getattr(sys.modules.get("vmatte"), "__version__", "unknown"))


class _FrameFileWriter(Writer):
    is_dir = True
    extension = ".exr"

    def open(self) -> None:
        try:
            import OpenEXR  # noqa: F401
            import PyOpenColorIO  # noqa: F401
        except ImportError as e:
            from vmatte.errors import OutputError

            raise OutputError(
                f"the {self.final.name} output needs the vfx extra ({e.name} is missing): pip install 'vmatte[vfx]'"
            ) from None
        os.mkdir(self.temp)
        plate = self.info.plate
        self._padding = max(4, plate.padding) if plate is not None else 5
        self._colour: PlateColour = plate.colour if plate is not None else video_colour()
        # video: linear with its own (Rec.709) primaries, not the config's scene_linear role (ACEScg)
        linear = self._colour.linear_space() if plate is not None else EXR_DEFAULT_SPACE
        self._linear = self._colour.with_space(linear)

    def number(self, index: int) -> int:
        plate = self.info.plate
        return plate.number(index) if plate is not None else index

    def path(self, index: int):
        return self.temp / f"{self.final.name}.{self.number(index):0{self._padding}d}{self.extension}"

    def metadata(self, index: int) -> dict:
        plate = self.info.plate
        source = plate.files[index] if plate is not None else self.info.path
        meta = {
            "vmatte:source": os.path.abspath(source),
            "vmatte:version": _version(),
            "vmatte:colorspace": self._linear.space,
            "vmatte:frame": int(self.number(index)),
        }
        meta.update({k: str(v) for k, v in self.options.metadata.items()})
        return meta

    def linear_foreground(self, data: FrameData) -> np.ndarray:
        """Straight (unpremultiplied) foreground, scene-linear, HxWx3 float32."""
        scale = 1.0 / 65535.0 if data.image.dtype == np.uint16 else 1.0 / 255.0
        shown = data.image.astype(np.float32) * scale  # what the network saw
        plate = getattr(data, "plate", None)
        if plate is None:  # video input: sRGB-encoded; its "plate" is the image itself
            plate = shown
        plate = self._colour.convert(plate, self._linear.space)
        return self._linear.foreground_in_plate(plate, shown, data.fgr)

    def write(self, data: FrameData) -> None:
        write_exr(self.path(data.index), self.parts(data), self.options.exr_compression, self.metadata(data.index))
        self.frames += 1

    def parts(self, data: FrameData) -> list:
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def discard(self) -> None:
        shutil.rmtree(self.temp, ignore_errors=True)


def _premultiplied_rgba(fgr: np.ndarray, alpha: np.ndarray) -> dict[str, np.ndarray]:
    rgb = fgr * alpha[:, :, None]
    return {
        "R": rgb[:, :, 0].astype(np.float16),
        "G": rgb[:, :, 1].astype(np.float16),
        "B": rgb[:, :, 2].astype(np.float16),
        "A": alpha.astype(np.float16),
    }


class ExrWriter(_FrameFileWriter):
    """RGBA half, premultiplied, scene-linear."""

    def parts(self, data: FrameData) -> list:
        return [(None, _premultiplied_rgba(self.linear_foreground(data), data.alpha))]


class ExrLayersWriter(_FrameFileWriter):
    """One multi-part EXR per frame: part ``rgba`` (the first target's premultiplied RGBA) and one
    part per target, ``idN`` with the single channel ``idN.A`` (``matte``/``matte.A`` for models
    without target ids), which Nuke shows as layer ``idN``, channel alpha."""

    def parts(self, data: FrameData) -> list:
        alphas = getattr(data, "alphas", None) or {None: data.alpha}
        parts = [("rgba", _premultiplied_rgba(self.linear_foreground(data), data.alpha))]
        for target, alpha in alphas.items():
            layer = "matte" if target is None else f"id{target}"
            parts.append((layer, {f"{layer}.A": np.clip(alpha, 0.0, 1.0).astype(np.float16)}))
        return parts


class AlphaExrWriter(_FrameFileWriter):
    """The matte alone: one half channel ``A``."""

    def parts(self, data: FrameData) -> list:
        return [(None, {"A": data.alpha.astype(np.float16)})]


class AlphaDpxWriter(_FrameFileWriter):
    """The matte as 10-bit DPX, R = G = B = alpha (a DPX has no single-channel 10-bit layout that
    every reader takes), encoded by FFmpeg's dpx encoder through PyAV, written with plain file I/O
    so a full disk is an OSError."""

    extension = ".dpx"

    def open(self) -> None:
        super().open()
        import av

        self._av = av

    def write(self, data: FrameData) -> None:
        av = self._av
        ctx = av.CodecContext.create("dpx", "w")
        ctx.width, ctx.height, ctx.pix_fmt = data.width, data.height, "gbrp10le"
        ctx.time_base = 1
        grey = np.repeat(data.alpha_u16[:, :, None], 3, axis=2)
        frame = av.VideoFrame.from_ndarray(grey, format="rgb48le").reformat(format="gbrp10le", threads=1)
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
        with open(self.path(data.index), "wb") as f:
            f.writelines(bytes(p) for p in packets)
        self.frames += 1
