"""The DAVIS folder layout for video-object-segmentation evaluation (``vmatte eval vos``).

``ROOT/JPEGImages/<seq>/00000.jpg ...`` and ``ROOT/Annotations/<seq>/00000.png ...`` (the
official download's ``JPEGImages/480p/<seq>`` is found too). An annotation is a binary grey PNG
(DAVIS-2016: 0/255, one object), a palette PNG (DAVIS-2017: the palette index is the object id)
or a grey label PNG (ids 1..N). Frame 0's annotation is the guidance a target model is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vmatte.errors import InputError
from vmatte.io.masks import TargetMask, _palette_indices, read_mask
from vmatte.io.reader import IMAGE_EXTENSIONS, natural_key

__all__ = ["LAYOUT", "VosSequence", "find_sequences", "list_sequences", "read_labels"]

LAYOUT = "expected ROOT/JPEGImages/<seq>/00000.jpg ... and ROOT/Annotations/<seq>/00000.png ... (DAVIS layout)"


@dataclass(frozen=True)
class VosSequence:
    """One sequence: its frames in order and the annotation (if any) of each frame."""

    name: str
    images: Path  # the frame folder, read with vmatte.io.reader.open_source
    frames: tuple[Path, ...]  # in the order open_source reads them (natural order)
    annotations: tuple[Path | None, ...]  # frames[i]'s label PNG, None where not annotated
    first: TargetMask  # frame 0's objects, as a target model reads them

    @property
    def first_annotation(self) -> Path:
        return self.annotations[0]  # never None: find_sequences requires it

    @property
    def ids(self) -> tuple[int, ...]:
        return self.first.ids

    @property
    def binary(self) -> bool:
        """One object marked by any non-zero value (0/255): later frames are read the same way."""
        return self.first.kind == "binary"


def _folders(root: Path) -> tuple[Path, Path]:
    root = root.expanduser()
    if not root.is_dir():
        raise InputError(f"VOS folder not found: {root}; {LAYOUT}")
    images, annotations = root / "JPEGImages", root / "Annotations"
    for name, folder in (("JPEGImages", images), ("Annotations", annotations)):
        if not folder.is_dir():
            raise InputError(f"{root} has no {name}/ folder; {LAYOUT}")
    # The official DAVIS download nests one level per resolution; 480p is the benchmark's.
    if (images / "480p").is_dir() and (annotations / "480p").is_dir():
        return images / "480p", annotations / "480p"
    return images, annotations


def list_sequences(root: str | os.PathLike) -> list[str]:
    """Every sequence folder under ROOT/JPEGImages, in natural order."""
    images, _ = _folders(Path(root))
    return sorted((e.name for e in images.iterdir() if e.is_dir() and not e.name.startswith(".")), key=natural_key)


def _frame_files(folder: Path) -> list[Path]:
    # The same filter and order as ImageSequenceSource, so index i here is frame i there.
    return sorted(
        (
            p
            for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        ),
        key=lambda p: natural_key(p.name),
    )


def find_sequences(root: str | os.PathLike, names: list[str] | tuple[str, ...]) -> list[VosSequence]:
    """The named sequences, each checked (frames, frame-0 annotation) before any model runs."""
    root = Path(root)
    images, annotations = _folders(root)
    if not names:
        raise InputError(f"no sequences given; name them with --sequences a,b,c (folders of {images})")
    out = []
    for name in names:
        folder = images / name
        if not folder.is_dir():
            have = ", ".join(list_sequences(root)[:8]) or "none"
            raise InputError(f"sequence {name!r} not found: {folder} is missing (sequences there: {have}); {LAYOUT}")
        frames = _frame_files(folder)
        if not frames:
            raise InputError(f"sequence {name!r} has no frames in {folder}; {LAYOUT}")
        labels = annotations / name
        found = [labels / f"{f.stem}.png" for f in frames]
        annotated = tuple(p if p.is_file() else None for p in found)
        if annotated[0] is None:
            raise InputError(
                f"sequence {name!r} has no frame-0 annotation {found[0]}; the first frame's "
                f"objects are the guidance; {LAYOUT}"
            )
        # Read as the model reads its --mask (a single-id grey file is one object, id 1), so the
        # ids scored are the ids the model tracks.
        first = read_mask(annotated[0])
        if first.kind not in ("binary", "labels", "palette"):
            raise InputError(
                f"annotation {annotated[0]} is a {first.kind} image; give binary (0/255), palette "
                f"or label PNGs (ids 1..N)"
            )
        if not any(annotated[1:]):
            raise InputError(f"sequence {name!r} has no annotation after frame 0 in {labels}; nothing to score")
        out.append(VosSequence(name, folder, tuple(frames), annotated, first))
    return out


def read_labels(path: Path, binary: bool) -> np.ndarray:
    """HxW int32 object ids of one annotation (0 = background); ``binary``: any non-zero is id 1.

    Unlike :func:`~vmatte.io.masks.read_mask`, an empty frame is fine: objects leave the view."""
    indices = _palette_indices(path)
    if indices is None:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"cannot read annotation {path}; give binary, palette or label PNGs")
        if img.ndim == 3:
            # A grey annotation stored as colour: any channel will do; true colour labels are not ids.
            if not ((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()):
                raise InputError(f"annotation {path} is a colour image; give binary, palette or label PNGs")
            img = img[..., 0]
        indices = img
    labels = indices.astype(np.int32)
    return (labels != 0).astype(np.int32) if binary else labels
