"""SAM 2 / 2.1 video tracking against the official ``SAM2VideoPredictor`` (``sam2`` 1.1.0, the oracle).

* every official size of SAM 2 and 2.1 loads into :class:`Sam2Video` strictly: every key of the
  official model (built on the meta device from its yaml), none dropped, same shapes;
* small random networks built from the official yaml configs (shrunk by overrides, plus what
  ``build_sam2_video_predictor`` sets) track 12 synthetic frames; vmatte's streaming tracker and
  the oracle give the same per-frame mask logits at the video's size (max |d| <= 1e-4) for: one
  click (20 frames), clicks with a negative, a box, a mask, two objects plus one entering later, a correction
  at frame 6, an object that leaves the frame and comes back (its object score goes negative);
* the tracker's held state stops growing once the memory windows are full.

The oracle is driven the way a user would stream: propagate up to a frame, add the prompts there,
propagate on from it (``add_all_frames_to_correct_as_cond=True``, so the correction is kept; see
``vmatte.engine.sam2video.tracker``). Its hole filling is off (``fill_hole_area=0``: it needs a CUDA
kernel the CPU package skips anyway).
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import randomize_sam2, tiny_sam2_config, tiny_tracking_sam2
from test_sam2 import (
    _import_oracle,
    _official_meta_state_dict,
    _remove_torchvision_stand_in,
)
from vmatte.engine.sam2video import Prompt, Sam2VideoTracker
from vmatte.engine.segment.sam2 import sam2_input
from vmatte.models.sam2 import (
    NO_OBJ_SCORE,
    SAM2_CONFIGS,
    Sam2Video,
    sam2_video_from_state_dict,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

TOL = 1e-4
N_FRAMES, H, W, S = 12, 96, 128, 128


# --- keys of every official size -------------------------------------------------------------


@pytest.mark.parametrize("name", list(SAM2_CONFIGS))
def test_official_checkpoint_loads_whole(oracle, name):
    version, size = name.split("_hiera_")
    short = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}[size]
    sd = _official_meta_state_dict(f"configs/{version}/{version}_hiera_{short}.yaml")
    model = sam2_video_from_state_dict(sd, source=name)
    assert model.config == SAM2_CONFIGS[name]
    ours = model.state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in sd.items()}
    assert any(k.startswith("memory_attention.layers.3.cross_attn_image.k_proj") for k in ours)
    assert ("obj_ptr_tpos_proj.weight" in ours) == ("no_obj_embed_spatial" in ours) == (version == "sam2.1")


# --- a small random network from the official config -------------------------------------------


def _overrides(version: str) -> list[str]:
    """Shrink the official tiny config (16-wide trunk, d_model 32, memories 8 wide, 128 px input)
    and set what ``build_sam2_video_predictor`` sets."""
    rope = {"feat_sizes": f"[{S // 16},{S // 16}]", "embedding_dim": 32}
    o = [
        "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
        f"model.image_size={S}",
        "model.image_encoder.trunk.embed_dim=16",
        "model.image_encoder.trunk.stages=[1,2,2,1]",
        "model.image_encoder.trunk.global_att_blocks=[4]",
        "++model.image_encoder.trunk.window_spec=[8,4,6,3]",
        "model.image_encoder.neck.d_model=32",
        "model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
        "model.image_encoder.neck.position_encoding.num_pos_feats=32",
        "model.memory_attention.d_model=32",
        "model.memory_attention.num_layers=2",
        "model.memory_attention.layer.d_model=32",
        "model.memory_attention.layer.dim_feedforward=64",
        "model.memory_attention.layer.cross_attention.kv_in_dim=8",
        "model.memory_encoder.out_dim=8",
        "model.memory_encoder.position_encoding.num_pos_feats=8",
        "++model.memory_encoder.in_dim=32",
        "++model.memory_encoder.mask_downsampler.embed_dim=32",
        "model.memory_encoder.fuser.layer.dim=32",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
        "++model.binarize_mask_from_pts_for_mem_enc=true",
        "++model.fill_hole_area=0",
        "++model.add_all_frames_to_correct_as_cond=true",
    ]
    for attn in ("self_attention", "cross_attention"):
        o += [f"model.memory_attention.layer.{attn}.{k}={v}" for k, v in rope.items()]
    return o


def _build_oracle(version: str, seed: int = 0, score_bias: float | None = None):
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    name = f"configs/{version}/{version}_hiera_t.yaml"
    cfg = compose(config_name=name, overrides=_overrides(version))
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model, _recursive_=True)
    randomize_sam2(model, seed)
    if score_bias is not None:  # the object-score head's last bias: how readily the object counts as absent
        with torch.no_grad():
            model.sam_mask_decoder.pred_obj_score_head.layers[2].bias.fill_(score_bias)
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is 30-50x cheaper in CPU time than two spinning on a shared machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def oracle():
    _import_oracle()
    try:
        from sam2 import sam2_video_predictor
        from sam2.modeling import sam2_base  # noqa: F401
    finally:
        _remove_torchvision_stand_in()
    return types.SimpleNamespace(predictor=sam2_video_predictor)


def _frames(leave: bool = False, n: int = N_FRAMES) -> list[np.ndarray]:
    """A textured background and a bright disc that moves (and, with ``leave``, exits and re-enters)."""
    rng = np.random.default_rng(5)
    bg = rng.integers(30, 120, (H // 8, W // 8, 3)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
    yy, xx = np.mgrid[:H, :W]
    out = []
    for i in range(n):
        img = bg.copy()
        cx = 40 + 4 * i
        if leave:
            cx = [40, 60, 90, 130, 170, 200, 170, 130, 90, 60, 40, 40][i]
        disc = (yy - 48) ** 2 + (xx - cx) ** 2 < 18**2
        img[disc] = (230, 210, 60)
        out.append(img)
    return out


class Pair:
    """The oracle and vmatte's tracker on the same network and frames."""

    def __init__(
        self, oracle, version: str, frames: list[np.ndarray], seed: int = 0, score_bias: float | None = None
    ) -> None:
        self.ref = _build_oracle(version, seed, score_bias)
        sd = {k: v.clone() for k, v in self.ref.state_dict().items()}
        cfg = infer_config_tiny(version)
        self.ours = sam2_video_from_state_dict(sd, source="tiny oracle", config=cfg)
        self.n = len(frames)
        self.inputs = torch.cat([sam2_input(f, S, torch.device("cpu")) for f in frames])
        inputs = self.inputs

        def load(video_path, image_size, **kwargs):
            return inputs.clone(), H, W

        self._patch = pytest.MonkeyPatch()
        self._patch.setattr(oracle.predictor, "load_video_frames", load)
        with torch.inference_mode():
            self.state = self.ref.init_state("unused")
        self._patch.undo()
        self.tracker = Sam2VideoTracker(self.ours, (H, W), num_frames=len(frames))
        self.theirs: dict[int, torch.Tensor] = {}
        self.mine: dict[int, torch.Tensor] = {}
        self.scores: dict[int, torch.Tensor] = {}

    def prompt(self, frame: int, obj_id: int, prompt: Prompt, tracker: bool = True) -> None:
        """Give both the prompt (the tracker may have had it in advance: ``tracker=False``)."""
        with torch.inference_mode():
            if prompt.mask is not None:
                self.ref.add_new_mask(self.state, frame, obj_id, torch.as_tensor(prompt.mask > 0))
            else:
                self.ref.add_new_points_or_box(
                    self.state, frame, obj_id, points=prompt.points, labels=prompt.labels, box=prompt.box
                )
        if tracker:
            self.tracker.add_prompt(frame, obj_id, prompt)

    def run_to(self, start: int, last: int) -> None:
        """Both track frames ``start`` .. ``last``."""
        with torch.inference_mode():
            for t, _, masks in self.ref.propagate_in_video(
                self.state, start_frame_idx=start, max_frame_num_to_track=last - start
            ):
                self.theirs[t] = masks[:, 0].clone()
        for t in range(start, last + 1):
            r = self.tracker.step_input(self.inputs[t : t + 1])
            assert r.index == t
            self.mine[t] = r.logits
            self.scores[t] = r.object_scores

    def max_diff(self) -> float:
        assert sorted(self.theirs) == sorted(self.mine) == list(range(self.n))
        worst = 0.0
        for t, theirs in self.theirs.items():
            mine = self.mine[t][: theirs.shape[0]]
            assert mine.shape == theirs.shape
            worst = max(worst, float((mine - theirs).abs().max()))
        return worst


