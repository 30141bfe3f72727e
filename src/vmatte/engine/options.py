"""Every option of a run, declared once: its keyword, flag, help, type and range, default, app
label and manifest column.

The front ends are generated from these declarations: ``vmatte matte``'s arguments
(:mod:`vmatte.cli.args`), the batch manifest's columns and their checks
(:mod:`vmatte.batch.manifest`), and the web app's fields (:mod:`vmatte.ui`).
:class:`MatterOptions` (what a model is built with) is made from the :data:`MODEL` and
:data:`TARGET` groups. Which model takes which option is said by its
:class:`~vmatte.engine.registry.ModelSpec` (``options=``, one of the sets at the end of this
file), and the registry refuses an option a model does not take, in one place.

This module is a leaf: it imports nothing of vmatte but :mod:`vmatte.errors` (no torch, no
model code), so the loaders, the registry and the front ends can all import it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import VmatteError

AUTO = "auto"
BACKENDS = (AUTO, "torch", "onnx")  # RVM's runtimes (the shipped weights on onnxruntime or PyTorch)
PRECISIONS = ("fp32", "fp16", "bf16")
DESPILL = ("green", "blue")
EXR_COMPRESSIONS = ("zip", "piz", "dwaa", "none")  # vmatte.io.exr maps them to OpenEXR's names
# What a model needs to know which subject to matte (a ModelSpec's ``takes``).
EVERY_PERSON = "every person"  # nothing: RVM mattes every person in frame
KEYFRAMES = "keyframes"  # a first-frame / keyframe mask (or clicks) per target
FRAME_MASKS = "frame masks"  # one coarse mask per frame (--masks)
# --tracker: auto, SAM 2, or RVM's person tracking (rvm-target); a SAM 2 checkpoint name or file also means SAM 2
TRACKER_SAM2, TRACKER_RVM = "sam2", "rvm"
TRACKERS = (AUTO, TRACKER_SAM2, TRACKER_RVM)


class OptionError(VmatteError):
    """An option a model does not take, or a value outside an option's range: ``option`` says which
    (a front end names it its own way: the manifest by its column)."""

    def __init__(self, message: str, option: Option):
        super().__init__(message)
        self.option = option


# The groups of options (what reads them).
MODEL = "model"  # MatterOptions: what a model is built with; each model takes some (its spec's ``options``)
TARGET = "target"  # MatterOptions: which subject (a model takes them by its spec's ``takes``)
PROMPT = "prompt"  # the target as the user gives it: keyframe files, clicks (made into TARGET)
REFINE = "refine"  # RefineSettings: the matte refinement after any model
PLATE = "plate"  # EXR/DPX plates in and out
OUTPUT = "output"  # what is written, and how the input is read


@dataclass(frozen=True)
class Option:
    """One option. ``name`` is its keyword everywhere (MatterOptions / RefineSettings field,
    :func:`vmatte.matte` keyword, manifest column unless ``column`` says otherwise)."""

    name: str
    help: str  # one line for --help; the models that take a MODEL option are added from the registry
    group: str = MODEL
    type: type = str  # str, int or float
    default: Any = None  # None: the model's own choice
    choices: tuple[str, ...] = ()
    low: float | None = None  # the range, in messages "between low and high" / "at least low"
    high: float | None = None
    low_open: bool = False  # low itself is not allowed: "in (low, high]"
    unit: str = ""  # " pixels", " frames", " (%)": after the range in messages
    flags: tuple[str, ...] | None = None  # CLI flags; None: --name-with-dashes; (): no flag
    metavar: str | None = None
    repeat: bool = False  # the CLI flag may be given several times; a manifest cell holds several, ';'-separated
    path: str = ""  # manifest: "file" / "dir" (must exist, relative to the manifest), "maybe" (a file if one is there)
    words: tuple[str, ...] = ()  # values that are not paths (``download``)
    plates_only: bool = False  # applies to EXR/DPX plate inputs only
    label: str = ""  # the web app's name for it (its messages say this instead of the flag)
    field: bool = False  # the app has a field for it (generated: its label, then the hint)
    hint: str = ""  # after the label of the app's field: "px, empty = automatic"
    column: str | None = None  # manifest column (None: the name; "": no column)

    @property
    def flag(self) -> str:
        """The CLI flag messages name (``--max-size``), or the keyword for an option without one."""
        flags = self.cli_flags
        return flags[0] if flags else self.name

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return ("--" + self.name.replace("_", "-"),) if self.flags is None else self.flags

    @property
    def column_name(self) -> str:
        return self.name if self.column is None else self.column

    @property
    def aliases(self) -> set[str]:
        """Other spellings a manifest column may have: dashes for underscores, the other flags' names."""
        names = {self.column_name.replace("_", "-")} | {f.lstrip("-") for f in self.cli_flags if f.startswith("--")}
        names |= {n.replace("-", "_") for n in names}
        return names - {self.column_name}

    def range_text(self) -> str:
        if self.low is not None and self.high is not None:
            if self.low_open:
                return f"in ({self.low:g}, {self.high:g}]{self.unit}"
            return f"between {self.low:g} and {self.high:g}{self.unit}"
        if self.low is not None and self.low_open:
            return f"more than {self.low:g}{self.unit}"
        if self.low is not None:
            return "0 or more" if self.low == 0 else f"at least {self.low:g}{self.unit}"
        return ""

    def check(self, value, name: str | None = None) -> None:
        """A one-line error when ``value`` (already of the option's type) is out of its range or choices.
        ``name``: how the message names the option (default its flag; the manifest gives its column)."""
        name = name or self.flag
        if value is None:
            return
        if self.choices and value not in self.choices:
            raise OptionError(f"{name} must be one of: {', '.join(self.choices)}; got {value!r}", self)
        if self.type in (int, float):
            bad = not math.isfinite(value)
            bad = bad or (self.low is not None and (value <= self.low if self.low_open else value < self.low))
            bad = bad or (self.high is not None and value > self.high)
            if bad:
                raise OptionError(f"{name} must be {self.range_text()}, got {value:g}", self)

    def parse(self, raw, name: str | None = None):
        """``raw`` (a manifest cell or a typed value: text or a number) as the option's type, checked."""
        name = name or self.flag
        value = raw
        if self.type in (int, float):
            try:
                value = self.type(raw if self.type is float or not isinstance(raw, str) else raw.strip())
                if self.type is int and isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                kind = "a whole number" if self.type is int else "a number"
                raise OptionError(f"{raw!r} is not {kind}; give {self.help.split(' (')[0]}", self) from None
        elif self.choices:
            value = str(raw).strip().lower()
        else:
            value = str(raw).strip()
        self.check(value, name)
        return value

    def given(self, value) -> bool:
        """Whether ``value`` asks for something (is not the option's default)."""
        return value is not None and value != self.default


