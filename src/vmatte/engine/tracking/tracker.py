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

Limits (honest): only what RVM sees as a person is matted; objects a target holds or rides
(a board, a kite, a bike) are not. MatAnyone (``--model matanyone``) mattes any object.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from ...io.masks import TargetMask, fit_to_frame, mask_schedule, schedule_ids
from ...models.rvm import RobustVideoMatting
from ..matter import PerFrameMatter, State
from ..rvm import RVMSettings, image_scale, ratio_for
from .appearance import AppearanceMemory
from .assign import _disk, assign_regions, change_probability, region_adaptive_fusion
from .colour import combine, drop_lookalikes, find_by_colour, histogram
from .motion import MotionField
from .settings import TargetSettings

PERSON_THRESHOLD = 0.5  # RVM alpha at which a pixel belongs to a person region


class TargetTracker(PerFrameMatter):
    """A :class:`~vmatte.engine.matter.Matter` with several targets: ``step_all`` returns
    ``(fgr, {id: alpha})``; ``step`` the first target's alpha. ``mask``/``keyframes`` as for
    MatAnyone: a target id first seen at frame k has alpha 0 before k; a later mask of a
    tracked id resets it from that frame on."""

    def __init__(self, rvm: RobustVideoMatting, device: torch.device | str = "cpu", mask=None,
                 keyframes: dict | None = None, settings: TargetSettings | None = None,
                 rvm_settings: RVMSettings | None = None, description: str = "offline target mode") -> None:
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

    def reset(self, concurrent_io: bool = False) -> None:
        s = self.settings
        self._frame = 0
        # Tracked ids: the given targets, then the bystanders of the first mask's frame (negative
        # ids, never output): tracked like targets, they hold on to themselves when they touch
        # or pass in front of a target, which a bare "someone else" core does not.
        self._ids: tuple[int, ...] = self._outputs
        self._rec: list[torch.Tensor | None] = [None] * 4
        self._motion = MotionField(s.flow_preset)
        self._memory = AppearanceMemory(s.max_mem_frames, s.top_k, s.temperature)
        self._probs: np.ndarray | None = None  # [1 + K, h, w] of the previous frame
        self._warped: np.ndarray | None = None  # the same, warped onto the current frame
        self._tracked = np.zeros(len(self._ids), bool)
        # Each target's size (working px) when last seen (nearly) whole: the reference that
        # tells a hidden target (little of it left) and sizes the regions re-identification
        # considers.
        self._size = np.zeros(len(self._ids), np.float64)
        self._colour: list[np.ndarray | None] = [None] * len(self._ids)  # per target, from its mask
        self._others_colour: np.ndarray | None = None  # people who are no target, from the masks' frames
        self._others: np.ndarray | None = None  # where people who are no target were, last frame
        # Targets RVM has matted as a person since their mask. One it never has (a bystander RVM
        # leaves out, an object) is carried by its propagated mask instead, so that every given
        # target has a matte from its mask on (coarser: no RVM edges).
        self._person = np.zeros(len(self._ids), bool)

    # Everything reset() sets that the frames change: the streaming state a journal saves.
    _STREAM = ("_frame", "_ids", "_rec", "_probs", "_warped", "_tracked", "_size", "_colour", "_others_colour",
               "_others", "_person")

    def state(self) -> State:
        out = {name: getattr(self, name) for name in self._STREAM}
        out["motion"] = self._motion.state()
        out["memory"] = self._memory.state()
        return out

    def load_state(self, state: State) -> None:
        for name in self._STREAM:
            value = state[name]
            setattr(self, name, tuple(value) if name == "_ids" else list(value) if name in ("_rec", "_colour")
                    else value)
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
        fgr, alpha, features = self._rvm(image, foreground)
        scale = min(1.0, s.work_size / max(h, w))
        size = (max(8, round(w * scale)), max(8, round(h * scale)))  # cv2 order: (w, h)
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if small.dtype == np.uint16:
            small = (small >> 8).astype(np.uint8)
        self._motion.update(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        key = AppearanceMemory.key(features)
        tokens = features.shape[1:]
        labels = 1 + len(self._ids)

        probs = self._propagate(key, tokens, size, labels)
        first_mask = not self._tracked.any()
        others = (self._motion.warp(self._others[None])[0] if self._others is not None
                  else np.zeros(size[::-1], np.float32))
        keyframe = self.schedule.get(self._frame)
        if keyframe is not None:
            probs = self._apply_keyframe(probs, fit_to_frame(keyframe, (h, w)), size)
        # Person pixels at the working size: a cell is a person's if any of its pixels is, so
        # thin parts (fingers, a kite line RVM caught) are not lost in the downsampling.
        person = cv2.resize((alpha >= PERSON_THRESHOLD).view(np.uint8), size, interpolation=cv2.INTER_AREA) > 0
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        if keyframe is not None:  # a given mask sets the size and colours of its targets
            for target_id in keyframe.targets:
                k = self._ids.index(target_id)
                self._size[k] = max(float(probs[k + 1].sum()), 1.0)
                self._colour[k] = histogram(hsv, person & (probs[k + 1] >= 0.5))
            # Everyone else in the mask's frame (person regions the mask does not touch): a colour
            # model, and cores that keep them apart from the targets when they touch later.
            count, comp = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
            touched = np.bincount(comp.ravel(), weights=(probs[0] < 0.5).ravel(), minlength=count) > 0
            touched[0] = True
            others = (~touched[comp]).astype(np.float32)
            if first_mask:
                probs, others = self._track_bystanders(probs, others, hsv)
                labels = probs.shape[0]
            colour = histogram(hsv, others > 0)
            if colour is not None:
                self._others_colour = colour
        regions = assign_regions(person, probs, others, s.keep_fraction, s.min_fraction,
                                 size=np.where(self._tracked, self._size, 0.0))
        # Mostly hidden (what is left is well under its size): lost, rather than left to grow
        # into whoever hides it; it is looked for again by colour when it reappears.
        area = regions.reshape(len(self._ids), -1).sum(1)
        hidden = self._tracked & (self._size > 0) & (area < s.hidden_fraction * self._size)
        if keyframe is not None:
            hidden &= ~np.isin(self._ids, list(keyframe.targets))
        regions[hidden] = False
        if len(self._memory):  # not the video's first mask frame
            regions = self._reacquire(regions, person, hsv)
        regions &= self._tracked[:, None, None]
        for k in range(len(self._ids)):
            regions[k] = drop_lookalikes(hsv, regions[k], self._colour[k], self._rest_colour(k))
        if keyframe is not None:
            for target_id in keyframe.targets:
                self._person[self._ids.index(target_id)] = False
        self._person |= regions.reshape(len(self._ids), -1).any(1)
        carried = self._tracked & ~self._person
        for k in np.flatnonzero(carried):
            # Motion alone: the memory readout is built for person regions and would erode it.
            given = keyframe is not None and self._ids[k] in keyframe.targets
            source = probs if given or self._warped is None else self._warped
            regions[k] = (source[k + 1] >= 0.5) & ~regions.any(0)
        area = regions.reshape(len(self._ids), -1).sum(1)
        # Seen (nearly) whole and not suddenly larger (merged with someone): follow its size as
        # it moves in depth.
        grown = (area >= 0.8 * self._size) & (area <= 1.25 * self._size)
        self._size = np.where(grown, area, self._size)
        self._others = self._next_others(person, regions.any(0), others)

        alphas: dict[int, np.ndarray] = {}
        state = np.zeros((labels,) + regions.shape[1:], np.float32)
        edge = _disk(s.edge_px)
        claimed = regions.any(0)
        for k, target_id in enumerate(self._ids):
            state[k + 1] = regions[k]  # binary: thin parts would fade in a soft map
            if target_id not in self._outputs:
                continue
            # Widen the region a little (not into another target's) so RVM's soft edge, which
            # extends past the 0.5 line, survives the gate.
            gate = (cv2.dilate(regions[k].astype(np.uint8), edge) > 0) & (regions[k] | ~claimed)
            gate_full = cv2.resize(gate.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            if carried[k]:  # no RVM alpha for it: the propagated mask, edges softened
                alphas[target_id] = cv2.GaussianBlur(cv2.resize(regions[k].astype(np.float32), (w, h),
                                                                interpolation=cv2.INTER_LINEAR), (0, 0), 1.0)
                continue
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
        return region_adaptive_fusion(readout, warped, change_probability(warped, self.settings.band))

    def _track_bystanders(self, probs: np.ndarray, others: np.ndarray, hsv: np.ndarray,
                          limit: int = 8) -> tuple[np.ndarray, np.ndarray]:
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
        self._person = np.concatenate([self._person, np.zeros(n, bool)])
        self._size = np.concatenate([self._size, maps.reshape(n, -1).sum(1).astype(np.float64)])
        self._colour += [histogram(hsv, m > 0) for m in maps]
        probs = np.concatenate([probs, maps])
        probs[0] = np.clip(1.0 - probs[1:].sum(0), 0.0, 1.0)
        return probs, np.where(maps.any(0), 0.0, others).astype(np.float32)

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
    def _next_others(person: np.ndarray, claimed: np.ndarray, others: np.ndarray) -> np.ndarray:
        """Where people who are no target are now: person regions with no target in them, plus
        the carried cores of such people inside regions shared with a target (not every pixel a
        target left out: slivers next to a target would grow into false "someone else" cores)."""
        count, comp = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
        has_target = np.bincount(comp.ravel(), weights=claimed.ravel(), minlength=count) > 0
        free = person & ~claimed
        return (free & (~has_target[comp] | (others >= 0.5))).astype(np.float32)

    def _reacquire(self, regions: np.ndarray, person: np.ndarray, hsv: np.ndarray) -> np.ndarray:
        """Targets with no region left: look for them again by their colours, among the person
        regions no target holds (the way back; a chain of warps has none)."""
        lost = [k for k in range(regions.shape[0])
                if self._tracked[k] and self._colour[k] is not None and not regions[k].any()]
        for k in lost:
            free = person & ~regions.any(0)
            if not free.any():
                break
            regions[k] = find_by_colour(hsv, free, self._colour[k], self._rest_colour(k), 0.25 * self._size[k],
                                        self.settings.reacquire_similarity)
        return regions

    def _rest_colour(self, k: int) -> np.ndarray | None:
        """Colours of everyone but target ``k``: the other targets and the people no target is."""
        return combine([self._others_colour] + [c for j, c in enumerate(self._colour) if j != k])