def infer_config_tiny(version: str):
    return tiny_sam2_config(version, S)


def _click(points, labels) -> Prompt:
    return Prompt(points=np.array(points, np.float32), labels=np.array(labels, np.int32))


def _assert_equal(pair: Pair, absent_ok: bool = False) -> None:
    d = pair.max_diff()
    assert d <= TOL, d
    if not absent_ok:  # a real signal: on every frame the object is found, and is not the whole frame
        for t, logits in pair.mine.items():
            assert 0 < float((logits[0] > 0).float().mean()) < 1, t


def _disc_click() -> Prompt:
    return _click([[40, 48]], [1])


def test_one_click(oracle):
    """20 frames: past frame 16 the oldest pointers leave the window (max_obj_ptrs_in_encoder)."""
    p = Pair(oracle, "sam2.1", _frames(n=20), score_bias=5.0)
    p.prompt(0, 1, _disc_click())
    p.run_to(0, 19)
    _assert_equal(p)


def test_clicks_and_a_negative_sam2_0(oracle):
    """SAM 2.0's config: pointers without temporal encoding, no no-object memory embedding."""
    p = Pair(oracle, "sam2", _frames(), score_bias=5.0)
    assert p.ours.obj_ptr_tpos_proj is None and p.ours.no_obj_embed_spatial is None
    p.prompt(0, 1, _click([[40, 48], [30, 40], [100, 20]], [1, 1, 0]))
    p.run_to(0, N_FRAMES - 1)
    _assert_equal(p)


def test_box_and_a_click(oracle):
    p = Pair(oracle, "sam2.1", _frames(), seed=1, score_bias=5.0)
    p.prompt(0, 1, Prompt(box=(20.0, 28.0, 60.0, 68.0), points=np.array([[40.0, 48.0]]), labels=np.array([1])))
    p.run_to(0, N_FRAMES - 1)
    _assert_equal(p)


def test_mask_prompt(oracle):
    yy, xx = np.mgrid[:H, :W]
    mask = (yy - 48) ** 2 + (xx - 40) ** 2 < 18**2
    p = Pair(oracle, "sam2.1", _frames(), score_bias=5.0)
    p.prompt(0, 1, Prompt(mask=mask))
    p.run_to(0, N_FRAMES - 1)
    _assert_equal(p)


def test_two_objects_and_one_entering_later(oracle):
    p = Pair(oracle, "sam2.1", _frames(), score_bias=5.0)
    p.prompt(0, 1, _disc_click())
    p.prompt(0, 2, Prompt(box=(80.0, 60.0, 120.0, 90.0)))
    later = _click([[100, 20]], [1])
    p.tracker.add_prompt(4, 3, later)  # known in advance: a placeholder until frame 4
    p.run_to(0, 3)
    p.prompt(4, 3, later, tracker=False)
    p.run_to(4, N_FRAMES - 1)
    _assert_equal(p)
    assert p.mine[3].shape[0] == 3 and bool((p.mine[3][2] == NO_OBJ_SCORE).all())  # not started yet
    assert all(p.theirs[t].shape[0] == (2 if t < 4 else 3) for t in p.theirs)
    assert float((p.mine[8][0] - p.mine[8][2]).abs().max()) > 0.05  # the objects' masks differ


