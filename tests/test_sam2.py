"""SAM 2 / 2.1 image path against the official ``sam2`` package (1.1.0, the test oracle).

* every official size of SAM 2 and SAM 2.1 (built by the package from its own yaml configs, on
  the meta device: no real weights) loads into :class:`Sam2` with identical keys and shapes once
  the video-memory keys are dropped, and ``sam2_from_state_dict`` names the right variant;
* a tiny model with random weights: image features, low-res logits and IoU (one click multimask,
  several clicks through the dynamic-multimask stability check, a mask prompt) and the whole
  predictor on a non-square image equal the official ``SAM2ImagePredictor`` within 1e-4;
* checkpoints that are not SAM 2 are refused with a ``WeightsError`` saying what they are.

The oracle needs ``hydra-core`` and ``iopath``; its ``torchvision`` imports are served by a small
stand-in (no CPU torchvision here) that does what torchvision does to tensors.
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import randomize_sam2
from vmatte.engine.segment.sam2 import Sam2Predictor
from vmatte.errors import WeightsError
from vmatte.models.sam2 import SAM2_CONFIGS, VIDEO_ONLY_PREFIXES, Sam2, Sam2Config, sam2_from_state_dict
from vmatte.models.sam2.build import image_path_state_dict

# the oracle scripts its transforms with torch.jit.script, which this torch deprecates
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

TOL = 1e-4


# --- torchvision stand-in ----------------------------------------------------------------------


class _ToTensor:
    """torchvision ToTensor for an HxWxC uint8 array: CHW float32 / 255."""

    def __call__(self, pic: np.ndarray) -> torch.Tensor:
        img = torch.from_numpy(pic.transpose((2, 0, 1))).contiguous()
        return img.to(dtype=torch.get_default_dtype()).div(255)


class _Resize(nn.Module):
    """torchvision Resize on a tensor (antialias=True, the default since 0.17): interpolate on NCHW."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = [int(size[0]), int(size[1])]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        squeeze = img.dim() < 4
        x = img.unsqueeze(0) if squeeze else img
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return x.squeeze(0) if squeeze else x


class _Normalize(nn.Module):
    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=img.dtype, device=img.device)
        std = torch.tensor(self.std, dtype=img.dtype, device=img.device)
        return img.sub(mean[:, None, None]).div(std[:, None, None])


def _unavailable(*args, **kwargs):
    raise NotImplementedError("torchvision.ops stand-in: not needed by the image predictor")


_STAND_IN_NAMES = ("torchvision", "torchvision.transforms", "torchvision.ops", "torchvision.ops.boxes")


def _remove_torchvision_stand_in() -> None:
    """Other tests must not see a torchvision without a ``__spec__`` (diffusers probes for it)."""
    for name in _STAND_IN_NAMES:
        if getattr(sys.modules.get(name), "_vmatte_stand_in", False):
            del sys.modules[name]


def _install_torchvision_stand_in() -> None:
    if "torchvision" in sys.modules:
        return
    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor, transforms.Resize, transforms.Normalize = _ToTensor, _Resize, _Normalize
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    boxes.batched_nms = boxes.box_area = ops.batched_nms = ops.box_area = _unavailable
    ops.boxes = boxes
    tv.transforms, tv.ops = transforms, ops
    for module in (tv, transforms, ops, boxes):
        module._vmatte_stand_in = True
    sys.modules.update(
        {
            "torchvision": tv,
            "torchvision.transforms": transforms,
            "torchvision.ops": ops,
            "torchvision.ops.boxes": boxes,
        }
    )


def _import_oracle() -> types.ModuleType:
    if os.environ.get("CI"):  # CI installs the oracle: a missing package is a failure, not a skip
        import sam2
    else:
        sam2 = pytest.importorskip("sam2", reason="the official sam2==1.1.0 package is the test oracle")
    _install_torchvision_stand_in()
    return sam2


@pytest.fixture(scope="module")
def oracle():
    _import_oracle()
    try:  # the oracle binds the stand-in's classes at import; afterwards it can go
        from sam2 import sam2_image_predictor
        from sam2.modeling import position_encoding, sam2_base
        from sam2.modeling.backbones import hieradet, image_encoder
    finally:
        _remove_torchvision_stand_in()

    return types.SimpleNamespace(
        hieradet=hieradet,
        image_encoder=image_encoder,
        pe=position_encoding,
        base=sam2_base,
        predictor=sam2_image_predictor,
    )


