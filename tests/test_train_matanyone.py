"""MatAnyone training unroll: it computes what the streaming engine computes, gradients reach
the memory path and the change-probability head, and fine-tuning starts from checkpoint weights
(the numeric fixture's recipe weights stand in for the official file). About 15 s."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from vmatte.engine.matanyone.core import InferenceCore
from vmatte.engine.matanyone.settings import MatAnyoneSettings
from vmatte.train import losses as L
from vmatte.train.config import LossConfig, ModelConfig
from vmatte.train.models import build_model
from vmatte.train.stages import compute_losses
from vmatte.train.unroll import unroll

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURE = SHARED / "fixtures" / "matanyone"
DAVIS = SHARED / "media" / "davis2016" / "Annotations" / "dance-twirl"


@pytest.fixture(scope="module")
def recipe_weights(matanyone_recipe_file) -> Path:
    return matanyone_recipe_file


@pytest.fixture(scope="module")
def model(recipe_weights):
    m, source = build_model(ModelConfig(kind="matanyone", init=str(recipe_weights), mem_every=3))
    assert source == str(recipe_weights)
    return m


def _clip(t: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """DAVIS dance-twirl, as the fixture holds it (256x144), with its annotations as alpha;
    a 64x64 crop on the dancer. -> image [1,T,3,64,64], alpha [1,T,1,64,64]."""
    images, alphas = [], []
    for i in range(t):
        rgb = cv2.cvtColor(cv2.imread(str(FIXTURE / "case_short" / f"{i:05d}.png")), cv2.COLOR_BGR2RGB)
        ann = cv2.imread(str(DAVIS / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
        ann = cv2.resize(ann, (256, 144), interpolation=cv2.INTER_NEAREST)
        images.append(torch.from_numpy(rgb[40:104, 96:160]).permute(2, 0, 1).float() / 255)
        alphas.append(torch.from_numpy(ann[40:104, 96:160] > 0).float()[None])
    return torch.stack(images)[None], torch.stack(alphas)[None]


def test_unroll_matches_the_streaming_engine(model):
    image, alpha = _clip()
    with torch.no_grad():
        out = unroll(model.net, image, alpha[:, 0], mem_every=3)
    core = InferenceCore(model.net, MatAnyoneSettings(mem_every=3, stagger_updates=100))
    core.step(image[0, 0], alpha[0, 0])  # the mask step
    engine = [core.step(image[0, 0], first_frame_pred=True).alpha]  # frame 0 predicted from the mask
    engine += [core.step(image[0, i]).alpha for i in range(1, image.shape[1])]
    model.net.train()  # the engine put it in eval; BN is frozen either way
    ours = out.logits[0, :, 0].clamp(0, 1)
    assert out.change_prob.shape == (1, 5, 1, 4, 4)
    assert torch.allclose(ours, torch.cat(engine), atol=2e-4), (ours - torch.cat(engine)).abs().max()


def test_gradients_reach_memory_and_change_head(model):
    image, alpha = _clip(t=3)
    model.train()
    model.zero_grad()
    out = model(image, alpha[:, 0])
    batch = {"image": image, "alpha": alpha, "fgr": image, "kind": torch.tensor([0])}
    parts = compute_losses("matanyone", out, batch, LossConfig(change_prob=1.0, gradient=1.0, first_frame_weight=2.0))
    assert {"l1", "laplacian", "gradient", "temporal", "change_prob", "total"} <= set(parts)
    parts["total"].backward()
    for prefix in ("temp_sparity.", "mask_encoder.", "key_proj.", "object_transformer.", "mask_decoder."):
        grads = [p.grad for n, p in model.net.named_parameters() if n.startswith(prefix) and p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), prefix


def test_segmentation_batches_get_core_supervision(model):
    image, alpha = _clip(t=3)
    with torch.no_grad():
        out = model(image, alpha[:, 0])
    batch = {"image": image, "alpha": alpha, "fgr": image, "kind": torch.tensor([1])}
    parts = compute_losses("matanyone", out, batch, LossConfig(change_prob=1.0))
    assert set(parts) == {"core_l1", "ddc", "change_prob", "total"}
    expected = L.core_l1_loss(out.alpha, alpha, LossConfig().core_radius)
    assert parts["core_l1"].item() == pytest.approx(expected.item())


def test_a_small_step_along_the_gradient_lowers_the_loss(model):
    """The unrolled loss and its gradient agree (no detached path, no wrong sign): a step of
    length 1e-3 against the normalised gradient lowers the loss by about 1e-3 * |g|."""
    image, alpha = _clip(t=2)
    batch = {"image": image, "alpha": alpha, "fgr": image, "kind": torch.tensor([0])}
    params = [p for n, p in model.named_parameters() if not n.startswith("net.pixel_encoder.")]
    model.train()
    model.zero_grad()
    before = compute_losses("matanyone", model(image, alpha[:, 0]), batch, LossConfig())["total"]
    before.backward()
    norm = torch.sqrt(sum((p.grad**2).sum() for p in params if p.grad is not None))
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= 1e-3 * p.grad / norm
        after = compute_losses("matanyone", model(image, alpha[:, 0]), batch, LossConfig())["total"]
        for p, s in zip(params, saved):
            p.copy_(s)
    assert after.item() < before.item() - 0.3e-3 * norm.item(), (before.item(), after.item(), norm.item())
