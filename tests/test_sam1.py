"""Segment Anything v1: our modules and predictor against the official ``segment-anything`` 1.0.

The official package is the oracle (``pip install --no-deps segment-anything==1.0``). It imports
torchvision at package import, for PIL resizing and for the automatic mask generator's NMS; no
torchvision is installed here, so a stand-in that does what torchvision does to a PIL image
(``img.resize((w, h), BILINEAR)``) is put into ``sys.modules`` while it is imported, then taken
out again so no other test sees it.

* keys: the official vit_b / vit_l / vit_h (built on the meta device) have exactly our keys and
  shapes, and ``sam_from_state_dict`` reads each config back from the shapes;
* numbers: a tiny SAM (256 px input, 16x16 grid, 6x6 windows so windows need padding, one global
  block) with random weights, built from the oracle's classes and loaded strictly into ours:
  image embeddings, low-res logits and IoUs for several prompts, then the whole predictor path on
  a landscape and a portrait image, all within ``ATOL`` (fp32).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from vmatte.engine.segment.sam1 import Sam1Predictor
from vmatte.errors import WeightsError
from vmatte.models.sam import SAM_CONFIGS, Sam, SamConfig, config_from_state_dict, image_encoder, sam_from_state_dict

ATOL = 1e-4  # fp32; the measured differences are ~1e-6 (attention through SDPA vs explicit softmax)


@contextlib.contextmanager
def _torchvision_stand_in():
    """A minimal ``torchvision`` for importing the oracle, when the real one is absent."""
    if importlib.util.find_spec("torchvision") is not None:
        yield
        return

    def to_pil_image(pic):
        return Image.fromarray(np.asarray(pic, np.uint8), mode="RGB")

    def resize(img, size):
        # torchvision's resize of a PIL image: PIL bilinear (antialiased) to (w, h).
        return img.resize((size[1], size[0]), Image.BILINEAR)

    def _unavailable(*args, **kwargs):
        raise NotImplementedError("torchvision stand-in: not needed by these tests")

    names = [
        "torchvision",
        "torchvision.transforms",
        "torchvision.transforms.functional",
        "torchvision.ops",
        "torchvision.ops.boxes",
    ]
    mods = {n: types.ModuleType(n) for n in names}
    mods["torchvision.transforms.functional"].resize = resize
    mods["torchvision.transforms.functional"].to_pil_image = to_pil_image
    mods["torchvision.ops.boxes"].batched_nms = _unavailable
    mods["torchvision.ops.boxes"].box_area = _unavailable
    mods["torchvision"].transforms = mods["torchvision.transforms"]
    mods["torchvision"].ops = mods["torchvision.ops"]
    mods["torchvision.transforms"].functional = mods["torchvision.transforms.functional"]
    mods["torchvision.ops"].boxes = mods["torchvision.ops.boxes"]
    sys.modules.update(mods)
    try:
        yield
    finally:
        for n in names:
            sys.modules.pop(n, None)


def _import_oracle():
    if importlib.util.find_spec("segment_anything") is None:
        if os.environ.get("CI"):
            pytest.fail("segment-anything (the oracle) is not installed: pip install --no-deps segment-anything==1.0")
        pytest.skip(
            "segment-anything not installed (pip install --no-deps segment-anything==1.0)", allow_module_level=True
        )
    with _torchvision_stand_in():
        import segment_anything
    return segment_anything


sa = _import_oracle()
from segment_anything.modeling import (  # noqa: E402 - after the stand-in is in place
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    TwoWayTransformer,
)
from segment_anything.modeling import Sam as OracleSam  # noqa: E402

# --- official sizes: keys, shapes, config inference (meta device: nothing allocated) -------------


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_official_keys_shapes_and_config(name):
    with torch.device("meta"):
        oracle = sa.sam_model_registry[name]()
        ours = Sam(SAM_CONFIGS[name])
    want = {k: tuple(v.shape) for k, v in oracle.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert set(got) == set(want), (sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5])
    assert got == want
    # pixel_mean / pixel_std are not in the checkpoint, in neither implementation
    assert "pixel_mean" not in got

    sd = oracle.state_dict()  # meta tensors: the shapes of the official checkpoint
    assert config_from_state_dict(sd) == SAM_CONFIGS[name]
    model = sam_from_state_dict(sd)
    assert model.config == SAM_CONFIGS[name] and model.config.name == name
    assert model.pixel_mean.device.type == "meta" and model.pixel_mean.shape == (3, 1, 1)


def test_not_a_sam_checkpoint():
    rvm_like = {
        "backbone.features.0.0.weight": torch.zeros(16, 3, 3, 3),
        "decoder.conv.0.weight": torch.zeros(16, 16, 3, 3),
        "refiner.box_filter.weight": torch.zeros(4, 1, 3, 3),
    }
    with pytest.raises(
        WeightsError,
        match=r"rvm.pth is not a Segment Anything \(SAM v1\) checkpoint: "
        r"no image_encoder\.patch_embed\.proj\.weight.*backbone\.features",
    ):
        sam_from_state_dict(rvm_like, source="rvm.pth")


# --- tiny SAM with random weights: numbers ---------------------------------------------------------

TINY = SamConfig(
    encoder_embed_dim=64,
    encoder_depth=3,
    encoder_num_heads=4,
    encoder_global_attn_indexes=(1,),
    image_size=256,
    window_size=6,
    prompt_embed_dim=64,
    decoder_mlp_dim=128,
    iou_head_hidden_dim=64,
)


@pytest.fixture(scope="module")
def pair():
    """(oracle Sam, our Sam) with the same random weights."""
    torch.manual_seed(0)
    grid = TINY.embedding_size
    oracle = OracleSam(
        image_encoder=ImageEncoderViT(
            depth=TINY.encoder_depth,
            embed_dim=TINY.encoder_embed_dim,
            img_size=TINY.image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=TINY.encoder_num_heads,
            patch_size=TINY.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=TINY.encoder_global_attn_indexes,
            window_size=TINY.window_size,
            out_chans=TINY.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=TINY.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(TINY.image_size, TINY.image_size),
            mask_in_chans=TINY.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=TINY.prompt_embed_dim, mlp_dim=TINY.decoder_mlp_dim, num_heads=8
            ),
            transformer_dim=TINY.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=64,
        ),
    ).eval()
    with torch.no_grad():
        for name, p in oracle.named_parameters():
            if "rel_pos" in name or "pos_embed" in name:
                p.normal_(0, 0.5)  # zero-initialised upstream: make them matter
            else:
                p.add_(torch.randn_like(p) * 0.05)  # LayerNorm affines, embeddings off their init
        for mlp in oracle.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(20)  # logits of a few units, not a few tenths: a sharper test
        oracle.mask_decoder.iou_prediction_head.layers[-1].weight.mul_(5)
    ours = sam_from_state_dict({k: v.clone() for k, v in oracle.state_dict().items()}, source="tiny")
    assert ours.config == TINY
    return oracle, ours


def _maxdiff(a, b) -> float:
    return float((torch.as_tensor(a).double() - torch.as_tensor(b).double()).abs().max())


@pytest.mark.parametrize("bias_budget", [None, 3 * 256 * 256], ids=["all-heads", "heads-in-groups-of-3"])
def test_image_embeddings(pair, bias_budget, monkeypatch):
    oracle, ours = pair
    if bias_budget:  # the global block's 2 x 4 heads in uneven groups, as a 1024 px ViT-H runs them
        monkeypatch.setattr(image_encoder, "_BIAS_BUDGET", bias_budget)
    x = torch.randn(2, 3, TINY.image_size, TINY.image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = oracle.image_encoder(x)
        got = ours.encode_image(x)
    assert got.shape == (2, TINY.prompt_embed_dim, 16, 16)
    assert _maxdiff(got, want) <= ATOL


def _oracle_decode(oracle, emb, coords, labels, multimask, mask_input=None):
    sparse, dense = oracle.prompt_encoder(points=(coords, labels), boxes=None, masks=mask_input)
    return oracle.mask_decoder(
        image_embeddings=emb,
        image_pe=oracle.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
    )


CASES = {
    "1 point, multimask": ([[[100.0, 40.0]]], [[1]], True, False),
    "3 points pos/neg, single": ([[[100.0, 40.0], [30.5, 200.0], [250.0, 10.0]]], [[1, 0, 1]], False, False),
    "2 points + mask_input": ([[[12.0, 130.0], [180.0, 90.0]]], [[1, 0]], False, True),
    "2 prompt sets, one image": (
        [[[5.0, 5.0], [70.0, 70.0]], [[200.0, 100.0], [0.0, 255.0]]],
        [[1, 1], [1, 0]],
        True,
        False,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_decode(pair, case):
    oracle, ours = pair
    coords, labels, multimask, with_mask = CASES[case]
    coords, labels = torch.tensor(coords), torch.tensor(labels, dtype=torch.int)
    g = torch.Generator().manual_seed(2)
    emb = torch.randn(1, TINY.prompt_embed_dim, 16, 16, generator=g)
    b, low = coords.shape[0], TINY.low_res_size
    mask_input = torch.randn(b, 1, low, low, generator=g) * 5 if with_mask else None
    with torch.no_grad():
        want_logits, want_iou = _oracle_decode(oracle, emb, coords, labels, multimask, mask_input)
        got_logits, got_iou = ours.decode(emb, coords, labels, multimask, mask_input)
    k = 3 if multimask else 1
    assert got_logits.shape == (b, k, low, low) and got_iou.shape == (b, k)
    assert _maxdiff(got_logits, want_logits) <= ATOL
    assert _maxdiff(got_iou, want_iou) <= ATOL


def _structured_image(h: int, w: int) -> np.ndarray:
    """Gradients, a disc and a bar, plus a little noise: something for the encoder to see."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * xx / w, 255 * yy / h, 128 + 60 * np.sin(xx / 7) * np.cos(yy / 5)], -1)
    img[(yy - 0.4 * h) ** 2 + (xx - 0.6 * w) ** 2 < (0.2 * min(h, w)) ** 2] = (250, 30, 40)
    img[int(0.7 * h) : int(0.8 * h), int(0.1 * w) : int(0.5 * w)] = (20, 20, 200)
    img += np.random.default_rng(3).normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("h,w", [(97, 150), (150, 97)], ids=["landscape", "portrait"])
