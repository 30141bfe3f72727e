"""The web app's logic without a browser (vmatte.ui.session / job / overlay / serve): clicks pick
the right person, masks from files and brushes, several targets as keyframes, runs with
progress, cancellation and downloads, and the app's limits.

The clip is 12 frames of DAVIS-2016 dance-twirl (../shared, read-only) at 320x180: RVM only
segments people, so clicking needs a real one.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import write_h264
from vmatte.errors import InputError, VmatteError
from vmatte.io.probe import read_rgba, stream_summary
from vmatte.ui.job import (
    Cancelled,
    Job,
    RunSettings,
    available_models,
    read_result_frame,
    run_job,
)
from vmatte.ui.overlay import (
    INCLUDE_COLOUR,
    Marker,
    draw_overlay,
    mask_from_layers,
    result_view,
    target_colour,
    zoom_crop,
)
from vmatte.ui.session import Session, SessionStore, UiSettings, inside

DAVIS = Path(__file__).resolve().parents[2] / "shared" / "media" / "davis2016"
SEQUENCE = "dance-twirl"
FRAMES, SIZE = 12, (320, 180)
CLICK = (161, 82)  # on the dancer at frame 0 (checked against the DAVIS annotation below)
EMPTY = (20, 170)  # the floor, bottom-left: no one there


def _davis(kind: str, i: int) -> Path:
    folder, ext = ("JPEGImages", "jpg") if kind == "image" else ("Annotations", "png")
    return DAVIS / folder / SEQUENCE / f"{i:05d}.{ext}"


def person_clip(path: Path, frames: int = FRAMES) -> Path:
    """An H.264 clip of the DAVIS dancer, 320x180 (the test writes it; nothing is copied)."""
    images = [
        cv2.cvtColor(
            cv2.resize(cv2.imread(str(_davis("image", i))), SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
        )
        for i in range(frames)
    ]
    return write_h264(path, images)


def truth(i: int = 0) -> np.ndarray:
    return (
        cv2.resize(cv2.imread(str(_davis("mask", i)), cv2.IMREAD_GRAYSCALE), SIZE, interpolation=cv2.INTER_NEAREST)
        > 127
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return person_clip(tmp_path_factory.mktemp("clip") / "dancer.mp4")


@pytest.fixture
def session(tmp_path, clip) -> Session:
    s = Session(tmp_path / "work" / "s", UiSettings(tmp_path / "work", device="cpu"))
    s.open_video(clip)
    return s


def test_click_constant_is_on_the_dancer():
    assert truth(0)[CLICK[1], CLICK[0]] and not truth(0)[EMPTY[1], EMPTY[0]]


def test_open_video_copies_into_the_session_and_counts_frames(session, clip):
    assert session.frame_count == FRAMES and (session.info.width, session.info.height) == SIZE
    assert inside(session.video, session.folder) and session.video.read_bytes() == clip.read_bytes()
    assert session.name == "dancer"
    assert session.frame(5).shape == (180, 320, 3)


def test_bad_upload_is_one_line_and_keeps_the_previous_video(session, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    before = session.video
    with pytest.raises(InputError, match="cannot use this file") as e:
        session.open_video(junk)
    assert "\n" not in str(e.value)
    assert session.video == before and before.is_file() and session.frame_count == FRAMES
    assert sorted(p.name for p in session.folder.iterdir()) == [before.name]  # the junk copy is gone


def test_upload_over_the_cap_is_refused(tmp_path, clip):
    s = Session(tmp_path / "s", UiSettings(tmp_path, max_upload_mb=1))
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * 2**20))
    with pytest.raises(InputError, match="over this app's 1 MB limit"):
        s.open_video(big)
    assert s.video is None


def test_click_picks_the_dancer_and_not_the_crowd(session):
    mask = session.click(1, *CLICK, frame=0)
    got, gt = mask >= 128, truth(0)
    iou = (got & gt).sum() / (got | gt).sum()
    assert iou > 0.7, iou
    assert session.targets[1].sources == {0: "clicks"}
    # the overlay shows the clicked target in its colour, only where the mask is
    over, frame = session.overlay(0).astype(int), session.frame(0).astype(int)
    y, x = np.argwhere(mask == 255)[0]
    assert np.abs(over[y, x] - frame[y, x]).sum() > 20
    assert np.array_equal(over[EMPTY[1], EMPTY[0]], frame[EMPTY[1], EMPTY[0]])


def test_click_on_no_one_is_an_error_and_not_kept(session):
    with pytest.raises(InputError, match="no person under"):
        session.click(1, *EMPTY, frame=0)
    assert session.targets[1].points == [] and session.targets[1].masks == {}
    with pytest.raises(InputError, match="click on the subject first"):
        session.click(1, *CLICK, frame=0, negative=True)
    with pytest.raises(InputError, match="outside the video"):
        session.click(1, *CLICK, frame=FRAMES)


def test_undo_and_clear(session):
    session.click(1, *CLICK, frame=0)
    first = session.targets[1].masks[0].copy()
    session.click(1, CLICK[0], CLICK[1] + 30, frame=0)
    session.undo_point(1)
    assert np.array_equal(session.targets[1].masks[0], first) and len(session.targets[1].points) == 1
    session.undo_point(1)
    assert session.targets[1].masks == {} and session.targets[1].points == []
    session.click(1, *CLICK, frame=3)
    session.clear_frame(1, 3)
    assert session.keyframes() == {}


def test_mask_file_and_brush_replace_clicks_and_resize(session, tmp_path):
    session.click(1, *CLICK, frame=0)
    png = tmp_path / "mask.png"
    big = np.zeros((360, 640), np.uint8)
    big[100:200, 300:400] = 255
    cv2.imwrite(str(png), big)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = session.set_mask(1, 0, png, "file")
    assert any("resized" in str(w.message) for w in caught)
    assert m.shape == (180, 320) and (m > 0).sum() == 50 * 50
    assert session.targets[1].points == [] and session.targets[1].sources[0] == "file"
    with pytest.raises(InputError, match="no target pixel"):
        session.set_mask(1, 0, np.zeros((180, 320), np.uint8))
    layer = np.zeros((180, 320, 4), np.uint8)
    layer[10:20, 10:30, 3] = 255
    assert mask_from_layers([np.zeros((180, 320, 4), np.uint8)]) is None
    session.set_mask(1, 2, mask_from_layers([layer]), "brush")
    assert (session.targets[1].masks[2] > 0).sum() == 200


def test_several_targets_become_keyframes(session):
    session.click(1, *CLICK, frame=0)
    two = session.add_target("shadow")
    assert two.id == 2 and target_colour(2) != target_colour(1)
    m = np.zeros((180, 320), np.uint8)
    m[150:170, 250:300] = 255
    session.set_mask(2, 4, m, "brush")
    keys = session.keyframes()
    assert sorted(keys) == [0, 4]
    assert keys[0].ids == (1,) and keys[4].ids == (2,)
    session.rename_target(2, "  partner ")
    assert session.target_names() == {1: "Target 1", 2: "partner"}
    session.remove_target(1)
    session.remove_target(2)
    assert list(session.targets) == [1] and session.keyframes() == {}  # never without a target


def test_overlay_drawing():
    img = np.full((60, 80, 3), 100, np.uint8)
    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 10:30] = 255
    out = draw_overlay(img, [(mask, (255, 0, 0))], [Marker(60, 45)])
    assert out[20, 20, 0] > 150 and out[20, 20, 1] < 100  # tinted red inside
    assert np.array_equal(out[5, 70], img[5, 70])  # untouched far away
    assert tuple(out[45, 60]) == INCLUDE_COLOUR  # the marker's centre
    with pytest.raises(ValueError, match="does not match"):
        draw_overlay(img, [(np.zeros((10, 10), np.uint8), (1, 2, 3))])


def test_result_view_modes_and_zoom():
    fg = np.zeros((90, 160, 3), np.uint8)
    fg[:] = (255, 0, 0)
    alpha = np.zeros((90, 160), np.uint8)
    alpha[:, 80:] = 255
    side = result_view(fg, alpha, "Side by side")
    assert side.shape == (90, 320, 3)
    assert tuple(side[20, 100]) == (255, 255, 255) and tuple(side[20, 5]) == (0, 0, 0)  # alpha panel
    assert tuple(side[20, 160 + 100]) == (255, 0, 0)  # the subject where alpha is 1
    assert side[20, 160 + 5, 0] == side[20, 160 + 5, 1] > 100  # checkerboard (grey) where alpha is 0
    comp = result_view(fg, alpha, "Composite", background=(0, 0, 1))
    assert tuple(comp[20, 5]) == (0, 0, 255) and tuple(comp[20, 100]) == (255, 0, 0)
    assert result_view(fg, alpha, "Alpha").shape == (90, 160, 3)
    # 4x around the alpha edge (x = 80 of 160): a 40x22 crop blown up, the edge in the middle
    z = result_view(fg, alpha, "Alpha", zoom="4x", centre=(0.5, 0.5))
    assert z.shape == (88, 160, 3) and z[40, 10, 0] == 0 and z[40, 150, 0] == 255
    corner = zoom_crop(np.arange(100, dtype=np.uint8).reshape(10, 10), "2x", (0.0, 0.0))  # clamped to the image
    assert corner.shape == (10, 10) and corner[0, 0] == 0 and corner[9, 9] == 44


def test_person_model_progress_and_kept_state(session):
    """A click at a later frame reports RVM's progress frame by frame; a click further on continues
    from there (not from frame 0) and gives the same mask as a fresh session running it all."""
    seen = []
    assert session.person_frames_to_run(6) == (0, 6)
    session.click(1, *CLICK, frame=6, on_progress=lambda n, total: seen.append((n, total)))
    assert seen == [(i, 7) for i in range(1, 8)]
    assert session.person_frames_to_run(6) is None and session.person_frames_to_run(9) == (7, 9)
    seen.clear()
    session.click(1, *CLICK, frame=9, on_progress=lambda n, total: seen.append((n, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]  # frames 7, 8, 9 only
    fresh = Session(session.folder.parent / "fresh", session.settings)
    fresh.open_video(session.video)
    assert np.abs(fresh.person_alpha(9).astype(int) - session.person_alpha(9).astype(int)).max() <= 1
    seen.clear()
    session.person_alpha(3, on_progress=lambda n, total: seen.append(n))
    assert seen == []  # kept from the first click


def test_run_writes_downloads_preview_and_progress(session):
    session.click(1, *CLICK, frame=0)
    seen = []
    job = Job(session.frame_count)
    result = run_job(
        session, RunSettings(model="rvm-target", formats=("prores", "alpha-png")), job, lambda j: seen.append(j.done)
    )
    assert seen == list(range(1, FRAMES + 1)) and result.frames == FRAMES
    names = sorted(p.name for p in result.downloads)
    assert names == ["dancer_alpha.zip", "dancer_prores4444.mov"]
    assert all(inside(p, session.folder) for p in result.downloads + [result.preview])
    mov = next(p for p in result.downloads if p.suffix == ".mov")
    s = stream_summary(mov)
    assert s["pix_fmt"].startswith("yuva444p") and s["frames"] == FRAMES
    alpha0 = next(read_rgba(mov))[..., 3] / 65535
    assert alpha0[CLICK[1], CLICK[0]] > 0.9
    with zipfile.ZipFile(next(p for p in result.downloads if p.suffix == ".zip")) as z:
        assert len([n for n in z.namelist() if n.endswith(".png")]) == FRAMES
    assert len(list(result.preview.glob("*_a.png"))) == FRAMES  # every frame for the result viewer
    fg, alpha = read_result_frame(result.preview, FRAMES - 1)
    assert fg.shape == (180, 320, 3) and alpha.shape == (180, 320)  # never upscaled
    assert alpha[CLICK[1], CLICK[0]] > 200 and alpha[EMPTY[1], EMPTY[0]] < 50


def test_cancel_stops_the_run_and_leaves_no_output(session):
    session.click(1, *CLICK, frame=0)
    job = Job(session.frame_count)

    def stop_at_3(j: Job) -> None:
        if j.done == 3:
            j.stop()

    with pytest.raises(Cancelled):
        run_job(session, RunSettings(model="rvm-target", formats=("prores", "webm")), job, stop_at_3)
    assert job.done == 3
    run_dir = next(session.folder.glob("run-*"))
    assert list(run_dir.iterdir()) == []  # no partial ProRes/WebM/result frames


def test_models_and_target_requirements(session):
    assert [m for _, m in available_models()][:2] == ["auto", "rvm-target"]
    with pytest.raises(InputError, match="no target yet"):
        run_job(session, RunSettings(model="auto", formats=("alpha",)), Job(FRAMES))
    r = run_job(session, RunSettings(model="rvm", formats=("alpha",)), Job(FRAMES))  # every person
    assert stream_summary(r.downloads[0])["frames"] == FRAMES
    with pytest.raises(VmatteError, match="unknown output format"):
        run_job(session, RunSettings(model="rvm", formats=("gif",)), Job(FRAMES))


def test_run_with_refine_matte_controls(session):
    from vmatte.engine.refine import RefineSettings

    def alphas(result):
        with zipfile.ZipFile(next(p for p in result.downloads if p.suffix == ".zip")) as z:
            names = sorted(n for n in z.namelist() if n.endswith(".png"))
            return [cv2.imdecode(np.frombuffer(z.read(n), np.uint8), cv2.IMREAD_UNCHANGED) for n in names]

    raw = alphas(run_job(session, RunSettings(model="rvm", formats=("alpha-png16",)), Job(FRAMES)))
    choked = alphas(
        run_job(
            session, RunSettings(model="rvm", formats=("alpha-png16",), refine=RefineSettings(choke=3)), Job(FRAMES)
        )
    )
    # an erosion never raises alpha and takes a 3 px rim off the dancer
    assert all((c <= r).all() for c, r in zip(choked, raw))
    assert sum(int(c.sum()) for c in choked) < 0.95 * sum(int(r.sum()) for r in raw)


def test_menu_offers_every_model_whose_weights_are_here(cache, monkeypatch):
    """The menu is the registry's: MatAnyone and VideoMaMa appear once their weights are cached."""
    from vmatte import weights

    before = [m for _, m in available_models()]
    assert before == ["auto", "rvm-target", "rvm"]
    monkeypatch.setattr(weights, "cached", lambda name: name in ("rvm", "matanyone", "videomama"))
    after = [m for _, m in available_models()]
    assert after == ["auto", "rvm-target", "matanyone", "videomama", "rvm"]


