"""Regression guard for the offline target mode on the shared DAVIS clips (issue 20).

A fast subset (the first frames of five sequences at half size) through ``vmatte eval vos`` with
``rvm`` and ``rvm-target``: the target mode must keep to its target (precision: at least 0.95, or
RVM's own precision on the target's regions, "RVM P", where RVM's edge allows less) and never do
worse than plain RVM (every person) by more than a point, so that a later change cannot bring the
crowd back or lose the rider; on the dog clip (libby) its matte stays empty, with one warning that
no person was found. Skips when ../shared is absent. The full figures: README, "Target mode without
MatAnyone's weights".
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import pytest

from vmatte.eval.vos import evaluate_vos

DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "davis2016"
# A crowd behind a dancer, a rider RVM sees only part of, a bystander joined to a rider and
# whole-body motion (a flip over walls).
PEOPLE = ("dance-twirl", "horsejump-high", "scooter-black", "parkour")
SEQUENCES = (*PEOPLE, "libby")  # and a dog: no person at the mask
FRAMES = 14
SIZE = (427, 240)


@pytest.fixture(scope="module")
def small_davis(tmp_path_factory) -> Path:
    if not all((DAVIS / "JPEGImages" / s).is_dir() for s in SEQUENCES):
        pytest.skip(f"no {DAVIS}")
    root = tmp_path_factory.mktemp("davis-small")
    for seq in SEQUENCES:
        for sub, ext, interp in (("JPEGImages", "jpg", cv2.INTER_AREA), ("Annotations", "png", cv2.INTER_NEAREST)):
            (root / sub / seq).mkdir(parents=True)
            for i in range(FRAMES):
                img = cv2.imread(str(DAVIS / sub / seq / f"{i:05d}.{ext}"), cv2.IMREAD_UNCHANGED)
                cv2.imwrite(str(root / sub / seq / f"{i:05d}.{ext}"), cv2.resize(img, SIZE, interpolation=interp))
    return root


def test_target_mode_keeps_to_its_target_and_is_never_worse_than_rvm(small_davis):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_vos(small_davis, list(SEQUENCES), ["rvm", "rvm-target"], device="cpu")
    report = {
        s: (
            round(result.score("rvm", s).jf, 1),
            round(result.score("rvm-target", s).jf, 1),
            round(result.score("rvm-target", s).rvm_precision, 3),
            round(result.score("rvm-target", s).precision, 3),
        )
        for s in PEOPLE
    }
    for seq, (rvm, target, ceiling, precision) in report.items():
        assert precision >= min(0.95, ceiling) - 0.01, (seq, report)
        assert target >= rvm - 1.0, (seq, report)
    # Bystander leak: the target mode never mattes more of other people than plain RVM does (up to
    # RVM's own edge: plain rvm runs onnxruntime from a cold state, the target mode's RVM runs
    # PyTorch settled on the first frame, whose edge on the dancer is a little wider at first).
    for seq in PEOPLE:
        assert result.score("rvm-target", seq).leak <= result.score("rvm", seq).leak + 0.015, (seq, report)
    # The dog: RVM mattes part of it, the target mode nothing, and says why once.
    assert result.score("rvm", "libby").objects[0].predicted > 0
    assert result.score("rvm-target", "libby").objects[0].predicted == 0
    said = [str(w.message) for w in caught if "no person found" in str(w.message)]
    assert len(said) == 1 and "whole clip" in said[0], said
