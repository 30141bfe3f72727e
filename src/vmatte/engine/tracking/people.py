"""Where RVM sees people, and whether a target's mask holds a person at all.

The offline target mode mattes people only: RVM's alpha of every person is cut to the target.
A mask on something RVM does not take for a person (a dog, a cart whose riders are still too
small for it) gets an empty matte and one warning, decided here from RVM's own evidence.
"""

from __future__ import annotations

import cv2
import numpy as np

PERSON_THRESHOLD = 0.5  # RVM alpha at which a pixel belongs to a person region


def person_cells(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RVM's person pixels at the working size (cv2 order ``(w, h)``): a cell is a person's if
    any of its pixels is, so thin parts (fingers, a kite line RVM caught) are not lost."""
    return cv2.resize((alpha >= PERSON_THRESHOLD).view(np.uint8), size, interpolation=cv2.INTER_AREA) > 0


def faded(cold: np.ndarray, settled: np.ndarray, mask: np.ndarray, seen_share: float, kept_share: float) -> bool:
    """No person at ``mask``, on RVM's own evidence: with its recurrent state cold, RVM called at
    least ``seen_share`` of the mask a person (``cold``, person cells), and once the state settled
    on the same frame (``settled``) it kept under ``kept_share`` of that. A person stays a person
    as the state settles (the 8 DAVIS person clips: 84-100% kept after 6 passes; a dog: 36%)."""
    if not mask.any():
        return False
    seen, kept = float((cold & mask).sum()), float((settled & mask).sum())
    return seen >= seen_share * float(mask.sum()) and kept < kept_share * seen


def no_person_message(target_id: int, frame: int, for_good: bool) -> str:
    """The one warning for a target whose mask holds no person: ``for_good`` when RVM took back
    what it first saw there (the matte stays empty for the whole clip), else until a person
    appears where the mask is carried (riders too small for RVM at first)."""
    where = f"no person found in the mask of target {target_id} (frame {frame}): "
    other = "for an object use --model matanyone (any object, its weights are a download) or SAM 2 clicks"
    if for_good:
        return (
            f"{where}RVM took back what it first saw there as a person once it settled on the frame; "
            f"the offline target mode mattes people only, so this target's matte stays empty for the "
            f"whole clip; {other}"
        )
    return (
        f"{where}the offline target mode mattes people only, so this target's matte stays empty until "
        f"RVM sees a person where the mask is; {other}"
    )
