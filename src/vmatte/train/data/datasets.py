"""Training samples: foregrounds composited over backgrounds, and segmentation clips.

A sample is a pure function of (seed, key, kind): its random generator is seeded with them, so
any process can rebuild any sample. The step sampler hands out keys by (step, rank), which makes
the data order of a run - and of a resumed run - fixed by the seed alone (no loader state to save).

Every sample is a dict of float32 tensors: ``image`` [T,3,H,W], ``alpha`` [T,1,H,W] (a binary
mask for segmentation), ``fgr`` [T,3,H,W] (the image for segmentation), ``mask0`` [1,H,W] (the
first-frame mask, binarised and randomly dilated/eroded), ``kind`` (0 matting, 1 segmentation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .augment import (
    AugmentConfig,
    SmoothColour,
    SmoothDegradation,
    clip_motion,
    first_frame_mask,
    temporal_indices,
    warp,
)
from .sources import (
    find_background_images,
    find_background_videos,
    find_matting_clips,
    find_segmentation,
    find_stills,
    read_rgb,
)

if TYPE_CHECKING:  # a type only: the config module imports this package's augment settings
    from ..config import DataConfig

KINDS = ("video_matting", "image_matting", "segmentation")
MATTING, SEGMENTATION = 0, 1


def _chw(frames: list[np.ndarray]) -> torch.Tensor:
    arr = np.stack([f if f.ndim == 3 else f[:, :, None] for f in frames])
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


class TrainingClips(Dataset):
    """Index with ``(key, kind)``; see the module docstring."""

    def __init__(self, cfg: DataConfig, aug: AugmentConfig, seed: int) -> None:
        self.cfg, self.aug, self.seed = cfg, aug, seed
        self.size = (int(cfg.size[0]), int(cfg.size[1]))
        self.clips = find_matting_clips(cfg.video_matting) if cfg.video_matting else []
        self.stills = find_stills(cfg.image_matting, cfg.still_max_side) if cfg.image_matting else []
        self.segmentation = find_segmentation(cfg.segmentation) if cfg.segmentation else []
        self.bg_images = find_background_images(cfg.background_images)
        self.bg_videos = find_background_videos(cfg.background_videos)
        self.weights = np.array(
            [
                cfg.weight_video_matting * bool(self.clips),
                cfg.weight_image_matting * bool(self.stills),
                cfg.weight_segmentation * bool(self.segmentation),
            ],
            dtype=np.float64,
        )
        if self.weights.sum() <= 0:
            raise ValueError("no data kind with a positive weight has data")

    def kind_of_step(self, step: int) -> int:
        """The data kind of a whole step (the same on every rank: DDP needs every process to
        run the same parts of the network, and losses differ by kind)."""
        rng = np.random.default_rng([self.seed, step, 1])
        return int(rng.choice(3, p=self.weights / self.weights.sum()))

    def __len__(self) -> int:  # nominal: keys are unbounded
        return 2**31

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        key, kind = item
        rng = np.random.default_rng([self.seed, key, 2])
        if kind == 2:
            return self._segmentation(rng)
        fgr, pha, cover = self._foreground(rng, kind)
        return self._composite(rng, fgr, pha, cover)

    # ---- matting -------------------------------------------------------------------------------

    def _foreground(self, rng: np.random.Generator, kind: int) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
        t = self.cfg.seq_len
        if kind == 0:
            clip = self.clips[int(rng.integers(len(self.clips)))]
            idx = temporal_indices(rng, len(clip), t, self.aug)
            return clip.fgr.read(idx), clip.pha.read(idx), True
        fgr, pha = self.stills[int(rng.integers(len(self.stills)))].load()
        return [fgr] * t, [pha] * t, False  # a still moves by the clip motion only

    def _background(self, rng: np.random.Generator) -> list[np.ndarray]:
        t = self.cfg.seq_len
        use_video = self.bg_videos and (not self.bg_images or rng.random() < self.cfg.p_video_background)
        if use_video:
            video = self.bg_videos[int(rng.integers(len(self.bg_videos)))]
            return video.read(temporal_indices(rng, len(video), t, self.aug))
        return [read_rgb(self.bg_images[int(rng.integers(len(self.bg_images)))])] * t

    def _composite(
        self, rng: np.random.Generator, fgr: list[np.ndarray], pha: list[np.ndarray], cover: bool
    ) -> dict[str, torch.Tensor]:
        t, size = self.cfg.seq_len, self.size
        bg = self._background(rng)
        fg_motion, bg_motion = clip_motion(rng, t, self.aug), clip_motion(rng, t, self.aug)
        fg_colour, bg_colour = SmoothColour(rng, self.aug), SmoothColour(rng, self.aug)
        degrade = SmoothDegradation(rng, self.aug)
        images, alphas, fgrs = [], [], []
        for i in range(t):
            f = fg_colour(warp(fgr[i], fg_motion, i, size, cover, zero_border=False), i, t)
            a = np.clip(warp(pha[i], fg_motion, i, size, cover, zero_border=True), 0.0, 1.0)
            b = bg_colour(warp(bg[i], bg_motion, i, size, True, zero_border=False), i, t)
            image = f * a[:, :, None] + b * (1 - a[:, :, None])
            images.append(degrade(image.astype(np.float32), i, t))
            alphas.append(a)
            fgrs.append(f)
        mask0 = first_frame_mask(alphas[0], rng, self.aug.mask_radius)
        return {
            "image": _chw(images),
            "alpha": _chw(alphas),
            "fgr": _chw(fgrs),
            "mask0": torch.from_numpy(mask0)[None],
            "kind": torch.tensor(MATTING),
        }

    # ---- segmentation --------------------------------------------------------------------------

    def _segmentation(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        t, size = self.cfg.seq_len, self.size
        item = self.segmentation[int(rng.integers(len(self.segmentation)))]
        idx = temporal_indices(rng, len(item), t, self.aug)
        frames, masks = item.image.read(idx), item.mask.read(idx)
        motion = clip_motion(rng, t, self.aug)
        colour, degrade = SmoothColour(rng, self.aug), SmoothDegradation(rng, self.aug)
        images, alphas = [], []
        for i in range(t):
            images.append(degrade(colour(warp(frames[i], motion, i, size, True, zero_border=False), i, t), i, t))
            m = (masks[i] > 0).astype(np.float32)  # any label is the target
            alphas.append((warp(m, motion, i, size, True, zero_border=True) > 0.5).astype(np.float32))
        mask0 = first_frame_mask(alphas[0], rng, self.aug.mask_radius)
        image = _chw(images)
        return {
            "image": image,
            "alpha": _chw(alphas),
            "fgr": image.clone(),
            "mask0": torch.from_numpy(mask0)[None],
            "kind": torch.tensor(SEGMENTATION),
        }


class StepSampler(Sampler):
    """Batches of ``(key, kind)`` for this rank from ``start_step`` on. Key of sample i of
    rank r at step s: (s * world + r) * batch + i - distinct across ranks and steps."""

    def __init__(self, data: TrainingClips, rank: int, world: int, batch: int, start_step: int, steps: int) -> None:
        self.data, self.rank, self.world, self.batch = data, rank, world, batch
        self.start_step, self.steps = start_step, steps

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for s in range(self.start_step, self.steps):
            kind = self.data.kind_of_step(s)
            base = (s * self.world + self.rank) * self.batch
            yield [(base + i, kind) for i in range(self.batch)]

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)
