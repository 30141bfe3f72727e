"""Options declared once (engine/options.py): the CLI's arguments, the manifest's columns and the app's
fields are made from the declarations, each model says which it takes, and the registry refuses the
rest in one place with one message."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest

from conftest import make_clip
from vmatte.batch.manifest import ALIASES, COLUMNS, Defaults, ManifestError, load_manifest
from vmatte.cli import build_parser, main
from vmatte.engine import registry
from vmatte.engine.options import (
    EVERY_MODEL,
    EXR_COMPRESSIONS,
    MODEL,
    OPTION,
    OPTIONS,
    REFINE,
    MatterOptions,
    OptionError,
    group,
)
from vmatte.errors import VmatteError


def _matte_parser():
    return build_parser()._subparsers._group_actions[0].choices["matte"]


def test_every_declared_flag_is_a_matte_argument_as_declared():
    actions = {a.dest: a for a in _matte_parser()._actions}
    for o in OPTIONS:
        if not o.cli_flags:
            continue
        a = actions[o.name]
        assert tuple(a.option_strings) == o.cli_flags, o.name
        assert a.default == o.default and (a.type or str) is o.type, o.name
        assert tuple(a.choices or ()) == o.choices, o.name
        if o.group == MODEL and o.name not in EVERY_MODEL:  # the help names who takes it, from the specs
            takers = [s.name for s in registry.SPECS.values() if o.name in s.options]
            assert takers and a.help.startswith(", ".join(takers) + ": "), (o.name, a.help)
    # a shared argument is the same declaration in every subcommand
    sub = build_parser()._subparsers._group_actions[0].choices
    for command in ("batch", "ui", "track"):
        device = next(a for a in sub[command]._actions if a.dest == "device")
        assert device.option_strings == ["--device"] and device.default == OPTION["device"].default


def test_every_declared_column_is_a_manifest_column():
    for o in OPTIONS:
        if o.column_name:
            assert o.column_name in COLUMNS and COLUMNS[o.column_name] == o.help
            assert all(ALIASES[a] == o.column_name for a in o.aliases)
    assert ALIASES["max-size"] == "max_size" and ALIASES["background"] == "bg"


def test_specs_take_declared_options_and_settings_classes_follow_the_declarations():
    from vmatte.engine.refine import RefineSettings
    from vmatte.io.exr import COMPRESSIONS

    models = {o.name for o in group(MODEL)}
    for spec in registry.SPECS.values():
        assert EVERY_MODEL <= spec.options <= models, spec.name
    assert registry.tracker_models() == [s.name for s in registry.SPECS.values() if "tracker" in s.options]
    assert [s.name for s in registry.SPECS.values() if s.role == registry.ROLE_SAM2] == ["sam2-matte"]
    fields = [f.name for f in __import__("dataclasses").fields(RefineSettings)]
    assert fields == [o.name for o in group(REFINE)] + ["chatter_tolerance"]
    assert tuple(COMPRESSIONS) == EXR_COMPRESSIONS
    o = MatterOptions(max_size=64, tracker="sam2")
    assert pickle.loads(pickle.dumps(o)) == o and [x.name for x in o.given()] == ["max_size", "tracker"]


def test_the_registry_refuses_an_option_a_model_does_not_take_in_one_message():
    with pytest.raises(OptionError) as e:
        registry.load("rvm", MatterOptions(warmup_frames=3, erode=2, tracker="sam2"))
    assert str(e.value) == (
        "--model rvm does not take --warmup-frames, --erode (options of matanyone, matanyone2); --tracker "
        "(an option of rvm-target, videomama, sam2-matte); it takes --backend, --downsample-ratio, --max-size"
    )
    assert e.value.option.name == "warmup_frames"
    with pytest.raises(OptionError, match="--model sam2-matte does not take --max-size .*; it takes --tracker$"):
        registry.check_options("sam2-matte", MatterOptions(max_size=512, mask="m"))
    # RVM's gate by per-frame masks takes --dilate; plain RVM does not
    registry.check_options("rvm", MatterOptions(masks="d", dilate=4))
    with pytest.raises(OptionError, match="--model rvm does not take --dilate"):
        registry.check_options("rvm", MatterOptions(dilate=4))
    with pytest.raises(OptionError, match=r"^--max-size must be at least 32 pixels, got 16$"):
        registry.check_options("matanyone", MatterOptions(max_size=16, mask="m"))


def test_a_refused_option_on_the_command_line_is_one_line_and_writes_nothing(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", 2, 32, 32)
    out = tmp_path / "out"
    assert main(["matte", str(clip), "-o", str(out), "--model", "rvm", "--precision", "bf16", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--model rvm does not take --precision (an option of matanyone" in err, err
    assert not out.exists() or not any(out.iterdir())


def test_the_manifest_refuses_in_its_own_words_and_gives_the_batch_backend_to_whom_takes_it(tmp_path):
    make_clip(tmp_path / "c.mp4", 2, 32, 32)
    cv2.imwrite(str(tmp_path / "m.png"), np.full((32, 32), 255, np.uint8))
    rows = [
        {"id": "a", "input": "c.mp4", "model": "rvm"},
        {"id": "b", "input": "c.mp4", "model": "rvm-target", "mask": "m.png"},
        {"id": "c", "input": "c.mp4", "model": "rvm-target", "mask": "m.png", "tracker": "sam2", "dilate": 3},
    ]
    (tmp_path / "ok.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    shots = load_manifest(tmp_path / "ok.jsonl", Defaults(backend="torch"))
    assert [s.options.get("backend") for s in shots] == ["torch", "torch", "torch"]
    assert shots[2].options["dilate"] == 3  # the tracker's gate takes it
    (tmp_path / "bad.csv").write_text("id,input,model,mask,erode,warmup-frames\nd,c.mp4,rvm-target,m.png,2,4\n")
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path / "bad.csv")
    assert e.value.lines == [
        "bad.csv row 1 (id 'd'), warmup_frames: model rvm-target does not take warmup_frames, erode (options of "
        "matanyone, matanyone2); it takes backend, downsample_ratio, max_size, tracker"
    ]
    (tmp_path / "range.csv").write_text("id,input,max_size,reduce_chatter\ne,c.mp4,16,x\n")
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path / "range.csv")
    assert [line.split(", ", 1)[1] for line in e.value.lines] == [
        "max_size: max_size must be at least 32 pixels, got 16",
        "reduce_chatter: 'x' is not a whole number; give average the edge over the last N frames where the "
        "picture did not change",
    ]


def test_the_app_shows_and_passes_only_what_the_chosen_model_takes(monkeypatch):
    from vmatte import weights
    from vmatte.ui.job import RunSettings, _taken, page_options, page_value, refine_from_page, shown_options

    assert [o.name for o in page_options(MODEL)] == [o.name for o in group(MODEL) if o.field]
    assert "warmup_frames" in shown_options("matanyone") and "max_size" in shown_options("matanyone")
    assert not {"warmup_frames", "max_size"} & shown_options("sam2-matte")
    monkeypatch.setattr(weights, "cached", lambda name: False)
    assert shown_options("auto") == registry.SPECS["rvm-target"].options  # auto with a target, nothing cached
    monkeypatch.setattr(weights, "cached", lambda name: name == "matanyone")
    assert "warmup_frames" in shown_options("auto")
    page = RunSettings(options={"warmup_frames": 10, "max_size": 256})
    assert _taken(page, registry.SPECS["sam2-matte"]) == {}
    assert _taken(page, registry.SPECS["matanyone"]) == {"warmup_frames": 10, "max_size": 256}
    assert page_value(OPTION["max_size"], 0) is None and page_value(OPTION["warmup_frames"], 0) == 0
    assert page_value(OPTION["max_size"], 512.0) == 512 and page_value(OPTION["despill"], "none") is None
    assert refine_from_page({"choke": 0, "despill": "none"}) is None
    assert refine_from_page({"choke": 2.5, "despill": "green"}).describe() == "choke=2.5 despill=green"
    with pytest.raises(VmatteError, match="--shift-edge must be between -100 and 100"):
        refine_from_page({"shift_edge": 300})


def test_the_command_runs_as_a_module_too():
    import subprocess
    import sys

    for module in ("vmatte", "vmatte.cli"):
        r = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.startswith("vmatte "), (module, r.stderr)
