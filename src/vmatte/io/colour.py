"""Plate colour with OpenColorIO: what the network sees, and the way back to the plate's space.

The matting networks were trained on display-referred 8-bit video: sRGB-encoded Rec.709. A VFX
plate is scene-linear (EXR) or log (DPX), so it is converted to "sRGB Encoded Rec.709" for the
network, and the foreground written to EXR is converted back to the plate's own space.

The display transform is the plain sRGB encoding (no tone-mapping view such as the ACES output
transform): it is exactly invertible, which the round trip plate -> fgr/alpha -> recomposed plate
relies on, and it is what the training images (camera JPEGs/videos) approximate best. Values
above 1.0 are clipped for the network only; the EXR writers keep the plate's own highlights (see
:meth:`PlateColour.foreground_in_plate`).

The config is ``$OCIO`` when set, else OCIO's built-in ``ocio://default`` (the CG config), so
no file is needed; any config path or ``ocio://`` name can be given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vmatte.errors import InputError

__all__ = ["DISPLAY_SPACE", "EXR_DEFAULT_SPACE", "PlateColour", "default_config", "plate_colour", "video_colour"]

#: What the network sees (a colour space name of OCIO's built-in configs, also the role
#: ``color_picking`` there); configs without it fall back to their ``color_picking`` role.
DISPLAY_SPACE = "sRGB Encoded Rec.709 (sRGB)"
#: EXR plates are scene-linear Rec.709 unless --input-colorspace says otherwise.
EXR_DEFAULT_SPACE = "Linear Rec.709 (sRGB)"
#: DPX plates are log: the config's ``compositing_log`` role (ACEScct in the built-in configs).
DPX_DEFAULT_ROLE = "compositing_log"


def default_config() -> str:
    """``$OCIO`` if set (the convention of every OCIO application), else OCIO's built-in config."""
    return os.environ.get("OCIO") or "ocio://default"


@lru_cache(maxsize=8)
def _config(name: str):
    import PyOpenColorIO as OCIO

    try:
        return OCIO.Config.CreateFromFile(name)
    except Exception as e:  # OCIO raises its own Exception type for missing/bad configs
        raise InputError(
            f"cannot load the OpenColorIO config {name!r} ({' '.join(str(e).split())}); "
            f"fix $OCIO or give an existing config file"
        ) from None


def _space_name(config, name: str) -> str | None:
    cs = config.getColorSpace(name)  # also resolves roles and aliases
    return cs.getName() if cs is not None else None


@lru_cache(maxsize=32)
def _processor(config_name: str, src: str, dst: str):
    import PyOpenColorIO as OCIO

    proc = _config(config_name).getProcessor(src, dst)
    # Lossless: the default CPU path uses fast pow approximations (~4e-5 error); exact is cheap enough.
    return proc.getOptimizedCPUProcessor(OCIO.OPTIMIZATION_LOSSLESS)


@dataclass(frozen=True)
class PlateColour:
    """The plate's colour space in an OCIO config, and the network's display-referred space."""

    config: str
    space: str
    display: str

    def to_display(self, plate: np.ndarray) -> np.ndarray:
        """HxWx3 float32 in the plate's space -> the network's space (not clipped)."""
        out = np.array(plate, dtype=np.float32, order="C", copy=True)
        if self.space != self.display:
            _processor(self.config, self.space, self.display).applyRGB(out)
        return out

    def from_display(self, display: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_display`."""
        out = np.array(display, dtype=np.float32, order="C", copy=True)
        if self.space != self.display:
            _processor(self.config, self.display, self.space).applyRGB(out)
        return out

    def convert(self, image: np.ndarray, dst: str) -> np.ndarray:
        """HxWx3 float32 from the plate's space to colour space ``dst`` of the same config."""
        out = np.array(image, dtype=np.float32, order="C", copy=True)
        if dst != self.space:
            _processor(self.config, self.space, dst).applyRGB(out)
        return out

    def linear_space(self) -> str:
        """Where premultiplied EXR outputs go: the plate's own space when it is scene-linear, else
        the config's ``scene_linear`` role (premultiplying log or display-encoded values is wrong)."""
        cfg = _config(self.config)
        cs = cfg.getColorSpace(self.space)
        if cs is not None and cs.getEncoding() == "scene-linear":
            return self.space
        return _space_name(cfg, "scene_linear") or self.space

    def with_space(self, space: str) -> PlateColour:
        return PlateColour(self.config, space, self.display)

    def foreground_in_plate(self, plate: np.ndarray, network_image: np.ndarray, fgr: np.ndarray) -> np.ndarray:
        """The model's foreground (display space) in the plate's space, keeping the plate's values.

        The model changes the colour only where the background shows through; elsewhere its
        foreground is the image it was given. So the change is moved into the plate's space and
        added to the plate: ``plate + (from_display(fgr) - from_display(image))``. Where the model
        kept the pixel, the output is the plate itself, highlights above 1.0 and all, which
        clipping for the network would otherwise lose."""
        delta = self.from_display(fgr)
        delta -= self.from_display(network_image)
        delta += plate
        return delta


def video_colour() -> PlateColour:
    """Ordinary video and 8/16-bit image inputs are sRGB-encoded Rec.709: the network's own space."""
    return plate_colour(DISPLAY_SPACE, DISPLAY_SPACE)


def plate_colour(space: str | None, default: str, config: str | None = None) -> PlateColour:
    """Resolve ``space`` (a name, alias or role in the config; None: ``default``) to a
    :class:`PlateColour`; an :class:`InputError` naming the valid spaces when it is unknown."""
    cfg_name = config or default_config()
    cfg = _config(cfg_name)
    display = _space_name(cfg, DISPLAY_SPACE) or _space_name(cfg, "color_picking")
    if display is None:
        raise InputError(
            f"the OpenColorIO config {cfg_name} has neither {DISPLAY_SPACE!r} nor a color_picking "
            f"role; use a config with an sRGB space (unset $OCIO for the built-in one)"
        )
    wanted = space or default
    resolved = _space_name(cfg, wanted)
    if resolved is None:
        names = ", ".join(cs.getName() for cs in cfg.getColorSpaces())
        raise InputError(
            f"unknown --input-colorspace {wanted!r} in the OpenColorIO config {cfg_name}; choose one of: {names}"
        )
    return PlateColour(cfg_name, resolved, display)
