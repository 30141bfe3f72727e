"""VFX plates: EXR/DPX sequences in (naming, ranges, gaps, data windows, OCIO colour), compositor
EXR/DPX mattes out, read back with the OpenEXR library."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

OpenEXR = pytest.importorskip("OpenEXR")
pytest.importorskip("PyOpenColorIO")
pytest.importorskip("fileseq")

import av  # noqa: E402 - after the importorskips

from vmatte.errors import InputError  # noqa: E402
from vmatte.io.colour import plate_colour  # noqa: E402
from vmatte.io.reader import open_source  # noqa: E402
from vmatte.matte import matte  # noqa: E402

H, W = 24, 32
HALF_EPS = 2.0**-10  # half float: 10 mantissa bits


def write_exr(path: Path, channels: dict, compression=None, header: dict | None = None) -> None:
    hdr = {"compression": compression or OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    hdr.update(header or {})
    with OpenEXR.File(hdr, channels) as f:
        f.write(str(path))


def read_exr(path: Path) -> tuple[dict, dict]:
    with OpenEXR.File(str(path), separate_channels=True) as f:
        return dict(f.header()), {k: v.pixels.copy() for k, v in f.channels().items()}


def plate_sequence(folder: Path, numbers, value=None) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = []
    for n in numbers:
        rgb = (rng.random((H, W, 3)) if value is None else np.full((H, W, 3), value)).astype(np.float16)
        write_exr(folder / f"shot.{n:04d}.exr", {"RGB": rgb})
        out.append(rgb)
    return out


# ---------------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("pattern", ["shot.####.exr", "shot.%04d.exr", "shot.1001-1004#.exr", "."])
def test_sequence_names_frame_numbers_and_gaps(tmp_path, pattern):
    plate_sequence(tmp_path, [1001, 1002, 1004])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = open_source(tmp_path / pattern if pattern != "." else tmp_path)
    assert [str(w.message) for w in caught if "missing" in str(w.message)][0].split(": ")[1].startswith("1003")
    with src:
        assert src.plate.frame_numbers == (1001, 1002, 1004) and src.plate.stem == "shot"
        assert src.info.num_frames == 3 and src.info.bit_depth == 16
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[0].image.dtype == np.uint16 and frames[0].plate.dtype == np.float32


def test_frames_option_selects_a_range_and_rejects_an_empty_one(tmp_path):
    plate_sequence(tmp_path, range(1001, 1006))
    with open_source(tmp_path / "shot.####.exr", frames="1002-1003") as src:
        assert src.plate.frame_numbers == (1002, 1003)
    with pytest.raises(InputError, match="none of the frames 2000-2010"):
        open_source(tmp_path / "shot.####.exr", frames="2000-2010")
    with pytest.raises(InputError, match="bad --frames"):
        open_source(tmp_path / "shot.####.exr", frames="abc")


@pytest.mark.parametrize("compression", ["ZIP_COMPRESSION", "PIZ_COMPRESSION", "DWAA_COMPRESSION", "NO_COMPRESSION"])
def test_exr_float_rgba_with_data_window_is_placed_on_the_display_window(tmp_path, compression):
    # Data window x 5..14, y 3..12 on a 32x24 display window: pixels there, zeros elsewhere; alpha is ignored.
    data = np.full((10, 10), 0.75, np.float32)
    win = {
        "dataWindow": (np.array([5, 3], np.int32), np.array([14, 12], np.int32)),
        "displayWindow": (np.array([0, 0], np.int32), np.array([W - 1, H - 1], np.int32)),
    }
    write_exr(
        tmp_path / "bbox.1001.exr",
        {"R": data, "G": data * 0.5, "B": data * 0.25, "A": data},
        getattr(OpenEXR, compression),
        win,
    )
    with open_source(tmp_path / "bbox.1001.exr") as src:
        (frame,) = list(src)
    assert (src.info.width, src.info.height) == (W, H)
    tol = 0.02 if compression == "DWAA_COMPRESSION" else 0.0  # DWAA is lossy
    np.testing.assert_allclose(frame.plate[3:13, 5:15], np.broadcast_to([0.75, 0.375, 0.1875], (10, 10, 3)), atol=tol)
    assert frame.plate[:3].max() == 0 and frame.plate[:, :5].max() == 0 and frame.plate[13:].max() == 0


def test_network_sees_the_srgb_encoding_of_the_linear_plate(tmp_path):
    plate_sequence(tmp_path, [1001], value=0.18)
    with open_source(tmp_path / "shot.####.exr") as src:
        (frame,) = list(src)
    # sRGB encoding of 0.18: 1.055 * 0.18 ** (1 / 2.4) - 0.055 = 0.46135 (value 0.18 in half: 0.17993)
    want = 1.055 * float(np.float16(0.18)) ** (1 / 2.4) - 0.055
    assert frame.image[0, 0, 0] / 65535.0 == pytest.approx(want, abs=1e-4)


def write_dpx(path: Path, codes: np.ndarray) -> None:
    """10-bit DPX with the given HxWx3 code values (0..1023), through FFmpeg's dpx encoder."""
    ctx = av.CodecContext.create("dpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = codes.shape[1], codes.shape[0], "gbrp10le", 1
    frame = av.VideoFrame.from_ndarray(
        (codes.astype(np.uint16) << 6) | (codes.astype(np.uint16) >> 4), format="rgb48le"
    ).reformat(format="gbrp10le")
    with open(path, "wb") as f:
        f.writelines(bytes(p) for p in list(ctx.encode(frame)) + list(ctx.encode(None)))


def test_dpx_10bit_log_plate_reads_code_values_in_the_log_space(tmp_path):
    codes = np.random.default_rng(0).integers(0, 1024, (H, W, 3))
    for n in (1, 2):
        write_dpx(tmp_path / f"scan.{n:05d}.dpx", codes)
    with open_source(tmp_path / "scan.#####.dpx") as src:
        frames = list(src)
        assert src.plate.kind == "dpx" and src.plate.colour.space == "ACEScct"  # the compositing_log role
        assert src.plate.frame_numbers == (1, 2) and src.plate.padding == 5
    np.testing.assert_allclose(frames[0].plate, codes / 1023.0, atol=2e-5)
    result = matte(tmp_path / "scan.#####.dpx", tmp_path / "out", model="rvm", formats=["exr", "dpx"])
    assert sorted(os.listdir(result.outputs["dpx"])) == ["scan_alpha_dpx.00001.dpx", "scan_alpha_dpx.00002.dpx"]
    header, _ = read_exr(result.outputs["exr"] / "scan_exr.00002.exr")
    assert header["vmatte:colorspace"] == "ACEScg"  # log plate -> the config's scene_linear role


# ---------------------------------------------------------------------------------------------- round trip


class OracleMatter:
    """A FrameMatter that knows the answer: the constructed alpha(s) and foreground (in the
    network's display space, clipped to [0, 1] as a network's output is). Tests the colour path,
    premultiplication, half output and frame numbers, not a network."""

    description = "oracle"

    def __init__(self, fgrs, alphas, colour):
        self.fgrs, self.alphas, self.colour = fgrs, alphas, colour
        self.targets = tuple(alphas[0]) if isinstance(alphas[0], dict) else None

    def reset(self, concurrent_io=False):
        self.t = 0

    def _fgr(self):
        return np.clip(self.colour.to_display(self.fgrs[self.t]), 0.0, 1.0)

    def step(self, image, foreground=True):
        fgr, alpha = self._fgr(), self.alphas[self.t]
        self.t += 1
        return fgr, alpha


class OracleTargets(OracleMatter):
    """Several targets: ``alphas`` per frame is ``{id: alpha}``."""

    def step_all(self, image, foreground=True):
        return self.step(image, foreground)


def composed_plate(frames: int):
    """Scene-linear F over B with a soft alpha ramp; F has a highlight of 4.0 where alpha is 1."""
    x = np.linspace(0, 1, W, dtype=np.float32)
    alphas, fgrs, bgs = [], [], []
    for t in range(frames):
        a = np.clip((x - 0.3 - 0.05 * t) * 3.0, 0, 1)[None, :].repeat(H, 0)
        f = np.empty((H, W, 3), np.float32)
        f[:] = [0.6, 0.3, 0.1]
        f[:4, -6:] = 4.0  # highlight, fully opaque
        b = np.empty((H, W, 3), np.float32)
        b[:] = [0.05, 0.2, 0.5]
        alphas.append(a)
        fgrs.append(f)
        bgs.append(b)
    return fgrs, alphas, bgs


def test_round_trip_exr_plate_to_premultiplied_exr_recomposes_to_the_plate(tmp_path):
    fgrs, alphas, bgs = composed_plate(3)
    plates = []
    for t in range(3):
        plate = (fgrs[t] * alphas[t][..., None] + bgs[t] * (1 - alphas[t][..., None])).astype(np.float16)
        write_exr(tmp_path / f"shot.{1001 + t}.exr", {"RGB": plate})
        plates.append(plate.astype(np.float32))
    colour = plate_colour(None, "Linear Rec.709 (sRGB)")
    result = matte(
        tmp_path / "shot.####.exr",
        tmp_path / "out",
        model=OracleMatter(fgrs, alphas, colour),
        formats=["exr", "exr-layers", "alpha-exr", "dpx"],
        exr_compression="piz",
    )
    exr_dir = result.outputs["exr"]
    assert exr_dir.name == "shot_exr"
    assert sorted(os.listdir(exr_dir)) == [f"shot_exr.{n}.exr" for n in (1001, 1002, 1003)]
    for t in range(3):
        header, ch = read_exr(exr_dir / f"shot_exr.{1001 + t}.exr")
        assert sorted(ch) == ["A", "B", "G", "R"] and all(v.dtype == np.float16 for v in ch.values())
        assert header["vmatte:frame"] == 1001 + t and header["vmatte:model"] == "oracle"
        assert header["vmatte:source"].endswith(f"shot.{1001 + t}.exr") and header["vmatte:version"]
        assert header["compression"] == OpenEXR.PIZ_COMPRESSION
        a = ch["A"].astype(np.float32)
        premult = np.stack([ch[c] for c in "RGB"], -1).astype(np.float32)
        np.testing.assert_allclose(a, alphas[t], atol=HALF_EPS)
        # premultiplied: colour is 0 where alpha is 0, and F * a elsewhere
        assert np.abs(premult[alphas[t] == 0]).max() == 0
        recomposed = premult + bgs[t] * (1 - a[..., None])
        np.testing.assert_allclose(recomposed, plates[t], rtol=2 * HALF_EPS, atol=2 * HALF_EPS)
        assert premult[0, -1, 0] == pytest.approx(4.0, rel=HALF_EPS)  # the highlight above 1.0 survived
        _, alpha_only = read_exr(result.outputs["alpha-exr"] / f"shot_alpha_exr.{1001 + t}.exr")
        assert sorted(alpha_only) == ["A"] and alpha_only["A"].dtype == np.float16
        with av.open(str(result.outputs["dpx"] / f"shot_alpha_dpx.{1001 + t}.dpx")) as c:
            dpx = next(c.decode(video=0))
            assert dpx.format.name == "gbrp10le"
            np.testing.assert_allclose(dpx.to_ndarray(format="rgb48le")[..., 0] / 65535.0, alphas[t], atol=1 / 1023)


def test_exr_layers_has_one_alpha_part_per_target(tmp_path):
    fgrs, alphas, bgs = composed_plate(2)
    for t in range(2):
        write_exr(tmp_path / f"shot.{1001 + t}.exr", {"RGB": (fgrs[t] * 0.5).astype(np.float16)})
    targets = [{1: a, 7: 1 - a} for a in alphas]
    colour = plate_colour(None, "Linear Rec.709 (sRGB)")
    result = matte(
        tmp_path / "shot.####.exr",
        tmp_path / "out",
        model=OracleTargets(fgrs, targets, colour),
        formats=["exr-layers", "alpha-exr"],
    )
    assert set(result.outputs) == {"exr-layers", "alpha-exr_id1", "alpha-exr_id7"}
    layers = result.outputs["exr-layers"]
    assert sorted(os.listdir(layers)) == ["shot_layers.1001.exr", "shot_layers.1002.exr"]
    with OpenEXR.File(str(layers / "shot_layers.1002.exr"), separate_channels=True) as f:
        parts = {p.name(): {k: v.pixels.copy() for k, v in p.channels.items()} for p in f.parts}
    assert list(parts) == ["rgba", "id1", "id7"]
    assert sorted(parts["rgba"]) == ["A", "B", "G", "R"]
    np.testing.assert_allclose(parts["id1"]["id1.A"].astype(np.float32), alphas[1], atol=HALF_EPS)
    np.testing.assert_allclose(parts["id7"]["id7.A"].astype(np.float32), 1 - alphas[1], atol=HALF_EPS)


# ---------------------------------------------------------------------------------------------- CLI


def run_cli(*args, cwd=None):
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "vmatte.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def test_cli_exr_plate_through_rvm_with_refinement_to_exr_outputs(tmp_path):
    plate_sequence(tmp_path / "plate", range(1001, 1004))
    r = run_cli(
        "matte",
        tmp_path / "plate" / "shot.%04d.exr",
        "-o",
        tmp_path / "out",
        "-m",
        "rvm",
        "-q",
        "-f",
        "exr,alpha",
        "--frames",
        "1002-1003",
        "--exr-compression",
        "dwaa",
        "--choke",
        "0.5",
        "--reduce-chatter",
        "2",
        "--despill",
        "green",
    )
    assert r.returncode == 0, r.stderr
    files = sorted(os.listdir(tmp_path / "out" / "shot_exr"))
    assert files == ["shot_exr.1002.exr", "shot_exr.1003.exr"]
    header, ch = read_exr(tmp_path / "out" / "shot_exr" / files[0])
    assert header["compression"] == OpenEXR.DWAA_COMPRESSION and "RVM" in header["vmatte:model"]
    assert (tmp_path / "out" / "shot_alpha.mp4").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.####.exr"], "no frames match"),
        (["PLATE", "--input-colorspace", "NoSuchSpace"], "unknown --input-colorspace 'NoSuchSpace'"),
        (["PLATE", "--frames", "5-6"], "none of the frames 5-6"),
    ],
)
def test_cli_bad_plate_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    plate_sequence(tmp_path / "plate", [1001])
    args = [str(tmp_path / "plate" / "shot.####.exr") if a == "PLATE" else a for a in args]
    r = run_cli("matte", *args, "-o", tmp_path / "out", "-m", "rvm", "-f", "exr", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmatte: error: ") and message in lines[0], r.stderr
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_cli_exr_file_name_as_output_is_one_line(tmp_path):
    plate_sequence(tmp_path / "plate", [1001])
    r = run_cli("matte", tmp_path / "plate" / "shot.####.exr", "-o", tmp_path / "comp" / "shot.####.exr", "-f", "exr")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "give -o a folder" in r.stderr, r.stderr
    assert not (tmp_path / "comp").exists()


def test_cli_frames_on_a_video_is_an_error(tmp_path):
    from conftest import make_clip

    clip = make_clip(tmp_path / "c.mp4", 2, 64, 48)
    r = run_cli("matte", clip, "-o", tmp_path / "out", "--frames", "1-2")
    assert r.returncode == 2 and "apply to EXR/DPX sequences" in r.stderr


def test_exr_from_a_video_is_linear_rec709_premultiplied(tmp_path):
    from conftest import make_clip

    clip = make_clip(tmp_path / "c.mp4", 2, 64, 48)

    class Half:  # alpha 0.5 everywhere, foreground = the frame as seen
        description = "half"

        def reset(self, concurrent_io=False):
            pass

        def step(self, image, foreground=True):
            return image.astype(np.float32) / 255.0, np.full(image.shape[:2], 0.5, np.float32)

    result = matte(clip, tmp_path / "out", model=Half(), formats=["exr"])
    header, ch = read_exr(result.outputs["exr"] / "c_exr.00001.exr")
    assert header["vmatte:colorspace"] == "Linear Rec.709 (sRGB)"
    with open_source(clip) as src:
        image = list(src)[1].image.astype(np.float64) / 255.0
    # sRGB decoding by hand: ((v + 0.055) / 1.055) ** 2.4 above 0.04045, v / 12.92 below
    linear = np.where(image > 0.04045, ((image + 0.055) / 1.055) ** 2.4, image / 12.92)
    np.testing.assert_allclose(ch["R"].astype(np.float64), 0.5 * linear[..., 0], rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(ch["A"].astype(np.float64), 0.5)