_FROM_MANIFEST = "(relative paths start at the manifest's folder)"

OPTIONS: tuple[Option, ...] = (
    # --- MODEL: MatterOptions, taken per model (ModelSpec.options); weights and device by every model
    Option(
        "weights",
        "checkpoint path (.pth/.safetensors, or a hub folder with model.safetensors for MatAnyone), "
        "or 'download' for the official file",
        path="file",
        words=("download",),
    ),
    Option("device", "auto, cpu, cuda, cuda:N or mps (default: auto)", default=AUTO),
    Option(
        "backend",
        "inference runtime: onnxruntime or PyTorch (default: auto, the fastest for the device)",
        choices=BACKENDS,
        default=AUTO,
    ),
    Option(
        "downsample_ratio",
        "downsample ratio of the network's input in (0, 1] (overrides --max-size)",
        type=float,
        low=0,
        high=1,
        low_open=True,
        metavar="R",
    ),
    Option(
        "max_size",
        "long side of the internal resolution in pixels (default: automatic)",
        type=int,
        low=32,
        unit=" pixels",
        metavar="PX",
        label="Max size",
        field=True,
        hint="px, empty = automatic",
    ),
    # --- TARGET: which subject (a model takes them by its spec's ``takes``, not ``options``)
    Option(
        "mask",
        "the target(s) on the first frame: grey/binary PNG (non-zero = target), RGB (non-black = "
        "target), or a palette/label PNG (one matte per id, outputs NAME_idN_*)",
        group=TARGET,
        metavar="PATH",
        path="file",
        label="mask (Brush or mask file)",
    ),
    Option(
        "keyframes", "{frame: mask} of keyframe masks (from --mask-at / --masks-dir)", group=TARGET, flags=(), column=""
    ),
    Option(
        "masks",
        "mask-to-matte: ONE coarse mask per frame (e.g. from SAM 2), named by frame number (00000.png, "
        "00001.png ...); --model videomama, or rvm/rvm-target (RVM's alpha kept inside the dilated "
        "masks); auto picks videomama when its weights and a GPU are here, else rvm",
        group=TARGET,
        metavar="DIR",
        path="dir",
    ),
    # --- MODEL again: each taken by one family
    Option(
        "warmup_frames",
        "first-frame refinement passes (default 10)",
        type=int,
        low=0,
        metavar="N",
        label="Warm-up frames",
        field=True,
        hint="empty = 10",
    ),
    Option(
        "mem_every",
        "a frame joins the memory every N frames (default 5; fewer follows fast changes of the target "
        "more closely, more runs faster)",
        type=int,
        low=1,
        metavar="N",
        label="Memory every",
        field=True,
        hint="frames, empty = 5",
    ),
    Option("erode", "erode the first-frame mask (kernel px, default 10; 0 = off)", type=int, low=0, metavar="PX"),
    Option(
        "dilate",
        "dilate the first-frame mask (kernel px, default 10; 0 = off); with per-frame masks: how far "
        "RVM's alpha may reach outside them (px, default 2% of the frame)",
        type=int,
        low=0,
        metavar="PX",
    ),
    Option(
        "precision",
        "fp32 (default, exact), or bf16/fp16 (fp16 on a GPU only)",
        choices=PRECISIONS,
        default="fp32",
    ),
    Option(
        "tracker",
        "what follows the target through the video: sam2 (any object; a SAM 2 checkpoint in the "
        "cache, or give its name/file here), rvm (rvm-target's person tracking), auto (default: SAM 2 "
        "when cached, else rvm; rvm-target keeps its own tracking unless --tracker sam2)",
        default=AUTO,
        metavar="sam2|rvm|auto|NAME|PATH",
        path="maybe",
        label="Tracker",
    ),
    # --- PROMPT: the target as given on the command line / in a manifest (made into TARGET)
    Option(
        "mask_at",
        "a keyframe mask (repeatable): ids in it start at FRAME (alpha 0 before) or, if already "
        "tracked, are re-initialised from it there; grey files are label masks",
        group=PROMPT,
        metavar="FRAME:PATH",
        repeat=True,
    ),
    Option(
        "masks_dir",
        "a folder of keyframe (label/palette) masks named by frame number (00000.png, 00005.png ...), "
        "as --mask-at for each",
        group=PROMPT,
        metavar="DIR",
        path="dir",
    ),
    Option(
        "click",
        "pick the target: the person (or, with a SAM segmenter, the object) under pixel X,Y (x right, "
        "y down) at FRAME (default 0) becomes its mask there, as --mask-at would; repeatable (points "
        "at one frame are one target)",
        group=PROMPT,
        metavar="X,Y[@FRAME]",
        repeat=True,
        label="click",
    ),
    Option(
        "exclude",
        "a point on someone/something that is NOT the target, to cut it off the clicked one "
        "(repeatable; needs a --click at the same frame)",
        group=PROMPT,
        metavar="X,Y[@FRAME]",
        repeat=True,
        label="Exclude click",
    ),
    Option(
        "segmenter",
        "what turns clicks into a mask: auto (a SAM / SAM 2 checkpoint in the cache, else RVM's person "
        "regions), rvm, a name from `vmatte weights list` (downloaded once) or a SAM / SAM 2 checkpoint file",
        group=PROMPT,
        default=AUTO,
        metavar="NAME|PATH",
        label="'Clicks make masks with'",
    ),
    # --- OUTPUT
    Option(
        "background",
        "composite background: colour name, #rrggbb, r,g,b, an image or a video (default: green)",
        group=OUTPUT,
        flags=("--bg", "--background"),
        metavar="SPEC",
        path="maybe",
        label="Composite background",
        column="bg",
    ),
    Option("fps", "frame rate of an image-folder input (default 25)", group=OUTPUT, type=float, low=0, low_open=True),
    Option(
        "chunk_frames",
        "frames per journal chunk (resume granularity)",
        group=OUTPUT,
        type=int,
        low=1,
        flags=(),  # a test knob on the command line (hidden there), a column in manifests
    ),
    # --- PLATE
    Option(
        "frames",
        "plate frames to matte, e.g. 1001-1100 (default: all); outputs keep the plate's frame numbers",
        group=PLATE,
        metavar="RANGE",
        plates_only=True,
    ),
    Option(
        "input_colorspace",
        "the plate's OpenColorIO colour space (config: $OCIO, else OCIO's built-in ocio://default). "
        "Default: EXR = 'Linear Rec.709 (sRGB)' (scene-linear), DPX = the config's compositing_log role "
        "(ACEScct in the built-in config). The network sees the plate as 'sRGB Encoded Rec.709 (sRGB)'; "
        "exr outputs go back to scene-linear",
        group=PLATE,
        metavar="NAME",
        plates_only=True,
    ),
    Option(
        "exr_compression",
        "compression of the exr/exr-layers/alpha-exr outputs (default zip; dwaa is lossy)",
        group=PLATE,
        choices=EXR_COMPRESSIONS,
        default="zip",
    ),
    # --- REFINE: RefineSettings, after any model
    Option(
        "choke",
        "shrink (> 0) or grow (< 0) the matte by PX pixels, fractional",
        group=REFINE,
        type=float,
        default=0.0,
        low=-500,
        high=500,
        unit=" pixels",
        metavar="PX",
        label="Choke",
        field=True,
        hint="px, - grows",
    ),
    Option(
        "feather",
        "soften the edge over about PX pixels",
        group=REFINE,
        type=float,
        default=0.0,
        low=0,
        high=500,
        unit=" pixels",
        metavar="PX",
        label="Feather",
        field=True,
        hint="px",
    ),
    Option(
        "shift_edge",
        "move the soft edge out (> 0) or in (< 0), -100..100; opaque and clear pixels stay",
        group=REFINE,
        type=float,
        default=0.0,
        low=-100,
        high=100,
        unit=" (%)",
        metavar="PCT",
        label="Shift edge",
        field=True,
        hint="%",
    ),
    Option(
        "reduce_chatter",
        "average the edge over the last N frames where the picture did not change (no motion smear)",
        group=REFINE,
        type=int,
        default=0,
        low=0,
        high=100,
        unit=" frames",
        metavar="N",
        label="Reduce chatter",
        field=True,
        hint="frames",
    ),
    Option(
        "despill",
        "remove green or blue screen spill from the foreground",
        group=REFINE,
        choices=DESPILL,
        label="Despill",
        field=True,
    ),
)
OPTION = {o.name: o for o in OPTIONS}