def test_videomama_runs_in_the_app_when_its_weights_are_cached(session, cache):
    """VideoMaMa (tiny random weights of the real classes, in the cache's hub layout) is offered and
    runs: a first pass with Auto makes its per-frame masks, then it mattes; the masks are removed."""
    pytest.importorskip("diffusers")
    import torch

    from vmatte.models.videomama import VideoMaMa, tiny_unet_config, tiny_vae_config
    from vmatte.weights import videomama_cache_paths

    torch.manual_seed(0)
    model = VideoMaMa.from_config(tiny_unet_config(), tiny_vae_config()).eval()
    mama, svd = videomama_cache_paths()
    model.unet.save_pretrained(mama / "unet")
    model.vae.save_pretrained(svd / "vae")
    assert "videomama" in [m for _, m in available_models()]
    session.click(1, *CLICK, frame=0)
    seen = []
    r = run_job(
        session,
        RunSettings(model="videomama", formats=("alpha",), options={"max_size": 32}),
        Job(FRAMES),
        lambda j: seen.append(j.done),
    )
    assert r.frames == FRAMES and r.model.startswith("VideoMaMa")
    assert seen == list(range(1, FRAMES + 1)) * 2  # the masks' pass, then VideoMaMa's
    assert stream_summary(r.downloads[0])["frames"] == FRAMES
    assert sorted(p.name for p in r.downloads[0].parent.iterdir()) == ["dancer_alpha.mp4", "preview"]