def test_correction_at_frame_6(oracle):
    p = Pair(oracle, "sam2.1", _frames(), score_bias=5.0)
    p.prompt(0, 1, _disc_click())
    p.run_to(0, 5)
    with torch.inference_mode():  # the oracle tracks frame 6 before it is corrected there (streaming)
        tracked = next(m[:, 0].clone() for _, _, m in p.ref.propagate_in_video(p.state, 6, 0))
    p.prompt(6, 1, _click([[64, 48], [110, 80]], [1, 0]))
    p.run_to(6, N_FRAMES - 1)
    _assert_equal(p)
    assert float((p.mine[6][0] - tracked[0]).abs().max()) > 0.1  # the correction changed frame 6


def test_object_leaves_and_reenters(oracle):
    # score bias set so this random network judges the disc absent while it is out of the frame
    p = Pair(oracle, "sam2.1", _frames(leave=True), score_bias=-0.29)
    p.prompt(0, 1, _disc_click())
    p.run_to(0, N_FRAMES - 1)
    _assert_equal(p, absent_ok=True)
    scores = [float(p.scores[t][0]) for t in range(N_FRAMES)]
    absent = [t for t in range(N_FRAMES) if scores[t] <= 0]
    assert absent and absent[0] > 0 and absent[-1] < N_FRAMES - 1, scores  # gone, then back
    for t in range(N_FRAMES):
        assert bool((p.mine[t][0] == NO_OBJ_SCORE).all()) == (t in absent)


def test_memory_stays_bounded():
    """The held state grows with the prompted frames only: flat once the recent and pointer windows fill."""
    torch.manual_seed(0)
    cfg = infer_config_tiny("sam2.1")
    model = sam2_video_from_state_dict(_random_state_dict(cfg), "random", cfg)
    tr = Sam2VideoTracker(model, (H, W))
    tr.add_prompt(0, 1, _disc_click())
    tr.add_prompt(2, 2, _click([[100, 20]], [1]))
    frames = _frames()
    sizes = []
    for t in range(22):
        tr.step(frames[t % len(frames)])
        sizes.append(tr.state_nbytes())
        for obj in tr.objects.values():
            assert sum(e.mem is not None for e in obj.memory.recent.values()) <= 7
            assert len(obj.memory.recent) <= 16
    assert sizes[18] == sizes[21] and sizes[18] > sizes[3]  # windows full from frame 2 + 16 on
    with pytest.raises(ValueError, match="already tracked"):
        tr.add_prompt(10, 1, _disc_click())


def _random_state_dict(cfg) -> dict[str, torch.Tensor]:
    model = Sam2Video(cfg)
    randomize_sam2(model, 3)
    return model.state_dict()


# --- end to end: a real H.264 clip, masks for --masks ----------------------------------------------


def test_track_writes_one_mask_per_frame(tmp_path):
    """``vmatte track``'s engine on a PyAV-decoded clip: the masks are the tracker's, in the layout
    ``--masks DIR`` reads; a bad checkpoint is one error line and leaves no masks."""
    from conftest import make_clip
    from vmatte.cli import main
    from vmatte.engine.mask_to_matte import FrameMasks
    from vmatte.engine.sam2video.track import track_masks
    from vmatte.errors import InputError
    from vmatte.io.reader import open_source

    clip = make_clip(tmp_path / "clip.mp4", 6, 64, 48)
    cfg = infer_config_tiny("sam2.1")
    model = sam2_video_from_state_dict(_random_state_dict(cfg), "random", cfg)
    out = tmp_path / "masks"
    n = track_masks(clip, out, [(20, 20, 0), (30, 10, 3)], [(60, 40, 0)], model=model)
    assert n == 6 and sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(6)]

    tr = Sam2VideoTracker(model, (48, 64), num_frames=6)
    tr.add_prompt(0, 1, Prompt(points=np.array([[20, 20], [60, 40]], np.float32), labels=np.array([1, 0])))
    tr.add_prompt(3, 1, _click([[30, 10]], [1]))
    with open_source(clip) as src:
        for f in src:
            want = (tr.step(f.image).logits[0] > 0).numpy().astype(np.uint8) * 255
            got = np.asarray(Image.open(out / f"{f.index:05d}.png"))
            assert np.array_equal(got, want)
    assert len(FrameMasks(out)) == 6

    with pytest.raises(Exception, match="already holds masks"):
        track_masks(clip, out, [(20, 20, 0)], model=model)
    # the clicks are checked as vmatte matte --click checks them (they share the code): nothing written
    for clicks, excludes, message in (
        ([(1000, 50, 0)], [], "outside the 64x48 frame"),
        ([(20, 20, 0)], [(-5, 3, 0)], "outside the 64x48 frame"),
        ([(20, 20, 0)], [(30, 30, 2)], "where no --click is"),
        ([(20, 20, 9)], [], "the video has 6 frames"),
    ):
        with pytest.raises(InputError, match=message):
            track_masks(clip, tmp_path / "m3", clicks, excludes, model=model)
    assert not (tmp_path / "m3").exists()
    rc = main(
        [
            "track",
            str(clip),
            "-o",
            str(tmp_path / "m2"),
            "--click",
            "20,20",
            "--segmenter",
            str(tmp_path / "missing.pt"),
        ]
    )
    assert rc == 2 and not any((tmp_path / "m2").glob("*.png"))