# --- key compatibility with every official size ------------------------------------------------


def _official_meta_state_dict(config_file: str) -> dict[str, torch.Tensor]:
    """The official model of ``config_file`` built by the package on the meta device."""
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = compose(config_name=config_file)
    OmegaConf.resolve(cfg)
    linspace = torch.linspace
    # Hiera reads its drop-path rates with .item(): keep that one tensor on the CPU.
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})
    try:
        with torch.device("meta"):
            model = instantiate(cfg.model, _recursive_=True)
    finally:
        torch.linspace = linspace
    return model.state_dict()


@pytest.mark.parametrize("name", list(SAM2_CONFIGS))
def test_official_checkpoint_keys_load(oracle, name):
    version, size = name.split("_hiera_")
    short = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}[size]
    sd = _official_meta_state_dict(f"configs/{version}/{version}_hiera_{short}.yaml")
    assert all(v.is_meta for v in sd.values())

    model = sam2_from_state_dict(sd, source=name)
    assert model.config == SAM2_CONFIGS[name]
    assert model.config.name == f"SAM {'2.1' if version == 'sam2.1' else '2'} Hiera-{short.upper()}"

    ours = model.state_dict()
    kept = image_path_state_dict(sd)
    assert set(ours) == set(kept)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in kept.items()}
    dropped = set(sd) - set(kept)
    # only the video-memory modules are dropped, and the image path keeps its no-memory embedding
    assert dropped and all(
        k.startswith(("memory_", "mask_downsample", "obj_ptr", "maskmem", "no_obj", "no_mem_pos")) for k in dropped
    )
    assert "no_mem_embed" in kept and any(k.startswith("sam_mask_decoder.pred_obj_score_head.") for k in kept)


def test_unknown_extra_key_is_refused(oracle):
    sd = _official_meta_state_dict("configs/sam2.1/sam2.1_hiera_t.yaml")
    with pytest.raises(WeightsError, match="unexpected keys: sam_mask_decoder.extra.weight"):
        sam2_from_state_dict({**sd, "sam_mask_decoder.extra.weight": torch.zeros(2, device="meta")})
    del sd["sam_mask_decoder.conv_s0.weight"]
    with pytest.raises(WeightsError, match="missing keys: sam_mask_decoder.conv_s0.weight"):
        sam2_from_state_dict(sd)


# --- numeric equality on a tiny model ----------------------------------------------------------

TINY = replace(
    Sam2Config(),
    name="tiny test",
    embed_dim=16,
    num_heads=1,
    stages=(1, 2, 2, 1),
    global_att_blocks=(4,),
    window_spec=(8, 4, 6, 3),
    window_pos_embed_bkg_spatial_size=(7, 7),
    d_model=32,
    image_size=256,
)


def _tiny_oracle(oracle) -> nn.Module:
    """The official classes at TINY's sizes, memory modules left out (the image path has none)."""
    c = TINY
    trunk = oracle.hieradet.Hiera(
        embed_dim=c.embed_dim,
        num_heads=c.num_heads,
        stages=c.stages,
        global_att_blocks=c.global_att_blocks,
        window_spec=c.window_spec,
        window_pos_embed_bkg_spatial_size=c.window_pos_embed_bkg_spatial_size,
    )
    neck = oracle.image_encoder.FpnNeck(
        position_encoding=oracle.pe.PositionEmbeddingSine(num_pos_feats=c.d_model),
        d_model=c.d_model,
        backbone_channel_list=list(reversed(c.trunk_channels)),
        fpn_top_down_levels=list(c.fpn_top_down_levels),
        fpn_interp_model=c.fpn_interp,
    )
    encoder = oracle.image_encoder.ImageEncoder(trunk=trunk, neck=neck, scalp=c.scalp)
    model = oracle.base.SAM2Base(
        encoder,
        memory_attention=None,
        memory_encoder=None,
        image_size=c.image_size,
        directly_add_no_mem_embed=True,
        use_high_res_features_in_sam=True,
        multimask_output_in_sam=True,
        iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        fixed_no_obj_ptr=True,
        use_multimask_token_for_obj_ptr=True,
        use_mlp_for_obj_ptr_proj=True,
        proj_tpos_enc_in_obj_ptrs=True,
        no_obj_embed_spatial=True,
        # what build_sam2(apply_postprocessing=True) adds to every official config
        sam_mask_decoder_extra_args={
            "dynamic_multimask_via_stability": True,
            "dynamic_multimask_stability_delta": 0.05,
            "dynamic_multimask_stability_thresh": 0.98,
        },
    )
    randomize_sam2(model, seed=0)
    return model.eval()


