"""End to end in headless Chromium: start ``vmatte ui``, upload a clip of a dancer, click on her,
run, download the ProRes 4444, and check it is a video with alpha and every frame. A screenshot
of each step goes to ``test-artifacts/ui/``. The server's limits are checked over HTTP beside it.
A second app, given a (small, random) SAM checkpoint, shows that clicks then go to SAM, that the
page's menu switches them back to RVM, and that a painted brush stroke becomes the frame's mask.

Needs Debian's ``chromium`` (driven by Playwright with its executable); skipped without it,
except under CI, where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from test_ui_session import CLICK, EMPTY, FRAMES, SIZE, person_clip, truth

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "ui"
UPLOAD_CAP_MB = 2
STEP_TIMEOUT_MS = 120_000
LONG_FRAMES = 90  # long enough (seconds on any CPU) to press Stop in the middle


def _need_browser():
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install 'vmatte[test]')")
    if missing:
        reason = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """``vmatte ui`` in a subprocess on a free port (clicks on RVM's person regions, whatever the
    cache holds); yields (url, workdir)."""
    with _serve(tmp_path, "--segmenter", "rvm") as started:
        yield started


@contextlib.contextmanager
def _serve(tmp_path, *extra: str, env: dict | None = None, prelude: str = ""):
    """``prelude``: Python run in the server's process before ``vmatte ui`` starts (a tiny model)."""
    _need_browser()
    import httpx

    port, workdir = _free_port(), tmp_path / "work"
    log = open(tmp_path / "server.log", "w")
    args = ["ui", "--port", str(port), "--workdir", str(workdir), "--max-upload-mb", str(UPLOAD_CAP_MB)]
    args += ["--device", "cpu", *extra]
    if prelude:
        code = f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n{prelude}\n"
        code += f"from vmatte.cli import main\nsys.exit(main({args!r}))\n"
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, "-m", "vmatte.cli", *args]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "VMATTE_OFFLINE": "1", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a busy 2-core machine can take minutes to import and start
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vmatte ui exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("vmatte ui did not answer within 300 s")
            time.sleep(0.5)
        yield url, workdir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_server_limits(server, tmp_path):
    """Files outside the working folder are refused; an upload over the cap is refused."""
    import httpx

    url, workdir = server
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the browser")
    for path in ("/etc/passwd", str(outside), str(Path(__file__).resolve())):
        r = httpx.get(f"{url}/gradio_api/file={path}", timeout=10)
        assert r.status_code in (403, 404), (path, r.status_code)
        assert "not for the browser" not in r.text and "root:" not in r.text
    big = os.urandom((UPLOAD_CAP_MB + 1) * 2**20)
    r = httpx.post(f"{url}/gradio_api/upload", files={"files": ("big.mp4", big, "video/mp4")}, timeout=30)
    assert r.status_code == 413, r.status_code
    assert not any(p.stat().st_size >= len(big) for p in workdir.rglob("*") if p.is_file())


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _wait_status(page, text: str) -> str:
    page.wait_for_function(
        "t => document.querySelector('#status').innerText.includes(t)", arg=text, timeout=STEP_TIMEOUT_MS
    )
    return page.locator("#status").inner_text()


def _in_view(page, selector: str) -> None:
    """``selector`` is inside the window as it is (no scrolling): where the user is looking."""
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None and box["height"] > 0, selector
    assert 0 <= box["y"] and box["y"] + box["height"] <= size["height"] + 1, (selector, box, size)


def _on_dancer(i: int) -> tuple[int, int]:
    """A pixel of the dancer at frame ``i`` (the DAVIS annotation's median pixel inside her)."""
    ys, xs = np.nonzero(truth(i))
    order = np.argsort(xs * 10_000 + ys)
    k = order[len(order) // 2]
    return int(xs[k]), int(ys[k])


def _src(page, selector: str = "#frame img") -> str | None:
    return page.locator(selector).get_attribute("src")


def _wait_src(page, old: str | None, selector: str = "#frame img") -> None:
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel); "
        "return i && i.getAttribute('src') !== old && i.complete; }",
        arg=[selector, old],
        timeout=STEP_TIMEOUT_MS,
    )


