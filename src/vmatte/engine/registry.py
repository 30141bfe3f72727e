"""Every model vmatte runs, in one place: a :class:`ModelSpec` each, and the ``auto`` rule.

The CLI's ``--model`` choices and help, the app's model menu, ``bench quality``, clicks and
journaling all read these specs; no other module keeps a list of model names. A spec names its
loader as ``"module:function"``, imported only when the model is built, so this module (and the
CLI's ``--help``) needs neither torch nor any model code.

``auto`` (one rule, :func:`choose_auto`):

* per-frame masks (``--masks``): ``videomama`` when its weights are given or cached and a CUDA GPU
  is here (on a CPU it takes minutes per chunk), else ``rvm`` gated by the masks;
* a target (``--mask``, keyframes, clicks): the best MatAnyone whose weights are given or cached
  (``matanyone2``, then ``matanyone``), else ``rvm-target`` (ships with vmatte);
* nothing: ``rvm``.

``tracker`` (``--tracker``): what follows a target through the video for the models that read
per-frame masks. ``sam2`` (or a SAM 2 checkpoint's name or file): the streaming SAM 2 tracker
(:mod:`vmatte.engine.sam2video`, any object); ``rvm``: ``rvm-target``'s alpha (people only);
``auto``: SAM 2 when a SAM 2 checkpoint is cached, else ``rvm``. A per-frame-mask model given a
target (``videomama --mask/--click``) gets the tracker's masks; ``rvm-target --tracker sam2`` is
RVM's alpha kept inside SAM 2's masks (SAM 2 says who, RVM draws the edge). ``auto`` leaves
``rvm-target`` and MatAnyone on their own memories: they track by themselves.

Options (:mod:`vmatte.engine.options`, declared once): each spec lists the model options it takes
(``options``); :meth:`ModelSpec.check_options` refuses any other, and any value out of range, in
one place with one message, before a loader runs. Loaders import :mod:`~vmatte.engine.options`,
never this module (``tools/check_loader_cycles.py`` follows the loader strings to make sure).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import VmatteError
from .options import (
    AUTO,
    BACKENDS,
    EVERY_MODEL,
    EVERY_PERSON,
    FRAME_MASKS,
    GATE_OPTIONS,
    KEYFRAMES,
    MATANYONE_OPTIONS,
    MODEL,
    OPTIONS,
    RVM_OPTIONS,
    SAM2_MATTE_OPTIONS,
    TARGET_RVM_OPTIONS,
    TRACKER_RVM,
    TRACKER_SAM2,
    TRACKERS,
    VIDEOMAMA_OPTIONS,
    MatterOptions,
    Option,
    OptionError,
    tracker_kind,
)

__all__ = [
    "AUTO",
    "BACKENDS",
    "EVERY_PERSON",
    "FRAME_MASKS",
    "KEYFRAMES",
    "TRACKERS",
    "TRACKER_RVM",
    "TRACKER_SAM2",
    "MatterOptions",
    "ModelSpec",
    "SPECS",
]

_RVM_LICENSE = "GPL-3.0 (Robust Video Matting weights)"
_MATANYONE_LICENSE = "S-Lab License 1.0 (non-commercial)"
_VIDEOMAMA_LICENSE = "VideoMaMa model card (non-commercial) + Stability AI SVD licence"
_SAM2_LICENSE = "Apache-2.0 (SAM 2 / 2.1 weights, Meta AI)"
# The part a model plays for the rest of vmatte (a ModelSpec's ``role``), beside matting.
ROLE_PEOPLE = "people"  # the shipped model that finds every person: clicks' person regions, the benchmarks' baseline
ROLE_PERSON_TRACKER = "person tracker"  # the shipped target model: --tracker rvm's mask source
ROLE_SAM2 = "sam2"  # SAM 2's own tracked mask: clicks go to SAM 2 as its point prompts


@dataclass(frozen=True)
class ModelSpec:
    name: str
    help: str  # one line for --help
    label: str  # the model's name in descriptions and the app's menu
    takes: str  # EVERY_PERSON, KEYFRAMES or FRAME_MASKS: what says which subject to matte
    loader: str  # "module:function(spec, options, note) -> Matter", imported when the model is built
    license: str
    options: frozenset[str]  # the MODEL options it takes (engine/options.py); the registry refuses the rest
    weights: str | None = None  # the name of vmatte.weights.cached() when they are not shipped
    role: str = ""  # ROLE_*: what else vmatte uses it for
    every_person: bool = False  # mattes every person in frame (clicks make no sense)
    resumable: bool = True  # its runs can be journaled (--resume)
    needs_gpu: bool = False  # runs on a CPU only in principle (minutes per frame chunk)
    frame_masks: bool = False  # also takes --masks (one mask per frame) through RVM's gate
    variant: str = ""  # the backbone, for model families built by one loader
    # --tracker sam2 feeds it SAM 2's per-frame masks of the target (through --masks' path)
    sam2_masks: bool = False

    def load(self, options: MatterOptions, note: str = ""):
        self.check_options(options)
        if options.has_target and options.masks is None and self._tracked(options):
            tracked = _function("vmatte.engine.mask_source:load_tracked")
            return tracked(self, options, note, person_tracker=load_person_tracker)
        if options.masks is not None and self.takes != FRAME_MASKS:
            if not self.frame_masks:
                if self.takes == KEYFRAMES:
                    raise VmatteError(
                        f"--model {self.name} tracks a target from first-frame/keyframe masks: give them "
                        f"with --mask or --masks-dir; per-frame masks (--masks) go to --model "
                        f"{', '.join(s.name for s in SPECS.values() if s.takes == FRAME_MASKS)} or rvm"
                    )
                raise VmatteError(f"--model {self.name} takes no --masks")
            return _function("vmatte.engine.mask_to_matte:load_gated")(self, options, note)
        return _function(self.loader)(self, options, note)

    def check_options(self, options: MatterOptions) -> None:
        """The one place an option is refused: one the model does not take (run through RVM's gate by
        per-frame masks, it takes GATE_OPTIONS too), or a value outside the option's range."""
        tracked = options.has_target and options.masks is None and self._tracked(options)
        gated = self.takes != FRAME_MASKS and (options.masks is not None or tracked)
        taken = self.options | (GATE_OPTIONS if gated else frozenset())
        given = options.given()
        refused = [o for o in given if o.name not in taken]
        if refused:
            raise OptionError(_refusal(self.name, refused, taken), refused[0])
        for o in given:
            o.check(getattr(options, o.name))

    def _tracked(self, options: MatterOptions) -> bool:
        """Whether a target reaches this model as per-frame masks made by a tracker."""
        if "tracker" not in self.options:
            return False
        return self.takes == FRAME_MASKS or (self.sam2_masks and options.tracker not in (AUTO, TRACKER_RVM))

    @property
    def takes_tracker(self) -> bool:
        """``--tracker`` means something to it (per-frame masks, SAM 2's gate, or SAM 2 itself)."""
        return "tracker" in self.options


