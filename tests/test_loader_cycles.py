"""tools/check_loader_cycles.py: the registry's "module:function" loader strings count as imports,
so a loader importing the registry back (even inside a function) is a cycle; vmatte has none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_loader_cycles as check  # noqa: E402


def _package(tmp: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp / "vmatte" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp


def test_a_loader_importing_the_registry_back_inside_a_function_is_a_cycle(tmp_path):
    src = _package(
        tmp_path,
        {
            "__init__.py": "",
            "engine/__init__.py": "",
            "engine/options.py": "AUTO = 'auto'\n",
            "engine/registry.py": "from .options import AUTO\nLOADER = 'vmatte.engine.model:load'\n",
            "engine/helper.py": "def f():\n    from . import registry\n",
            "engine/model.py": "from .helper import f\n\ndef load():\n    pass\n",
        },
    )
    assert check.cycles(src) == [
        ["vmatte.engine.registry", "vmatte.engine.model", "vmatte.engine.helper", "vmatte.engine.registry"]
    ]
    (src / "vmatte/engine/helper.py").write_text("def f():\n    from .options import AUTO\n")  # downward only
    assert check.cycles(src) == []
    # an import only for type checkers is no edge
    (src / "vmatte/engine/helper.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .registry import LOADER\n"
    )
    assert check.cycles(src) == []


def test_vmatte_has_no_cycle_through_its_loader_strings():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "check_loader_cycles.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert "no import cycle" in r.stdout and "vmatte.engine.rvm" in r.stdout
