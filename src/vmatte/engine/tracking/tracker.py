"""The offline target mode: a stable matte of *chosen* people from the weights that ship.

RVM mattes every person in frame and cannot be told which one. This mode follows the targets
of a first-frame (or keyframe) mask with MatAnyone's ideas, on parts that ship with vmatte:

1. RVM (MobileNetV3, recurrent) gives the alpha of every person at full resolution and, from its
   LR-ASPP, appearance features at stride 16 (no second backbone).
2. Propagation by motion: the previous frame's target maps are warped by dense optical flow
   (OpenCV DIS) on a small working image (:class:`~.motion.MotionField`).
3. Propagation by appearance: a memory of the targets (permanent mask frames + a FIFO of recent
   frames) read by top-k attention over the features (:class:`~.appearance.AppearanceMemory`).
4. Region-adaptive fusion: the warped previous value where nothing changes (the core), the
   memory readout in a band where the boundary moves (:func:`~.assign.region_adaptive_fusion`).
5. RVM's person regions are given to the target(s) that hold them (:func:`~.assign.assign_regions`),
   and each target's alpha is RVM's alpha there: hair-level edges come from RVM.
A target whose regions all vanished (occlusion, a fast turn) is looked for again by appearance
alone, so a lost target can come back; a plain chain of warps cannot.

Decisions made robust rather than tuned (issue 20; each has a test in test_target_rules.py):
- a region is never given to a target whole when it is much larger than the target's predicted
  extent or lies mostly outside its predicted position (a crowd RVM joined to the dancer): the
  target keeps the part where motion + memory put it (:func:`~.assign.assign_regions`);
- people first seen after the mask's frame become bystanders with their own maps and memory;
- the mask is the truth in its frame, and what it leaves out of a person region it touches
  (a piece of car, someone's fingertips) stays someone else's core;
- a target is taken for hidden only when someone else holds its predicted position, not
  because it looks small (a curl in a flip): motion and memory carry it;
- a mask with no person in it (riders still too small for RVM) is carried by motion, with an
  empty matte and one warning, until a person appears there; what RVM mattes of the thing the
  target rides (a bit of the horse, the bike) is the target's when it lies in its carried mask
  (only for a mask that holds more than the person: a person's mask picks up nothing it once
  covered, such as someone who hid behind the target), and so are RVM's small pieces next to it
  (a kite bar, lines) when no one else could be them;
- RVM's recurrent state settles on the first frame before anything is decided, and a mask that
  RVM, settled, takes back as no person (a dog it first called one) stays empty for the whole
  clip, with one warning (:mod:`.people`);
- a fleck of RVM's alpha nobody holds is no one else: only a person-sized region becomes
  someone else's core (a piece RVM split off the target for a frame would otherwise take that
  part of the target for good once it rejoined).

Limits (honest): only what RVM sees as a person is matted; objects a target holds or rides
(a board, a kite, a bike) are not. MatAnyone (``--model matanyone``) mattes any object.
"""

from __future__ import annotations

import copy
import warnings

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from ...io.masks import TargetMask, add_keyframe, fit_to_frame, mask_schedule, schedule_ids
from ...io.pixels import to_uint8
from ...models.rvm import RobustVideoMatting
from ..matter import PerFrameMatter, State
from ..rvm import RVMSettings, image_scale, ratio_for
from .appearance import AppearanceMemory
from .assign import _disk, assign_regions, change_probability, region_adaptive_fusion
from .colour import combine, drop_lookalikes, find_by_colour, histogram
from .motion import MotionField
from .people import faded, no_person_message, person_cells
from .settings import TargetSettings