def _refusal(name: str, refused: list[Option], taken: frozenset[str]) -> str:
    """``--model rvm does not take --erode (an option of matanyone, matanyone2); it takes ...``: the
    one message for an option a model does not take."""
    by_owners: dict[tuple[str, ...], list[str]] = {}
    for o in refused:
        by_owners.setdefault(tuple(s.name for s in SPECS.values() if o.name in s.options), []).append(o.flag)
    parts = [
        ", ".join(flags)
        + (f" ({'an option' if len(flags) == 1 else 'options'} of {', '.join(owners)})" if owners else "")
        for owners, flags in by_owners.items()
    ]
    own = [o.flag for o in OPTIONS if o.group == MODEL and o.name in taken and o.name not in EVERY_MODEL]
    return (
        f"--model {name} does not take {'; '.join(parts)}; "
        f"{'it takes ' + ', '.join(own) if own else 'it takes no settings but --weights and --device'}"
    )


def tracker_models() -> list[str]:
    """The models ``--tracker`` changes."""
    return [s.name for s in SPECS.values() if s.takes_tracker]


def _function(path: str) -> Callable:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


SPECS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "rvm-target",
            "offline target mode: RVM + a memory of the target(s) of --mask/--click (ships with vmatte; people only)",
            "rvm-target",
            KEYFRAMES,
            "vmatte.engine.tracking.load:load_target",
            _RVM_LICENSE,
            TARGET_RVM_OPTIONS,
            role=ROLE_PERSON_TRACKER,
            frame_masks=True,
            variant="mobilenetv3",
            sam2_masks=True,
        ),
        ModelSpec(
            "rvm",
            "Robust Video Matting, MobileNetV3 (ships with vmatte; mattes every person in frame)",
            "RVM",
            EVERY_PERSON,
            "vmatte.engine.rvm:load_rvm",
            _RVM_LICENSE,
            RVM_OPTIONS,
            role=ROLE_PEOPLE,
            every_person=True,
            frame_masks=True,
            variant="mobilenetv3",
        ),
        ModelSpec(
            "rvm-resnet50",
            "Robust Video Matting, ResNet-50 (needs rvm_resnet50.pth: --weights or download)",
            "RVM ResNet-50",
            EVERY_PERSON,
            "vmatte.engine.rvm:load_rvm",
            _RVM_LICENSE,
            RVM_OPTIONS,
            weights="rvm-resnet50",
            every_person=True,
            frame_masks=True,
            variant="resnet50",
        ),
        ModelSpec(
            "matanyone",
            "MatAnyone (CVPR 2025): the target(s) of --mask (needs matanyone.pth: --weights, cache or download)",
            "MatAnyone",
            KEYFRAMES,
            "vmatte.engine.matanyone.matter:load_matanyone",
            _MATANYONE_LICENSE,
            MATANYONE_OPTIONS,
            weights="matanyone",
        ),
        ModelSpec(
            "matanyone2",
            "MatAnyone2: the MatAnyone network with newer weights (needs matanyone2.pth)",
            "MatAnyone2",
            KEYFRAMES,
            "vmatte.engine.matanyone.matter:load_matanyone",
            _MATANYONE_LICENSE,
            MATANYONE_OPTIONS,
            weights="matanyone2",
        ),
        ModelSpec(
            "videomama",
            "VideoMaMa (2026): one coarse mask per frame (--masks DIR) to mattes with a video "
            "diffusion prior (needs SammyLim/VideoMaMa + the SVD VAE: --weights DIR, cache or download; a GPU)",
            "VideoMaMa",
            FRAME_MASKS,
            "vmatte.engine.videomama:load_videomama",
            _VIDEOMAMA_LICENSE,
            VIDEOMAMA_OPTIONS,
            weights="videomama",
            resumable=False,
            needs_gpu=True,
        ),
        ModelSpec(
            "sam2-matte",
            "any object: SAM 2's tracked mask of the target(s) of --mask/--click, its edge refined by a guided "
            "filter (a soft mask, not hair-level matting; needs a SAM 2 checkpoint: --weights, --tracker or cache)",
            "sam2-matte",
            KEYFRAMES,
            "vmatte.engine.sam2video.matter:load_sam2_matte",
            _SAM2_LICENSE,
            SAM2_MATTE_OPTIONS,
            weights="sam2",
            role=ROLE_SAM2,
        ),
    )
}
# The model every benchmark compares with: the shipped one that mattes every person (RVM).
BASELINE = next(s.name for s in SPECS.values() if s.role == ROLE_PEOPLE)
AUTO_HELP = (
    "the best model available: rvm; with --mask/--click, MatAnyone when its weights are on this machine, "
    "else rvm-target"
)
# The order auto tries target models in: best first.
_AUTO_TARGET = ("matanyone2", "matanyone")


