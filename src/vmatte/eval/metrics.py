"""Matting and tracking metrics, as ``shared/docs/metrics.md`` defines them.

Every function takes one frame: ``pred`` and ``true`` alpha mattes (HxW; float in [0, 1], or
uint8 / uint16 which are scaled to [0, 1]) and returns the *raw* value. The literature reports
most metrics rescaled (MAD x1e3, Grad /1e3, ...): :data:`REPORT_SCALE` holds those factors and
:class:`MetricAccumulator` applies them when asked for reported values.

Only NumPy and OpenCV (both vmatte dependencies): filters, connected components and dilations
are OpenCV calls, the rest is vectorised NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from vmatte.errors import VmatteError

__all__ = [
    "ALL_METRICS",
    "REPORT_SCALE",
    "EvalError",
    "MetricAccumulator",
    "MetricSettings",
    "boundary_f",
    "boundary_map",
    "boundary_radius",
    "conn_levels",
    "core_mask",
    "fgr_errors",
    "mean_over_clips",
    "conn",
    "dtssd",
    "gauss_gradient",
    "gauss_gradient_kernel",
    "grad",
    "jaccard",
    "mad",
    "mse",
]


class EvalError(VmatteError):
    """Evaluation inputs that cannot be compared (shapes, types, missing frames)."""


#: Multiply a raw value by this to get the number the published tables print.
REPORT_SCALE: dict[str, float] = {
    "mad": 1e3,
    "mse": 1e3,
    "grad": 1e-3,
    "conn": 1e-3,
    "dtssd": 1e2,
    "fgr_mad": 1e3,
    "fgr_mse": 1e3,
    "core_mad": 1e3,
    "core_mse": 1e3,
    "core_dtssd": 1e2,
    "j": 1e2,
    "f": 1e2,
}
ALL_METRICS: tuple[str, ...] = tuple(REPORT_SCALE)

GRAD_SIGMA = 1.4
CONN_STEP = 0.1
CONN_PHI_THRESHOLD = 0.15  # d >= 0.15 counts as a connectivity defect (metrics.md)
BOUNDARY_TOLERANCE = 0.008  # x image diagonal (DAVIS)
# Alpha values often arrive as float32 (e.g. 77/255 for "0.3"): a threshold k/10 is compared with
# this slack so the float32 nearest to k/10 counts as reaching it.
_THRESHOLD_EPS = 1e-6


def _as_alpha(a: np.ndarray, name: str = "alpha") -> np.ndarray:
    """HxW float64 in [0, 1] from float/uint8/uint16 input (HxWx1 is squeezed)."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise EvalError(f"{name} must be a single-channel HxW matte, got shape {a.shape}; pass the alpha only")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    if a.dtype == bool:
        return a.astype(np.float64)
    return a.astype(np.float64, copy=False)


def _pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = _as_alpha(pred, "prediction"), _as_alpha(true, "ground truth")
    if p.shape != t.shape:
        raise EvalError(
            f"prediction is {p.shape[1]}x{p.shape[0]} but ground truth is {t.shape[1]}x{t.shape[0]}; "
            f"resize the prediction to the ground truth's size"
        )
    return p, t


# --------------------------------------------------------------------------------------------
# Pixel errors
# --------------------------------------------------------------------------------------------


