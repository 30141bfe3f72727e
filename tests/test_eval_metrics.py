"""vmatte.eval.metrics: hand-worked values on tiny arrays, and independent cross-checks.

The cross-checks recompute each metric a second way (SciPy filters / labelling, plain loops) and
also show that a wrong sigma, scale or threshold would give a different number, so a test that
passes pins the definition in shared/docs/metrics.md, not just "some" value.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmatte.eval.metrics import (
    REPORT_SCALE,
    EvalError,
    MetricAccumulator,
    MetricSettings,
    boundary_f,
    boundary_map,
    boundary_radius,
    conn,
    conn_levels,
    core_mask,
    dtssd,
    fgr_errors,
    gauss_gradient,
    gauss_gradient_kernel,
    grad,
    jaccard,
    mad,
    mean_over_clips,
    mse,
)

SYNTHETIC = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "pymatting-synthetic"


# --------------------------------------------------------------------------------------------
# Hand-worked values
# --------------------------------------------------------------------------------------------


def test_mad_mse_by_hand():
    p = np.array([[0.0, 0.5], [1.0, 1.0]])
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    # |p - t| = 0, 0.5, 0, 1 -> MAD = 1.5 / 4 = 0.375; (p - t)^2 = 0, 0.25, 0, 1 -> MSE = 1.25 / 4
    assert mad(p, t) == pytest.approx(0.375)
    assert mse(p, t) == pytest.approx(0.3125)
    # uint8 input is alpha * 255: 0.5 -> 127 is 128/255 away from 255
    assert mad((p * 255).astype(np.uint8), (t * 255).astype(np.uint8)) == pytest.approx((128 / 255 + 1) / 4)


def test_reporting_scales():
    assert REPORT_SCALE == {
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
    acc = MetricAccumulator(MetricSettings(metrics=("mad", "mse")))
    out = acc.update(np.array([[0.0, 0.5], [1.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert out == pytest.approx({"mad": 375.0, "mse": 312.5})


def test_core_region_by_hand():
    t = np.array([[0.0, 0.5], [1.0, 1.0]])
    p = np.array([[0.2, 0.5], [1.0, 0.6]])
    # core = t in {0, 1}: pixels (0,0), (1,0), (1,1); |d| there = 0.2, 0, 0.4
    assert core_mask(t).tolist() == [[True, False], [True, True]]
    assert mad(p, t, core_mask(t)) == pytest.approx(0.6 / 3)
    assert mse(p, t, core_mask(t)) == pytest.approx((0.04 + 0.16) / 3)
    assert mad(p, t) == pytest.approx(0.6 / 4)  # whole frame, for contrast
    acc = MetricAccumulator(MetricSettings(metrics=("core_mad", "core_mse")))
    assert acc.update(p, t) == pytest.approx({"core_mad": 200.0, "core_mse": 200.0 / 3})
    # no core pixel at all -> NaN, skipped by the mean
    assert math.isnan(mad(p, np.full((2, 2), 0.5), core_mask(np.full((2, 2), 0.5))))


def test_fgr_errors_by_hand():
    alpha = np.array([[0.0, 0.5], [1.0, 1.0]])
    true = np.zeros((2, 2, 3))
    pred = true + 0.1
    pred[0, 0] += 0.8  # alpha 0 there: not counted
    # 3 pixels x 3 channels, each off by 0.1 -> MAD 0.1, MSE 0.01
    m, s = fgr_errors(pred, true, alpha)
    assert (m, s) == pytest.approx((0.1, 0.01))
    acc = MetricAccumulator(MetricSettings(metrics=("fgr_mad", "fgr_mse")))
    assert acc.update(alpha, alpha, pred, true) == pytest.approx({"fgr_mad": 100.0, "fgr_mse": 10.0})


def test_dtssd_by_hand_and_streaming():
    t0 = t1 = np.zeros((2, 2))
    p0 = np.zeros((2, 2))
    p1 = np.array([[0.5, 0.0], [0.0, 0.0]])
    # frame 0 counts 0; frame 1: sum of squares 0.25 over N = 4 -> sqrt(0.0625) = 0.25
    assert dtssd(p0, t0, None, None) == 0.0
    assert dtssd(p1, t1, p0, t0) == pytest.approx(0.25)
    # a prediction that follows the truth's change has no temporal error, however far off it is
    assert dtssd(p0 + 0.3, t0 + 0.3, p0, t0) == pytest.approx(0.0)
    acc = MetricAccumulator(MetricSettings(metrics=("dtssd",)))
    assert acc.update(p0, t0) == {"dtssd": 0.0}
    assert acc.update(p1, t1) == pytest.approx({"dtssd": 25.0})
    assert acc.mean() == pytest.approx({"dtssd": 12.5})  # (0 + 25) / 2: the first frame counts
    assert [f["dtssd"] for f in acc.per_frame(reported=False)] == pytest.approx([0.0, 0.25])
    acc.reset()
    assert acc.update(p1, t1) == {"dtssd": 0.0}  # a new clip starts without a previous frame


def test_core_dtssd_needs_core_in_both_frames():
    t0 = np.array([[0.0, 0.0], [1.0, 0.5]])
    t1 = np.array([[0.0, 0.5], [1.0, 1.0]])
    p0 = t0.copy()
    p1 = np.array([[0.2, 0.5], [1.0, 1.0]])
    # core in both: (0,0) and (1,0); temporal error there: 0.2 and 0 -> sqrt(0.04 / 2)
    acc = MetricAccumulator(MetricSettings(metrics=("core_dtssd",)))
    acc.update(p0, t0)
    assert acc.update(p1, t1)["core_dtssd"] == pytest.approx(100 * math.sqrt(0.02))


CONN_T = np.array(
    [
        [1.0, 1.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.17],
    ]
)
CONN_P = np.array(
    [
        [1.0, 1.0, 0.0, 0.0],
        [1.0, 0.5, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def test_conn_by_hand():
    # (p >= th) & (t >= th):
    #   th = 0.1: the 2x2 block + (3,3) (t = 0.17) -> largest 4-connected component: the block
    #   th = 0.2 .. 0.5: the 2x2 block
    #   th = 0.6 .. 1.0: (0,0), (0,1), (1,0) (p(1,1) = 0.5 drops out); an L, still one component
    # l = last threshold still in omega: 1.0 for the L, 0.5 for (1,1), 0 everywhere else.
    assert conn_levels(CONN_P, CONN_T) == pytest.approx(
        np.array(
            [
                [1.0, 1.0, 0.0, 0.0],
                [1.0, 0.5, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0],
            ]
        )
    )
    # d = alpha - l, phi = 1 - d * (d >= 0.15):
    #   the L: d = 0 in both -> 0
    #   (1,1): t: d = 0.5 -> phi 0.5; p: d = 0 -> phi 1     -> 0.5
    #   (2,3): t: d = 0 -> phi 1;     p: d = 1 -> phi 0     -> 1
    #   (3,3): t: d = 0.17 -> phi 0.83; p: d = 1 -> phi 0   -> 0.83
    # Conn = 2.33 (reported /1e3: 0.00233)
    assert conn(CONN_P, CONN_T) == pytest.approx(2.33)
    # The 0.15 cut matters: at 0.2, (3,3)'s t has d < cut -> phi 1 -> 0.5 + 1 + 1 = 2.5
    assert conn(CONN_P, CONN_T, phi_threshold=0.2) == pytest.approx(2.5)
    # So do the 0.1 steps: at step 0.2, (1,1) has l = 0.4 -> t: d 0.6 -> phi 0.4; p: d 0.1 -> 1
    assert conn(CONN_P, CONN_T, step=0.2) == pytest.approx(0.6 + 1 + 0.83)
    acc = MetricAccumulator(MetricSettings(metrics=("conn",)))
    assert acc.update(CONN_P, CONN_T) == pytest.approx({"conn": 0.00233})


def test_conn_is_4_connected():
    # Two pixels touching only diagonally are two components: the larger (first, on a tie)
    # wins, so the other one gets l = 0.
    t = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert conn_levels(t, t).tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_grad_kernel_and_ramp_by_hand():
    k = gauss_gradient_kernel(1.4)
    # half size ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4 -> 9x9
    assert k.shape == (9, 9)
    assert np.sum(k**2) == pytest.approx(1.0)  # unit L2 norm
    assert np.sum(k) == pytest.approx(0.0, abs=1e-12)
    # A ramp t = s * x: gx = s * sum_ij k[i,j] * j, gy = 0 away from the borders. With
    # k = G(i) G'(j) / norm and G'(j) = -j G(j) / sigma^2, in the continuum limit
    # |grad| = s * 2 sigma^2 sqrt(2 pi) (= 9.83 s for sigma 1.4; 5.01 s for sigma 1.0).
    s = 0.01
    ramp = np.tile(np.arange(32) * s, (32, 1))
    g = gauss_gradient(ramp, 1.4)
    x = np.arange(-4, 5)
    gauss = np.exp(-(x**2) / (2 * 1.4**2))
    dgauss = -x / 1.4**2 * gauss
    exact = s * abs(np.sum(x * dgauss)) * gauss.sum() / math.sqrt(np.sum(gauss**2) * np.sum(dgauss**2))
    assert g[8:24, 8:24] == pytest.approx(np.full((16, 16), exact), rel=1e-9)
    assert exact == pytest.approx(s * 2 * 1.4**2 * math.sqrt(2 * math.pi), rel=0.02)
    assert gauss_gradient(ramp, 1.0)[16, 16] == pytest.approx(s * 2 * 1.0**2 * math.sqrt(2 * math.pi), rel=0.02)


def test_grad_minmax_option():
    t = np.zeros((24, 24))
    t[6:18, 6:18] = 1.0
    t = cv2.GaussianBlur(t, (5, 5), 1.0)
    p = 0.5 * t / t.max()
    # min-max normalised, p and t are the same matte -> 0
    assert grad(p, t, minmax=True) == pytest.approx(0.0, abs=1e-12)
    # as they are: |grad G(t')| is linear in the matte -> (1 - 0.5/max)^2 * sum |grad G(t)|^2
    full = np.sum(gauss_gradient(t) ** 2)
    assert grad(p, t, minmax=False) == pytest.approx((1 - 0.5 / t.max()) ** 2 * full)
    assert grad(t, t) == 0.0


def test_j_by_hand():
    t = np.zeros((4, 4))
    t[0:2, 0:2] = 1.0
    p = np.zeros((4, 4))
    p[0:2, 0:3] = 0.5  # alpha >= 0.5 counts as foreground
    assert jaccard(p, t) == pytest.approx(4 / 6)
    assert jaccard(np.where(p > 0, 0.49, 0.0), t) == 0.0  # just below the 0.5 cut
    assert jaccard(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0  # both empty: DAVIS says 1


def test_boundary_map_by_hand():
    m = np.zeros((4, 4), bool)
    m[1:3, 1:3] = True
    # a pixel is boundary if it differs from its right, lower or lower-right neighbour
    # (last row: right only; last column: lower only; bottom-right corner: never)
    assert boundary_map(m).astype(int).tolist() == [
        [1, 1, 1, 0],
        [1, 0, 1, 0],
        [1, 1, 1, 0],
        [0, 0, 0, 0],
    ]


def test_j_and_f_identical_disjoint_shifted():
    t = np.zeros((64, 64))
    t[20:40, 20:40] = 1.0
    assert boundary_radius(t.shape) == 1  # ceil(0.008 * 90.5)
    assert jaccard(t, t) == 1.0 and boundary_f(t, t) == 1.0
    far = np.zeros((64, 64))
    far[45:60, 45:60] = 1.0
    assert jaccard(far, t) == 0.0 and boundary_f(far, t) == 0.0
    shifted = np.roll(t, 1, axis=1)
    assert jaccard(shifted, t) == pytest.approx(380 / 420)  # 20x19 overlap, 20x21 union
    assert boundary_f(shifted, t) == pytest.approx(1.0)  # within the 1-px tolerance
    # 3 px off is beyond a 1-px tolerance on the vertical edges; with a 4-px tolerance it is not
    shifted3 = np.roll(t, 3, axis=1)
    assert boundary_f(shifted3, t) < 0.8
    assert boundary_f(shifted3, t, tolerance=4) == pytest.approx(1.0)
    acc = MetricAccumulator(MetricSettings(metrics=("j", "f")))
    assert acc.update(shifted, t) == pytest.approx({"j": 100 * 380 / 420, "f": 100.0})
    # one mask empty, the other not -> F = 0
    assert boundary_f(np.zeros((64, 64)), t) == 0.0


def test_bad_input():
    with pytest.raises(EvalError, match="resize the prediction"):
        mad(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(EvalError, match="single-channel"):
        mad(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    with pytest.raises(EvalError, match="unknown metric"):
        MetricSettings(metrics=("sad",))


def test_mean_skips_nan_and_averages_clips():
    acc = MetricAccumulator(MetricSettings(metrics=("mad", "fgr_mad")))
    acc.update(np.zeros((2, 2)), np.ones((2, 2)))  # no fgr given -> NaN
    acc.update(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2, 3)), np.full((2, 2, 3), 0.5))
    m = acc.mean()
    assert m["mad"] == pytest.approx(500.0) and m["fgr_mad"] == pytest.approx(500.0)
    assert mean_over_clips([{"mad": 1.0}, {"mad": 3.0, "j": 50.0}]) == {"mad": 2.0, "j": 50.0}


# --------------------------------------------------------------------------------------------
# Real alpha (pymatting's 32x32 synthetic image), cross-checked another way
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic():
    if not (SYNTHETIC / "test_alpha.png").exists():
        pytest.skip(f"{SYNTHETIC} not available")
    t = cv2.imread(str(SYNTHETIC / "test_alpha.png"), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255.0
    # A plausible prediction: blurred, a bit too opaque, with a stray blob in the background.
    p = np.clip(cv2.GaussianBlur(t, (5, 5), 1.0) * 1.1, 0, 1)
    p[2:5, 2:5] = 0.7
    return p, t


def _scipy_grad(p, t, sigma):
    ndimage = pytest.importorskip("scipy.ndimage")

    def mag(a):
        # SciPy's derivative-of-Gaussian (kernel normalised to unit sum of G), truncated at the
        # same 4 px, mirrored borders; rescaled to a unit-L2-norm kernel via its impulse response.
        kw = dict(sigma=sigma, truncate=4 / sigma, mode="mirror")
        delta = np.zeros((21, 21))
        delta[10, 10] = 1.0
        norm = math.sqrt(np.sum(ndimage.gaussian_filter(delta, order=(0, 1), **kw) ** 2))
        gx = ndimage.gaussian_filter(a, order=(0, 1), **kw) / norm
        gy = ndimage.gaussian_filter(a, order=(1, 0), **kw) / norm
        return np.hypot(gx, gy)

    return float(np.sum((mag(t) - mag(p)) ** 2))


def _loop_conn(p, t, step=0.1, cut=0.15):
    ndimage = pytest.importorskip("scipy.ndimage")
    n = round(1 / step)
    levels = np.zeros_like(t)
    # For each threshold, omega from SciPy's labelling (default structure = 4-connectivity);
    # l = the highest k/n such that the pixel is in omega at every threshold up to k/n.
    in_omega = []
    for k in range(1, n + 1):
        th = k / n
        lab, num = ndimage.label((p >= th - 1e-6) & (t >= th - 1e-6))
        if num == 0:
            in_omega.append(np.zeros_like(t, bool))
            continue
        sizes = np.bincount(lab.ravel())[1:]
        in_omega.append(lab == 1 + int(np.argmax(sizes)))
    for y in range(t.shape[0]):
        for x in range(t.shape[1]):
            lv = 0.0
            for k in range(n):
                if not in_omega[k][y, x]:
                    break
                lv = (k + 1) / n
            levels[y, x] = lv
    total = 0.0
    for y in range(t.shape[0]):
        for x in range(t.shape[1]):
            dt, dp = t[y, x] - levels[y, x], p[y, x] - levels[y, x]
            phit = 1 - dt if dt >= cut else 1.0
            phip = 1 - dp if dp >= cut else 1.0
            total += abs(phit - phip)
    return total


def test_synthetic_grad_matches_scipy_and_pins_sigma(synthetic):
    p, t = synthetic
    ours = grad(p, t, minmax=False)
    assert ours > 1.0
    assert ours == pytest.approx(_scipy_grad(p, t, 1.4), rel=1e-6)
    # a wrong sigma would not pass the line above
    assert abs(_scipy_grad(p, t, 1.0) - ours) > 0.05 * ours
    assert abs(grad(p, t, sigma=1.0) - ours) > 0.05 * ours
    # the min-max option: same as normalising by hand first
    pn = (p - p.min()) / (p.max() - p.min())
    assert grad(p, t, minmax=True) == pytest.approx(_scipy_grad(pn, t, 1.4), rel=1e-6)
    acc = MetricAccumulator(MetricSettings(metrics=("grad",), grad_minmax=False))
    assert acc.update(p, t)["grad"] == pytest.approx(ours / 1000)


def test_synthetic_conn_matches_loop_and_pins_thresholds(synthetic):
    p, t = synthetic
    ours = conn(p, t)
    assert ours > 1.0
    assert ours == pytest.approx(_loop_conn(p, t), rel=1e-9)
    assert abs(_loop_conn(p, t, cut=0.2) - ours) > 1e-3 * ours
    assert abs(_loop_conn(p, t, step=0.2) - ours) > 1e-3 * ours
    acc = MetricAccumulator(MetricSettings(metrics=("conn",)))
    assert acc.update(p, t)["conn"] == pytest.approx(ours / 1000)


def test_synthetic_pixel_and_region_metrics(synthetic):
    p, t = synthetic
    d = [abs(a - b) for a, b in zip(p.ravel().tolist(), t.ravel().tolist())]
    assert mad(p, t) == pytest.approx(sum(d) / len(d))
    assert mse(p, t) == pytest.approx(sum(x * x for x in d) / len(d))
    core = [x for x, tv in zip(d, t.ravel().tolist()) if tv in (0.0, 1.0)]
    assert 0 < len(core) < len(d)
    assert mad(p, t, core_mask(t)) == pytest.approx(sum(core) / len(core))
    pm, tm = p.ravel() >= 0.5, t.ravel() >= 0.5
    assert jaccard(p, t) == pytest.approx(np.sum(pm & tm) / np.sum(pm | tm))
    out = MetricAccumulator().update(p, t)
    assert out["mad"] == pytest.approx(1000 * sum(d) / len(d))
    assert out["mse"] == pytest.approx(1000 * sum(x * x for x in d) / len(d))
    assert 0 < out["j"] < 100 and 0 < out["f"] <= 100
