"""Shared helpers of the robustness suite (tests/test_robust_*.py).

Every case runs the real ``vmatte`` command in-process (``vmatte.cli.main``) and ends in one of
two outcomes:

* ``HANDLED``: exit 0, no traceback, and every output has the expected frame count and size;
* ``ERROR``: exit 2, exactly one ``vmatte: error:`` line on stderr (no traceback), and no file
  left in the output folder (neither under a final name nor as a temporary).

The case tables live in the test files; ``docs/robustness.md`` publishes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmatte.cli import main
from vmatte.io.probe import stream_summary

HANDLED = "handled"
ERROR = "error"


@dataclass
class Expect:
    outcome: str  # HANDLED or ERROR
    words: tuple[str, ...] = ()  # ERROR: words the error line must hold
    frames: int | None = None  # HANDLED: frames of every output
    size: tuple[int, int] | None = None  # HANDLED: (width, height) of every output
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # ... per format name, where it differs
    outputs: int = 1  # HANDLED: number of outputs (one per format and target id)
    stderr_has: tuple[str, ...] = ()  # HANDLED: words stderr must hold (a warning)
    warnings_first: bool = False  # ERROR: true `vmatte: warning:` lines found while running may precede it


@dataclass
class Case:
    """``make(tmp) -> argv`` builds the bad/odd input under ``tmp`` and returns the CLI
    arguments after ``matte`` (input and options; ``-o OUT -q`` are added)."""

    name: str
    make: Callable[[Path], list]
    expect: Expect
    note: str = field(default="")


def run_case(case: Case, tmp: Path, capsys) -> tuple[int, str, str, Path]:
    out = tmp / "out"
    argv = ["matte", *map(str, case.make(tmp)), "-o", str(out), "-q"]
    code = main(argv)
    stdout, err = capsys.readouterr()
    return code, stdout, err, out


def check_outcome(case: Case, code: int, stdout: str, err: str, out: Path) -> None:
    exp = case.expect
    assert "Traceback" not in err, err
    if exp.outcome == ERROR:
        assert code == 2, (code, err)
        # a download's progress bar (tqdm, "...%|...") may precede the error; it is not an error line
        lines = [line for line in err.strip().splitlines() if line.strip() and "%|" not in line]
        if exp.warnings_first:
            lines = [line for line in lines if not line.startswith("vmatte: warning:")]
        assert len(lines) == 1 and lines[0].startswith("vmatte: error:"), err
        for w in exp.words:
            assert w.lower() in lines[0].lower(), (w, lines[0])
        left = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        assert left == [], left  # no final output and no temporary left behind
        return
    assert code == 0, err
    for w in exp.stderr_has:
        assert w.lower() in err.lower(), (w, err)
    listed = dict(line.split("\t", 1) for line in stdout.splitlines() if "\t" in line)
    paths = {name: Path(p) for name, p in listed.items()}
    assert len(paths) == exp.outputs, stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.values())  # no stray temporaries
    for name, p in paths.items():
        s = stream_summary(p)
        if exp.frames is not None:
            assert s["frames"] == exp.frames, (p.name, s)
        size = exp.sizes.get(name, exp.size)
        if size is not None:
            assert (s["width"], s["height"]) == size, (p.name, s)