def test_videomama_in_the_app_tracks_with_sam2_when_a_checkpoint_is_cached(session, cache, monkeypatch):
    """With a SAM 2 checkpoint cached, the app's VideoMaMa run needs no first pass: SAM 2 (tiny random,
    in place of the cached file) tracks the clicked target inside the run, frame by frame."""
    pytest.importorskip("diffusers")
    import torch

    import vmatte.engine.sam2video.masks as masks_mod
    from test_sam2_video import _tiny_tracking_sam2
    from vmatte.models.videomama import VideoMaMa, tiny_unet_config, tiny_vae_config
    from vmatte.weights import segmenter_cache_path, videomama_cache_paths

    torch.manual_seed(0)
    model = VideoMaMa.from_config(tiny_unet_config(), tiny_vae_config()).eval()
    mama, svd = videomama_cache_paths()
    model.unet.save_pretrained(mama / "unet")
    model.vae.save_pretrained(svd / "vae")
    session.click(1, *CLICK, frame=0)  # RVM's person regions make the click's mask (no SAM cached yet)
    sam2 = _tiny_tracking_sam2()
    loaded = []
    monkeypatch.setattr(
        masks_mod,
        "load_video_model",
        lambda spec, device="cpu", **kw: loaded.append(spec) or (sam2, "tiny random SAM 2"),
    )
    fake = segmenter_cache_path("sam2.1-hiera-tiny")
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_bytes(b"not read: load_video_model is replaced")
    seen = []
    r = run_job(
        session,
        RunSettings(model="videomama", formats=("alpha",), options={"max_size": 32}),
        Job(FRAMES),
        lambda j: seen.append(j.done),
    )
    assert loaded == ["auto"] and "tiny random SAM 2" in r.model
    assert r.frames == FRAMES and seen == list(range(1, FRAMES + 1))  # one pass: no masks' pass first
    assert sorted(p.name for p in r.downloads[0].parent.iterdir()) == ["dancer_alpha.mp4", "preview"]


