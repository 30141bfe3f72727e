"""Training losses of MatAnyone (Yang et al., CVPR 2025) and RVM (Lin et al., WACV 2022).

Every function takes tensors shaped ``[B, T, C, H, W]`` (a clip batch) unless it says otherwise
and returns a scalar. Alphas are in [0, 1]; images RGB in [0, 1].

- matting: :func:`l1_loss` (with per-frame weights: the first frame of a MatAnyone clip is
  predicted from the given mask and weighted separately), :func:`laplacian_loss` (L1 between
  Laplacian pyramids, level i weighted 2^i as in RVM), :func:`gradient_loss` (L1 between
  spatial finite differences), :func:`temporal_coherence_loss` (MSE between the temporal
  derivatives, RVM's "coherence").
- change probability: :func:`change_target` (|a_t - a_{t-1}| > delta, any pixel of a stride-16
  token) and :func:`change_probability_loss` (BCE against it).
- segmentation: :func:`segmentation_loss` (BCE + Dice on logits).
- core supervision for segmentation data (MatAnyone Sec. 3.3): :func:`core_regions`,
  :func:`core_l1_loss` on the known core, and :func:`ddc_loss`, the scaled DDC loss on the
  boundary band: for pixels i and neighbours j, |a_i - a_j| * |F - B| should equal |I_i - I_j|,
  which holds exactly where I = a F + (1 - a) B with locally constant F and B.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _frames(x: Tensor) -> Tensor:
    """[B,T,C,H,W] -> [B*T,C,H,W] (4-D passes through)."""
    return x.flatten(0, 1) if x.dim() == 5 else x


def frame_weights(num_frames: int, first_frame_weight: float, device: torch.device | None = None) -> Tensor:
    """[T] weights: ``first_frame_weight`` for frame 0, 1 for the rest."""
    w = torch.ones(num_frames, device=device)
    w[0] = first_frame_weight
    return w


def l1_loss(pred: Tensor, true: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean |pred - true|; with ``weights`` [T], a weighted mean over frames of per-frame means."""
    err = (pred - true).abs()
    if weights is None:
        return err.mean()
    per_frame = err.mean(dim=(0, 2, 3, 4))
    return (per_frame * weights).sum() / weights.sum()