def test_sam2_matte_end_to_end(tmp_path, monkeypatch):
    """``vmatte matte clip --mask M --model sam2-matte`` (tiny random SAM 2 in place of a checkpoint): per
    frame the tracker's mask through the guided filter, soft somewhere, following the mask."""
    import cv2

    import vmatte.engine.sam2video.masks as masks_mod
    from conftest import make_clip
    from vmatte.cli import main
    from vmatte.engine.sam2video.matter import fast_guided_filter
    from vmatte.io.reader import open_source

    clip = make_clip(tmp_path / "clip.mp4", 5, 64, 48)
    cfg = infer_config_tiny("sam2.1")
    sd = _random_state_dict(cfg)
    sd["sam_mask_decoder.pred_obj_score_head.layers.2.bias"].fill_(5.0)  # the object stays present
    model = sam2_video_from_state_dict(sd, "random", cfg)
    monkeypatch.setattr(masks_mod, "load_video_model", lambda spec, device="cpu": (model, "tiny random SAM 2"))
    mask = np.zeros((48, 64), np.uint8)
    mask[10:40, 8:40] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    rc = main(
        [
            "matte",
            str(clip),
            "--mask",
            str(tmp_path / "m.png"),
            "-m",
            "sam2-matte",
            "-o",
            str(tmp_path / "out"),
            "-f",
            "alpha-png,mask-png",
            "-q",
        ]
    )
    assert rc == 0
    pngs = sorted((tmp_path / "out" / "clip_alpha").glob("*.png"))
    hard_pngs = sorted((tmp_path / "out" / "clip_mask").glob("*.png"))
    assert len(pngs) == len(hard_pngs) == 5
    tr = Sam2VideoTracker(model, (48, 64))
    tr.add_prompt(0, 1, Prompt(mask=mask > 0))
    with open_source(clip) as src:
        for f, png in zip(src, pngs):
            hard = (tr.step(f.image).logits[0] > 0).numpy()
            alpha = np.asarray(Image.open(png)).astype(np.float32)
            alpha = alpha / (65535.0 if alpha.max() > 255 else 255.0)
            if alpha.ndim == 3:
                alpha = alpha[..., 0]
            assert 0 < hard.mean() < 1
            guide = cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            want = fast_guided_filter(guide, hard.astype(np.float32), radius=2)
            assert np.abs(alpha - want).max() < 2 / 255  # the tracked mask through the guided filter ...
            assert ((alpha > 0.02) & (alpha < 0.98)).any() and np.corrcoef(alpha.ravel(), hard.ravel())[0, 1] > 0.5
    for f, png in zip(sorted(hard_pngs), pngs):  # -f mask-png: the soft mask at one half, 0/255
        m, a8 = np.asarray(Image.open(f)), np.asarray(Image.open(png))
        assert set(np.unique(m)) <= {0, 255} and np.array_equal(m == 255, a8 >= 128)  # 8-bit: alpha >= 1/2
    assert main(["matte", str(clip), "-m", "sam2-matte", "-o", str(tmp_path / "o2")]) == 2  # no mask: one error


def test_eval_vos_scores_the_sam2_tracker(tmp_path, monkeypatch, capsys):
    """``vmatte eval vos ROOT -m sam2-matte`` runs the tracker from frame 0's annotation (tiny random
    SAM 2 in place of a cached checkpoint: the scores mean nothing, the command is what is tested)."""
    import vmatte.engine.sam2video.masks as masks_mod
    from vmatte.cli import main

    cfg = infer_config_tiny("sam2.1")
    sd = _random_state_dict(cfg)
    sd["sam_mask_decoder.pred_obj_score_head.layers.2.bias"].fill_(5.0)
    model = sam2_video_from_state_dict(sd, "random", cfg)
    monkeypatch.setattr(masks_mod, "load_video_model", lambda spec, device="cpu": (model, "tiny random SAM 2"))
    frames = _frames(n=4)
    yy, xx = np.mgrid[:H, :W]
    for sub in ("JPEGImages/disc", "Annotations/disc"):
        (tmp_path / sub).mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / "JPEGImages/disc" / f"{i:05d}.jpg", quality=95)
        ann = (((yy - 48) ** 2 + (xx - 40 - 4 * i) ** 2) < 18**2).astype(np.uint8) * 255
        Image.fromarray(ann).save(tmp_path / "Annotations/disc" / f"{i:05d}.png")
    assert main(["eval", "vos", str(tmp_path), "-m", "sam2-matte", "-q"]) == 0
    out = capsys.readouterr().out
    assert "sam2-matte" in out and "disc" in out
    loaded = []
    monkeypatch.setattr(
        masks_mod, "load_video_model", lambda spec, device="cpu": loaded.append(spec) or (model, "tiny random SAM 2")
    )
    assert main(["eval", "vos", str(tmp_path), "-m", "rvm-target", "--tracker", "sam2", "-q"]) == 0
    assert "rvm-target" in capsys.readouterr().out and loaded == ["auto"]  # RVM gated by SAM 2's masks


_tiny_tracking_sam2 = tiny_tracking_sam2


def _box_mask(path):
    mask = np.zeros((48, 64), np.uint8)
    mask[10:40, 8:40] = 255
    Image.fromarray(mask).save(path)
    return mask


def _tracked_unions(model, clip, mask):
    """What an independent tracker makes of ``clip`` from ``mask`` at frame 0: the per-frame masks."""
    from vmatte.io.reader import open_source

    tr = Sam2VideoTracker(model, mask.shape)
    tr.add_prompt(0, 1, Prompt(mask=mask > 127))
    with open_source(clip) as src:
        return [(tr.step(f.image).logits > 0).any(dim=0).numpy().astype(np.float32) for f in src]


