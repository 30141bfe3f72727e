"""Side-by-side timing helpers shared by the speed benchmarks: A B A B on the same inputs.

A speed-up is only believable as a ratio against a reference measured in the same process, on
the same frames, interleaved with the candidate: whatever else the machine is doing then slows
both alike. :func:`alternate` runs the variants in turn (the order flips every round so neither
always runs second, on warm caches) and reports min and median per variant; :func:`machine`
names the CPU, the threads and the load, printed above every table.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine(threads: int | None = None) -> str:
    """One line: CPU model, cores visible to this process, threads used, load average now."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    used = f", {threads} thread(s)" if threads else ""
    return (
        f"machine: {cpu_model()}, {cores} core(s) usable of {os.cpu_count()}{used}, "
        f"load average {load_average()} (1/5/15 min), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )


@dataclass
class Timing:
    name: str
    times: list[float]

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def alternate(variants: dict[str, Callable[[int], object]], rounds: int, pause: float = 0.0) -> dict[str, Timing]:
    """Call ``variants[name](i)`` for i in range(rounds), the variants in turn within each round
    (A B, then B A, ...): -> seconds per call, per variant. ``pause`` seconds of idle (untimed)
    before each call, so that a runtime whose thread pool spins on after it returns (onnxruntime
    by default) does not slow the variant timed after it."""
    names = list(variants)
    out = {n: Timing(n, []) for n in names}
    for i in range(rounds):
        for n in names if i % 2 == 0 else names[::-1]:
            if pause:
                time.sleep(pause)
            t = time.perf_counter()
            variants[n](i)
            out[n].times.append(time.perf_counter() - t)
    return out


def ratio_line(ref: Timing, cand: Timing, unit: str = "s") -> str:
    """'cand vs ref': speed-up of the medians (and of the minima)."""
    scale, fmt = (1000.0, ".1f") if unit == "ms" else (1.0, ".3f")
    return (
        f"{ref.name} min {ref.min * scale:{fmt}} med {ref.median * scale:{fmt}} {unit} | "
        f"{cand.name} min {cand.min * scale:{fmt}} med {cand.median * scale:{fmt}} {unit} | "
        f"speed-up {ref.median / cand.median:.2f}x (median), {ref.min / cand.min:.2f}x (min)"
    )
