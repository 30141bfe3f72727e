"""``python -m vmatte.train CONFIG`` or ``torchrun --nproc_per_node N -m vmatte.train CONFIG``.

Options: ``--resume CHECKPOINT|RUN_DIR`` (continue exactly where it stopped), ``--set
section.key=value`` (repeatable; overrides the config file). Problems the user can fix print one
line and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys

from vmatte.errors import VmatteError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vmatte.train", description="Train or fine-tune MatAnyone / RVM.")
    parser.add_argument("config", help="a TOML config, e.g. configs/train/matanyone_stage1.toml")
    parser.add_argument("--resume", help="a checkpoint file or a run folder (its checkpoints/latest.pt)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (TOML value), e.g. --set run.steps=100",
    )
    args = parser.parse_args(argv)
    try:
        from .config import load_config
        from .loop import train

        cfg = load_config(args.config, args.set)
        last = train(cfg, args.resume)
    except VmatteError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    if last:
        print("last step: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(last.items())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