def test_videomama_from_a_mask_through_sam2(tmp_path, monkeypatch):
    """``vmatte matte clip --mask M --model videomama --tracker sam2``: SAM 2 (tiny random) tracks the
    target frame by frame inside the loop and VideoMaMa (tiny random, the real diffusers classes) reads
    exactly those masks; one alpha per frame, nothing written besides the outputs."""
    import vmatte.engine.sam2video.masks as masks_mod
    import vmatte.engine.videomama as videomama
    from conftest import make_clip
    from vmatte.cli import main
    from vmatte.models.videomama import VideoMaMa, tiny_unet_config, tiny_vae_config

    torch.manual_seed(0)
    vm = VideoMaMa.from_config(tiny_unet_config(), tiny_vae_config()).eval()
    vm.unet.save_pretrained(tmp_path / "vm" / "unet")
    vm.vae.save_pretrained(tmp_path / "vm" / "vae")
    model = _tiny_tracking_sam2()
    monkeypatch.setattr(masks_mod, "load_video_model", lambda spec, device="cpu": (model, "tiny random SAM 2"))
    read = []
    union = videomama.union

    def mask(masks, shape):  # what VideoMaMa reads of each frame's masks
        m = union(masks, shape)
        read.append((len(read), m.copy()))
        return m

    monkeypatch.setattr(videomama, "union", mask)
    clip = make_clip(tmp_path / "clip.mp4", 6, 64, 48)
    m0 = _box_mask(tmp_path / "m.png")
    rc = main(
        [
            "matte",
            str(clip),
            "--mask",
            str(tmp_path / "m.png"),
            "--model",
            "videomama",
            "--tracker",
            "sam2",
            "--weights",
            str(tmp_path / "vm"),
            "--max-size",
            "32",
            "--device",
            "cpu",
            "-f",
            "alpha-png",
            "-o",
            str(tmp_path / "out"),
            "-q",
        ]
    )
    assert rc == 0
    assert len(list((tmp_path / "out").rglob("*.png"))) == 6
    want = _tracked_unions(model, clip, m0)
    assert [i for i, _ in read] == list(range(6))
    for (_, got), w in zip(read, want):
        assert np.array_equal(got, w)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "m.png", "out", "vm"]


def test_rvm_target_with_sam2_tracker_is_rvm_gated_by_sam2_masks(tmp_path, monkeypatch):
    """``--model rvm-target --tracker sam2`` = ``--model rvm --masks DIR`` with DIR holding SAM 2's
    masks of the target (written here by an independent tracker), plus the masks' core kept opaque
    (what SAM 2 says is the target where RVM sees no person: a held object): bit for bit."""
    import vmatte.engine.sam2video.masks as masks_mod
    from conftest import make_clip
    from vmatte.cli import main
    from vmatte.engine.mask_to_matte import GateSettings, carried

    model = _tiny_tracking_sam2()
    monkeypatch.setattr(masks_mod, "load_video_model", lambda spec, device="cpu": (model, "tiny random SAM 2"))
    clip = make_clip(tmp_path / "clip.mp4", 5, 64, 48)
    m0 = _box_mask(tmp_path / "m.png")
    (tmp_path / "masks").mkdir()
    for i, m in enumerate(_tracked_unions(model, clip, m0)):
        Image.fromarray((m * 255).astype(np.uint8)).save(tmp_path / "masks" / f"{i:05d}.png")
    common = ["--device", "cpu", "-f", "alpha-png", "-q"]
    assert (
        main(
            [
                "matte",
                str(clip),
                "--mask",
                str(tmp_path / "m.png"),
                "-m",
                "rvm-target",
                "--tracker",
                "sam2",
                "-o",
                str(tmp_path / "a"),
                *common,
            ]
        )
        == 0
    )
    assert (
        main(["matte", str(clip), "--masks", str(tmp_path / "masks"), "-m", "rvm", "-o", str(tmp_path / "b"), *common])
        == 0
    )
    a, b = sorted((tmp_path / "a").rglob("*.png")), sorted((tmp_path / "b").rglob("*.png"))
    assert len(a) == len(b) == 5
    masks = sorted((tmp_path / "masks").glob("*.png"))
    for x, y, m in zip(a, b, masks):
        core = carried(np.asarray(Image.open(m)).astype(np.float32) / 255, GateSettings())
        want = np.maximum(np.asarray(Image.open(y)), np.rint(core * 255).astype(np.uint8))  # 8-bit: max commutes
        assert np.array_equal(np.asarray(Image.open(x)), want)
        assert core.max() == 1.0 and np.all(core[np.asarray(Image.open(m)) == 0] == 0)  # inside the mask only


def test_tracker_choice_errors_and_auto(tmp_path, monkeypatch):
    """``--tracker`` where it means nothing is one error line; ``auto`` is SAM 2 only when a SAM 2
    checkpoint is cached; sam2-matte is resumable (its state is saved)."""
    from vmatte.engine import registry
    from vmatte.engine.registry import tracker_kind
    from vmatte.errors import VmatteError

    monkeypatch.setenv("VMATTE_CACHE", str(tmp_path / "cache"))
    assert tracker_kind("auto") == "rvm" and tracker_kind("sam2") == "sam2" and tracker_kind("rvm") == "rvm"
    assert tracker_kind(str(tmp_path / "x.pt")) == "sam2"
    from vmatte.weights import segmenter_cache_path

    p = segmenter_cache_path("sam2.1-hiera-tiny")
    p.parent.mkdir(parents=True)
    p.write_bytes(b"x")
    assert tracker_kind("auto") == "sam2"
    mask = np.zeros((48, 64), np.uint8)
    mask[10:40, 8:40] = 1
    opts = registry.MatterOptions(mask=mask, tracker="sam2")
    with pytest.raises(VmatteError, match="--model matanyone does not take --tracker"):
        registry.load("matanyone", opts)
    with pytest.raises(VmatteError, match="does not apply"):
        registry.load("sam2-matte", opts.replace(tracker="rvm"))
    two = mask.copy()
    two[:5] = 2
    with pytest.raises(VmatteError, match="one target per run"):
        registry.load("videomama", registry.MatterOptions(mask=two))
    assert set(registry.tracker_models()) == {"rvm-target", "videomama", "sam2-matte"}
    assert registry.SPECS["sam2-matte"].resumable


