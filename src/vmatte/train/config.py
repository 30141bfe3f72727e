"""Training configuration: typed dataclasses read from a TOML file (``tomllib``, stdlib).

A config has the sections ``[run]``, ``[model]``, ``[data]``, ``[augment]``, ``[optim]``,
``[loss]`` and ``[val]``; every key is optional (defaults below) and unknown keys are an error,
so a typo never silently trains with a default. Relative data paths are resolved against the
config file's folder; ``--set section.key=value`` on the command line overrides a key (a TOML
value: ``--set run.steps=10``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmatte.errors import VmatteError

from .data.augment import AugmentConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(VmatteError):
    """The training config cannot be used."""


@dataclass
class RunConfig:
    out_dir: str = "runs/train"
    seed: int = 0
    steps: int = 1000
    log_every: int = 10
    checkpoint_every: int = 500
    tensorboard: bool = True
    num_threads: int = 0  # torch intra-op threads per process (0: torch's default)


@dataclass
class ModelConfig:
    kind: str = "matanyone"  # "matanyone" or "rvm"
    # "random"; "packaged" (RVM: the shipped weights); "official" (MatAnyone: weights.resolve_matanyone);
    # or a checkpoint path (.pth / .safetensors / a training checkpoint of this package)
    init: str = "random"
    rvm_variant: str = "mobilenetv3"
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes kept fixed
    mem_every: int = 2  # MatAnyone unroll: a memory frame every N frames (the rest refresh V_prev)
    max_mem_frames: int = 5
    top_k: int = 30


@dataclass
class DataConfig:
    video_matting: list[str] = field(default_factory=list)
    image_matting: list[str] = field(default_factory=list)
    segmentation: list[str] = field(default_factory=list)
    background_images: list[str] = field(default_factory=list)
    background_videos: list[str] = field(default_factory=list)
    # how often a step draws a batch of each kind (normalised over the kinds that have data)
    weight_video_matting: float = 1.0
    weight_image_matting: float = 1.0
    weight_segmentation: float = 1.0
    seq_len: int = 8
    size: list[int] = field(default_factory=lambda: [512, 288])  # crop W, H
    batch_size: int = 1  # per process
    num_workers: int = 0
    p_video_background: float = 0.5
    still_max_side: int = 1024  # image-matting stills are shrunk to this before use


@dataclass
class OptimConfig:
    lr: float = 1e-4
    lr_encoder: float = 1e-5  # the pretrained backbones (pixel_encoder / backbone) learn slower
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max global grad norm (0: off)
    warmup_steps: int = 0


@dataclass
class LossConfig:
    l1: float = 1.0
    laplacian: float = 1.0
    gradient: float = 0.0
    temporal: float = 1.0  # alpha temporal coherence
    first_frame_weight: float = 1.0
    change_prob: float = 0.0
    change_delta: float = 0.1
    fgr_l1: float = 0.0  # RVM: foreground colour where alpha > 0
    fgr_temporal: float = 0.0
    segmentation: float = 1.0  # RVM seg head: BCE + Dice
    core_l1: float = 1.0  # MatAnyone core supervision on segmentation data
    ddc: float = 1.0
    core_radius: int = 8
    ddc_radius: int = 1


@dataclass
class ValConfig:
    clips: list[str] = field(default_factory=list)  # composed clips (vmatte bench compose) to score
    every: int = 0  # steps (0: off)
    max_frames: int = 16


@dataclass
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    val: ValConfig = field(default_factory=ValConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{where}] must be a table")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]}; known keys: {', '.join(names)}")
    kwargs = {}
    for k, v in values.items():
        default = getattr(cls(), k)
        if (
            isinstance(default, bool)
            and not isinstance(v, bool)
            or isinstance(default, (int, float))
            and not isinstance(default, bool)
            and (isinstance(v, bool) or not isinstance(v, (int, float)))
            or isinstance(default, (str, list))
            and not isinstance(v, type(default))
        ):
            raise ConfigError(f"{where}.{k} = {v!r} has the wrong type; expected {type(default).__name__}")
        kwargs[k] = float(v) if isinstance(default, float) else v
    return cls(**kwargs)


def _set(raw: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot:
        raise ConfigError(f"bad override {assignment!r}; write section.key=value, e.g. run.steps=100")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word: a string
    raw.setdefault(section, {})[name] = parsed


def load_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    p = Path(path).expanduser()
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"config {p} not found; give a TOML file such as configs/train/matanyone_stage1.toml"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config {p} is not valid TOML: {e}") from None
    for o in overrides:
        _set(raw, o)
    sections = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}] in {p}; known: {', '.join(sections)}")
    types = {
        "run": RunConfig,
        "model": ModelConfig,
        "data": DataConfig,
        "augment": AugmentConfig,
        "optim": OptimConfig,
        "loss": LossConfig,
        "val": ValConfig,
    }
    cfg = TrainConfig(**{name: _build(types[name], raw.get(name, {}), name) for name in types})
    base = p.resolve().parent

    def resolve(items: list[str]) -> list[str]:
        return [str((base / os.path.expanduser(i)).resolve()) for i in items]

    d = cfg.data
    for name in ("video_matting", "image_matting", "segmentation", "background_images", "background_videos"):
        setattr(d, name, resolve(getattr(d, name)))
    cfg.val.clips = resolve(cfg.val.clips)
    if not os.path.isabs(os.path.expanduser(cfg.run.out_dir)):
        cfg.run.out_dir = str(Path.cwd() / cfg.run.out_dir)
    if cfg.model.init not in ("random", "packaged", "official"):
        cfg.model.init = str((base / os.path.expanduser(cfg.model.init)).resolve())
    _validate(cfg)
    return cfg


def _validate(cfg: TrainConfig) -> None:
    if cfg.model.kind not in ("matanyone", "rvm"):
        raise ConfigError(f'model.kind = {cfg.model.kind!r}; use "matanyone" or "rvm"')
    if len(cfg.data.size) != 2 or min(cfg.data.size) < 16:
        raise ConfigError(f"data.size = {cfg.data.size}; give [width, height], each at least 16")
    if cfg.model.kind == "matanyone" and any(s % 16 for s in cfg.data.size):
        raise ConfigError(f"data.size = {cfg.data.size}: MatAnyone needs multiples of 16")
    if cfg.data.seq_len < 1 or cfg.data.batch_size < 1 or cfg.run.steps < 1:
        raise ConfigError("data.seq_len, data.batch_size and run.steps must be at least 1")
    if not (cfg.data.video_matting or cfg.data.image_matting or cfg.data.segmentation):
        raise ConfigError("no training data; set data.video_matting, data.image_matting or data.segmentation")
    if (cfg.data.video_matting or cfg.data.image_matting) and not (
        cfg.data.background_images or cfg.data.background_videos
    ):
        raise ConfigError("matting data needs backgrounds; set data.background_images or data.background_videos")
