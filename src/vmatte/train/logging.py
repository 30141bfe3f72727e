"""Metrics to ``metrics.csv`` (long format: step, split, name, value) and to TensorBoard.

Only rank 0 writes. The CSV is appended line by line and flushed, so a crashed run keeps its
curve; a resumed run drops the rows past its resume step first, so no step is there twice.
"""

from __future__ import annotations

import csv
from pathlib import Path

HEADER = ["step", "split", "name", "value"]


class MetricLogger:
    def __init__(self, out_dir: str, resume_step: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(out_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = read_metrics(self.path) if self.path.is_file() else []
        kept = [r for r in rows if int(r["step"]) <= resume_step] if resume_step else []
        with self.path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            w.writerows([[r[h] for h in HEADER] for r in kept])
        self._file = self.path.open("a", newline="")
        self._csv = csv.writer(self._file)
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the [train] extra is optional: the CSV is always written
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(
                    str(Path(out_dir) / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
                )

    def log(self, step: int, split: str, values: dict[str, float]) -> None:
        for name, value in values.items():
            self._csv.writerow([step, split, name, f"{value:.8g}"])
            if self._tb is not None:
                self._tb.add_scalar(f"{split}/{name}", value, step)
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def series(path: str | Path, name: str, split: str = "train") -> tuple[list[int], list[float]]:
    """(steps, values) of one metric from a metrics.csv."""
    rows = [r for r in read_metrics(path) if r["name"] == name and r["split"] == split]
    return [int(r["step"]) for r in rows], [float(r["value"]) for r in rows]