def test_videomama_with_the_rvm_tracker_reads_rvm_targets_masks(tmp_path, monkeypatch):
    """``--tracker rvm`` (no SAM 2 needed): VideoMaMa's per-frame masks are ``rvm-target``'s alpha >= 1/2
    for the same target (shipped RVM weights, real H.264 clip; VideoMaMa tiny random)."""
    import vmatte.engine.videomama as videomama
    from conftest import make_clip
    from vmatte.engine import registry
    from vmatte.io.reader import open_source
    from vmatte.matte import matte
    from vmatte.models.videomama import VideoMaMa, tiny_unet_config, tiny_vae_config

    torch.manual_seed(0)
    vm = VideoMaMa.from_config(tiny_unet_config(), tiny_vae_config()).eval()
    vm.unet.save_pretrained(tmp_path / "vm" / "unet")
    vm.vae.save_pretrained(tmp_path / "vm" / "vae")
    read = []
    union = videomama.union  # what VideoMaMa reads of each frame's masks
    monkeypatch.setattr(videomama, "union", lambda masks, shape: read.append(union(masks, shape)) or read[-1])
    clip = make_clip(tmp_path / "clip.mp4", 4, 64, 48)
    m0 = _box_mask(tmp_path / "m.png")
    result = matte(
        clip,
        tmp_path / "out",
        model="videomama",
        mask=str(tmp_path / "m.png"),
        tracker="rvm",
        weights=str(tmp_path / "vm"),
        max_size=32,
        device="cpu",
        formats="alpha-png",
    )
    assert result.frames == 4 and "rvm-target" in result.model
    person = registry.load_person_tracker(registry.MatterOptions(device="cpu", mask=m0))
    person.reset()
    with open_source(clip) as src:
        want = [(person.step_all(f.image, False)[1][1] >= 0.5).astype(np.float32) for f in src]
    assert len(read) == 4 and all(np.array_equal(g, w) for g, w in zip(read, want))


def test_sam2_matte_state_restored_anywhere_gives_the_same_frames():
    """sam2-matte's saved state (the tracker's memory bank, through the journal's encoding) restored
    at any frame, before and after a target that starts later and a correction, and once recent
    memories and pointers have been dropped, gives bit-identical alphas for every following frame
    (through the frame loop, which puts the tracker's masks and scores on each frame)."""
    from vmatte.engine.loop import results
    from vmatte.engine.resume import decode_state, stream_state
    from vmatte.engine.sam2video.matter import Sam2Matter
    from vmatte.io.masks import as_target_mask
    from vmatte.io.source import Frame

    torch.set_num_threads(1)
    model = _tiny_tracking_sam2()
    frames = _frames(n=20)
    first = np.zeros((H, W), np.uint8)
    first[20:60, 10:50] = 1
    later = np.zeros((H, W), np.uint8)
    later[30:70, 60:100], later[22:58, 12:46] = 2, 1  # id 2 starts at frame 3, id 1 is corrected there
    schedule = {0: as_target_mask(first), 3: as_target_mask(later)}

    def make():
        return Sam2Matter(model, schedule, torch.device("cpu"), "tiny")

    def clip(start=0):
        return [Frame(i, f, i / 25) for i, f in enumerate(frames) if i >= start]

    whole = make()
    states, outputs = {}, []
    for r in results(whole, clip(), foreground=False):
        outputs.append(r.alphas)
        states[r.index] = decode_state(*stream_state(whole))
        assert set(r.masks) == set(r.mask_scores) == {1, 2}  # the source's masks and scores ride on the frame
    assert set(outputs[0]) == {1, 2} and not outputs[2][2].any() and outputs[5][2].any()
    for at in (0, 2, 3, 12, 17):  # 12: old memories dropped; 17: old pointers too
        got = [r.alphas for r in results(make(), clip(at + 1), foreground=False, state=states[at])]
        for i, alphas in enumerate(got, at + 1):
            assert all(np.array_equal(alphas[k], outputs[i][k]) for k in (1, 2)), (at, i)
    fresh = decode_state(*stream_state(make()))  # a state saved before any frame: a fresh start
    r = next(results(make(), clip(), foreground=False, state=fresh))
    assert all(np.array_equal(r.alphas[k], outputs[0][k]) for k in (1, 2))


def test_sam2_tracker_takes_a_keyframe_after_a_saved_state():
    """Resumed from its state at frame 4, the SAM 2 mask source takes a correction at frame 9 (a mask,
    then clicks as SAM 2 point prompts) and gives exactly what a run given that keyframe from the
    start gives: what ``vmatte fix`` needs. A frame already run, or a new target id, is refused."""
    from vmatte.engine.loop import results
    from vmatte.engine.mask_to_matte import MasksAsMattes
    from vmatte.engine.resume import decode_state, stream_state
    from vmatte.engine.sam2video.source import Sam2Masks
    from vmatte.errors import InputError
    from vmatte.io.masks import TargetMask, as_target_mask
    from vmatte.io.source import Frame

    torch.set_num_threads(1)
    model = _tiny_tracking_sam2()
    clip = [Frame(i, f, i / 25) for i, f in enumerate(_frames(n=11))]
    first = np.zeros((H, W), np.uint8)
    first[20:60, 10:50] = 1
    fix = np.zeros((H, W), np.uint8)
    fix[40:90, 60:120] = 1
    xy, labels = np.array([[150, 50], [20, 20]], np.float32), np.array([1, 0], np.int32)
    clicks = TargetMask({1: np.zeros((H, W), np.uint8)}, "clicks", kind="clicks", points={1: (xy, labels)})

    def masks(source, frames):
        return [r.masks[1] for r in results(MasksAsMattes(source, (1,)), frames, False)]

    cpu = torch.device("cpu")
    first_run = Sam2Masks(model, {0: as_target_mask(first)}, cpu, "tiny")
    base, saved = [], None
    for r in results(MasksAsMattes(first_run, (1,)), clip, False):
        base.append(r.masks[1])
        if r.index == 4:
            saved = decode_state(*stream_state(first_run))
    for correction in (as_target_mask(fix), clicks):
        want = masks(Sam2Masks(model, {0: as_target_mask(first), 9: correction}, cpu, "tiny"), clip)
        assert not np.array_equal(want[9], base[9]) and all(np.array_equal(w, b) for w, b in zip(want[:9], base))
        resumed = Sam2Masks(model, {0: as_target_mask(first)}, cpu, "tiny")
        resumed.load_state(saved)
        resumed.add_keyframe(9, correction)
        got = [resumed.annotate(Frame(f.index, f.image, f.time)).masks[1] for f in clip[5:]]
        assert all(np.array_equal(g, w) for g, w in zip(got, want[5:]))
        with pytest.raises(InputError, match="frame not run yet"):
            resumed.add_keyframe(3, correction)
        with pytest.raises(InputError, match="new target"):
            resumed.add_keyframe(20, {2: fix})


