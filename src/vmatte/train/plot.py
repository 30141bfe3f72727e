"""``python -m vmatte.train.plot RUN_DIR [-o PNG]``: training loss and validation curves of a
run's metrics.csv as a small PNG (needs matplotlib, the [eval] extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vmatte.errors import VmatteError

from .logging import read_metrics


def plot(run_dir: str, out: str, title: str | None = None) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VmatteError("plotting needs matplotlib; install it with: pip install 'vmatte[eval]'") from None
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise VmatteError(f"{path} not found; give the run folder (run.out_dir) of a training run")
    rows = read_metrics(path)
    train = sorted(
        {r["name"] for r in rows if r["split"] not in ("train", "val")}
        - {"samples_per_s", "lr", "max_rss_gib", "gpu_mem_gib", "grad_norm"}
    )
    val = sorted({r["name"] for r in rows if r["split"] == "val"})
    fig, axes = plt.subplots(1, 2 if val else 1, figsize=(9 if val else 5, 3.2), squeeze=False)
    ax = axes[0][0]
    for name in train:
        pts = [
            (int(r["step"]), float(r["value"]))
            for r in rows
            if r["name"] == name and r["split"] not in ("train", "val")
        ]
        ax.plot(*zip(*pts), label=name, lw=1.2 if name == "total" else 0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("training loss terms (rank mean)")
    ax.legend(fontsize=6)
    if val:
        ax = axes[0][1]
        for name in val:
            pts = [(int(r["step"]), float(r["value"])) for r in rows if r["name"] == name and r["split"] == "val"]
            ax.plot(*zip(*pts), marker="o", ms=3, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title("validation (vmatte.eval metrics)")
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=80)
    plt.close(fig)
    return out_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vmatte.train.plot")
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", default=None, help="PNG path (default RUN_DIR/curves.png)")
    p.add_argument("--title", default=None)
    a = p.parse_args(argv)
    try:
        print(plot(a.run_dir, a.output or str(Path(a.run_dir) / "curves.png"), a.title))
    except VmatteError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