def test_predictor_matches_official(pair, h, w):
    oracle, ours = pair
    img = _structured_image(h, w)
    official = sa.SamPredictor(oracle)
    official.set_image(img)
    mine = Sam1Predictor(ours)
    mine.set_image(img)
    assert mine.input_size == official.input_size and mine.original_size == official.original_size
    assert _maxdiff(mine._embedding, official.features) <= ATOL

    prompts = [
        (np.array([[0.6 * w, 0.4 * h]]), np.array([1])),  # one click: 3 candidates, best kept
        (np.array([[0.6 * w, 0.4 * h], [0.3 * w, 0.75 * h], [w - 1.0, 0.0]]), np.array([1, 1, 0])),
    ]
    for points, labels in prompts:
        multimask = len(points) == 1
        masks, ious, _ = official.predict(
            point_coords=points, point_labels=labels, multimask_output=multimask, return_logits=True
        )
        best = int(np.argmax(ious))
        if multimask:  # the choice is meaningful only if the scores are apart
            assert np.sort(ious)[-1] - np.sort(ious)[-2] > 10 * ATOL
        logits, score = mine.predict(points.astype(np.float32), labels)
        assert logits.shape == (h, w) and logits.dtype == np.float32
        assert abs(score - float(ious[best])) <= ATOL
        assert _maxdiff(logits, masks[best]) <= ATOL
        # the binary mask agrees except where the logit is within the tolerance of 0
        sure = np.abs(masks[best]) > ATOL
        assert np.array_equal((logits > 0)[sure], (masks[best] > 0)[sure])


def test_predictor_needs_an_image(pair):
    with pytest.raises(RuntimeError, match="set_image"):
        Sam1Predictor(pair[1]).predict(np.array([[1.0, 1.0]]), np.array([1]))