def names() -> list[str]:
    """``auto`` and every model name: the CLI's ``--model`` choices."""
    return [AUTO, *SPECS]


def help_lines() -> dict[str, str]:
    return {AUTO: AUTO_HELP, **{s.name: s.help for s in SPECS.values()}}


def get(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise VmatteError(f"unknown model {name!r}; choose one of: {', '.join(names())}") from None


def is_cached(spec: ModelSpec) -> bool:
    """Whether ``spec`` runs without a download (shipped, or its weights in the cache)."""
    if spec.weights is None:
        return True
    from ..weights import cached

    return cached(spec.weights)


def choose_auto(options: MatterOptions) -> tuple[ModelSpec, str]:
    """``auto``'s model for these options and a note for the description (the module docstring's rule)."""
    if options.masks is not None:
        note = " (--model auto with --masks)"
        mama = next(s for s in SPECS.values() if s.takes == FRAME_MASKS)
        if _gpu(options.device) and (options.weights is not None or is_cached(mama)):
            return mama, note
        return SPECS["rvm"], note
    if options.has_target and options.tracker != AUTO:  # a tracker asked for: RVM's edge inside its masks
        return SPECS["rvm-target"], f" (--model auto with --tracker {options.tracker})"
    if options.has_target:
        note = " (--model auto: a mask was given)"
        if options.weights is not None:  # a path, or "download": the user asked for these weights
            return SPECS[_AUTO_TARGET[-1]], note
        for name in _AUTO_TARGET:
            if is_cached(SPECS[name]):
                return SPECS[name], note
        from ..weights import matanyone_cache_paths

        where = matanyone_cache_paths(_AUTO_TARGET[-1])[0].parent
        return SPECS["rvm-target"], (
            f" (--model auto: no MatAnyone weights in {where}; they give better mattes, any object: see README)"
        )
    return SPECS["rvm"], ""


def _gpu(device: str) -> bool:
    from .device import resolve_device

    return resolve_device(device).type == "cuda"


def load(name: str, options: MatterOptions):
    """Build the matter for model ``name`` (or ``auto``) with ``options``."""
    if options.masks is not None and options.has_target:
        raise VmatteError(
            "--masks (one mask per frame) replaces --mask, --mask-at, --masks-dir and --click; give only one of them"
        )
    if name == AUTO:
        spec, note = choose_auto(options)
        return spec.load(options, note)
    return get(name).load(options)


def taken(name: str, options: dict) -> dict:
    """The entries of ``options`` (model options by name) that model ``name`` takes (``auto``: all of
    them): what a benchmark of several models gives each (a --backend is RVM's, --max-size not SAM 2's)."""
    if name == AUTO or name not in SPECS:
        return dict(options)
    return {k: v for k, v in options.items() if k in SPECS[name].options}


def check_options(name: str, options: MatterOptions) -> None:
    """What :func:`load` refuses about the options of model ``name``, without loading it (``auto``:
    of the model it would choose)."""
    (choose_auto(options)[0] if name == AUTO else get(name)).check_options(options)


def sam2_follows_target(name: str, options: MatterOptions) -> bool:
    """Whether model ``name`` (or ``auto``) with ``options`` and a target would follow that target with
    the SAM 2 video tracker: ``sam2-matte``, or a model reading a tracker's masks whose ``--tracker``
    is SAM 2 (``auto``: when a SAM 2 checkpoint is cached). Clicks then go to SAM 2 as its own point
    prompts instead of being made into a mask first."""
    if options.masks is not None:
        return False
    targeted = options if options.has_target else options.replace(keyframes={0: None})  # the clicks to come
    spec = choose_auto(targeted)[0] if name == AUTO else get(name)
    spec.check_options(targeted)  # a refused option fails before the clicks cost a pass
    if spec.role == ROLE_SAM2:  # SAM 2 itself
        return True
    if not spec._tracked(options):
        return False
    return tracker_kind(options.tracker) == TRACKER_SAM2


def load_person_matter(device: str = "auto"):
    """The shipped model that mattes every person (RVM): what clicks without SAM cut into regions."""
    return _role(ROLE_PEOPLE).load(MatterOptions(device=device))


def load_person_tracker(options: MatterOptions):
    """The shipped target model (rvm-target: RVM + a memory of the target), on ``options``' device and
    target only: ``--tracker rvm``'s mask source."""
    return _role(ROLE_PERSON_TRACKER).load(
        MatterOptions(device=options.device, mask=options.mask, keyframes=options.keyframes)
    )


def _role(role: str) -> ModelSpec:
    return next(s for s in SPECS.values() if s.role == role)
