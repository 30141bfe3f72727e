"""The offline target mode's decisions (issue 20), each on a constructed scene.

The real :class:`TargetTracker` runs (optical flow, appearance memory, region assignment,
colours); only RVM's output is scripted: each frame's person alpha is the union of the scene's
people, and the appearance features (what RVM's LR-ASPP would give) say which object a token
shows, plus noise. The pictures are textured so that optical flow has something to follow.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch

from vmatte.engine.tracking import TargetTracker
from vmatte.models.rvm import RobustVideoMatting

H, W = 144, 256  # under the working size: the maps are at full resolution
rng = np.random.default_rng(0)
BACKGROUND = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 1.5)
TEXTURE = rng.integers(-40, 40, (H, W, 3))
# Per object kind: a colour and an appearance vector (RVM features are 128-channel).
COLOURS = {"target": (40, 60, 200), "other": (220, 120, 30), "car": (150, 150, 150)}
VECTORS = {
    k: torch.randn(128, generator=torch.Generator().manual_seed(i)) for i, k in enumerate(["background", *COLOURS])
}


def disc(cx: float, cy: float, r: float) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    cv2.circle(m, (round(cx), round(cy)), round(r), 1, -1)
    return m > 0


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


class Scene:
    """One frame: objects as (kind, mask, offset of their texture); ``person`` marks the ones RVM
    mattes (all by default)."""

    def __init__(self, objects: list[tuple[str, np.ndarray, tuple[int, int]]], person: np.ndarray | None = None):
        self.objects = objects
        self.person = person if person is not None else np.any([m for _, m, _ in objects], axis=0)

    def image(self) -> np.ndarray:
        img = BACKGROUND.astype(np.int64).copy()
        for kind, mask, (dx, dy) in self.objects:
            moved = np.roll(TEXTURE, (dy, dx), axis=(0, 1))  # the texture moves with the object
            img[mask] = (np.array(COLOURS[kind]) + moved)[mask]
        return np.clip(img, 0, 255).astype(np.uint8)

    def features(self) -> torch.Tensor:
        h, w = H // 16, W // 16
        out = VECTORS["background"][:, None, None].expand(128, h, w).clone()
        for kind, mask, _ in self.objects:
            cover = torch.from_numpy(cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA))
            out = out * (1 - cover) + VECTORS[kind][:, None, None] * cover
        return out + 0.05 * torch.randn(128, h, w, generator=torch.Generator().manual_seed(1))


class ScriptedTracker(TargetTracker):
    """The tracker with RVM's per-frame output scripted by the scenes."""

    def __init__(self, scenes: list[Scene], mask: np.ndarray):
        super().__init__(RobustVideoMatting("mobilenetv3"), "cpu", mask=(mask * 255).astype(np.uint8))
        self.scenes = scenes

    def _rvm(self, image, foreground):
        scene = self.scenes[self._frame]
        return None, scene.person.astype(np.float32), scene.features()

    def run(self) -> list[np.ndarray]:
        self.reset()
        return [self.step(s.image(), foreground=False)[1] >= 0.5 for s in self.scenes]


def test_people_who_appear_later_become_bystanders_and_keep_their_own_pixels():
    """Someone walks in (absent from the mask's frame) and up against the target: they are
    tracked as a bystander, and while the two are one RVM region the target keeps to itself."""
    target = disc(70, 72, 28)
    scenes = [Scene([("target", target, (0, 0))])]
    for x in [220, 210, 200, 190, 180, 170, 160, 150, 140, 130, 125, 125, 125]:
        scenes.append(Scene([("target", target, (0, 0)), ("other", disc(x, 72, 28), (x - 220, 0))]))
    tracker = ScriptedTracker(scenes, target)
    out = tracker.run()
    assert any(i < 0 for i in tracker._ids), "the newcomer became no bystander"
    for k in range(9, len(scenes)):
        other = scenes[k].objects[1][1] & ~target
        assert cv2.connectedComponents(scenes[k].person.astype(np.uint8))[0] == 2 or k < 11  # one region
        assert out[k][target].mean() > 0.9, k
        assert out[k][other].mean() < 0.1, (k, out[k][other].mean())


