"""Video-object-segmentation scores (J, F, J&F) on the DAVIS layout: ``vmatte eval vos``.

Protocol (``shared/docs/offline-target.md``, ``metrics.md``): a target model is given frame 0's
annotation as its mask; prediction = alpha >= 0.5; frame 0 is not scored (it is the guidance);
frames without an annotation file are not scored either. J and F are averaged over frames per
object, over objects per sequence (DAVIS-2017 style; DAVIS-2016 has one object), then over
sequences. A model that takes no mask (``rvm``: every person in frame) is scored against the
union of the annotated objects: a baseline of "every person kept".

J&F alone mixes two kinds of error. Identity errors (the matte jumps to someone else, takes in a
crowd) show in **precision** (share of the predicted target's pixels inside the ground truth) and
**bystander leak** (share of the predicted pixels on RVM's person regions outside the ground
truth: someone else was matted); "people only" misses (a bike, a horse in the ground truth) show
in **recall**. The three are pooled over the scored frames' pixels. Person regions come from the
matter's ``person_alpha`` (RVM's alpha of every person, set by the target mode each frame), or
from the alpha itself for maskless models; other models report no leak. Every predicted pixel of a
people-only mode on RVM's alpha lies on a person region, so its misses of precision are either
identity errors or RVM's own edge: **RVM P**, the precision of RVM's person regions that touch the
ground truth (perfect identity, RVM's edge), is the most such a mode can reach.

>>> result = evaluate_vos("davis2016", ["parkour"], ["rvm"])
>>> result.mean("rvm").jf
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vmatte.engine.registry import BASELINE, SPECS, taken
from vmatte.errors import InputError

from .metrics import EvalError, boundary_f, jaccard
from .vos_data import VosSequence, find_sequences, list_sequences, read_labels

__all__ = ["MASKLESS_MODELS", "ObjectScore", "SequenceScore", "VosMean", "VosResult", "evaluate_vos"]

# Models that matte every person and take no mask; every other model is given frame 0's mask.
MASKLESS_MODELS = tuple(s.name for s in SPECS.values() if s.every_person)  # scored against every object
UNION_ID = 0  # the object id of a maskless model's score: all annotated objects together

#: Builds (or re-targets) a matter for one sequence: tests and custom models pass these.
MatterFactory = Callable[[VosSequence], object]


@dataclass
class ObjectScore:
    id: int  # annotation id (UNION_ID: every object together, for maskless models)
    j: list[float] = field(default_factory=list)  # per scored frame, x100
    f: list[float] = field(default_factory=list)
    # Pixel totals over the scored frames: predicted, ground truth, both; predicted on a person
    # region outside the ground truth (-1: no person regions known for this model).
    predicted: int = 0
    true: int = 0
    hit: int = 0
    leaked: int = 0
    # RVM's person regions that touch the ground truth: their pixels, and those inside it (RVM P)
    reached: int = 0
    reached_hit: int = 0

    @property
    def precision(self) -> float:
        return self.hit / self.predicted if self.predicted else math.nan

    @property
    def recall(self) -> float:
        return self.hit / self.true if self.true else math.nan

    @property
    def leak(self) -> float:
        return self.leaked / self.predicted if self.predicted and self.leaked >= 0 else math.nan

    @property
    def rvm_precision(self) -> float:
        return self.reached_hit / self.reached if self.reached and self.leaked >= 0 else math.nan

    def add(self, pred: np.ndarray, true: np.ndarray, person: np.ndarray | None) -> None:
        """Score one frame: ``pred`` alpha (>= 0.5 is predicted), ``true`` and ``person`` bool."""
        p = pred >= 0.5
        self.j.append(100.0 * jaccard(pred, true.astype(np.float32)))
        self.f.append(100.0 * boundary_f(pred, true.astype(np.float32)))
        self.predicted += int(p.sum())
        self.true += int(true.sum())
        self.hit += int((p & true).sum())
        if person is None or self.leaked < 0:
            self.leaked = -1
        else:
            self.leaked += int((p & person & ~true).sum())
            import cv2

            count, regions = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
            touch = np.bincount(regions.ravel(), weights=true.ravel(), minlength=count) > 0
            touch[0] = False
            reached = touch[regions]
            self.reached += int(reached.sum())
            self.reached_hit += int((reached & true).sum())

    @property
    def j_mean(self) -> float:
        return float(np.mean(self.j)) if self.j else math.nan

    @property
    def f_mean(self) -> float:
        return float(np.mean(self.f)) if self.f else math.nan


@dataclass
class SequenceScore:
    model: str
    sequence: str
    frames: int  # frames scored (annotated, frame 0 excluded)
    seconds: float  # matting and scoring, wall clock
    objects: list[ObjectScore]
    scored: list[int] = field(default_factory=list)  # the frame index of each scored frame
    # A few frames for the contact sheet: frame index -> small RGB picture with the prediction
    # and the ground truth drawn in (see vos_thumb.py).
    thumbs: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def j(self) -> float:
        return float(np.mean([o.j_mean for o in self.objects]))

    @property
    def f(self) -> float:
        return float(np.mean([o.f_mean for o in self.objects]))

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2.0

    def _pooled(self, name: str) -> float:
        values = [getattr(o, name) for o in self.objects]
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    @property
    def precision(self) -> float:
        return self._pooled("precision")

    @property
    def recall(self) -> float:
        return self._pooled("recall")

    @property
    def leak(self) -> float:
        return self._pooled("leak")

    @property
    def rvm_precision(self) -> float:
        return self._pooled("rvm_precision")

    @property
    def j_curve(self) -> list[float]:
        """J per scored frame, averaged over the objects."""
        return [float(v) for v in np.mean([o.j for o in self.objects], axis=0)] if self.objects[0].j else []


@dataclass(frozen=True)
class VosMean:
    j: float
    f: float
    jf: float


@dataclass
class VosResult:
    root: Path
    models: list[str]
    sequences: list[str]
    scores: list[SequenceScore]
    descriptions: dict[str, str]  # model -> what ran (weights, device)
    seconds: float

    def score(self, model: str, sequence: str) -> SequenceScore:
        return next(s for s in self.scores if s.model == model and s.sequence == sequence)

    def mean(self, model: str) -> VosMean:
        """Mean over sequences (each sequence weighs the same, as the DAVIS tables)."""
        mine = [s for s in self.scores if s.model == model]
        j, f = float(np.mean([s.j for s in mine])), float(np.mean([s.f for s in mine]))
        return VosMean(j, f, (j + f) / 2.0)

    def mean_of(self, model: str, name: str) -> float:
        """Mean of a pooled measure (precision, recall, leak) over the sequences that have it."""
        values = [getattr(s, name) for s in self.scores if s.model == model]
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan


def _named_factory(model: str, options: Mapping[str, object]) -> MatterFactory:
    """One loaded matter per model for every sequence: a target model is re-targeted per sequence.

    ``options``: :func:`vmatte.load_matter` keywords (``device``, ``max_size`` ...)."""
    state: dict[str, object] = {}

    def make(seq: VosSequence):
        from vmatte.matte import load_matter

        matter = state.get("matter")
        if model in MASKLESS_MODELS:
            if matter is None:
                matter = load_matter(model, **options)
        elif matter is not None and hasattr(matter, "set_mask"):
            matter.set_mask(seq.first_annotation)  # takes effect at the next video; weights stay loaded
        else:
            matter = load_matter(model, mask=seq.first_annotation, **options)
        state["matter"] = matter
        return matter

    return make


def _person(matter, model: str, alpha: np.ndarray) -> np.ndarray | None:
    """RVM's person regions in this frame (alpha >= 0.5), when the model says where they are."""
    if model in MASKLESS_MODELS:
        return alpha >= 0.5
    person = getattr(matter, "person_alpha", None)
    return None if person is None or person.shape != alpha.shape else person >= 0.5