@pytest.mark.parametrize(
    "how",
    [["--model", "sam2-matte"], ["--model", "rvm-target", "--tracker", "sam2"]],
    ids=["sam2-matte", "rvm-target-tracker-sam2"],
)
def test_interrupted_then_resumed_is_identical(tmp_path, monkeypatch, how):
    """A journaled run (chunks of 2 frames) stopped by Ctrl-C at frame 5, then ``resume=True``: the alpha
    PNGs equal an uninterrupted run's, bit for bit (the tracker's state went through the journal)."""
    import json
    import time

    import vmatte.engine.sam2video.masks as masks_mod
    from conftest import make_clip
    from vmatte.engine.resume import Interrupted
    from vmatte.matte import matte

    torch.set_num_threads(1)
    model = _tiny_tracking_sam2()
    monkeypatch.setattr(masks_mod, "load_video_model", lambda spec, device="cpu": (model, "tiny random SAM 2"))
    clip = make_clip(tmp_path / "clip.mp4", 9, 64, 48)
    _box_mask(tmp_path / "m.png")
    opts = dict(
        model=how[1],
        mask=str(tmp_path / "m.png"),
        device="cpu",
        formats="alpha-png",
        **({"tracker": how[3]} if len(how) > 2 else {}),
    )
    matte(clip, tmp_path / "whole", **opts)

    journal = tmp_path / "cut" / ".vmatte-partial-clip" / "manifest.json"

    def stop(r):
        if r.index == 5:
            # chunks are committed by the writer thread: wait for two (a loaded machine lags) so the
            # resumed run surely starts past frame 0, then stop as Ctrl-C does
            deadline = time.monotonic() + 60
            while json.loads(journal.read_text())["completed"] < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        matte(clip, tmp_path / "cut", chunk_frames=2, on_frame=stop, **opts)
    assert not (tmp_path / "cut" / "clip_alpha").exists()  # nothing that looks complete
    manifest = json.loads((tmp_path / "cut" / ".vmatte-partial-clip" / "manifest.json").read_text())
    assert manifest["completed"] >= 2  # chunks kept: the resumed run starts past frame 0
    result = matte(clip, tmp_path / "cut", chunk_frames=2, resume=True, **opts)
    assert result.frames == 9
    a, b = sorted((tmp_path / "whole").rglob("*.png")), sorted((tmp_path / "cut").rglob("*.png"))
    assert len(a) == len(b) == 9
    assert all(np.array_equal(np.asarray(Image.open(x)), np.asarray(Image.open(y))) for x, y in zip(a, b))


def test_app_session_previews_sam2_tracking(tmp_path, monkeypatch):
    """The web app's 'Preview tracking': the session tracks its targets with SAM 2 (tiny random) and its
    overlay shows the tracked mask on frames without one of their own; any edit drops the preview."""
    import vmatte.engine.sam2video.masks as masks_mod
    from conftest import make_clip
    from vmatte.ui.overlay import draw_overlay
    from vmatte.ui.session import Session, UiSettings

    model = _tiny_tracking_sam2()
    monkeypatch.setattr(masks_mod, "load_video_model", lambda spec, device="cpu", **kw: (model, "tiny random SAM 2"))
    clip = make_clip(tmp_path / "clip.mp4", 6, 64, 48)
    s = Session(tmp_path / "session", UiSettings(workdir=tmp_path, device="cpu"))
    s.open_video(clip)
    m0 = _box_mask(tmp_path / "m.png")
    s.set_mask(1, 0, m0)
    seen = []
    assert s.propagate(on_frame=lambda i, n: seen.append((i, n)), tracker="sam2") == 6 and seen[-1] == (5, 6)
    want = _tracked_unions(model, clip, m0)
    for i in range(6):
        assert np.array_equal(s.tracked_mask(1, i) > 0, want[i] > 0)
    assert np.array_equal(s.overlay(3), draw_overlay(s.frame(3), [(s.tracked_mask(1, 3), s.target(1).colour)]))
    assert want[3].any() and not np.array_equal(s.overlay(3), draw_overlay(s.frame(3)))
    s.set_mask(1, 2, m0)  # an edit: the preview is stale and goes
    assert s.tracked == {} and s.tracked_mask(1, 3) is None
    assert s.propagate(frames=3, tracker="sam2") == 3 and s.tracked_mask(1, 4) is None


