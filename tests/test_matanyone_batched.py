"""Several MatAnyone targets in one batched pass equal each target run alone.

``../shared/media/cutie-judo`` (run at 256x144 to stay fast) with the fixture's recipe weights
(random but deterministic, so this checks the arithmetic, not quality). Three ids are given on
frame 0 (the people of the clip's masks at frames 0, 5 and 8; where they stand on frame 0 does
not matter here). Running each id alone is what vmatte did before targets were batched (one
core per id, nothing shared past the image encoding), so it is the reference: batched alphas
must match it within 1e-4 on every frame, the first frame's mask step and warm-up included.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import matanyone_recipe_state_dict  # noqa: E402
from vmatte.engine.matanyone import InferenceCore, MatAnyoneSettings, prepare_network, start
from vmatte.engine.matanyone.matter import MatAnyoneMatter
from vmatte.engine.matanyone.preprocess import image_to_tensor
from vmatte.io.masks import TargetMask, fit_to_frame, read_mask
from vmatte.models.matanyone import MatAnyone

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURE = SHARED / "fixtures" / "matanyone"
JUDO = SHARED / "media" / "cutie-judo"
SIZE = (256, 144)  # w, h
FRAMES = 8
TOL = 1e-4
# mem_every 3: memory frames (and the FIFO) come into play within the 8 frames
SETTINGS = MatAnyoneSettings(warmup_frames=1, r_erode=0, r_dilate=0, mem_every=3)

pytestmark = pytest.mark.skipif(
    not ((FIXTURE / "recipe.py").is_file() and (JUDO / "masks").is_dir()),
    reason=f"no MatAnyone fixture or cutie-judo clip under {SHARED}",
)


@pytest.fixture(scope="module")
def network() -> MatAnyone:
    net = MatAnyone()
    net.load_state_dict(matanyone_recipe_state_dict(), strict=True)
    return prepare_network(net, "cpu")  # as vmatte loads it


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    paths = sorted((JUDO / "frames").iterdir())[:FRAMES]
    return [
        cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), SIZE, interpolation=cv2.INTER_AREA)
        for p in paths
    ]


@pytest.fixture(scope="module")
def people() -> dict[int, np.ndarray]:
    """``{id: HxW uint8}``: ids 1, 2, 3 from the clip's masks 00000, 00005, 00008."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the masks are resized to the frame (nearest neighbour)
        for name in ("00000", "00005", "00008"):
            out.update(fit_to_frame(read_mask(JUDO / "masks" / f"{name}.png", labels=True), (SIZE[1], SIZE[0])).targets)
    assert sorted(out) == [1, 2, 3] and all(m.any() for m in out.values())
    return out


def _run(network, frames, mask=None, keyframes=None) -> tuple[MatAnyoneMatter, list[dict[int, np.ndarray]]]:
    matter = MatAnyoneMatter(network, mask, SETTINGS, keyframes=keyframes)
    return matter, [matter.step_all(f, foreground=False)[1] for f in frames]


def _assert_close(got: list[dict[int, np.ndarray]], want: list[dict[int, np.ndarray]], i: int) -> None:
    for t, (g, w) in enumerate(zip(got, want)):
        assert np.abs(g[i] - w[i]).max() <= TOL, (i, t, float(np.abs(g[i] - w[i]).max()))


def test_one_label_mask_runs_as_one_batched_group_equal_to_each_target_alone(network, frames, people):
    matter, got = _run(network, frames, TargetMask(people))
    assert [g.ids for g in matter.groups] == [[1, 2, 3]]  # one group, one batched step per frame
    assert matter.network.encodes == FRAMES
    for i, m in people.items():
        _, alone = _run(network, frames, TargetMask({i: m}))
        _assert_close(got, alone, i)
        assert max(a[i].max() for a in got) > 0.1


def test_keyframes_split_and_join_groups_exactly(network, frames, people):
    """Frame 0: ids 1 and 2. Frame 5: id 3 enters and id 1 is corrected (re-initialised from a
    shifted mask), so id 1 leaves the first group and joins id 3; id 2 goes on alone."""
    shifted = np.roll(people[1], 12, axis=1)
    keyframes = {0: TargetMask({1: people[1], 2: people[2]}), 5: TargetMask({1: shifted, 3: people[3]})}
    matter, got = _run(network, frames, keyframes=keyframes)
    assert sorted(sorted(g.ids) for g in matter.groups) == [[1, 3], [2]]
    assert not got[4][3].any() and got[5][3].any()
    alone = {
        1: {0: TargetMask({1: people[1]}), 5: TargetMask({1: shifted})},
        2: {0: TargetMask({2: people[2]})},
        3: {5: TargetMask({3: people[3]})},
    }
    for i, schedule in alone.items():
        _, want = _run(network, frames, keyframes=schedule)
        _assert_close(got, want, i)


def test_cores_on_different_memory_schedules_are_not_joined(network, frames, people):
    a, b = InferenceCore(network, SETTINGS), InferenceCore(network, SETTINGS)
    start(a, frames[0], people[1])
    a.step(image_to_tensor(frames[1]))  # a: one frame past its memory frame; b: on it
    start(b, frames[1], people[2])
    with pytest.raises(ValueError):
        InferenceCore.concat([a, b])
    both = InferenceCore.concat([b, b.select([0])])
    assert both.targets == 2 and both.memory.sensory.shape[0] == 2