def _type_frame(page, selector: str, value: int) -> None:
    box = page.locator(f"{selector} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_click_run_download_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from vmatte.io.probe import read_rgba, stream_summary

    url, workdir = server
    clip = person_clip(tmp_path / "dancer.mp4")
    long_clip = person_clip(tmp_path / "long.mp4", LONG_FRAMES)
    junk = tmp_path / "holiday.mp4"
    junk.write_bytes(b"this is not a video\n" * 50)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(url)
            page.wait_for_selector("#upload input[type=file]", state="attached", timeout=STEP_TIMEOUT_MS)
            _shot(page, "01-start")
            # idle buttons look idle: Stop is off until a run starts; removing a target is not a red button
            assert page.locator("#stop").is_disabled()
            assert "stop" not in (page.locator("#remove").get_attribute("class") or "")

            # Run with nothing to run: the problem shows where the user is looking, at either window size
            page.click("#run")
            status = _wait_status(page, "Problem")
            assert "upload a video first" in status
            page.wait_for_function(
                "() => document.querySelector('#run-status').innerText.includes('upload a video')",
                timeout=STEP_TIMEOUT_MS,
            )
            for size in ({"width": 1400, "height": 1000}, {"width": 1920, "height": 960}):
                page.set_viewport_size(size)
                _in_view(page, "#status")
                _in_view(page, "#run-status")
            page.screenshot(path=str(ARTIFACTS / "02a-problem-in-view-1920x960.png"))  # the window, as seen
            page.set_viewport_size({"width": 1400, "height": 1000})

            # a bad file: a one-line message in the page, no traceback
            page.set_input_files("#upload input[type=file]", str(junk))
            status = _wait_status(page, "cannot use this file")
            assert "Traceback" not in status
            _shot(page, "02-bad-file")

            page.set_input_files("#upload input[type=file]", str(clip))
            status = _wait_status(page, f"{FRAMES} frames")
            assert "320x180" in status
            img = page.locator("#frame img")
            img.wait_for(timeout=STEP_TIMEOUT_MS)
            about = page.locator("#video-info").inner_text()  # the emptied upload box's file, in words
            assert "dancer.mp4" in about and "KB" in about and f"{FRAMES} frames" in about, about
            _shot(page, "03-uploaded")

            # a click on no one: the app's own words, not the command line's
            box = img.bounding_box()
            scale = box["width"] / SIZE[0]  # shown scaled (the small clip enlarged), the app maps to its pixels
            assert box["width"] >= 600  # the frame fills its column: big enough to click on hair
            img.click(position={"x": EMPTY[0] * scale, "y": EMPTY[1] * scale})
            status = _wait_status(page, "Problem")
            assert "No one found where you clicked" in status and "--" not in status, status
            _shot(page, "03b-no-one-there")

            # click on the dancer: the image is shown scaled, the app gets natural pixels
            status = _click(page, CLICK)
            assert "include point" in status
            px = int(status.split("mask")[1].split("px")[0])
            assert 500 < px < 320 * 180 // 3  # one person, not the frame
            _shot(page, "04-clicked")

            # a typed frame number loads that frame (Enter or not), and the next click is not lost
            before = _src(page)
            _type_frame(page, "#frame-slider", 8)
            _wait_src(page, before)
            status = _click(page, _on_dancer(8), 8)
            assert "frame 8" in status and "include point" in status, status
            before = _src(page)
            page.locator("#frame-slider input[type=number]").fill("4")  # typed, no Enter: the frame follows
            _wait_src(page, before)
            status = _click(page, _on_dancer(4), 4)
            assert "frame 4;" in status and "include point" in status, status
            assert "frame 4 (clicks)" in page.locator("#summary").inner_text()
            _shot(page, "04b-typed-frame-clicked")

            page.click("#run")
            status = _wait_status(page, "Done:")
            assert f"{FRAMES} frames" in status
            first_line = status.strip().splitlines()[0]
            assert len(first_line) < 160 and "GPL" not in first_line, first_line  # the model: folded away
            assert "rvm-target" in page.locator("#status details").text_content()
            assert "Done:" in page.locator("#run-status").inner_text()
            page.wait_for_selector("#downloads a", timeout=STEP_TIMEOUT_MS)
            assert page.locator("#stop").is_disabled()

            # the result opens large next to the controls, frame by frame
            result = page.locator("#result img")
            result.wait_for(timeout=STEP_TIMEOUT_MS)
            page.wait_for_function("() => document.querySelector('#result img').complete", timeout=STEP_TIMEOUT_MS)
            assert page.evaluate("() => document.querySelector('#result img').naturalWidth") >= 2 * SIZE[0]
            assert result.bounding_box()["width"] >= 600
            _shot(page, "05-done")
            before = _src(page, "#result img")
            _type_frame(page, "#result-slider", 7)
            _wait_src(page, before, "#result img")
            before = _src(page, "#result img")
            page.locator("#view-mode").get_by_text("Checkerboard").click()
            _wait_src(page, before, "#result img")
            _shot(page, "05b-result-frame7-checkerboard")
            before = _src(page, "#result img")
            rbox = result.bounding_box()
            x, y = _on_dancer(7)  # the checkerboard view is one panel of the frame's shape
            result.click(position={"x": x * rbox["width"] / SIZE[0], "y": y * rbox["width"] / SIZE[0]})
            _wait_src(page, before, "#result img")
            page.wait_for_function(
                "() => document.querySelector('#zoom input[value=\"2x\"]').checked", timeout=STEP_TIMEOUT_MS
            )
            page.wait_for_timeout(500)
            _shot(page, "05c-result-zoomed")

            link = page.locator('#downloads a[href*="prores4444.mov"]').first
            with page.expect_download(timeout=STEP_TIMEOUT_MS) as dl:
                link.click()
            saved = tmp_path / "download.mov"
            dl.value.save_as(saved)
            _shot(page, "06-downloaded")

            # a click far into a longer video: progress in the status bar, the frame stays in view
            page.set_input_files("#upload input[type=file]", str(long_clip))
            _wait_status(page, f"{LONG_FRAMES} frames")
            img.wait_for(timeout=STEP_TIMEOUT_MS)
            far = LONG_FRAMES - 10
            before = _src(page)
            _type_frame(page, "#frame-slider", far)
            _wait_src(page, before)
            shown = _src(page)
            x, y = _on_dancer(far)
            img.click(position={"x": x * scale, "y": y * scale})
            status = _wait_status(page, "Running the person model over frames 0-")
            assert f"to find people at frame {far}" in status and f"/{far + 1}" in status, status
            assert img.is_visible() and _src(page) == shown  # not blanked while it runs
            page.screenshot(path=str(ARTIFACTS / "07a-click-progress.png"))
            status = _wait_status(page, "include point")
            assert f"frame {far};" in status

            # a long run, stopped: the page says so and no output file is left
            page.click("#run")
            page.wait_for_selector(".progress-text, .progress-level", timeout=STEP_TIMEOUT_MS)
            _in_view(page, "#status")
            _shot(page, "07-running")
            page.click("#stop")
            status = _wait_status(page, "no output was written")
            assert "Stopped" in status
            _shot(page, "08-stopped")
        finally:
            browser.close()

    s = stream_summary(saved)
    assert s["codec"] == "prores" and s["pix_fmt"].startswith("yuva444p") and s["has_alpha"], s
    frames = list(read_rgba(saved))
    assert len(frames) == FRAMES
    alpha = frames[0][..., 3].astype(np.float64) / 65535
    x, y = CLICK
    assert alpha[y, x] > 0.9  # the clicked dancer is opaque
    assert 0.02 < (alpha > 0.5).mean() < 0.4  # and the rest of the crowd is not
    for name in ("01-start", "03-uploaded", "04-clicked", "05-done"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
    stopped = sorted(workdir.glob("sessions/*/run-*"))[-1]
    deadline = time.monotonic() + 30  # the run's thread removes its partial files as it unwinds
    while any(stopped.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(stopped.iterdir()) == []


def _open_clip_and_click(page, url: str, clip: Path, frames: int, point: tuple[int, int]) -> str:
    """Upload ``clip``, click ``point`` (natural pixels) on its first frame; the status after it."""
    page.goto(url)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=STEP_TIMEOUT_MS)
    page.set_input_files("#upload input[type=file]", str(clip))
    _wait_status(page, f"{frames} frames")
    return _click(page, point)


def _click(page, point: tuple[int, int], frame: int = 0) -> str:
    """Click ``point`` (frame pixels) on the picture of ``frame``; the status line it gets."""
    img = page.locator("#frame img")
    img.wait_for(timeout=STEP_TIMEOUT_MS)
    # a frame load still in flight (a typed number fires one per keystroke) could land after the
    # click and show that frame without the new point: click once the page has settled
    page.wait_for_function("() => !document.querySelector('.pending')", timeout=STEP_TIMEOUT_MS)
    box = img.bounding_box()
    scale = box["width"] / SIZE[0]
    before, said = img.get_attribute("src"), page.locator("#status").inner_text()
    img.click(position={"x": point[0] * scale, "y": point[1] * scale})
    page.wait_for_function(
        "([old, done]) => { const t = document.querySelector('#status').innerText; "
        "return t !== old && (t.includes(done) || t.includes('Problem')); }",
        arg=[said, f"frame {frame}; mask"],
        timeout=STEP_TIMEOUT_MS,
    )
    status = page.locator("#status").inner_text()
    _wait_src(page, before)
    # Gradio greys components out while an event is pending: the screenshot waits for it to go
    page.wait_for_function("() => !document.querySelector('.pending')", timeout=STEP_TIMEOUT_MS)
    page.wait_for_timeout(800)  # ... and fades back in (looks only: the status is already checked)
    return status


def test_clicks_use_a_sam_checkpoint_and_the_picker_switches_to_rvm(tmp_path):
    """``vmatte ui --segmenter CKPT``: a click's mask is the SAM checkpoint's (its exact pixel count,
    computed here on the same frame); picking RVM in the page's menu switches the next click; a brushed mask; the
    tracker menu set to RVM makes "Preview tracking" follow the target with rvm-target."""
    from playwright.sync_api import sync_playwright

    from test_segment_clicks import _direct, _frames, _tiny_sam_file

    clip = person_clip(tmp_path / "dancer.mp4")
    first = _frames(clip)[0]
    ckpt = _tiny_sam_file(tmp_path / "tiny_sam.pth", first, CLICK)
    with _serve(tmp_path, "--segmenter", str(ckpt)) as (url, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            status = _open_clip_and_click(page, url, clip, FRAMES, CLICK)
            assert "SAM ViT" in status, status
            # the page reports the pixel the browser's click landed on (scaling may move it by one)
            at = tuple(int(v) for v in status.split("point at (")[1].split(")")[0].split(","))
            assert abs(at[0] - CLICK[0]) <= 1 and abs(at[1] - CLICK[1]) <= 1
            assert int(status.split("mask")[1].split("px")[0]) == int((_direct(ckpt, first, [at]) >= 128).sum())
            assert "tiny_sam.pth" in page.locator("#segmenter input").input_value()
            _shot(page, "09-sam-clicked")

            page.click("#segmenter input")
            page.get_by_role("option", name="RVM person regions (people only)").click()
            _wait_status(page, "clicks now use RVM person regions")
            page.click("text=Clear this frame")
            _wait_status(page, "clear done")
            status = _click(page, CLICK)
            assert "(RVM person regions)" in status, status
            _shot(page, "10-rvm-clicked")

            # the brush instead of clicks: paint a stroke, use it as the frame's mask
            page.click("text=Brush or mask file instead of clicks")
            canvas = page.locator("canvas").first
            canvas.wait_for(timeout=STEP_TIMEOUT_MS)
            box = canvas.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
            page.mouse.down()
            for i in range(1, 11):
                page.mouse.move(box["x"] + box["width"] * (0.3 + 0.04 * i), box["y"] + box["height"] * 0.5, steps=2)
            page.mouse.up()
            page.click("text=Use painted mask")
            _wait_status(page, "brush mask set for frame 0")
            assert "frame 0 (brush)" in page.locator("#summary").inner_text()
            _shot(page, "11-brushed")

            # the tracker menu: "Preview tracking" with RVM follows the target (the brushed mask) through the clip
            page.click("#tracker input")
            page.get_by_role("option", name="RVM (people only)").click()
            assert page.locator("#tracker input").input_value() == "RVM (people only)"
            page.click("#propagate")
            status = _wait_status(page, "tracked the targets")
            assert f"RVM (rvm-target) tracked the targets over {FRAMES} frames" in status, status
            _shot(page, "12-rvm-tracking-preview")
        finally:
            browser.close()


# A tiny random SAM 2 (the real classes) in place of a checkpoint's, in the server's process.
TINY_SAM2 = """
import vmatte.engine.sam2video.masks as masks
from conftest import tiny_tracking_sam2
tiny = tiny_tracking_sam2()
masks.load_video_model = lambda spec, device="cpu", **kw: (tiny.to(device), "tiny random SAM 2")
"""


def _visible(page, elem_id: str) -> bool:
    return page.locator(f"#{elem_id}").is_visible()


def _pick_model(page, name: str) -> None:
    page.click("#model input")
    page.get_by_role("option", name=name).click()


def test_the_page_shows_only_the_chosen_models_fields_and_sam2_matte_runs(tmp_path, monkeypatch):
    """The option fields follow the Model menu (each model's own, as the registry says): MatAnyone shows
    Warm-up frames, sam2-matte neither it nor Max size; a warm-up typed for MatAnyone does not reach a
    sam2-matte run, which completes (tiny random SAM 2; the weights cache holds stand-in files so both
    models are in the menu)."""
    from playwright.sync_api import sync_playwright

    from vmatte.weights import matanyone_cache_paths, segmenter_cache_path

    cache = tmp_path / "cache"
    env = {"VMATTE_CACHE": str(cache)}
    monkeypatch.setenv("VMATTE_CACHE", str(cache))
    for path in (segmenter_cache_path("sam2.1-hiera-tiny"), matanyone_cache_paths("matanyone")[0]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stand-in: the menu lists models whose weights are cached")
    clip = person_clip(tmp_path / "dancer.mp4")
    with _serve(tmp_path, "--segmenter", "rvm", env=env, prelude=TINY_SAM2) as (url, workdir), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            _open_clip_and_click(page, url, clip, FRAMES, CLICK)
            _pick_model(page, "MatAnyone (cached weights)")
            page.wait_for_selector("#warmup-frames", state="visible", timeout=STEP_TIMEOUT_MS)
            page.locator("#warmup-frames input").fill("3")
            assert _visible(page, "max-size") and _visible(page, "mem-every")
            _pick_model(page, "sam2-matte (cached weights)")
            page.wait_for_selector("#warmup-frames", state="hidden", timeout=STEP_TIMEOUT_MS)
            assert not _visible(page, "max-size") and not _visible(page, "mem-every")
            page.click("text=Refine matte")  # the refinement follows any model: its fields stay
            page.wait_for_selector("#choke", state="visible", timeout=STEP_TIMEOUT_MS)
            _shot(page, "13-sam2-matte-fields")
            page.click("#run")
            page.wait_for_function(
                "() => /Done:|Problem/.test(document.querySelector('#run-status').innerText)", timeout=STEP_TIMEOUT_MS
            )
            said = page.locator("#run-status").inner_text()
            assert "Done:" in said, said
            assert "tiny random SAM 2" in page.locator("#status details").text_content()
        finally:
            browser.close()
    assert list(workdir.glob("sessions/*/run-*/dancer*")), "the run wrote its outputs"


def test_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path):
    import test_ui_browser as me

    monkeypatch.setattr(me, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-chromium"):
        me._need_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no-chromium"):
        me._need_browser()