def group(name: str) -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if o.group == name)


def tracker_kind(tracker: str) -> str:
    """``sam2`` or ``rvm`` (TRACKER_*) for ``--tracker`` (``auto``: SAM 2 when a SAM 2 checkpoint
    is cached; a checkpoint name or path: SAM 2)."""
    if tracker == AUTO:
        from ..weights import cached  # the cache only: no weights are loaded

        return TRACKER_SAM2 if cached(TRACKER_SAM2) else TRACKER_RVM
    return TRACKER_RVM if tracker == TRACKER_RVM else TRACKER_SAM2


# What each family of models takes (its ModelSpec's ``options``); every model takes weights and device.
EVERY_MODEL = frozenset({"weights", "device"})
RVM_OPTIONS = EVERY_MODEL | {"backend", "downsample_ratio", "max_size"}
TARGET_RVM_OPTIONS = RVM_OPTIONS | {"tracker"}
MATANYONE_OPTIONS = EVERY_MODEL | {"max_size", "warmup_frames", "mem_every", "erode", "dilate", "precision"}
VIDEOMAMA_OPTIONS = EVERY_MODEL | {"max_size", "precision", "tracker"}
SAM2_MATTE_OPTIONS = EVERY_MODEL | {"tracker"}
# What RVM's gate by per-frame masks adds to the model it gates (--masks, or a tracker's masks).
GATE_OPTIONS = frozenset({"dilate"})


