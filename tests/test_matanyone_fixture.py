"""MatAnyone against the official implementation's numbers (the shared numeric fixture).

The fixture (``../shared/fixtures/matanyone``, see its README) holds deterministic synthetic
weights (``recipe.py`` + sha256s), input frames and masks, and the official outputs: alpha,
the matting logits before the clamp, the change probabilities, the warm-up outputs and, for
``case_dance_twirl``, stage tensors of five ``step()`` calls. Tolerances are the README's:
per frame max |d| <= 5e-4 on alpha / logits / change prob, mean |d| on alpha <= 2e-5, and
intermediates max |d| <= 3e-4 * max |ref|. The tests skip when the fixture is not there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import matanyone_fixture_settings, matanyone_recipe_state_dict
from vmatte.engine.matanyone import InferenceCore, iter_alpha, prepare_network
from vmatte.engine.matanyone.preprocess import image_to_tensor, mask_to_tensor
from vmatte.models.matanyone import MatAnyone

FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "matanyone"
CASES = ["case_short", "case_dance_twirl"]
MAX_ABS = 5e-4
MEAN_ABS_ALPHA = 2e-5
INTERMEDIATE_REL = 3e-4

pytestmark = pytest.mark.skipif(not (FIXTURE / "recipe.py").is_file(), reason=f"no MatAnyone fixture at {FIXTURE}")


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    return matanyone_recipe_state_dict()


@pytest.fixture(scope="module")
def network(state_dict) -> MatAnyone:
    net = MatAnyone()
    net.load_state_dict(state_dict, strict=True)
    return net.eval()


def _frames(case: Path, n: int) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(case / f"{i:05d}.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for i in range(n)]


def _mask(case: Path) -> np.ndarray:
    return cv2.imread(str(case / "mask.png"), cv2.IMREAD_GRAYSCALE)


def _run_official_sequence(network: MatAnyone, case: Path, n: int):
    """The README's call sequence, step by step: returns (saved, warm-up, traces by step index)."""
    settings = matanyone_fixture_settings(case)
    core = InferenceCore(network, settings)
    frames, mask = _frames(case, n), _mask(case)
    vframes = [frames[0]] * settings.warmup_frames + frames
    saved, warmup, traces = [], [], {}
    step_index = 0

    def step(*args, **kwargs):
        nonlocal step_index
        core.trace = {}
        out = core.step(*args, **kwargs)
        traces[step_index] = {k: v.numpy().copy() for k, v in core.trace.items()}
        step_index += 1
        return out

    for ti, frame in enumerate(vframes):
        image = image_to_tensor(frame)
        if ti == 0:
            step(image, mask_to_tensor(mask))
            out = step(image, first_frame_pred=True)
        elif ti <= settings.warmup_frames:
            out = step(image, first_frame_pred=True)
        else:
            out = step(image)
        (saved if ti >= settings.warmup_frames else warmup).append(out)
    return saved, warmup, traces


def test_recipe_weights_match_sha256(state_dict):
    expected = json.loads((FIXTURE / "weights_sha256.json").read_text())
    assert set(expected) == set(state_dict)
    bad = [
        k for k, t in state_dict.items() if hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest() != expected[k]
    ]
    assert not bad, f"{len(bad)} regenerated tensors differ from the reference weights, e.g. {bad[:3]}"


@pytest.fixture(scope="module")
def fused_network(state_dict) -> MatAnyone:
    """As vmatte runs it on the CPU (engine.matanyone.prepare_network: BatchNorm folded, NHWC encoders)."""
    net = MatAnyone()
    net.load_state_dict(state_dict, strict=True)
    return prepare_network(net, "cpu")


@pytest.fixture(scope="module")
def compiled_network(state_dict) -> MatAnyone:
    """``VMATTE_COMPILE=1``: the fused network with its per-frame parts through torch.compile."""
    if shutil.which("g++") is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler (g++)")
    net = MatAnyone()
    net.load_state_dict(state_dict, strict=True)
    return prepare_network(net, "cpu", compile=True)


VARIANTS = {"official_layout": "network", "fused": "fused_network", "compiled": "compiled_network"}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case_name", CASES)
def test_matches_official_outputs(request, variant, case_name):
    if variant == "compiled" and case_name != CASES[0]:
        pytest.skip("one case is enough for the compiled path (each new frame size compiles anew)")
    network = request.getfixturevalue(VARIANTS[variant])
    case = FIXTURE / case_name
    ref = np.load(case / "reference.npz")
    n = ref["alpha"].shape[0]
    saved, warmup, traces = _run_official_sequence(network, case, n)
    assert len(saved) == n

    cp_frames = [int(f) for f in ref["change_prob_frame"]]
    assert [i for i, o in enumerate(saved) if o.change_prob is not None] == cp_frames
    failures = []
    for i, out in enumerate(saved):
        alpha = out.alpha[0].numpy()
        d_alpha = np.abs(alpha - ref["alpha"][i])
        d_logit = np.abs(out.logits[0].numpy() - ref["alpha_logits"][i]).max()
        if d_alpha.max() > MAX_ABS or d_alpha.mean() > MEAN_ABS_ALPHA or d_logit > MAX_ABS:
            failures.append(f"frame {i}: alpha max {d_alpha.max():.2e} mean {d_alpha.mean():.2e}, logits {d_logit:.2e}")
        if out.change_prob is not None:
            d_cp = np.abs(out.change_prob[0].numpy() - ref["change_prob"][cp_frames.index(i)]).max()
            if d_cp > MAX_ABS:
                failures.append(f"frame {i}: change prob {d_cp:.2e}")
    for i, out in enumerate(warmup):
        d = np.abs(out.alpha[0].numpy() - ref["warmup_alpha"][i]).max()
        d_logit = np.abs(out.logits[0].numpy() - ref["warmup_alpha_logits"][i]).max()
        if max(d, d_logit) > MAX_ABS:
            failures.append(f"warm-up {i}: alpha {d:.2e}, logits {d_logit:.2e}")
    assert not failures, "\n".join(failures)

    if (case / "intermediates.npz").is_file():
        inter = np.load(case / "intermediates.npz")
        checked = 0
        for key in inter.files:
            step_name, name = key.split("/")
            got = traces[int(step_name.removeprefix("step"))]
            assert name in got, f"{key} not traced"
            want = inter[key]
            diff = np.abs(got[name] - want).max()
            assert diff <= INTERMEDIATE_REL * np.abs(want).max(), f"{key}: max |d| {diff:.3e}"
            checked += 1
        assert checked == len(inter.files)


def test_iter_alpha_is_the_official_sequence(network):
    """The streaming helper (lazy frames, warm-up inside) gives the same alphas."""
    case = FIXTURE / "case_short"
    ref = np.load(case / "reference.npz")
    n = ref["alpha"].shape[0]
    core = InferenceCore(network, matanyone_fixture_settings(case))
    outs = list(iter_alpha(core, iter(_frames(case, n)), _mask(case)))
    assert len(outs) == n
    for i, out in enumerate(outs):
        assert np.abs(out.alpha[0].numpy() - ref["alpha"][i]).max() <= MAX_ABS