def test_what_the_first_mask_excludes_stays_excluded():
    """RVM joins a piece of car to the target; the mask leaves it out, and so does every frame."""
    target, car = disc(90, 80, 30), rect(110, 40, 200, 75)
    scenes = [Scene([("car", car, (0, 0)), ("target", target, (dx, 0))]) for dx in range(0, 10, 2)]
    for s in scenes:
        s.objects[1] = ("target", disc(90 + s.objects[1][2][0], 80, 30), s.objects[1][2])
        s.person = s.objects[0][1] | s.objects[1][1]
    out = ScriptedTracker(scenes, target).run()
    for k, (s, o) in enumerate(zip(scenes, out)):
        piece = car & ~s.objects[1][1]
        assert o[piece].mean() < 0.05, (k, o[piece].mean())
        assert o[s.objects[1][1]].mean() > 0.9, k


def test_fast_curling_target_is_carried_not_dropped_for_its_size():
    """A fast whole-body move (a flip): the target jumps 18 px a frame and curls to a fifth of
    its area with no one near. It is not taken for hidden: its matte follows it every frame."""
    scenes = []
    for k in range(8):
        x, r = 50 + 18 * k, (34 if k < 3 or k > 5 else 15)
        scenes.append(Scene([("target", disc(x, 72, r), (18 * k, 0))]))
    out = ScriptedTracker(scenes, scenes[0].objects[0][1]).run()
    for k, (s, o) in enumerate(zip(scenes, out)):
        body = s.objects[0][1]
        assert o[body].mean() > 0.9, (k, o[body].mean())
        assert (o & ~body).sum() < 0.1 * body.sum(), k


def test_mask_with_no_person_warns_once_and_mattes_only_a_person_found_there():
    """The mask is on something RVM does not see as a person (a soapbox whose riders are still
    too small, a dog): one warning, an empty matte, until a person appears where the mask went."""
    box = rect(60, 50, 150, 110)
    scenes = []
    for k in range(7):
        objects = [("car", box, (0, 0))]
        person = np.zeros((H, W), bool)
        if k >= 4:  # the riders become visible inside the box
            rider = disc(100, 70, 14)
            objects.append(("target", rider, (0, 0)))
            person = rider
        scenes.append(Scene(objects, person))
    tracker = ScriptedTracker(scenes, box)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = tracker.run()
    said = [str(w.message) for w in caught if "no person found" in str(w.message)]
    assert len(said) == 1 and "people only" in said[0], said
    assert all(not o.any() for o in out[:4])
    for o in out[4:]:
        rider = disc(100, 70, 14)
        assert o[rider].mean() > 0.9 and not (o & ~rider).any()


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_person_mask_does_not_pick_up_pieces_left_where_the_target_was():
    """Pieces RVM mattes inside a target's carried mask are the target's only when the mask
    holds something besides the person (the horse, the bike): for a mask of a person alone, a
    separate person piece where the target was (someone it hid, now coming out) stays free."""
    piece = disc(76, 72, 3)  # inside the target's first extent, clear of it once it crouched
    scenes = [Scene([("target", disc(100, 72, r), (0, 0))]) for r in (28, 24, 20, 16)]
    scenes += [Scene([("target", disc(100, 72, 16), (0, 0)), ("other", piece, (0, 0))]) for _ in range(3)]
    person_only = ScriptedTracker(scenes, scenes[0].objects[0][1]).run()
    assert all(not (o & piece).any() for o in person_only[4:]), [int((o & piece).sum()) for o in person_only]
    # The same piece inside a mask that also holds what the target rides (no person to RVM): held.
    riding = ScriptedTracker(scenes, scenes[0].objects[0][1] | rect(60, 40, 100, 104)).run()
    held = [int((o & piece).sum()) for o in riding]
    assert all(h > 0.9 * piece.sum() for h in held[4:]), held


