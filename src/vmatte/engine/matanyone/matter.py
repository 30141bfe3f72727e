"""MatAnyone as a :class:`~vmatte.engine.matter.Matter`: frames in, (fgr, {id: alpha}) out.

The targets are given as a mask on the first frame of each video: one HxW map (0 =
background, 255 = target), or several targets (``{id: HxW}``, a label mask, a
:class:`~vmatte.io.masks.TargetMask`), plus optional keyframe masks at later frames that add a
target from that frame on or correct one. A mask of another size is resized to the frame with a
warning. A target's first mask runs the mask step and the warm-up; later steps are one network
pass per target.

Several targets run batched, the target as the batch axis. The image encoder (ResNet-50 to
stride 16, the largest part of a step) and the key projection run once per frame for everyone
(:class:`SharedImageEncoding`). Past them, targets are tracked in *groups*: one
:class:`InferenceCore` per group, whose mask encoder, top-k memory readout (one affinity for
the group), change-probability head and fusion, object transformer and decoder are one batched
call over the group's targets. :meth:`step_all` returns every target's alpha; :meth:`step` (the
FrameMatter protocol) the first target's.

Grouping rule: the targets that get a mask at the same frame form one group from that frame on.
That covers the ids of a first-frame label mask (one group, one pass) and, at a keyframe, both
the ids it introduces and the ids it re-initialises: they leave their old groups (a group losing
only some members is split, :meth:`InferenceCore.select`) and join one new group
(:meth:`InferenceCore.concat`). This is exact, not an approximation, because a group's targets
then share everything batching needs to be shared: the memory frames (so the keys and the top-k
affinity) and the step schedule (memory frames every ``mem_every``, sensory updates). After a
keyframe both kinds hold one permanent memory frame, that frame, and the next memory frame
``mem_every`` later; a newly started target runs its warm-up while the re-initialised ones wait
(the warm-up replaces the memory with its last prediction, which is again that frame). Groups
that started at different frames are not merged: their memory frames differ, so their keys and
affinities do, and a merge would change their results.

MatAnyone predicts alpha only. ``fgr`` is the input frame's colour (the usual straight-colour
approximation; it is exact where alpha is 1 and unused where alpha is 0). The official demo's
"fgr" output is a green composite instead, which is not a foreground.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...errors import VmatteError
from ...io.masks import TargetMask, add_keyframe, fit_to_frame, mask_schedule, schedule_ids
from ...models.matanyone import MatAnyone
from ..device import check_precision, resolve_device
from ..matter import PerFrameMatter, State, to_float
from .core import InferenceCore
from .optimise import prepare_network
from .preprocess import image_to_tensor
from .settings import MatAnyoneSettings
from .stream import reinitialise, start


@dataclass
class TargetGroup:
    """Targets tracked together: ``ids[j]`` is batch entry j of ``core``."""

    ids: list[int]
    core: InferenceCore


class SharedImageEncoding:
    """The network, with ``encode_image``/``transform_key`` computed once per distinct frame.

    Every other attribute is the network's. The last input is kept with its features; a call
    with an equal tensor (same shape, same values: one cheap comparison) returns the kept
    features. So the cores of several targets, and the warm-up repeats of frame 0, encode each
    frame once, and the results are bit-identical to encoding it again.
    """

    def __init__(self, network: MatAnyone) -> None:
        self.network = network
        self._image: Tensor | None = None
        self._features: tuple[list[Tensor], Tensor] | None = None
        self._keys: tuple[Tensor, tuple[Tensor, Tensor, Tensor]] | None = None
        self.encodes = 0  # how many times the image encoder really ran (for tests and speed notes)

    def __getattr__(self, name: str):
        try:
            network = self.__dict__["network"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(network, name)

    def eval(self) -> SharedImageEncoding:
        self.network.eval()
        return self

    def clear(self) -> None:
        self._image = self._features = self._keys = None

    def encode_image(self, image: Tensor) -> tuple[list[Tensor], Tensor]:
        last = self._image
        if last is not None and last.shape == image.shape and last.device == image.device and torch.equal(last, image):
            return self._features
        self._features = self.network.encode_image(image)
        self._image, self._keys = image, None
        self.encodes += 1
        return self._features

    def transform_key(self, f16: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self._keys is not None and self._keys[0] is f16:
            return self._keys[1]
        keys = self.network.transform_key(f16)
        self._keys = (f16, keys)
        return keys


class MatAnyoneMatter(PerFrameMatter):
    """``mask``: frame 0's targets; ``keyframes``: ``{frame index: mask}`` for later frames (or
    frame 0 when ``mask`` is None). A target id first seen at frame k starts there (mask step and
    warm-up, as on a first frame) and has alpha 0 before; an id already tracked is re-initialised
    from its mask at that frame (:func:`~vmatte.engine.matanyone.reinitialise`). Ids a keyframe
    mask does not hold go on untouched."""

    def __init__(
        self,
        network: MatAnyone,
        mask=None,
        settings: MatAnyoneSettings | None = None,
        device: torch.device | str = "cpu",
        description: str = "MatAnyone (PyTorch)",
        max_size: int | None = None,
        keyframes: dict | None = None,
        precision: str = "fp32",
    ) -> None:
        self.network = SharedImageEncoding(network.to(device).eval())
        self.device = torch.device(device)
        dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if precision not in dtypes:
            raise ValueError(f"precision must be one of {', '.join(dtypes)}, got {precision!r}")
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("fp16 autocast needs a GPU; use bf16 or fp32 on the CPU")
        self.precision = precision
        self._autocast_dtype = dtypes[precision]
        self.settings = copy.copy(settings) if settings is not None else MatAnyoneSettings()
        self.max_size = max_size  # long side the network sees (None: full resolution)
        self.description = description
        self.set_mask(mask, keyframes)

    @property
    def targets(self) -> tuple[int, ...]:
        """The target ids, in output order (order of first appearance)."""
        return self._ids

    @property
    def mask(self) -> TargetMask:
        """The earliest mask of the schedule (frame 0's when given)."""
        return next(iter(self.schedule.values()))

    def set_mask(self, mask=None, keyframes: dict | None = None) -> None:
        """New targets (path, HxW array, ``{id: HxW}`` or TargetMask, and/or keyframe masks);
        takes effect at the next video."""
        self.schedule: dict[int, TargetMask] = mask_schedule(mask, keyframes)
        self._ids = schedule_ids(self.schedule)
        self.reset()

    def add_keyframe(self, index: int, mask) -> None:
        """A correction at frame ``index`` (not run yet, e.g. after :meth:`load_state`) of targets this
        run has: applied there as a keyframe of the schedule would have been."""
        self.schedule = add_keyframe(self.schedule, index, mask, self._ids, self._frame)

    def reset(self, concurrent_io: bool = False) -> None:
        """Start a new video (the next frame is its frame 0)."""
        self._frame = 0
        self.groups: list[TargetGroup] = []
        self.network.clear()

    def state(self) -> State:
        """The frame counter, the long side chosen for this video, and each group's core."""
        return {
            "frame": self._frame,
            "max_internal_size": self.settings.max_internal_size,
            "groups": [{"ids": list(g.ids), "core": g.core.state()} for g in self.groups],
        }

    def load_state(self, state: State) -> None:
        self._frame = int(state["frame"])
        self.settings.max_internal_size = state["max_internal_size"]
        self.groups = []
        for g in state["groups"]:
            core = InferenceCore(self.network, self.settings, len(g["ids"]))
            core.load_state(g["core"])
            self.groups.append(TargetGroup([int(i) for i in g["ids"]], core))

    def _internal_short_side(self, h: int, w: int) -> int:
        if self.max_size is None or max(h, w) <= self.max_size:
            return -1
        return max(16, int(round(self.max_size * min(h, w) / max(h, w))))

    def step_all(self, image: np.ndarray, foreground: bool = True) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        """``(fgr HxWx3 or None, {id: alpha HxW})`` float32 for one frame."""
        if self._autocast_dtype is None:
            return self._step_all(image, foreground)
        with torch.autocast(self.device.type, dtype=self._autocast_dtype):
            return self._step_all(image, foreground)

    def _step_all(self, image: np.ndarray, foreground: bool) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        h, w = image.shape[:2]
        if self._frame == 0 and self.max_size is not None:  # per video: the long side the network sees
            self.settings.max_internal_size = self._internal_short_side(h, w)
        keyframe = self.schedule.get(self._frame)
        fitted = fit_to_frame(keyframe, (h, w)) if keyframe is not None else None
        masked = [i for i in self._ids if fitted is not None and i in fitted.targets]
        tracked = {i for g in self.groups for i in g.ids}
        restarted = self._split_off([i for i in masked if i in tracked])
        alphas: dict[int, np.ndarray] = {}
        if self.groups:  # the groups without a mask on this frame: one normal step each
            tensor = image_to_tensor(image, self.network.pixel_mean.device)
            for g in self.groups:
                self._collect(alphas, g.ids, g.core.step(tensor))
        joined: list[TargetGroup] = []
        if restarted is not None:
            out = reinitialise(restarted.core, image, [fitted.targets[i] for i in restarted.ids])
            self._collect(alphas, restarted.ids, out)
            joined.append(restarted)
        new = [i for i in masked if i not in tracked]
        if new:
            core = InferenceCore(self.network, self.settings, len(new))
            self._collect(alphas, new, start(core, image, [fitted.targets[i] for i in new]))
            joined.append(TargetGroup(new, core))
        if joined:  # same memory frame and schedule from here on: one group (module docstring)
            self.groups.append(
                TargetGroup([i for g in joined for i in g.ids], InferenceCore.concat([g.core for g in joined]))
            )
        alphas = {i: alphas.get(i, np.zeros((h, w), np.float32)) for i in self._ids}  # 0 before a first mask
        self._frame += 1
        return to_float(image) if foreground else None, alphas

    @staticmethod
    def _collect(alphas: dict[int, np.ndarray], ids: list[int], out) -> None:
        batch = out.alpha.float().cpu().numpy()
        for j, i in enumerate(ids):
            alphas[i] = batch[j]

    def _split_off(self, ids: list[int]) -> TargetGroup | None:
        """Take ``ids`` out of their groups (splitting groups that keep other targets) and
        return them as one group with an empty working memory, ready for a mask step; None when
        ``ids`` is empty."""
        if not ids:
            return None
        wanted, parts, kept = set(ids), [], []
        for g in self.groups:
            take = [j for j, i in enumerate(g.ids) if i in wanted]
            rest = [j for j, i in enumerate(g.ids) if i not in wanted]
            if take:
                parts.append(TargetGroup([g.ids[j] for j in take], g.core if not rest else g.core.select(take)))
            if rest:
                kept.append(g if not take else TargetGroup([g.ids[j] for j in rest], g.core.select(rest)))
        self.groups = kept
        for p in parts:  # as reinitialise does: working and object memory go, sensory stays
            p.core.memory.clear()
        return TargetGroup([i for p in parts for i in p.ids], InferenceCore.concat([p.core for p in parts]))


def load_matanyone(spec, options, note: str = "") -> MatAnyoneMatter:
    """The registry's loader of MatAnyone and MatAnyone2 (the same network, other weights)."""
    from ...models.loading import load_into
    from ...weights import resolve_matanyone

    name = spec.name
    if options.mask is None and not options.keyframes:
        raise VmatteError(
            f"--model {name} mattes the target of a first-frame mask: give it with --mask PATH "
            f"(white = target, or a label/palette PNG with one id per target)"
        )
    defaults = MatAnyoneSettings()
    settings = MatAnyoneSettings(
        warmup_frames=defaults.warmup_frames if options.warmup_frames is None else options.warmup_frames,
        mem_every=defaults.mem_every if options.mem_every is None else options.mem_every,
        r_erode=defaults.r_erode if options.erode is None else options.erode,
        r_dilate=defaults.r_dilate if options.dilate is None else options.dilate,
    )
    schedule = mask_schedule(options.mask, options.keyframes)  # a bad mask fails before the weights load
    dev = resolve_device(options.device)
    check_precision(options.precision, dev)
    resolved = resolve_matanyone(spec.weights, options.weights)
    net = MatAnyone(with_aux=any(k.startswith("aux_computer.") for k in resolved.state_dict))
    load_into(net, resolved.state_dict, resolved.source, optional=("aux_computer.",))
    # BatchNorm folded, NHWC on the CPU; VMATTE_COMPILE=1 compiles (see optimise.py and the README)
    prepare_network(net, dev)
    ids = schedule_ids(schedule)
    who = f"{len(ids)} targets (ids {', '.join(map(str, ids))})" if len(ids) > 1 else "1 target"
    if len(schedule) > 1 or 0 not in schedule:
        who += f", masks at frames {', '.join(map(str, schedule))}"
    prec = "" if options.precision == "fp32" else f", {options.precision} autocast"
    description = (
        f"{spec.label}{note} on PyTorch/{dev.type}{prec}, {who} (weights: {resolved.source}, {resolved.license})"
    )
    return MatAnyoneMatter(
        net,
        None,
        settings,
        device=dev,
        description=description,
        max_size=options.max_size,
        keyframes=dict(schedule),
        precision=options.precision,
    )