class TargetTracker(PerFrameMatter):
    """A :class:`~vmatte.engine.matter.Matter` with several targets: ``step_all`` returns
    ``(fgr, {id: alpha})``; ``step`` the first target's alpha. ``mask``/``keyframes`` as for
    MatAnyone: a target id first seen at frame k has alpha 0 before k; a later mask of a
    tracked id resets it from that frame on."""

    def __init__(
        self,
        rvm: RobustVideoMatting,
        device: torch.device | str = "cpu",
        mask=None,
        keyframes: dict | None = None,
        settings: TargetSettings | None = None,
        rvm_settings: RVMSettings | None = None,
        description: str = "offline target mode",
    ) -> None:
        self.device = torch.device(device)
        self.rvm = rvm.eval().to(self.device)
        self.settings = copy.copy(settings) if settings is not None else TargetSettings()
        self.rvm_settings = rvm_settings or RVMSettings()
        self.description = description
        self._features: torch.Tensor | None = None
        # LR-ASPP output = the appearance features (hooked: the network stays a plain module).
        self.rvm.aspp.register_forward_hook(lambda _m, _i, out: setattr(self, "_features", out))
        self.set_mask(mask, keyframes)

    @property
    def targets(self) -> tuple[int, ...]:
        return self._outputs

    def set_mask(self, mask=None, keyframes: dict | None = None) -> None:
        self.schedule: dict[int, TargetMask] = mask_schedule(mask, keyframes)
        self._outputs = schedule_ids(self.schedule)
        self.reset()

    def add_keyframe(self, index: int, mask) -> None:
        """A correction at frame ``index`` (not run yet, e.g. after :meth:`load_state`) of targets this
        run has: applied there as a keyframe of the schedule would have been."""
        self.schedule = add_keyframe(self.schedule, index, mask, self._outputs, self._frame)

    def reset(self, concurrent_io: bool = False) -> None:
        s = self.settings
        self._frame = 0
        self.person_alpha: np.ndarray | None = None
        # Tracked ids: the given targets, then the bystanders of the first mask's frame (negative
        # ids, never output): tracked like targets, they hold on to themselves when they touch
        # or pass in front of a target, which a bare "someone else" core does not.
        self._ids: tuple[int, ...] = self._outputs
        self._rec: list[torch.Tensor | None] = [None] * 4
        self._motion = MotionField(s.flow_preset)
        self._memory = AppearanceMemory(s.max_mem_frames, s.top_k, s.temperature)
        self._probs: np.ndarray | None = None  # [1 + K, h, w] of the previous frame
        self._warped: np.ndarray | None = None  # the same, warped onto the current frame
        self._recalled: np.ndarray | None = None  # [K, h, w] this frame's memory readout >= 0.5
        self._tracked = np.zeros(len(self._ids), bool)
        # Each target's size (working px) when last seen (nearly) whole: the reference that
        # tells a hidden target (little of it left) and sizes the regions re-identification
        # considers.
        self._size = np.zeros(len(self._ids), np.float64)
        self._colour: list[np.ndarray | None] = [None] * len(self._ids)  # per target, from its mask
        self._others_colour: np.ndarray | None = None  # people who are no target, from the masks' frames
        self._others: np.ndarray | None = None  # where people who are no target were, last frame
        self._whole: np.ndarray | None = None  # each output target's whole mask, carried (see _carry_masks)
        # Output targets whose mask holds more than their person part (what they ride or hold):
        # only those pick up RVM's pieces of it (see _held_pieces).
        self._rides = np.zeros(len(self._outputs), bool)
        # Targets whose mask held no person RVM sees (people too small or blurred for it, or no
        # person at all): their mask is carried by motion until a person appears in it; the
        # matte stays empty meanwhile (this mode mattes people only). Warned once per target.
        self._pending = np.zeros(len(self._ids), bool)
        self._late = np.zeros(len(self._ids), bool)  # bystanders first seen after the mask's frame
        # Output targets whose mask RVM first called a person and then took back as its recurrent
        # state settled on the frame (a dog, a statue): no person, an empty matte for the whole
        # clip (until a later mask of that id). See _settle.
        self._no_person = np.zeros(len(self._outputs), bool)
        self._warm = False  # RVM's recurrent state has seen a frame (see _settle)
        self._warned: list[int] = []  # a list, not a set: a --resume journal saves this state

    # Everything reset() sets that the frames change: the streaming state a journal saves.
    _STREAM = (
        "_frame",
        "_ids",
        "_rec",
        "_probs",
        "_warped",
        "_tracked",
        "_size",
        "_colour",
        "_others_colour",
        "_others",
        "_whole",
        "_rides",
        "_pending",
        "_late",
        "_no_person",
        "_warm",
        "_warned",
    )

    def state(self) -> State:
        out = {name: getattr(self, name) for name in self._STREAM}
        out["motion"] = self._motion.state()
        out["memory"] = self._memory.state()
        return out

    def load_state(self, state: State) -> None:
        for name in self._STREAM:
            value = state[name]
            setattr(
                self,
                name,
                tuple(value) if name == "_ids" else list(value) if name in ("_rec", "_colour", "_warned") else value,
            )
        self._motion.load_state(state["motion"])
        self._memory.load_state(state["memory"])

    # -- per frame ---------------------------------------------------------------------------

    @torch.inference_mode()
    def _rvm(self, image: np.ndarray, foreground: bool) -> tuple[np.ndarray | None, np.ndarray, torch.Tensor]:
        src = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        src = src.permute(2, 0, 1).unsqueeze(0).float().mul_(image_scale(image))
        fgr, pha, *self._rec = self.rvm(src, *self._rec, downsample_ratio=ratio_for(image, self.rvm_settings))
        fgr_np = np.ascontiguousarray(fgr[0].permute(1, 2, 0).float().cpu().numpy()) if foreground else None
        return fgr_np, pha[0, 0].float().cpu().numpy(), self._features[0].float().cpu()

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        s = self.settings
        h, w = image.shape[:2]
        keyframe = self.schedule.get(self._frame)
        fgr, alpha, features, cold = self._settle(image, foreground, keyframe is not None)
        self.person_alpha = alpha  # RVM's alpha of every person (evaluation reads it: bystander leak)
        scale = min(1.0, s.work_size / max(h, w))
        size = (max(8, round(w * scale)), max(8, round(h * scale)))  # cv2 order: (w, h)
        small = to_uint8(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        self._motion.update(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        key = AppearanceMemory.key(features)
        tokens = features.shape[1:]
        labels = 1 + len(self._ids)

        probs = self._propagate(key, tokens, size, labels)
        first_mask = not self._tracked.any()
        others = (
            self._motion.warp(self._others[None])[0] if self._others is not None else np.zeros(size[::-1], np.float32)
        )
        if keyframe is not None:
            probs = self._apply_keyframe(probs, fit_to_frame(keyframe, (h, w)), size)
        whole_mask = self._carry_masks(probs, keyframe, size)
        person = person_cells(alpha, size)  # any pixel of a cell: thin parts survive the downsampling
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        if keyframe is not None:  # a given mask sets the size and colours of its targets
            for target_id in keyframe.targets:
                k = self._ids.index(target_id)
                # The target's person part: what RVM mattes of it. A rider's mask holds the horse
                # too, but only the rider is ever matted, so only the rider sets its size.
                self._size[k] = float((person & (probs[k + 1] >= 0.5)).sum())
                if k < len(self._outputs):  # a mask with no person in it holds only something else
                    marked = float((probs[k + 1] >= 0.5).sum())
                    self._rides[k] = marked > (1.0 + s.held_margin) * self._size[k]
                self._colour[k] = histogram(hsv, person & (probs[k + 1] >= 0.5))
                self._pending[k] = self._size[k] == 0
                if k < len(self._outputs):
                    self._no_person[k] = self._faded(cold, probs[k + 1] >= 0.5, size)
                    self._tracked[k] &= ~self._no_person[k]
                    self._pending[k] &= ~self._no_person[k]
                if self._pending[k] or (k < len(self._outputs) and self._no_person[k]):
                    self._warn_no_person(target_id, for_good=k < len(self._outputs) and self._no_person[k])
            probs, others = self._keyframe_others(probs, person)
            if first_mask:
                probs, others = self._track_bystanders(probs, others, hsv)
                labels = probs.shape[0]
            colour = histogram(hsv, others > 0)
            if colour is not None:
                self._others_colour = colour
        # The predicted extent: the larger of the size last seen whole and the predicted core's
        # area (motion scales it as the target comes nearer).
        core_area = (probs[1:] >= 0.5).reshape(len(self._ids), -1).sum(1)
        extent = np.where(self._tracked & (self._size > 0), np.maximum(self._size, core_area), 0.0)
        cut = np.zeros(len(self._ids), bool)
        recalled = self._recalled if self._recalled is not None and self._recalled.shape[0] == len(self._ids) else None
        regions = assign_regions(
            person,
            probs,
            others,
            s.keep_fraction,
            s.min_fraction,
            cut=cut,
            size=extent,
            recalled=recalled,
            merge_growth=s.merge_growth,
            reach=s.reach,
            inside_fraction=s.inside_fraction,
            split_reach=s.split_reach,
        )
        regions[self._hidden(regions, probs, keyframe)] = False
        if keyframe is not None:  # in its own frame the given mask is the truth: nothing it leaves out
            for target_id in keyframe.targets:
                k = self._ids.index(target_id)
                regions[k] = person & (probs[k + 1] >= 0.5)
        if len(self._memory):  # not the video's first mask frame
            regions = self._reacquire(regions, person, hsv)
        regions &= self._tracked[:, None, None]
        for k in range(len(self._ids)):
            regions[k] = drop_lookalikes(hsv, regions[k], self._colour[k], self._rest_colour(k))
        regions = self._held_pieces(regions, person, whole_mask)
        area = regions.reshape(len(self._ids), -1).sum(1)
        # Seen (nearly) whole and not suddenly larger (merged with someone): follow its size as
        # it moves in depth. A target first seen now (no person in its mask) takes its size.
        # A region cut to the predicted position says nothing about the size (it would ratchet down).
        grown = ((area >= 0.8 * self._size) & (area <= s.merge_growth * extent) & ~cut) | (
            (self._size == 0) & (area > 0)
        )
        self._size = np.where(grown, area, self._size)
        self._pending &= area == 0
        if len(self._memory):
            regions, labels = self._new_bystanders(regions, person, hsv)
        self._others = self._next_others(person, regions.any(0), others, s.bystander_area * person.size)

        alphas: dict[int, np.ndarray] = {}
        state = np.zeros((labels,) + regions.shape[1:], np.float32)
        edge = _disk(s.edge_px)
        claimed = regions.any(0)
        for k, target_id in enumerate(self._ids):
            state[k + 1] = regions[k]  # binary: thin parts would fade in a soft map
            if self._pending[k] and self._warped is not None:
                # No person seen in it yet (people too small or hidden for RVM): its mask is
                # carried by motion as the place to find them, and nothing is matted.
                source = probs if keyframe is not None and target_id in keyframe.targets else self._warped
                state[k + 1] = np.maximum(state[k + 1], (source[k + 1] >= 0.5) & ~claimed)
            elif self._pending[k]:
                state[k + 1] = np.maximum(state[k + 1], probs[k + 1] >= 0.5)
            if target_id not in self._outputs:
                continue
            # Widen the region a little (not into another target's) so RVM's soft edge, which
            # extends past the 0.5 line, survives the gate.
            gate = (cv2.dilate(regions[k].astype(np.uint8), edge) > 0) & (regions[k] | ~claimed)
            gate_full = cv2.resize(gate.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            alphas[target_id] = alpha * gate_full
        state[0] = np.clip(1.0 - state[1:].sum(0), 0.0, 1.0)
        self._probs = state
        if keyframe is not None or self._frame % s.mem_every == 0:
            values = F.interpolate(torch.from_numpy(state)[None], size=tuple(tokens), mode="area")[0]
            values = values.reshape(labels, -1)
            self._memory.add(key, values.contiguous(), permanent=keyframe is not None)
        self._frame += 1
        return fgr, alphas

    def step(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        fgr, alphas = self.step_all(image, foreground)
        return fgr, alphas[self._outputs[0]]

    # -- stages ------------------------------------------------------------------------------

    def _propagate(self, key, tokens, size, labels) -> np.ndarray:
        """Prior target maps for this frame: warped previous maps, fused with the memory readout."""
        self._recalled = None
        if self._probs is None:
            probs = np.zeros((labels,) + size[::-1], np.float32)
            probs[0] = 1.0
            return probs
        warped = self._motion.warp(self._probs)
        self._warped = warped  # carried targets follow the motion alone (see step_all)
        if len(self._memory) == 0:
            return warped
        read = self._memory.readout(key, labels).reshape(labels, *tokens)
        readout = F.interpolate(read[None], size=size[::-1], mode="bilinear", align_corners=False)[0].numpy()
        self._recalled = readout[1:] >= 0.5  # where the memory alone puts each target (see assign_regions)
        return region_adaptive_fusion(readout, warped, change_probability(warped, self.settings.band))

    def _track_bystanders(
        self, probs: np.ndarray, others: np.ndarray, hsv: np.ndarray, limit: int = 8
    ) -> tuple[np.ndarray, np.ndarray]:
        """The people of the first mask's frame that are no target (``others``) become tracked
        bystanders, the largest ``limit`` of them (specks under 0.1% of the frame stay "others")."""
        count, comp, stats, _ = cv2.connectedComponentsWithStats((others > 0).astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        big = [1 + int(r) for r in np.argsort(-areas)[:limit] if areas[r] >= 1e-3 * others.size]
        if not big:
            return probs, others
        maps = np.stack([(comp == r).astype(np.float32) for r in big])
        self._ids = self._ids + tuple(-(i + 1) for i in range(len(big)))
        n = len(big)
        self._tracked = np.concatenate([self._tracked, np.ones(n, bool)])
        self._pending = np.concatenate([self._pending, np.zeros(n, bool)])
        self._late = np.concatenate([self._late, np.zeros(n, bool)])
        self._size = np.concatenate([self._size, maps.reshape(n, -1).sum(1).astype(np.float64)])
        self._colour += [histogram(hsv, m > 0) for m in maps]
        probs = np.concatenate([probs, maps])
        probs[0] = np.clip(1.0 - probs[1:].sum(0), 0.0, 1.0)
        return probs, np.where(maps.any(0), 0.0, others).astype(np.float32)

    def _carry_masks(self, probs: np.ndarray, keyframe: TargetMask | None, size) -> np.ndarray:
        """Each output target's whole mask (what the user marked: the rider *and* the horse),
        carried by motion alone from its mask frame and re-anchored on the target's person
        pixels every frame. [K, h, w] bool, for :meth:`_held_pieces`."""
        k_out = len(self._outputs)
        if self._whole is None or self._whole.shape[1:] != size[::-1]:
            self._whole = np.zeros((k_out,) + size[::-1], np.float32)
        else:
            self._whole = self._motion.warp(self._whole)
        if keyframe is not None:
            for target_id in keyframe.targets:
                k = self._ids.index(target_id)
                # Any cell the mask touches: thin parts (kite lines, a bike's frame) stay in.
                self._whole[k] = probs[k + 1] > 0.1
        # Widened a little: thin parts fade in the warp, and RVM's pieces have loose edges.
        return np.array([cv2.dilate((m >= 0.25).astype(np.uint8), _disk(2)) > 0 for m in self._whole], bool).reshape(
            self._whole.shape
        )

    def _held_pieces(self, regions: np.ndarray, person: np.ndarray, whole_mask: np.ndarray) -> np.ndarray:
        """Person pieces nobody holds that lie mostly inside a seen target's carried whole mask
        (RVM mattes a bit of the horse, the bike, the cart the target rides), or that are no
        person-sized region and lie within ``split_reach`` of the target (RVM's pieces of the bar,
        the lines, the board it holds, which drift out of the carried mask as it moves): the
        target's, as the user's mask said; the carried mask is then re-anchored on what the
        target holds. Only for a target whose mask holds something besides its person part: for
        a mask of a person alone, what its carried mask once covered (someone it overlapped while
        they hid behind it) is no piece of it, and re-anchoring would carry that someone along
        for good."""
        s = self.settings
        free = person & ~regions.any(0)
        count, comp = cv2.connectedComponents(free.astype(np.uint8), connectivity=8)
        area = np.maximum(np.bincount(comp.ravel(), minlength=count), 1)
        small = area < s.bystander_area * person.size  # no one else: under a new bystander's size
        for k in range(len(self._outputs)):
            if count > 1 and regions[k].any() and self._rides[k]:
                inside = np.bincount(comp.ravel(), weights=whole_mask[k].ravel(), minlength=count) / area
                far = cv2.distanceTransform((~regions[k]).view(np.uint8), cv2.DIST_L2, 3)
                nearest = np.full(count, np.inf)
                np.minimum.at(nearest, comp.ravel(), far.ravel())
                held = (inside >= s.inside_fraction) | (small & (nearest <= s.split_reach))
                held[0] = False
                pieces = held[comp] & free
                regions[k] |= pieces
                free &= ~pieces
            self._whole[k] = np.maximum(self._whole[k], regions[k])
        return regions

    def _settle(self, image: np.ndarray, foreground: bool, masked: bool):
        """RVM on this frame; on the video's first frame RVM's recurrent state starts cold, and
        cold it calls more things a person than it does a few frames on (a dog, a crowd far
        behind): the first frame is run ``warmup`` more times so the state settles on it (as RVM
        does over the next frames), and what it saw cold is returned when a mask is given here
        (see :meth:`_faded`). -> (fgr, alpha, features, cold alpha or None)"""
        fgr, alpha, features = self._rvm(image, foreground)
        cold = None
        if not self._warm and self.settings.warmup > 0:
            cold = alpha if masked else None
            for _ in range(self.settings.warmup):
                fgr, alpha, features = self._rvm(image, foreground)
        self._warm = True
        return fgr, alpha, features, cold

    def _faded(self, cold: np.ndarray | None, mask: np.ndarray, size) -> bool:
        """No person at the mask: RVM took back, as its state settled, what it saw there cold."""
        if cold is None:
            return False
        s = self.settings
        return faded(person_cells(cold, size), person_cells(self.person_alpha, size), mask, s.fade_seen, s.fade_kept)

    def _warn_no_person(self, target_id: int, for_good: bool = False) -> None:
        if target_id not in self._warned:
            self._warned.append(target_id)
            warnings.warn(no_person_message(target_id, self._frame, for_good), stacklevel=3)

    def _keyframe_others(self, probs: np.ndarray, person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where people who are no target are in a mask's frame: the person regions the mask does
        not touch, and what the mask leaves out of the regions it touches (a piece of car RVM
        joined to her, the fingertips of someone she touches), when more than a sliver along the
        mask's edge. Both become someone else's cores: the first frame's mask is respected, what
        it excludes stays excluded until it stops being a person region of its own."""
        count, comp = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
        target = probs[0] < 0.5
        touched = np.bincount(comp.ravel(), weights=target.ravel(), minlength=count) > 0
        touched[0] = True
        untouched = ~touched[comp]
        excluded = (person & touched[comp] & ~target & (comp > 0)).astype(np.uint8)
        excluded = cv2.morphologyEx(excluded, cv2.MORPH_OPEN, _disk(self.settings.sliver_px)) > 0
        return probs, (untouched | excluded).astype(np.float32)

    def _hidden(self, regions: np.ndarray, probs: np.ndarray, keyframe: TargetMask | None) -> np.ndarray:
        """Targets that went behind someone: what is left of them is well under their size *and*
        someone else holds most of where they should be. A target that only looks smaller (curled
        up in a flip, turned sideways, behind a car) keeps what it has: motion and memory carry it.
        A hidden target is dropped rather than left to grow into whoever hides it; it is looked
        for again by colour when it comes out."""
        s = self.settings
        area = regions.reshape(len(self._ids), -1).sum(1)
        hidden = self._tracked & (self._size > 0) & (area < s.hidden_fraction * self._size)
        if (hidden & (area > 0)).any():
            # Behind someone = what is left of it shares an RVM person region with someone else.
            person = regions.any(0)
            count, comp = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
            for k in np.flatnonzero(hidden & (area > 0)):
                mine = np.unique(comp[regions[k]])
                others = np.delete(regions, k, axis=0).any(0) if len(self._ids) > 1 else np.zeros_like(person)
                hidden[k] = bool(np.isin(comp[others], mine).any())
        if keyframe is not None:
            hidden &= ~np.isin(self._ids, list(keyframe.targets))
        return hidden

    def _new_bystanders(self, regions: np.ndarray, person: np.ndarray, hsv: np.ndarray) -> tuple[np.ndarray, int]:
        """People who appear or become visible after the mask's frame (a crowd RVM picks up later,
        someone walking in, what a target's region left over when it merged with others) become
        bystanders with their own maps and memory, so that when they touch a target later the
        region is split between them rather than given to the target whole."""
        s = self.settings
        room = s.max_bystanders - sum(1 for i in self._ids if i < 0)
        if room <= 0:
            return regions, 1 + len(self._ids)
        # Only person regions nobody tracked is in: what a target's region left over (a limb the
        # cut missed) must not become someone else for good.
        count, comp = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
        held = np.bincount(comp.ravel(), weights=regions.any(0).ravel(), minlength=count) > 0
        held[0] = True
        free = (~held[comp]).astype(np.uint8)
        if not free.any():
            return regions, 1 + len(self._ids)
        count, comp, stats, _ = cv2.connectedComponentsWithStats(free, connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        big = [1 + int(r) for r in np.argsort(-areas)[:room] if areas[r] >= s.bystander_area * free.size]
        if not big:
            return regions, 1 + len(self._ids)
        maps = np.stack([comp == r for r in big])
        n, start = len(big), min([i for i in self._ids if i < 0], default=0)
        self._ids = self._ids + tuple(start - 1 - i for i in range(n))
        self._tracked = np.concatenate([self._tracked, np.ones(n, bool)])
        self._pending = np.concatenate([self._pending, np.zeros(n, bool)])
        self._late = np.concatenate([self._late, np.ones(n, bool)])
        self._size = np.concatenate([self._size, maps.reshape(n, -1).sum(1).astype(np.float64)])
        self._colour += [histogram(hsv, m) for m in maps]
        return np.concatenate([regions, maps]), 1 + len(self._ids)

    def _apply_keyframe(self, probs: np.ndarray, mask: TargetMask, size) -> np.ndarray:
        probs = probs.copy()
        for target_id, m in mask.targets.items():
            k = self._ids.index(target_id) + 1
            given = cv2.resize(m, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            probs *= 1.0 - given  # the mask overrides every other label where it says "target"
            probs[k] = given
            self._tracked[k - 1] = True
        probs[0] = np.clip(1.0 - probs[1:].sum(0), 0.0, 1.0)
        return probs

    @staticmethod
    def _next_others(person: np.ndarray, claimed: np.ndarray, others: np.ndarray, min_area: float) -> np.ndarray:
        """Where people who are no target are now: person regions with no target in them, plus
        the carried cores of such people inside regions shared with a target (not every pixel a
        target left out: slivers next to a target would grow into false "someone else" cores).
        A new region with no target counts only when it is person-sized (``min_area``, the size
        of a new bystander): a fleck of RVM's alpha, or a piece of the target RVM split off for a
        frame (a helmet, a hand), is nobody; made someone else, it would take that part of the
        target for good once it joins the target's region again (a core keeps itself)."""
        count, comp, stats, _ = cv2.connectedComponentsWithStats(person.astype(np.uint8), connectivity=8)
        has_target = np.bincount(comp.ravel(), weights=claimed.ravel(), minlength=count) > 0
        person_sized = stats[:, cv2.CC_STAT_AREA] >= min_area
        free = person & ~claimed
        return (free & ((~has_target & person_sized)[comp] | (others >= 0.5))).astype(np.float32)

    def _reacquire(self, regions: np.ndarray, person: np.ndarray, hsv: np.ndarray) -> np.ndarray:
        """Targets with no region left: look for them again by their colours, among the person
        regions no target holds (the way back; a chain of warps has none)."""
        lost = [
            k
            for k in range(regions.shape[0])
            if self._tracked[k] and self._colour[k] is not None and not regions[k].any()
        ]
        for k in lost:
            # A bystander first seen after the mask's frame may be the lost target come back
            # (it reappeared before its colours were recognised): its region is a candidate too.
            late = self._late & self._tracked & (np.array(self._ids) < 0)
            free = person & ~np.delete(regions, np.flatnonzero(late), axis=0).any(0)
            if not free.any():
                break
            regions[k] = find_by_colour(
                hsv,
                free,
                self._colour[k],
                self._rest_colour(k),
                0.25 * self._size[k],
                self.settings.reacquire_similarity,
            )
            for j in np.flatnonzero(late):
                if (regions[j] & regions[k]).any():  # it was the target: no longer a bystander
                    regions[j] = False
                    self._tracked[j] = False
        return regions

    def _rest_colour(self, k: int) -> np.ndarray | None:
        """Colours of everyone but target ``k``: the other targets and the people no target is."""
        return combine([self._others_colour] + [c for j, c in enumerate(self._colour) if j != k])
