"""Start-up time of quick ``vmatte`` commands (``--help``, ``--version``, ``formats``, an argument
error), this tree against another source tree, alternating A B A B in one run.

    python benchmarks/startup.py [--reference /path/to/other/src] [--rounds 7]

Each sample is a fresh ``python -m vmatte.cli ...`` process, wall time from spawn to exit.
Prints min and median per command and tree, with the CPU and the load, for the issue note.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from abtest import cpu_model  # benchmarks/ is on sys.path: this runs as a script there

HERE = Path(__file__).resolve().parents[1] / "src"
COMMANDS = (["--help"], ["--version"], ["formats"], ["matte", "in.mp4", "-m", "no-such-model"])


def sample(src: Path, argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "vmatte.cli", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, help="another tree's src/ (e.g. before the change)")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    trees = {"this": HERE} | ({"reference": args.reference.resolve()} if args.reference else {})
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} threads, load average {os.getloadavg()[0]:.1f}; Python "
        f"{platform.python_version()}"
    )
    for argv in COMMANDS:
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, src in trees.items():  # alternating: both trees see the same load
                times[name].append(sample(src, argv))
        cells = "   ".join(
            f"{name}: min {min(t):.2f} s, median {statistics.median(t):.2f} s" for name, t in times.items()
        )
        print(f"vmatte {' '.join(argv):<32} {cells}")


if __name__ == "__main__":
    main()