def mad(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |p - t| (over ``mask`` when given; NaN if the mask is empty)."""
    p, t = _pair(pred, true)
    d = np.abs(p - t)
    return _masked_mean(d, mask)


def mse(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean (p - t)^2 (over ``mask`` when given; NaN if the mask is empty)."""
    p, t = _pair(pred, true)
    d = np.square(p - t)
    return _masked_mean(d, mask)


def _masked_mean(values: np.ndarray, mask: np.ndarray | None) -> float:
    if mask is None:
        return float(values.mean())
    m = np.asarray(mask, bool)
    # An empty region has no error to average; NaN keeps it out of the means (nanmean).
    return float(values[m].mean()) if m.any() else math.nan


def core_mask(true: np.ndarray) -> np.ndarray:
    """Pixels where the ground truth is exactly 0 or 1 (MatAnyone's core region)."""
    t = _as_alpha(true)
    return (t == 0.0) | (t == 1.0)


def fgr_errors(pred_fgr: np.ndarray, true_fgr: np.ndarray, true_alpha: np.ndarray) -> tuple[float, float]:
    """(MAD, MSE) of the foreground colour over the pixels where the true alpha > 0.

    Colours are HxWx3 (float in [0, 1], or uint8/uint16); the mean runs over every channel of
    every such pixel. NaN, NaN when the true alpha is 0 everywhere."""
    t = _as_alpha(true_alpha, "ground truth alpha")
    pf, tf = _as_colour(pred_fgr, "predicted foreground"), _as_colour(true_fgr, "true foreground")
    if pf.shape != tf.shape or pf.shape[:2] != t.shape:
        raise EvalError(
            f"foreground shapes differ (prediction {pf.shape}, truth {tf.shape}, alpha {t.shape}); "
            f"give HxWx3 colours the size of the alpha"
        )
    m = t > 0
    if not m.any():
        return math.nan, math.nan
    d = pf[m] - tf[m]
    return float(np.abs(d).mean()), float(np.square(d).mean())


def _as_colour(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 3 or a.shape[2] != 3:
        raise EvalError(f"{name} must be HxWx3 RGB, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    return a.astype(np.float64, copy=False)


# --------------------------------------------------------------------------------------------
# Grad
# --------------------------------------------------------------------------------------------


def gauss_gradient_kernel(sigma: float = GRAD_SIGMA, epsilon: float = 1e-2) -> np.ndarray:
    """The x-derivative-of-Gaussian kernel: k[i, j] = G(i) * G'(j), i rows, j columns.

    Half size: the distance at which the Gaussian falls below ``epsilon`` of a unit-area peak
    (4 px for sigma 1.4, a 9x9 kernel), as in the Deep Image Matting evaluation code.
    Normalisation: the kernel is scaled to unit L2 norm (sum k^2 = 1), the same convention as the
    published matting evaluations; so a Grad value does not depend on how G was normalised,
    only on sigma. The y kernel is the transpose."""
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    dg = -x / sigma**2 * g
    k = np.outer(g, dg)
    return k / math.sqrt(float(np.sum(k**2)))


def gauss_gradient(alpha: np.ndarray, sigma: float = GRAD_SIGMA) -> np.ndarray:
    """|grad G(alpha)|: magnitude of the derivative-of-Gaussian responses in x and y.

    Borders are mirrored without repeating the edge pixel (OpenCV's default BORDER_REFLECT_101).
    filter2D correlates rather than convolves: that flips the sign of each derivative and
    leaves the magnitude unchanged."""
    a = _as_alpha(alpha)
    kx = gauss_gradient_kernel(sigma)
    gx = cv2.filter2D(a, cv2.CV_64F, kx, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.filter2D(a, cv2.CV_64F, np.ascontiguousarray(kx.T), borderType=cv2.BORDER_REFLECT_101)
    return np.sqrt(gx * gx + gy * gy)


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    # A constant matte stays as it is (cv2.normalize would make it all zero; either way its
    # gradient is zero).
    return (a - lo) / (hi - lo) if hi > lo else a


def grad(pred: np.ndarray, true: np.ndarray, sigma: float = GRAD_SIGMA, minmax: bool = False) -> float:
    """Sum over pixels of (|grad G(t)| - |grad G(p)|)^2 (raw; reported / 1e3).

    ``minmax=True`` first rescales each matte to span [0, 1] on its own (the low-resolution
    VideoMatte protocol of the published tables does this); ``False`` uses the mattes as they are."""
    p, t = _pair(pred, true)
    if minmax:
        p, t = _minmax(p), _minmax(t)
    return float(np.sum(np.square(gauss_gradient(t, sigma) - gauss_gradient(p, sigma))))


# --------------------------------------------------------------------------------------------
# Conn
# --------------------------------------------------------------------------------------------


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask (all False if the mask is empty).

    Ties go to the lowest label (OpenCV labels in raster order), i.e. the component met first."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def conn_levels(pred: np.ndarray, true: np.ndarray, step: float = CONN_STEP) -> np.ndarray:
    """l per pixel: the last threshold k*step at which the pixel was still in omega (0 if never)."""
    p, t = _pair(pred, true)
    n = int(round(1.0 / step))
    level = np.zeros(p.shape, np.float64)
    alive = np.ones(p.shape, bool)  # still in omega at every threshold so far
    for k in range(1, n + 1):
        th = k / n  # exact k/10, not an accumulated float sum
        omega = _largest_component((p >= th - _THRESHOLD_EPS) & (t >= th - _THRESHOLD_EPS))
        alive &= omega
        level[alive] = th
        if not alive.any():
            break
    return level


def conn(
    pred: np.ndarray, true: np.ndarray, step: float = CONN_STEP, phi_threshold: float = CONN_PHI_THRESHOLD
) -> float:
    """Connectivity error sum |phi(t) - phi(p)|, phi = 1 - d * (d >= 0.15), d = alpha - l (raw; / 1e3)."""
    p, t = _pair(pred, true)
    level = conn_levels(p, t, step)
    dp, dt = p - level, t - level
    phi_p = 1.0 - dp * (dp >= phi_threshold)
    phi_t = 1.0 - dt * (dt >= phi_threshold)
    return float(np.sum(np.abs(phi_t - phi_p)))


# --------------------------------------------------------------------------------------------
# dtSSD
# --------------------------------------------------------------------------------------------


def dtssd(
    pred: np.ndarray,
    true: np.ndarray,
    prev_pred: np.ndarray | None,
    prev_true: np.ndarray | None,
    mask: np.ndarray | None = None,
) -> float:
    """sqrt(sum(((p_k - p_{k-1}) - (t_k - t_{k-1}))^2) / N); 0 for the first frame (no previous).

    With ``mask``, the sum and N run over the masked pixels only (NaN if none)."""
    if prev_pred is None or prev_true is None:
        return 0.0
    p, t = _pair(pred, true)
    pp, pt = _pair(prev_pred, prev_true)
    if pp.shape != p.shape:
        raise EvalError(f"frame size changed from {pp.shape} to {p.shape} within a clip; keep one size per clip")
    e = np.square((p - pp) - (t - pt))
    if mask is None:
        return math.sqrt(float(e.mean()))
    m = np.asarray(mask, bool)
    return math.sqrt(float(e[m].mean())) if m.any() else math.nan


# --------------------------------------------------------------------------------------------
# J and F (DAVIS)
# --------------------------------------------------------------------------------------------


def jaccard(pred: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of (p >= 0.5) and (t >= 0.5); 1 when both are empty (DAVIS convention). Raw; x100."""
    p, t = _pair(pred, true)
    pm, tm = p >= threshold, t >= threshold
    union = np.count_nonzero(pm | tm)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pm & tm) / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a binary mask, the DAVIS ``seg2bmap`` way (same-size output).

    A pixel is on the boundary when it differs from its right, lower or lower-right neighbour;
    in the last row only the right neighbour counts, in the last column only the lower one, and
    the bottom-right pixel is never a boundary."""
    seg = np.asarray(mask, bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def boundary_radius(shape: tuple[int, int], tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """Match radius in pixels: ceil(tolerance x image diagonal) (a tolerance >= 1 is pixels)."""
    if tolerance >= 1:
        return int(tolerance)
    return int(math.ceil(tolerance * math.hypot(shape[0], shape[1])))


def boundary_f(
    pred: np.ndarray, true: np.ndarray, threshold: float = 0.5, tolerance: float = BOUNDARY_TOLERANCE
) -> float:
    """DAVIS boundary F-measure of the masks (p >= 0.5) and (t >= 0.5). Raw in [0, 1]; x100.

    Boundary pixels match when the other mask's boundary lies within a disk of radius
    ceil(0.008 x diagonal). Empty boundaries follow DAVIS: both empty -> 1; one empty -> 0."""
    p, t = _pair(pred, true)
    bp, bt = boundary_map(p >= threshold), boundary_map(t >= threshold)
    n_p, n_t = int(np.count_nonzero(bp)), int(np.count_nonzero(bt))
    if n_p == 0 and n_t == 0:
        return 1.0
    if n_p == 0 or n_t == 0:
        return 0.0
    disk = _disk(boundary_radius(p.shape, tolerance))
    bp_dil = cv2.dilate(bp.astype(np.uint8), disk).astype(bool)
    bt_dil = cv2.dilate(bt.astype(np.uint8), disk).astype(bool)
    precision = float(np.count_nonzero(bp & bt_dil)) / n_p
    recall = float(np.count_nonzero(bt & bp_dil)) / n_t
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------------------------
# Streaming accumulation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSettings:
    """Which metrics to compute, and the protocol knobs."""

    metrics: tuple[str, ...] = ALL_METRICS
    grad_sigma: float = GRAD_SIGMA
    # The published VideoMatte tables (RVM's and MatAnyone's evaluation scripts) min-max
    # normalise both mattes before Grad; off gives Grad of the mattes as they are.
    grad_minmax: bool = True
    boundary_tolerance: float = BOUNDARY_TOLERANCE

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in REPORT_SCALE]
        if unknown:
            raise EvalError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(ALL_METRICS)}")


@dataclass
class MetricAccumulator:
    """Per-frame metrics of one clip, fed frame by frame (only the previous frame is kept).

    >>> acc = MetricAccumulator()
    >>> for p, t in zip(preds, trues):
    ...     acc.update(p, t)            # returns this frame's reported values
    >>> acc.mean()                       # reported means over frames (NaN frames skipped)

    ``fgr_*`` metrics need ``pred_fgr`` and ``true_fgr`` in :meth:`update`; without them they are
    NaN. Call :meth:`reset` (or use a new accumulator) for each clip: dtSSD runs across frames.
    """

    settings: MetricSettings = field(default_factory=MetricSettings)
    frames: list[dict[str, float]] = field(default_factory=list)  # raw values per frame
    _prev: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def reset(self) -> None:
        self.frames = []
        self._prev = None

    def update(
        self, pred: np.ndarray, true: np.ndarray, pred_fgr: np.ndarray | None = None, true_fgr: np.ndarray | None = None
    ) -> dict[str, float]:
        """Score one frame; returns its reported values (raw values are kept in ``frames``)."""
        p, t = _pair(pred, true)
        want = set(self.settings.metrics)
        prev_p, prev_t = self._prev if self._prev is not None else (None, None)
        raw: dict[str, float] = {}
        if "mad" in want:
            raw["mad"] = mad(p, t)
        if "mse" in want:
            raw["mse"] = mse(p, t)
        if "grad" in want:
            raw["grad"] = grad(p, t, self.settings.grad_sigma, self.settings.grad_minmax)
        if "conn" in want:
            raw["conn"] = conn(p, t)
        if "dtssd" in want:
            raw["dtssd"] = dtssd(p, t, prev_p, prev_t)
        if want & {"core_mad", "core_mse", "core_dtssd"}:
            core = core_mask(t)
            if "core_mad" in want:
                raw["core_mad"] = mad(p, t, core)
            if "core_mse" in want:
                raw["core_mse"] = mse(p, t, core)
            if "core_dtssd" in want:
                # Core in both frames: a pixel that leaves the core has no exact temporal target.
                both = core if prev_t is None else core & core_mask(prev_t)
                raw["core_dtssd"] = dtssd(p, t, prev_p, prev_t, both)
        if want & {"fgr_mad", "fgr_mse"}:
            if pred_fgr is not None and true_fgr is not None:
                fm, fs = fgr_errors(pred_fgr, true_fgr, t)
            else:
                fm = fs = math.nan
            if "fgr_mad" in want:
                raw["fgr_mad"] = fm
            if "fgr_mse" in want:
                raw["fgr_mse"] = fs
        if "j" in want:
            raw["j"] = jaccard(p, t)
        if "f" in want:
            raw["f"] = boundary_f(p, t, tolerance=self.settings.boundary_tolerance)
        self.frames.append(raw)
        self._prev = (p, t)
        return {k: v * REPORT_SCALE[k] for k, v in raw.items()}

    def per_frame(self, reported: bool = True) -> list[dict[str, float]]:
        """Every frame's values, reported (scaled) or raw."""
        if not reported:
            return [dict(f) for f in self.frames]
        return [{k: v * REPORT_SCALE[k] for k, v in f.items()} for f in self.frames]

    def mean(self, reported: bool = True) -> dict[str, float]:
        """Mean over frames of each metric (frames where it is NaN are skipped; NaN if all are)."""
        out: dict[str, float] = {}
        if not self.frames:
            return out
        for k in self.frames[0]:
            vals = np.array([f[k] for f in self.frames], np.float64)
            ok = ~np.isnan(vals)
            m = float(vals[ok].mean()) if ok.any() else math.nan
            out[k] = m * REPORT_SCALE[k] if reported else m
        return out


def mean_over_clips(clip_means: list[dict[str, float]]) -> dict[str, float]:
    """Average per-clip means (the published tables average frames, then clips); NaN skipped."""
    keys: list[str] = []
    for c in clip_means:
        keys += [k for k in c if k not in keys]
    out = {}
    for k in keys:
        vals = np.array([c.get(k, math.nan) for c in clip_means], np.float64)
        ok = ~np.isnan(vals)
        out[k] = float(vals[ok].mean()) if ok.any() else math.nan
    return out