def test_rvm_target_with_sam2_tracker_two_targets_in_one_pass(tmp_path, monkeypatch):
    """Two targets (a label mask) with ``rvm-target --tracker sam2``: one RVM pass, one output set per
    id, each RVM's alpha gated by *that* target's SAM 2 mask with its core carried (bit for bit)."""
    import vmatte.engine.sam2video.masks as masks_mod
    from conftest import make_clip
    from vmatte.engine.mask_to_matte import GateSettings, carried, gate
    from vmatte.io.reader import open_source
    from vmatte.matte import iter_matte, load_matter, matte

    model = _tiny_tracking_sam2()
    monkeypatch.setattr(masks_mod, "load_video_model", lambda spec, device="cpu": (model, "tiny random SAM 2"))
    clip = make_clip(tmp_path / "clip.mp4", 4, 64, 48)
    labels = np.zeros((48, 64), np.uint8)
    labels[8:40, 4:28], labels[10:44, 36:60] = 1, 2
    r = matte(
        clip, tmp_path / "out", model="rvm-target", mask=labels, tracker="sam2", device="cpu", formats="alpha-png"
    )
    assert sorted(r.outputs) == ["alpha-png_id1", "alpha-png_id2"] and "2 targets" in r.model
    tr = Sam2VideoTracker(model, (48, 64))
    for i in (1, 2):
        tr.add_prompt(0, i, Prompt(mask=labels == i))
    rvm = load_matter("rvm", device="cpu")
    rvm.reset()
    got = {i: [np.asarray(Image.open(p)) for p in sorted(r.outputs[f"alpha-png_id{i}"].glob("*.png"))] for i in (1, 2)}
    with open_source(clip) as src:
        for f in src:
            hard = (tr.step(f.image).logits > 0).numpy().astype(np.float32)
            alpha = rvm.step(f.image, False)[1]
            for k, i in enumerate((1, 2)):
                want = np.maximum(alpha * gate(hard[k], GateSettings()), carried(hard[k], GateSettings()))
                assert np.array_equal(got[i][f.index], np.rint(np.clip(want, 0, 1) * 255).astype(np.uint8))
    assert not np.array_equal(got[1][0], got[2][0])
    # the masks and SAM 2's own confidence ride on each frame into the results (for review: issue flags)
    tr = Sam2VideoTracker(model, (48, 64))
    for i in (1, 2):
        tr.add_prompt(0, i, Prompt(mask=labels == i))
    with open_source(clip) as src:
        frames = list(src)
    for f, r in zip(frames, iter_matte(clip, model="rvm-target", mask=labels, tracker="sam2", device="cpu")):
        out = tr.step(f.image)
        for k, i in enumerate((1, 2)):
            assert np.array_equal(r.masks[i], (out.logits[k] > 0).numpy().astype(np.float32))
            assert r.mask_scores[i] == {"iou": out.ious[k].item(), "object_score": out.object_scores[k].item()}


def test_clicks_reach_the_sam2_tracker_as_points(tmp_path, monkeypatch):
    """``--click`` / ``--exclude`` with the SAM 2 tracker are SAM 2's own point prompts on their frames:
    no segmenter makes a mask first. ``iter_matte(model="sam2-matte", clicks=..., excludes=...)`` equals
    the tracker prompted with those points (through the guided filter), ``vmatte matte --model
    rvm-target --tracker sam2 --click`` runs on the same prompts, and ``--segmenter`` still makes a mask."""
    import cv2

    import vmatte.engine.sam2video.masks as masks_mod
    import vmatte.engine.segment.clicks as clicks_mod
    from conftest import make_clip
    from vmatte import iter_matte
    from vmatte.cli import main
    from vmatte.engine.sam2video import tracker as tracker_mod
    from vmatte.engine.sam2video.matter import fast_guided_filter
    from vmatte.io.reader import open_source

    clip = make_clip(tmp_path / "clip.mp4", 6, 64, 48)
    cfg = infer_config_tiny("sam2.1")
    sd = _random_state_dict(cfg)
    sd["sam_mask_decoder.pred_obj_score_head.layers.2.bias"].fill_(5.0)  # the object stays present
    model = sam2_video_from_state_dict(sd, "random", cfg)
    monkeypatch.setattr(masks_mod, "load_video_model", lambda spec, device="cpu": (model, "tiny random SAM 2"))

    class NoSegmenter:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the clicks went to a segmenter, not to the SAM 2 tracker")

    monkeypatch.setattr(clicks_mod, "ClickSegmenter", NoSegmenter)
    prompts = []
    add_prompt = tracker_mod.Sam2VideoTracker.add_prompt

    def spy(self, frame, obj_id, prompt):
        prompts.append((frame, obj_id, None if prompt.points is None else prompt.points.tolist(), prompt.mask))
        return add_prompt(self, frame, obj_id, prompt)

    monkeypatch.setattr(tracker_mod.Sam2VideoTracker, "add_prompt", spy)

    got = [r.alpha for r in iter_matte(clip, model="sam2-matte", clicks=[(20, 20), (30, 10, 3)], excludes=[(60, 40)])]
    assert [(f, i, pts) for f, i, pts, _ in prompts] == [(0, 1, [[20, 20], [60, 40]]), (3, 1, [[30, 10]])]
    assert all(m is None for *_, m in prompts)
    tr = Sam2VideoTracker(model, (48, 64))
    add_prompt(tr, 0, 1, Prompt(points=np.array([[20, 20], [60, 40]], np.float32), labels=np.array([1, 0])))
    add_prompt(tr, 3, 1, _click([[30, 10]], [1]))
    with open_source(clip) as src:
        frames = list(src)
    assert len(got) == len(frames) == 6
    for f, alpha in zip(frames, got):
        hard = (tr.step(f.image).logits[0] > 0).numpy().astype(np.float32)
        guide = cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        want = fast_guided_filter(guide, hard, radius=2) if hard.any() else hard
        assert np.abs(alpha - want).max() < 1e-5
    assert any(a.max() > 0.5 for a in got)  # a target was tracked, not an empty mask

    prompts.clear()
    out = tmp_path / "out"
    args = ["matte", str(clip), "-m", "rvm-target", "--tracker", "sam2", "--click", "20,20", "--exclude", "60,40"]
    assert main([*args, "-o", str(out), "-f", "alpha-png", "-q"]) == 0
    assert len(list((out / "clip_alpha").glob("*.png"))) == 6
    assert [(f, i, pts) for f, i, pts, _ in prompts] == [(0, 1, [[20, 20], [60, 40]])]
    # an exclude without a click on its frame, a click outside the frame: one error line, nothing written
    assert main([*args[:-4], "--click", "20,20", "--exclude", "60,40@2", "-o", str(tmp_path / "e1")]) == 2
    assert main([*args[:-4], "--click", "99,20", "-o", str(tmp_path / "e2")]) == 2
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()
    # a segmenter named: the clicks are made into a mask by it (the old route)
    with pytest.raises(AssertionError, match="went to a segmenter"):
        list(iter_matte(clip, model="sam2-matte", clicks=[(20, 20)], segmenter="sam2.1-hiera-tiny"))
