"""Augmentation for video matting training (RVM's recipe, also used for MatAnyone here).

Spatial and photometric changes vary *smoothly* over a clip - each is drawn at the first and
the last frame and eased in between - because a network that sees jittering frames learns to
jitter; real footage drifts. Temporal changes (reverse, speed, pause, skip) are what a
recurrent or memory network must be robust to. Everything is drawn from the given generator, so
a sample is a pure function of its seed (this is what makes resume exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vmatte.eval.compose import Motion, MotionRange


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 10.0  # degrees, drawn at both ends of the clip
    translation: float = 0.08  # fraction of the frame
    zoom: float = 0.2  # log-uniform in [1/(1+z), 1+z]
    shear: float = 5.0  # degrees
    brightness: float = 0.1
    contrast: float = 0.15
    saturation: float = 0.2
    hue: float = 0.03  # fraction of the colour wheel
    noise: float = 0.02  # max noise std
    blur: float = 1.5  # max Gaussian sigma
    p_blur: float = 0.3
    p_reverse: float = 0.5
    max_speed: int = 3  # frame stride drawn in 1..max_speed
    p_pause: float = 0.1
    p_skip: float = 0.1
    mask_radius: int = 5  # first-frame mask: dilate or erode by 0..mask_radius px


def _lerp(a: np.ndarray | float, b: np.ndarray | float, t: int, n: int) -> np.ndarray | float:
    u = t / max(n - 1, 1)
    e = u * u * (3 - 2 * u)  # smoothstep: no velocity jump at the clip's ends
    return a + (b - a) * e


def temporal_indices(rng: np.random.Generator, length: int, num_frames: int, cfg: AugmentConfig) -> list[int]:
    """Source frame indices for a clip of ``num_frames``: speed, pause, skip, reverse."""
    speed = int(rng.integers(1, max(1, cfg.max_speed) + 1))
    while speed > 1 and (num_frames - 1) * speed + 1 > length:
        speed -= 1
    span = (num_frames - 1) * speed + 1
    start = int(rng.integers(0, max(1, length - span + 1)))
    idx = [start + i * speed for i in range(num_frames)]
    if num_frames > 2 and rng.random() < cfg.p_pause:  # the subject freezes for a few frames
        k = int(rng.integers(0, num_frames - 1))
        hold = int(rng.integers(1, num_frames - k))
        idx = (idx[: k + 1] + [idx[k]] * hold + idx[k + 1 :])[:num_frames]
    if num_frames > 2 and rng.random() < cfg.p_skip:  # a dropped-frame jump
        k = int(rng.integers(1, num_frames))
        jump = int(rng.integers(1, 4)) * speed
        idx = idx[:k] + [i + jump for i in idx[k:]]
    if rng.random() < cfg.p_reverse:
        idx = idx[::-1]
    return [min(max(i, 0), length - 1) for i in idx]


def clip_motion(rng: np.random.Generator, num_frames: int, cfg: AugmentConfig) -> Motion:
    """A smooth affine path from the first to the last frame (two keys, eased between)."""
    rr = MotionRange(cfg.rotation, cfg.translation, cfg.zoom, cfg.shear, keyframe_every=max(1, num_frames - 1))
    return Motion.random(rng, num_frames, rr)


def warp(img: np.ndarray, motion: Motion, t: int, size: tuple[int, int], cover: bool, zero_border: bool) -> np.ndarray:
    """Frame ``t`` of ``img`` under ``motion`` into ``size`` = (W, H); ``cover``: scale so the
    source fills the frame (videos, backgrounds) rather than fitting inside it (stills)."""
    w_out, h_out = size
    h, w = img.shape[:2]
    scale = max(w_out / w, h_out / h) if cover else 0.8 * min(w_out / w, h_out / h)
    m = motion.matrix(t, (w, h), (w_out, h_out), scale)
    border = cv2.BORDER_CONSTANT if zero_border else cv2.BORDER_REFLECT
    return cv2.warpAffine(img, m, (w_out, h_out), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)


class SmoothColour:
    """Brightness, contrast, saturation and hue drawn at both ends of a clip, eased between."""

    def __init__(self, rng: np.random.Generator, cfg: AugmentConfig) -> None:
        def ends(r: float, log: bool = False) -> tuple[float, float]:
            v = rng.uniform(-r, r, size=2)
            return tuple(np.exp(np.log1p(r) * v / max(r, 1e-9))) if log else tuple(v)

        self.brightness = ends(cfg.brightness)
        self.contrast = ends(cfg.contrast, log=True)
        self.saturation = ends(cfg.saturation, log=True)
        self.hue = ends(cfg.hue)

    def __call__(self, img: np.ndarray, t: int, n: int) -> np.ndarray:
        b = _lerp(*self.brightness, t, n)
        c = _lerp(*self.contrast, t, n)
        s = _lerp(*self.saturation, t, n)
        h = _lerp(*self.hue, t, n)
        out = (img - 0.5) * c + 0.5 + b
        grey = out.mean(axis=2, keepdims=True)
        out = np.clip(grey + (out - grey) * s, 0.0, 1.0).astype(np.float32)
        if abs(h) > 1e-6:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # float: H in degrees
            hsv[:, :, 0] = np.mod(hsv[:, :, 0] + 360.0 * h, 360.0)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return out


class SmoothDegradation:
    """Sensor noise and defocus blur whose strength drifts over the clip."""

    def __init__(self, rng: np.random.Generator, cfg: AugmentConfig) -> None:
        self.noise = rng.uniform(0.0, cfg.noise, size=2)
        self.blur = rng.uniform(0.0, cfg.blur, size=2) if rng.random() < cfg.p_blur else np.zeros(2)
        self.seed = int(rng.integers(0, 2**31))

    def __call__(self, img: np.ndarray, t: int, n: int) -> np.ndarray:
        sigma = float(_lerp(*self.blur, t, n))
        if sigma > 0.3:
            k = 2 * math.ceil(2 * sigma) + 1
            img = cv2.GaussianBlur(img, (k, k), sigma)
        std = float(_lerp(*self.noise, t, n))
        if std > 0:
            noise = np.random.default_rng([self.seed, t]).normal(0.0, std, img.shape).astype(np.float32)
            img = img + noise
        return np.clip(img, 0.0, 1.0).astype(np.float32)


def first_frame_mask(alpha: np.ndarray, rng: np.random.Generator, max_radius: int) -> np.ndarray:
    """The user's first-frame mask as it comes in practice: binarised alpha, a few pixels too
    big or too small (random dilation or erosion with an elliptical kernel)."""
    mask = (alpha > 0.5).astype(np.uint8)
    r = int(rng.integers(0, max_radius + 1))
    if r > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        mask = cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)
    return mask.astype(np.float32)