class ColdStartTracker(ScriptedTracker):
    """RVM's cold start scripted too: on the video's first frame, the first pass sees
    ``cold`` as a person and the passes after it (the state settling) see the scene's people."""

    def __init__(self, scenes: list[Scene], mask: np.ndarray, cold: np.ndarray):
        super().__init__(scenes, mask)
        self.cold = cold
        self.passes = 0

    def run(self) -> list[np.ndarray]:
        self.passes = 0
        return super().run()

    def _rvm(self, image, foreground):
        self.passes += 1
        if self.passes == 1:
            return None, self.cold.astype(np.float32), self.scenes[0].features()
        return super()._rvm(image, foreground)


def test_mask_rvm_takes_back_as_no_person_stays_empty_for_the_whole_clip():
    """A dog: cold on the first frame RVM calls most of it a person, and as its state settles
    on that frame it takes that back (a speck is left). The mask holds no person: one warning,
    an empty matte on every frame, even where RVM later mattes a piece of the dog again."""
    dog = rect(60, 50, 150, 110)
    speck = disc(100, 80, 6)
    scenes = []
    for k in range(6):
        flicker = rect(70, 60, 120, 100) if k in (3, 4) else speck  # RVM mattes part of it again
        scenes.append(Scene([("car", dog, (0, 0))], flicker))
    tracker = ColdStartTracker(scenes, dog, cold=dog)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = tracker.run()
    said = [str(w.message) for w in caught if "no person found" in str(w.message)]
    assert len(said) == 1 and "whole clip" in said[0], said
    assert tracker.passes == len(scenes) + tracker.settings.warmup
    assert all(not o.any() for o in out), [int(o.sum()) for o in out]


def test_a_person_rvm_keeps_as_its_state_settles_is_matted():
    """The same cold start on a person (cold RVM sees a little more around them, settled it
    keeps the person): the target is matted from the first frame on, with no warning."""
    person = disc(100, 72, 30)
    scenes = [Scene([("target", person, (0, 0))]) for _ in range(4)]
    tracker = ColdStartTracker(scenes, person, cold=disc(100, 72, 34))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = tracker.run()
    assert not [w for w in caught if "no person found" in str(w.message)]
    assert all(o[person].mean() > 0.9 for o in out)


def test_a_fleck_nobody_holds_is_no_one_else():
    """Where people who are no target are, for the next frame: a person-sized region with no
    target is someone; a fleck of RVM's alpha (or a piece RVM split off the target for a frame)
    is nobody, so it cannot become a "someone else" core that takes that part of the target
    once it rejoins it; a carried core of someone else is kept."""
    from vmatte.engine.tracking.tracker import TargetTracker

    target, fleck, someone = disc(80, 72, 30), disc(125, 40, 4), disc(200, 72, 25)
    carried = disc(60, 72, 6)  # someone else's core inside the target's region (people touching)
    person = target | fleck | someone
    claimed = target & ~carried
    others = TargetTracker._next_others(person, claimed, carried.astype(np.float32), min_area=200.0)
    assert not others[fleck].any()
    assert others[someone].all()
    assert others[carried].all()
    assert not others[target & ~carried].any()


def test_small_pieces_next_to_a_target_that_holds_something_are_its_own():
    """RVM mattes bits of what a target holds (a kite bar, lines) a little away from its body and
    outside where its mask was: for a mask that holds more than the person, a piece nobody holds,
    under a person's size and within reach of the target, is the target's; someone who walks up
    next to it is not, and a mask of a person alone takes no such piece."""
    body, board = disc(90, 72, 24), rect(60, 96, 130, 110)
    bar = disc(128, 40, 4)  # ~14 px from the body, outside the mask's area
    someone = disc(160, 80, 14)  # person-sized, as near
    scenes = [Scene([("target", body, (0, 0)), ("car", board, (0, 0))], body)]
    for _ in range(4):
        scenes.append(
            Scene(
                [("target", body, (0, 0)), ("car", board, (0, 0)), ("other", bar | someone, (0, 0))],
                body | bar | someone,
            )
        )
    held = ScriptedTracker(scenes, body | board).run()
    for o in held[1:]:
        assert o[bar].mean() > 0.9 and not o[someone].any() and o[body].mean() > 0.9
    alone = ScriptedTracker(scenes, body).run()
    assert all(not o[bar].any() and not o[someone].any() for o in alone[1:])