def score_sequence(
    seq: VosSequence, model: str, matter, max_frames: int | None = None, thumbs: int = 0
) -> SequenceScore:
    """Run ``matter`` over the sequence (from frame 0) and score frames 1.. against their labels;
    only the first ``max_frames`` frames when given. ``thumbs`` frames (evenly spaced) are kept
    as small pictures for the contact sheet."""
    from vmatte.matte import iter_matte

    from .vos_thumb import thumbnail  # cv2 only when a sequence is scored

    targets = getattr(matter, "targets", None)
    if targets == (None,):  # a model without targets (every person): scored against all objects together
        targets = None
    if targets is not None:
        missing = [i for i in seq.ids if i not in targets]
        if missing:
            raise EvalError(
                f"{model} tracks ids {', '.join(map(str, targets))} but {seq.name}'s frame-0 "
                f"annotation has id {missing[0]}; give the model that annotation as its mask"
            )
        objects = [ObjectScore(i) for i in seq.ids]
    else:
        objects = [ObjectScore(UNION_ID)]
    total = len(seq.frames) if max_frames is None else min(max_frames, len(seq.frames))
    picked = set(np.linspace(1, total - 1, thumbs).round().astype(int).tolist()) if thumbs and total > 1 else set()
    start = time.perf_counter()
    count = 0
    scored: list[int] = []
    pictures: dict[int, np.ndarray] = {}
    results = iter_matte(seq.images, model=matter)
    try:
        for res in results:
            count += 1
            if res.index >= len(seq.frames):
                raise EvalError(f"{model} gave more frames than {seq.images} holds ({len(seq.frames)})")
            path = seq.annotations[res.index]
            if res.index > 0 and path is not None:  # frame 0 is the guidance; unannotated frames have no truth
                labels = read_labels(path, seq.binary)
                if labels.shape != res.alpha.shape:
                    raise InputError(
                        f"annotation {path} is {labels.shape[1]}x{labels.shape[0]} but its frame is "
                        f"{res.alpha.shape[1]}x{res.alpha.shape[0]}; annotations must match the frames"
                    )
                person = _person(matter, model, res.alpha)
                scored.append(res.index)
                for obj in objects:
                    if obj.id == UNION_ID:
                        pred, true = res.alpha, labels != 0
                    else:  # a target model's matte of this id (step-only matters: their one alpha)
                        pred = res.alphas[obj.id] if res.alphas else res.alpha
                        true = labels == obj.id
                    obj.add(pred, true, person)
                if res.index in picked:
                    first = objects[0]
                    pred = res.alpha if first.id == UNION_ID or not res.alphas else res.alphas[first.id]
                    true = labels != 0 if first.id == UNION_ID else labels == first.id
                    pictures[res.index] = thumbnail(res.image, pred >= 0.5, true, person)
            if count >= total:
                break
    finally:
        results.close()
    if count != total:
        raise EvalError(f"{model} gave {count} frames for {seq.name} but {seq.images} holds {len(seq.frames)}")
    return SequenceScore(model, seq.name, len(scored), time.perf_counter() - start, objects, scored, pictures)