def _gauss_kernel(channels: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    k = torch.outer(k, k) / 256.0
    return k.expand(channels, 1, 5, 5).contiguous()


def _blur(x: Tensor, kernel: Tensor) -> Tensor:
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``levels`` entries: band-pass levels (finest first), the last one the low-pass residual
    (fewer bands when the image is too small to halve again); [N,C,H,W] each."""
    kernel = _gauss_kernel(x.shape[1], x.device, x.dtype)
    out = []
    current = x
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 4:  # too small for another octave (reflect pad needs > 2)
            break
        down = _blur(current, kernel)[..., ::2, ::2]
        up = F.interpolate(down, size=current.shape[-2:], mode="nearest")
        out.append(current - _blur(up, kernel))
        current = down
    out.append(current)
    return out


def laplacian_loss(pred: Tensor, true: Tensor, levels: int = 5) -> Tensor:
    """sum_i 2^i * L1(Lap_i(pred), Lap_i(true)) (RVM's weighting; i = 0 finest)."""
    pp, tp = laplacian_pyramid(_frames(pred), levels), laplacian_pyramid(_frames(true), levels)
    return sum((2**i) * F.l1_loss(a, b) for i, (a, b) in enumerate(zip(pp, tp)))


def _spatial_grad(x: Tensor) -> tuple[Tensor, Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def gradient_loss(pred: Tensor, true: Tensor) -> Tensor:
    """L1 between horizontal and vertical finite differences (sharp edges, no halo)."""
    (px, py), (tx, ty) = _spatial_grad(pred), _spatial_grad(true)
    return F.l1_loss(px, tx) + F.l1_loss(py, ty)


def temporal_coherence_loss(pred: Tensor, true: Tensor) -> Tensor:
    """MSE between d/dt pred and d/dt true (0 for one-frame clips)."""
    if pred.shape[1] < 2:
        return pred.sum() * 0.0
    return F.mse_loss(pred[:, 1:] - pred[:, :-1], true[:, 1:] - true[:, :-1])


def change_target(alpha: Tensor, delta: float = 0.1, stride: int = 16) -> Tensor:
    """[B,T,1,H,W] alpha -> [B,T-1,1,H/stride,W/stride] in {0,1}: did any pixel of the token
    change by more than ``delta`` since the previous frame (the supervision of U_t)."""
    changed = ((alpha[:, 1:] - alpha[:, :-1]).abs() > delta).to(alpha.dtype)
    b, t = changed.shape[:2]
    pooled = F.max_pool2d(changed.flatten(0, 1), kernel_size=stride, stride=stride, ceil_mode=True)
    return pooled.unflatten(0, (b, t))


def change_probability_loss(prob: Tensor, target: Tensor) -> Tensor:
    """BCE between predicted change probabilities (frames 1..T-1) and :func:`change_target`."""
    return F.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), target)


def dice_loss(prob: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """1 - (2|P.G| + eps) / (|P| + |G| + eps), per frame, averaged."""
    p, g = _frames(prob).flatten(1), _frames(target).flatten(1)
    return (1 - (2 * (p * g).sum(1) + eps) / (p.sum(1) + g.sum(1) + eps)).mean()


def segmentation_loss(logits: Tensor, mask: Tensor) -> Tensor:
    """Binary cross-entropy + Dice of segmentation logits against a {0,1} mask."""
    return F.binary_cross_entropy_with_logits(logits, mask) + dice_loss(torch.sigmoid(logits), mask)


def _erode(mask: Tensor, radius: int) -> Tensor:
    if radius <= 0:
        return mask
    return -F.max_pool2d(-mask, 2 * radius + 1, stride=1, padding=radius)


def core_regions(mask: Tensor, radius: int) -> tuple[Tensor, Tensor]:
    """(core foreground, core background) of a binary mask [N,1,H,W]: each eroded by ``radius``.
    What is in neither is the boundary band, where a segmentation mask says nothing of alpha."""
    return _erode(mask, radius), _erode(1 - mask, radius)


def core_l1_loss(alpha: Tensor, mask: Tensor, radius: int) -> Tensor:
    """L1 between alpha and the mask on the core (known) region only."""
    a, m = _frames(alpha), _frames(mask)
    fg, bg = core_regions(m, radius)
    core = fg + bg
    return ((a - m).abs() * core).sum() / core.sum().clamp_min(1.0)


def _box_mean(x: Tensor, weight: Tensor, radius: int) -> tuple[Tensor, Tensor]:
    k = 2 * radius + 1
    num = F.avg_pool2d(x * weight, k, stride=1, padding=radius, count_include_pad=False)
    den = F.avg_pool2d(weight, k, stride=1, padding=radius, count_include_pad=False)
    return num, den


def estimate_fb_scale(image: Tensor, mask: Tensor, core_radius: int, window: int = 15) -> Tensor:
    """|F - B| per pixel [N,1,H,W] from the image: local mean colour of the core foreground
    minus that of the core background (whole-image means where a window holds no core pixel)."""
    fg, bg = core_regions(mask, core_radius)
    means = []
    for region in (fg, bg):
        num, den = _box_mean(image, region, window)
        total = region.sum((2, 3), keepdim=True).clamp_min(1.0)
        global_mean = (image * region).sum((2, 3), keepdim=True) / total
        means.append(torch.where(den > 1e-6, num / den.clamp_min(1e-6), global_mean))
    return (means[0] - means[1]).norm(dim=1, keepdim=True)


def _neighbour_diffs(x: Tensor, radius: int) -> Tensor:
    """[N,C,H,W] -> [N,K,C,H,W]: x_i - x_j for the K = (2r+1)^2 - 1 neighbours j of each i
    (replicate padding at the border, so out-of-image neighbours count as equal)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (radius,) * 4, mode="replicate")
    diffs = []
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            if dy == radius and dx == radius:
                continue
            diffs.append(x - padded[..., dy : dy + h, dx : dx + w])
    return torch.stack(diffs, 1)


def ddc_loss(alpha: Tensor, image: Tensor, region: Tensor, fb_scale: Tensor, radius: int = 1) -> Tensor:
    """Scaled DDC: mean over pixels i of ``region`` and neighbours j of
    | |a_i - a_j| * |F - B|_i - |I_i - I_j| |. ``fb_scale`` = |F - B| [N,1,H,W] (known for
    composited data, :func:`estimate_fb_scale` for segmentation data). All inputs 4-D or 5-D."""
    a, img, reg, s = _frames(alpha), _frames(image), _frames(region), _frames(fb_scale)
    da = _neighbour_diffs(a, radius).abs()[:, :, 0]  # [N,K,H,W]
    di = _neighbour_diffs(img, radius).norm(dim=2)  # [N,K,H,W]
    err = (da * s - di).abs() * reg
    return err.sum() / (reg.sum() * da.shape[1]).clamp_min(1.0)


def core_supervision_loss(
    alpha: Tensor, image: Tensor, mask: Tensor, core_radius: int, ddc_weight: float = 1.0, ddc_radius: int = 1
) -> dict[str, Tensor]:
    """Segmentation data on the matting head: core L1 + scaled DDC on the boundary band."""
    a, img, m = _frames(alpha), _frames(image), _frames(mask)
    fg, bg = core_regions(m, core_radius)
    boundary = 1 - fg - bg
    scale = estimate_fb_scale(img, m, core_radius).detach()
    return {
        "core_l1": core_l1_loss(a, m, core_radius),
        "ddc": ddc_weight * ddc_loss(a, img, boundary, scale, ddc_radius),
    }