def settings_class(name: str, options: tuple[Option, ...], base: type, module: str, doc: str, extra=()) -> type:
    """A frozen dataclass with one field per option (its default), methods from ``base``; ``extra``:
    ``(name, default)`` of fields that are no user's option."""
    fields = [(o.name, Any, dataclasses.field(default=o.default)) for o in options]
    fields += [(n, Any, dataclasses.field(default=d)) for n, d in extra]
    cls = dataclasses.make_dataclass(name, fields, bases=(base,), frozen=True)
    cls.__module__, cls.__qualname__ = module, name  # pickled by its public name
    cls.__doc__ = doc + "\n\nFields: " + "; ".join(f"``{o.name}`` ({o.help.split(';')[0]})" for o in options)
    return cls


class _MatterOptions:
    def replace(self, **changes) -> MatterOptions:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> MatterOptions:
        """The options from ``load_matter``/``matte`` keywords; a misspelt one is a one-line error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise VmatteError(
                f"unknown model option(s) {', '.join(unknown)}; the options are: {', '.join(sorted(names))}"
            )
        return cls(**kwargs)

    @property
    def has_target(self) -> bool:
        return self.mask is not None or bool(self.keyframes)

    def given(self) -> list[Option]:
        """The MODEL options set to something other than their default."""
        return [o for o in group(MODEL) if o.given(getattr(self, o.name))]


MatterOptions = settings_class(
    "MatterOptions",
    group(MODEL) + group(TARGET),
    _MatterOptions,
    __name__,
    "Everything a model may be built with (what ``vmatte matte`` takes besides files and formats).\n\n"
    "``mask``: the target(s) on the first frame (path, HxW array, ``{id: HxW}`` or TargetMask); "
    "``keyframes``: ``{frame: mask}``; ``masks``: a folder (or FrameMasks) of one coarse mask per frame.",
)
