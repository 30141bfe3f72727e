"""Clicks -> target mask with a point-prompt segmenter: Segment Anything (SAM) or SAM 2 / 2.1.

Which one clicks use (``--segmenter`` / the app's "Click masks" choice):

* ``auto`` (default): a SAM / SAM 2 checkpoint in the cache (``vmatte weights fetch NAME`` puts
  one there), the smallest first on a CPU and the best first on a GPU; with none cached, RVM's
  person regions (:mod:`vmatte.engine.segment.clicks`, ships with vmatte, people only);
* ``rvm``: RVM's person regions even when a SAM checkpoint is cached;
* a name of :data:`vmatte.weights.SEGMENTERS` (downloaded once when missing) or a checkpoint path.

SAM segments whatever is clicked (a person, a dog, a kite), which the person regions cannot.
Its mask is binary (logits > 0, what the official predictors return); the matting model makes
the soft edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ...errors import InputError, WeightsError
from ...weights import SAM_LICENSE, SEGMENTERS, cached_segmenters, resolve_segmenter

AUTO, RVM = "auto", "rvm"
RVM_LABEL = "RVM person regions"  # what clicks use without SAM, as messages and the app name it


class PointPredictor(Protocol):
    """What :class:`~vmatte.engine.segment.sam1.Sam1Predictor` and ``sam2.Sam2Predictor`` provide."""

    name: str

    def set_image(self, rgb: np.ndarray) -> None: ...

    def predict(
        self, points: np.ndarray, labels: np.ndarray, multimask: bool | None = None
    ) -> tuple[np.ndarray, float]: ...


def choose_segmenter(spec: str | None, device: torch.device | str = "cpu") -> str:
    """``spec`` with ``auto`` (or None) replaced by the cached checkpoint to use, or ``rvm``."""
    spec = (spec or AUTO).strip()
    if spec != AUTO:
        return spec
    have = cached_segmenters(prefer_gpu=torch.device(device).type == "cuda")
    return have[0] if have else RVM


def _family(sd: dict[str, torch.Tensor]) -> str:
    if any(k.startswith("image_encoder.trunk.") for k in sd):
        return "sam2"
    if any(k.startswith("image_encoder.blocks.") for k in sd) and any(k.startswith("mask_decoder.") for k in sd):
        return "sam1"
    raise WeightsError(
        "the --segmenter checkpoint is neither Segment Anything (image_encoder.blocks.*, "
        "mask_decoder.*) nor SAM 2 (image_encoder.trunk.*); give an official SAM / SAM 2 file"
    )


def load_point_predictor(spec: str, device: torch.device | str = "cpu", allow_download: bool = True) -> PointPredictor:
    """The predictor for ``spec`` (a name of ``SEGMENTERS`` or a checkpoint path) on ``device``.
    The weights are Apache-2.0 (Meta AI), unlike RVM's GPL-3.0 and MatAnyone's non-commercial."""
    sd, source, label = resolve_segmenter(spec, allow_download=allow_download)
    if _family(sd) == "sam2":
        from ...models.sam2.build import sam2_from_state_dict
        from .sam2 import Sam2Predictor

        predictor = Sam2Predictor(sam2_from_state_dict(sd, source), device=device)
    else:
        from ...models.sam.build import sam_from_state_dict
        from .sam1 import Sam1Predictor

        predictor = Sam1Predictor(sam_from_state_dict(sd, source), device=device)
    if spec in SEGMENTERS:  # the official name, not one inferred from tensor shapes
        predictor.name = label
    predictor.description = f"{predictor.name} (weights: {source}, {SAM_LICENSE})"  # type: ignore[attr-defined]
    return predictor


class FramePrompter:
    """A predictor and the frame it holds: encoding a frame is the slow part (a ViT/Hiera pass),
    so the clicks of one frame reuse it and only the small decoder runs per click."""

    def __init__(self, predictor: PointPredictor):
        self.predictor = predictor
        self.name = predictor.name
        self.description = getattr(predictor, "description", predictor.name)  # with source and licence
        self._key: object = None

    def mask(self, image: np.ndarray, key: object, positives: Sequence, negatives: Sequence = ()) -> np.ndarray:
        """HxW uint8 mask (0 / 255) of the object under ``positives`` (points with ``.x``/``.y``;
        ``negatives``: points off it) in ``image``; ``key`` names the image (its frame index) so a
        second call on the same frame skips the encoder."""
        if not positives:
            raise InputError("no --click given: click on the target (an --exclude alone picks nothing)")
        if key is None or key != self._key:
            self.predictor.set_image(np.ascontiguousarray(np.asarray(image)[..., :3]))
            self._key = key
        points = np.array([[p.x, p.y] for p in list(positives) + list(negatives)], np.float64)
        labels = np.array([1] * len(positives) + [0] * len(negatives), np.int64)
        logits, _ = self.predictor.predict(points, labels)
        mask = np.where(logits > 0.0, 255, 0).astype(np.uint8)
        if not mask.any():
            where = " ".join(f"{p.x},{p.y}" for p in positives)
            raise InputError(
                f"{self.name} found nothing under the click(s) at {where}; click inside the subject, "
                f"or use --segmenter rvm for people"
            )
        return mask


def check_segmenter(spec: str) -> None:
    """A one-line error now for a ``--segmenter`` that is neither auto, rvm, a name nor a file."""
    if spec in (AUTO, RVM) or spec in SEGMENTERS or Path(spec).expanduser().is_file():
        return
    raise WeightsError(
        f"--segmenter {spec}: no such file and not a segmenter name; give auto, rvm, a SAM / SAM 2 "
        f"checkpoint file or one of: {', '.join(SEGMENTERS)}"
    )


def segmenter_choices(current: str = AUTO, device: torch.device | str = "cpu") -> list[tuple[str, str]]:
    """``(label, value)`` pairs for a picker: auto (saying what it resolves to), RVM's person regions,
    every cached checkpoint, and ``current`` when it is a path."""
    prefer_gpu = torch.device(device).type == "cuda"
    auto = choose_segmenter(AUTO, device)
    auto_label = SEGMENTERS[auto].label if auto in SEGMENTERS else RVM_LABEL
    out = [(f"Auto ({auto_label})", AUTO), (f"{RVM_LABEL} (people only)", RVM)]
    out += [(SEGMENTERS[n].label, n) for n in cached_segmenters(prefer_gpu)]
    if current not in (AUTO, RVM) and current not in SEGMENTERS:
        out.append((Path(current).name, current))
    return out