def test_tracker_menu_drives_the_preview_and_the_run(session, cache, monkeypatch):
    """The app's tracker menu: "Preview tracking" with ``rvm`` is rvm-target's tracking (its alpha >= 1/2
    per target, the shipped RVM weights), with ``sam2`` vmatte's SAM 2 tracker (tiny random in place of a
    checkpoint), with ``auto`` SAM 2 only when a checkpoint is cached; a run gets the chosen tracker
    (Auto + SAM 2: RVM's alpha inside SAM 2's masks), an unknown one is refused."""
    import vmatte.engine.sam2video.masks as masks_mod
    from test_sam2_video import _tiny_tracking_sam2
    from vmatte.matte import load_matter
    from vmatte.weights import segmenter_cache_path

    session.click(1, *CLICK, frame=0)
    assert session.propagate(frames=6, tracker="rvm") == 6 and session.tracker_used == "rvm"
    direct = load_matter("rvm-target", device="cpu", keyframes=session.keyframes())
    direct.reset()
    for i in range(6):
        _, alphas = direct.step_all(session.frame(i), False)
        assert np.array_equal(session.tracked_mask(1, i) > 0, alphas[1] >= 0.5)
    assert session.tracked_mask(1, 3).any() and session.tracked_mask(1, 6) is None
    assert session.propagate(frames=2) == 2 and session.tracker_used == "rvm"  # auto, no SAM 2 cached: RVM

    sam2 = _tiny_tracking_sam2()
    loaded = []
    monkeypatch.setattr(
        masks_mod, "load_video_model", lambda spec, device="cpu", **kw: loaded.append(spec) or (sam2, "tiny SAM 2")
    )
    assert session.propagate(frames=3, tracker="sam2") == 3 and session.tracker_used == "sam2" and loaded
    fake = segmenter_cache_path("sam2.1-hiera-tiny")
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_bytes(b"not read: load_video_model is replaced")
    assert session.propagate(frames=2) == 2 and session.tracker_used == "sam2"  # auto with a cached checkpoint
    with pytest.raises(InputError, match="unknown tracker"):
        session.propagate(tracker="cutie")

    loaded.clear()
    r = run_job(session, RunSettings(model="auto", formats=("alpha",), tracker="sam2"), Job(FRAMES))
    assert r.frames == FRAMES and loaded and "tiny SAM 2" in r.model and "--tracker sam2" in r.model
    plain = run_job(session, RunSettings(model="rvm-target", formats=("alpha",), tracker="rvm"), Job(FRAMES))
    assert "SAM 2" not in plain.model
    with pytest.raises(InputError, match="unknown tracker"):
        run_job(session, RunSettings(model="auto", formats=("alpha",), tracker="cutie"), Job(FRAMES))


def test_store_and_inside(tmp_path):
    store = SessionStore(UiSettings(tmp_path))
    sid, s = store.new()
    assert store.get(sid) is s and inside(s.folder, tmp_path) and s.folder.is_dir()
    assert store.get_or_new(sid) == (sid, s) and store.get("nope") is None
    store.drop(sid)
    assert store.get(sid) is None and not s.folder.exists()
    assert not inside("/etc/passwd", tmp_path) and not inside(tmp_path / ".." / "x", tmp_path)


def test_cli_ui_checks(capsys, tmp_path):
    from vmatte.cli import main
    from vmatte.ui.serve import check_host

    assert main(["ui", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vmatte: error: --port") and "\n" not in err
    assert main(["ui", "--max-upload-mb", "0"]) == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_host("127.0.0.1")
        assert not caught
        check_host("0.0.0.0")
    assert len(caught) == 1 and "reachable from other machines" in str(caught[0].message)
