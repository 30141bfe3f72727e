"""OpenEXR frames in and out, through the ``OpenEXR`` package (the ASWF's own bindings).

Reading returns the display window: a data window smaller than it (a cropped or bounding-box
render) is placed on a zero (transparent black) canvas, a larger one (overscan) is cropped to it,
as compositors show them. Any pixel type (half, float, uint) and any compression the library
reads is accepted; channels are taken from the RGB(A) of the first part, or ``Y`` as grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vmatte.errors import InputError

__all__ = ["COMPRESSIONS", "ExrImage", "read_exr", "write_exr"]

#: --exr-compression choices -> OpenEXR compression names (lossless zip/piz, lossy dwaa).
COMPRESSIONS = {
    "zip": "ZIP_COMPRESSION",
    "piz": "PIZ_COMPRESSION",
    "dwaa": "DWAA_COMPRESSION",
    "none": "NO_COMPRESSION",
}


class ExrImage:
    """One EXR frame: ``rgb`` HxWx3 float32 on the display window, ``alpha`` HxW or None."""

    def __init__(self, rgb: np.ndarray, alpha: np.ndarray | None, header: dict):
        self.rgb = rgb
        self.alpha = alpha
        self.header = header


def _window(box) -> tuple[int, int, int, int]:
    (x0, y0), (x1, y1) = box
    return int(x0), int(y0), int(x1), int(y1)


def read_exr(path: Path) -> ExrImage:
    import OpenEXR

    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            header = dict(f.header())
            channels = {name: ch.pixels for name, ch in f.channels().items()}
    except Exception as e:  # the bindings raise RuntimeError/ValueError with the library's message
        raise InputError(f"cannot read EXR {path}: {' '.join(str(e).split())}; re-render or re-export it") from None
    if all(c in channels for c in "RGB"):
        planes = [channels[c] for c in "RGB"]
    elif "Y" in channels:
        planes = [channels["Y"]] * 3
    else:
        names = ", ".join(sorted(channels)) or "none"
        raise InputError(
            f"EXR {path} has no R, G, B (or Y) channels (it has {names}); write the plate's colour into R, G, B"
        )
    dx0, dy0, dx1, dy1 = _window(header["dataWindow"])
    wx0, wy0, wx1, wy1 = _window(header.get("displayWindow", header["dataWindow"]))
    h, w = wy1 - wy0 + 1, wx1 - wx0 + 1
    data = np.stack([np.asarray(p, dtype=np.float32) for p in planes], axis=-1)
    alpha = np.asarray(channels["A"], dtype=np.float32) if "A" in channels else None
    if (dx0, dy0, dx1, dy1) != (wx0, wy0, wx1, wy1):
        data = _place(data, (dx0, dy0, dx1, dy1), (wx0, wy0, h, w))
        alpha = None if alpha is None else _place(alpha, (dx0, dy0, dx1, dy1), (wx0, wy0, h, w))
    # Non-finite values (NaN/inf from a bad render) would poison the network and the colour maths.
    if not np.isfinite(data).all():
        np.nan_to_num(data, copy=False, nan=0.0, posinf=65504.0, neginf=-65504.0)
    return ExrImage(np.ascontiguousarray(data), alpha, header)


def _place(data: np.ndarray, dw: tuple[int, int, int, int], disp: tuple[int, int, int, int]) -> np.ndarray:
    """Put data-window pixels onto the display window (zeros where there is no data)."""
    dx0, dy0, dx1, dy1 = dw
    wx0, wy0, h, w = disp
    canvas = np.zeros((h, w) + data.shape[2:], np.float32)
    # Overlap of the two windows, in display-window coordinates.
    x0, y0 = max(dx0, wx0), max(dy0, wy0)
    x1, y1 = min(dx1, wx0 + w - 1), min(dy1, wy0 + h - 1)
    if x0 <= x1 and y0 <= y1:
        canvas[y0 - wy0 : y1 - wy0 + 1, x0 - wx0 : x1 - wx0 + 1] = data[
            y0 - dy0 : y1 - dy0 + 1, x0 - dx0 : x1 - dx0 + 1
        ]
    return canvas


def exr_header(compression: str, metadata: dict[str, str | int]) -> dict:
    import OpenEXR

    header = {"compression": getattr(OpenEXR, COMPRESSIONS[compression]), "type": OpenEXR.scanlineimage}
    header.update(metadata)
    return header


def write_exr(
    path: Path, parts: list[tuple[str | None, dict[str, np.ndarray]]], compression: str, metadata: dict[str, str | int]
) -> None:
    """Write ``parts`` (``(part name, {channel: HxW array})``; one part with name None gives a
    single-part file) as half float. Plain file I/O after encoding is not possible with the
    bindings, so errors (disk full) come back as OSError from the library's own write."""
    import OpenEXR

    header = exr_header(compression, metadata)
    if len(parts) == 1 and parts[0][0] is None:
        exr = OpenEXR.File(header, parts[0][1])
    else:
        exr = OpenEXR.File([OpenEXR.Part(dict(header), channels, name=name) for name, channels in parts])
    try:
        exr.write(str(path))
    except OSError:
        raise
    except Exception as e:
        # The bindings report write failures (e.g. ENOSPC) as RuntimeError with the errno text.
        text = str(e)
        if "No space left" in text:
            import errno

            raise OSError(errno.ENOSPC, "No space left on device") from None
        raise OSError(errno_from(text), text) from None


def errno_from(text: str) -> int:
    import errno

    return errno.EACCES if "ermission denied" in text else errno.EIO