def evaluate_vos(
    root: str | os.PathLike,
    sequences: Sequence[str] | None = None,
    models: Sequence[str] = (BASELINE,),
    *,
    device: str = "auto",
    max_size: int | None = None,
    matters: Mapping[str, MatterFactory] | None = None,
    progress: bool = False,
    max_frames: int | None = None,
    thumbs: int = 0,
    tracker: str = "auto",
) -> VosResult:
    """J, F and J&F of each model on each sequence (``None``: every sequence under ROOT).

    Named models load once with :func:`vmatte.load_matter` (target models get frame 0's
    annotation as ``mask=``, re-targeted per sequence with ``set_mask`` when they have it), on
    ``device``, with the network's long side at most ``max_size`` px when given, and ``tracker``
    (:class:`~vmatte.engine.registry.MatterOptions`: what follows the target for the models that
    take one).
    ``matters`` maps a model name to a factory ``f(sequence) -> matter`` (tests, custom models);
    the matter needs ``reset`` and ``step`` (or ``step_all`` and ``targets`` for target models).
    ``max_frames``: score only each sequence's first frames (quick runs while developing);
    ``thumbs``: frames per sequence kept for the contact sheets (see :func:`write_vos`)."""
    from vmatte.matte import MODELS

    models = list(models)
    if not models:
        raise InputError("no models given; pass --models, e.g. --models rvm")
    unknown = [m for m in models if m not in MODELS and not (matters and m in matters)]
    if unknown:
        raise InputError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    if max_frames is not None and max_frames < 2:
        raise InputError(f"--max-frames must be at least 2 (frame 0 is the guidance), got {max_frames}")
    names = list(sequences) if sequences is not None else list_sequences(root)
    seqs = find_sequences(root, names)  # every sequence checked before a model loads
    options: dict[str, object] = {"device": device}
    if max_size is not None:
        options["max_size"] = max_size
    if tracker != "auto":
        options["tracker"] = tracker
    start = time.perf_counter()
    scores: list[SequenceScore] = []
    descriptions: dict[str, str] = {}
    for model in models:
        factory = matters[model] if matters and model in matters else _named_factory(model, taken(model, options))
        for seq in seqs:
            matter = factory(seq)
            descriptions.setdefault(model, getattr(matter, "description", model))
            s = score_sequence(seq, model, matter, max_frames, thumbs)
            scores.append(s)
            if progress:
                print(
                    f"{model}\t{seq.name}\t{s.frames} frames\tJ {s.j:.1f}  F {s.f:.1f}  J&F {s.jf:.1f}"
                    f"  P {s.precision:.3f}  R {s.recall:.3f}  leak {s.leak:.3f}  RVM P {s.rvm_precision:.3f}"
                    f"\t{s.seconds:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return VosResult(Path(root), models, [s.name for s in seqs], scores, descriptions, time.perf_counter() - start)
