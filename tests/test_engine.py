"""Engine: the overlapped pipeline's queues and errors, and the per-video runtime choice for RVM."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import vmatte
import vmatte.demo
from vmatte.engine.pipeline import BackgroundConsumer, Prefetcher
from vmatte.engine.rvm import RVMAuto, RVMOnnx, RVMTorch


def test_prefetcher_is_bounded_and_ordered():
    produced = []

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    p = Prefetcher(source(), maxsize=3)
    time.sleep(0.3)  # the producer may run ahead by the queue size (+1 in hand), no more
    assert len(produced) <= 5
    assert list(p) == list(range(100))
    p.close()


def test_prefetcher_reraises_the_producers_error_in_the_consumer():
    def source():
        yield 1
        raise ValueError("corrupt at frame 1")

    p = Prefetcher(source(), maxsize=2)
    with pytest.raises(ValueError, match="corrupt at frame 1"):
        list(p)


def test_prefetcher_close_stops_a_blocked_producer():
    p = Prefetcher(iter(range(10**9)), maxsize=2)
    next(iter(p))
    p.close()
    assert not p._thread.is_alive()


def test_consumer_errors_stop_the_producer_promptly():
    seen = []

    def consume(x):
        seen.append(x)
        if x == 3:
            raise OSError(28, "No space left on device")

    c = BackgroundConsumer(consume, maxsize=2)
    with pytest.raises(OSError, match="No space"):
        for i in range(1000):
            c.put(i)
    assert seen[-1] == 3
    c.abort()


def test_consumer_finish_drains_everything_in_order():
    seen = []
    c = BackgroundConsumer(seen.append, maxsize=2)
    for i in range(50):
        c.put(i)
    c.finish()
    assert seen == list(range(50))


def test_decode_compute_encode_overlap():
    """With sleeps standing in for decode/encode, the three stages run concurrently."""

    def source():
        for i in range(10):
            time.sleep(0.02)
            yield i

    c = BackgroundConsumer(lambda _: time.sleep(0.02), maxsize=4)
    t0 = time.perf_counter()
    p = Prefetcher(source(), maxsize=4)
    for x in p:
        time.sleep(0.02)
        c.put(x)
    c.finish()
    assert time.perf_counter() - t0 < 0.45  # serial would be 0.6 s


# --- RVM runtime choice ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames():
    return [f for f in vmatte.demo.sample_frames(4)]  # 640x360


def test_auto_uses_onnxruntime_for_small_network_inputs_and_matches_pytorch(frames):
    auto = vmatte.load_matter("rvm", device="cpu", downsample_ratio=0.25)  # network input 160x90
    torch_only = vmatte.load_matter("rvm", device="cpu", backend="torch", downsample_ratio=0.25)
    assert isinstance(auto, RVMAuto) and isinstance(torch_only, RVMTorch)
    auto.reset(), torch_only.reset()
    for f in frames:
        (fa, aa), (ft, at) = auto.step(f), torch_only.step(f)
        assert np.abs(aa - at).max() <= 1e-4 and np.abs(fa - ft).max() <= 1e-4
    assert isinstance(auto._active, RVMOnnx)


def test_auto_picks_the_runtime_by_network_input_size(frames):
    from vmatte.engine.rvm import RVMAuto, RVMOnnx

    auto = vmatte.load_matter("rvm", device="cpu")  # 640x360 -> ratio 0.75 -> a 480 px input: onnxruntime
    auto.reset()
    auto.step(frames[0])
    assert isinstance(auto._active, RVMOnnx) and 480 <= RVMAuto.ONNX_MAX_SIDE
    big = vmatte.load_matter("rvm", device="cpu", downsample_ratio=0.9)  # a 576 px input: PyTorch
    big.reset()
    big.step(frames[0])
    assert isinstance(big._active, RVMTorch)


def test_alpha_only_runs_skip_the_foreground(frames):
    m = vmatte.load_matter("rvm", device="cpu", backend="torch")
    m.reset()
    fgr, alpha = m.step(frames[0], foreground=False)
    assert fgr is None and alpha.shape == (360, 640)


def test_onnx_backend_refuses_other_weights(tmp_path):
    with pytest.raises(vmatte.VmatteError, match="--backend torch"):
        vmatte.load_matter("rvm-resnet50", device="cpu", backend="onnx")


def test_engine_threads_do_not_leak(tmp_path, frames):
    before = threading.active_count()
    m = vmatte.load_matter("rvm", device="cpu", backend="torch")
    clip = tmp_path / "c.mp4"
    vmatte.demo.make_sample(clip, frames=4)
    vmatte.matte(clip, tmp_path / "o", model=m, formats=["alpha"])
    assert threading.active_count() <= before + 1  # allow one lazily started library pool


def test_onnx_io_binding_equals_plain_onnxruntime_and_its_state_survives_a_resume(frames):
    """RVMOnnx keeps the recurrent state in onnxruntime's buffers (IO binding): the same numbers
    as a plain session fed numpy arrays, and --resume's state snapshot still carries it."""
    import onnxruntime as ort

    from vmatte.engine.resume import load_stream_state, stream_state
    from vmatte.weights import packaged_path

    m = vmatte.load_matter("rvm", device="cpu", backend="onnx", downsample_ratio=0.25)
    assert isinstance(m, RVMOnnx)
    sess = ort.InferenceSession(str(packaged_path()), providers=["CPUExecutionProvider"])
    rec = [np.zeros((1, 1, 1, 1), np.float32)] * 4
    m.reset()
    for f in frames[:3]:
        fgr, alpha = m.step(f)
        feeds = {
            "src": f.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255),
            "downsample_ratio": np.array([0.25], np.float32),
        } | {f"r{i + 1}i": r for i, r in enumerate(rec)}
        ref_fgr, ref_pha, *rec = sess.run(None, feeds)
        np.testing.assert_allclose(alpha, ref_pha[0, 0], atol=1e-4)  # x (1/255) vs / 255 rounding
        np.testing.assert_allclose(fgr, ref_fgr[0].transpose(1, 2, 0), atol=1e-4)
    skeleton, tensors = stream_state(m)
    resumed = vmatte.load_matter("rvm", device="cpu", backend="onnx", downsample_ratio=0.25)
    resumed.reset()
    load_stream_state(resumed, skeleton, tensors)
    assert np.array_equal(resumed.step(frames[3], foreground=False)[1], m.step(frames[3], foreground=False)[1])
