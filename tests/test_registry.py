"""The model registry: one spec per model, the auto rule, typed options, and no model list elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vmatte.engine import registry
from vmatte.engine.registry import FRAME_MASKS, KEYFRAMES, SPECS, MatterOptions, choose_auto
from vmatte.errors import VmatteError

SRC = Path(__file__).resolve().parents[1] / "src" / "vmatte"


def test_every_spec_names_a_loader_that_exists_and_a_licence():
    for spec in SPECS.values():
        module, _, name = spec.loader.partition(":")
        assert callable(getattr(__import__(module, fromlist=[name]), name)), spec.name
        assert spec.license and spec.help and spec.label
    assert registry.names()[0] == "auto" and set(registry.names()[1:]) == set(SPECS)


def test_the_cli_offers_the_registry():
    from vmatte.cli import build_parser

    matte = build_parser()._subparsers._group_actions[0].choices["matte"]
    model = next(a for a in matte._actions if "--model" in a.option_strings)
    assert list(model.choices) == registry.names()


def test_auto_rule(monkeypatch):
    from vmatte import weights

    mask = np.zeros((8, 8), np.uint8)
    assert choose_auto(MatterOptions())[0].name == "rvm"
    monkeypatch.setattr(weights, "cached", lambda name: False)
    spec, note = choose_auto(MatterOptions(mask=mask))
    assert spec.name == "rvm-target" and "no MatAnyone weights" in note
    monkeypatch.setattr(weights, "cached", lambda name: name in ("matanyone", "matanyone2"))
    assert choose_auto(MatterOptions(keyframes={3: mask}))[0].name == "matanyone2"  # the newer weights first
    monkeypatch.setattr(weights, "cached", lambda name: name == "matanyone")
    assert choose_auto(MatterOptions(mask=mask))[0].name == "matanyone"
    assert choose_auto(MatterOptions(mask=mask, weights="x.pth"))[0].name == "matanyone"  # asked-for weights
    monkeypatch.setattr(weights, "cached", lambda name: True)
    assert choose_auto(MatterOptions(masks="dir", device="cpu"))[0].name == "rvm"  # VideoMaMa needs a GPU


def test_options_are_typed_and_a_typo_is_one_line():
    with pytest.raises(VmatteError, match="unknown model option.*warmup_frame\\b"):
        MatterOptions.from_kwargs({"warmup_frame": 3})
    with pytest.raises(VmatteError, match="--masks .* replaces --mask"):
        registry.load("rvm", MatterOptions(masks="d", mask=np.zeros((4, 4), np.uint8)))
    with pytest.raises(VmatteError, match="tracks a target from first-frame"):
        registry.load("matanyone", MatterOptions(masks="d"))


def test_specs_describe_what_each_model_takes():
    takes = {s.name: s.takes for s in SPECS.values()}
    assert takes["videomama"] == FRAME_MASKS and takes["matanyone"] == KEYFRAMES
    assert [s.name for s in SPECS.values() if not s.resumable] == ["videomama"]
    assert {s.name for s in SPECS.values() if s.every_person} == {"rvm", "rvm-resnet50"}


def test_no_model_list_outside_the_registry():
    """Model names appear only in the registry and in each model's own modules (its matter,
    its weights module); front ends, the API, clicks and resume read the specs."""
    names = "|".join(re.escape(n) for n in SPECS)
    own = {
        "engine/registry.py",
        "engine/options.py",
        "weights/rvm.py",
        "weights/matanyone.py",
        "weights/videomama.py",
    }
    pattern = re.compile(rf"[\"']({names})[\"']")
    found = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in own or rel.startswith("train/"):  # train/: network kinds of its own config, not models
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and not code.strip().startswith((">>>", "...")):
                found.append(f"{rel}:{i}: {line.strip()}")
    # the segmenter's own name for RVM's person regions (--segmenter rvm) is not a model name
    found = [f for f in found if not f.startswith("engine/segment/prompts.py") or 'RVM = "auto", "rvm"' not in f]
    assert found == []


def test_no_option_list_outside_the_options_module():
    """Model and refinement options are listed only where they are declared (engine/options.py) and
    in the registry: the CLI, the manifest, the app and the benchmarks read the declarations, so no
    tuple, list, set or dict of two or more of their names (or flags) is written anywhere else."""
    import ast

    from vmatte.engine.options import MODEL, REFINE, group

    names = {n for o in group(MODEL) + group(REFINE) for n in (o.name, o.column_name, *o.cli_flags)}
    own = {"engine/options.py", "engine/registry.py"}
    found = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in own or rel.startswith("train/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                items = node.elts
            elif isinstance(node, ast.Dict):
                items = [k for k in node.keys if k is not None]
            else:
                continue
            hits = [e.value for e in items if isinstance(e, ast.Constant) and e.value in names]
            if len(hits) >= 2:
                found.append(f"{rel}:{node.lineno}: {hits}")
    assert found == []