@pytest.fixture(scope="module")
def tiny(oracle):
    ref = _tiny_oracle(oracle)
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    ours = sam2_from_state_dict(sd, source="tiny oracle", config=TINY)
    # the image of the predictor test: non-square, downscaled on one axis and upscaled on the other
    rgb = np.random.default_rng(1).integers(0, 256, (180, 301, 3), dtype=np.uint8)
    theirs = oracle.predictor.SAM2ImagePredictor(ref)
    n = TINY.image_size
    theirs._bb_feat_sizes = [(n // 4, n // 4), (n // 8, n // 8), (n // 16, n // 16)]  # upstream hard-codes 1024's
    theirs.set_image(rgb)
    mine = Sam2Predictor(ours)
    mine.set_image(rgb)
    return types.SimpleNamespace(ref=ref, ours=ours, rgb=rgb, theirs=theirs, mine=mine)


def _max_diff(a, b) -> float:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    assert a.shape == b.shape
    return float((a.float() - b.float()).abs().max())


def test_preprocessing_and_features_equal(tiny):
    x = tiny.mine.preprocess(tiny.rgb)
    ref_x = tiny.theirs._transforms(tiny.rgb)[None]
    assert x.shape == (1, 3, 256, 256)
    assert _max_diff(x, ref_x) <= 1e-6

    embed, high_res = tiny.mine._features
    ref = tiny.theirs._features
    assert embed.shape == (1, 32, 16, 16) and [tuple(f.shape) for f in high_res] == [(1, 4, 64, 64), (1, 8, 32, 32)]
    assert _max_diff(embed, ref["image_embed"]) <= TOL
    for mine, theirs in zip(high_res, ref["high_res_feats"]):
        assert _max_diff(mine, theirs) <= TOL
    assert float(embed.abs().mean()) > 0.1  # a real signal, not a vanishing one


def _decode_pair(tiny, coords, labels, multimask, mask_input=None):
    """(ours, oracle) low-res logits and IoU for prompts in the 256x256 input frame."""
    c = torch.tensor(coords, dtype=torch.float32)[None]
    lab = torch.tensor(labels, dtype=torch.int32)[None]
    with torch.inference_mode():
        low, iou = tiny.ours.decode(tiny.mine._features, c, lab, multimask, mask_input)
        _, ref_iou, ref_low = tiny.theirs._predict(c, lab, None, mask_input, multimask, return_logits=True)
    return low, iou, ref_low, ref_iou


def test_decode_one_click_multimask(tiny):
    low, iou, ref_low, ref_iou = _decode_pair(tiny, [[100.0, 57.5]], [1], True)
    assert low.shape == (1, 3, 64, 64) and iou.shape == (1, 3)
    assert _max_diff(low.clamp(-32, 32), ref_low) <= TOL  # the oracle returns low-res logits clamped to +-32
    assert _max_diff(iou, ref_iou) <= TOL


# 0.98: upstream's threshold; 0.0: mask 0 always stable; 2.0: never, so always the best multimask output
@pytest.mark.parametrize("thresh", [0.98, 0.0, 2.0])
def test_decode_clicks_single_mask_dynamic(tiny, thresh):
    coords, labels = [[30.0, 40.0], [200.5, 180.0], [128.0, 20.0]], [1, 0, 1]
    decoders = (tiny.ours.sam_mask_decoder, tiny.ref.sam_mask_decoder)
    old = decoders[0].stability_thresh
    decoders[0].stability_thresh = decoders[1].dynamic_multimask_stability_thresh = thresh
    try:
        low, iou, ref_low, ref_iou = _decode_pair(tiny, coords, labels, False)
    finally:
        decoders[0].stability_thresh = decoders[1].dynamic_multimask_stability_thresh = old
    assert low.shape == (1, 1, 64, 64) and iou.shape == (1, 1)
    assert _max_diff(low.clamp(-32, 32), ref_low) <= TOL
    assert _max_diff(iou, ref_iou) <= TOL

    # which branch was taken: all four masks without the selection
    prompt = tiny.ours.sam_prompt_encoder
    c = torch.tensor([coords])  # embed_points appends the padding point
    lab = torch.tensor([labels], dtype=torch.int32)
    with torch.inference_mode():
        masks, ious = tiny.ours.sam_mask_decoder.predict_masks(
            tiny.mine._features[0],
            prompt.dense_pe(),
            prompt.embed_points(c, lab),
            prompt.embed_mask(None, 1),
            tiny.mine._features[1],
        )
    best = 1 + int(ious[0, 1:].argmax())
    if thresh == 0.0:
        assert torch.equal(low[0, 0], masks[0, 0]) and not torch.equal(low[0, 0], masks[0, best])
    if thresh == 2.0:
        assert torch.equal(low[0, 0], masks[0, best]) and not torch.equal(low[0, 0], masks[0, 0])


def test_decode_with_mask_input(tiny):
    mask = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(3)) * 8
    low, iou, ref_low, ref_iou = _decode_pair(tiny, [[60.0, 200.0], [10.0, 10.0]], [1, 0], False, mask)
    assert _max_diff(low.clamp(-32, 32), ref_low) <= TOL
    assert _max_diff(iou, ref_iou) <= TOL
    no_mask, _, _, _ = _decode_pair(tiny, [[60.0, 200.0], [10.0, 10.0]], [1, 0], False)
    assert _max_diff(low, no_mask) > 1e-2  # the mask prompt changes the answer


@pytest.mark.parametrize(
    "points, labels", [([[150.0, 90.0]], [1]), ([[150.0, 90.0], [40.0, 160.0], [260.0, 20.0]], [1, 1, 0])]
)
def test_predictor_matches_official(tiny, points, labels):
    pts, lab = np.array(points, np.float32), np.array(labels)
    logits, score = tiny.mine.predict(pts, lab)
    multimask = len(points) == 1
    masks, ious, _ = tiny.theirs.predict(pts, lab, multimask_output=multimask, return_logits=True)
    assert masks.shape == (3 if multimask else 1, 180, 301)
    best = int(np.argmax(ious))
    assert logits.shape == (180, 301) and logits.dtype == np.float32
    diff = _max_diff(logits, masks[best])
    assert diff <= TOL, diff
    assert abs(score - float(ious[best])) <= TOL
    if multimask:  # the chosen mask is the oracle's best, not just close to one of them
        assert all(_max_diff(logits, masks[i]) > 1e-2 for i in range(3) if i != best)
    assert np.array_equal(logits > 0, masks[best] > 0)
    assert 0 < (logits > 0).mean() < 1


# --- bad checkpoints ---------------------------------------------------------------------------


def test_not_sam2_checkpoints_are_refused():
    sam1 = {
        "image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16),
        "image_encoder.blocks.0.attn.qkv.weight": torch.zeros(2304, 768),
        "mask_decoder.iou_token.weight": torch.zeros(1, 256),
    }
    with pytest.raises(WeightsError, match=r"SAM \(v1\) checkpoint.*not SAM 2"):
        sam2_from_state_dict(sam1)
    rvm = {"backbone.features.0.0.weight": torch.zeros(16, 3, 3, 3), "decoder.avgpool.weight": torch.zeros(1)}
    with pytest.raises(WeightsError, match=r"no SAM 2 Hiera image encoder key image_encoder\.trunk\.patch_embed"):
        sam2_from_state_dict(rvm)
    odd = {
        "image_encoder.trunk.patch_embed.proj.weight": torch.zeros(80, 3, 7, 7),
        "image_encoder.trunk.blocks.0.attn.qkv.weight": torch.zeros(240, 80),
    }
    with pytest.raises(WeightsError, match=r"width 80 with stages \(1,\) matches no official size"):
        sam2_from_state_dict(odd)


def test_video_only_prefixes_never_touch_the_image_path():
    with torch.device("meta"):
        model = Sam2(SAM2_CONFIGS["sam2.1_hiera_tiny"])
    keys = list(model.state_dict())
    assert image_path_state_dict(dict.fromkeys(keys, torch.zeros(0))).keys() == set(keys)
    assert all(p.endswith(".") or "." not in p for p in VIDEO_ONLY_PREFIXES)
