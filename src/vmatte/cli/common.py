"""Arguments more than one subcommand takes, and every declared option as an argument.

An option's flag, help, type, range, choices and default come from its declaration
(:mod:`vmatte.engine.options`); a model option's help starts with the models that take it (read
from the registry), so it stays true when a model or an option is added. Nothing here imports
torch: ``--help`` answers at once.
"""

from __future__ import annotations

import argparse

from ..engine import registry
from ..engine.options import EVERY_MODEL, MODEL, OPTION, Option, group


def option_help(o: Option) -> str:
    """The declared help; a model option's starts with the models that take it."""
    text = o.help
    if o.group == MODEL and o.name not in EVERY_MODEL:
        text = ", ".join(s.name for s in registry.SPECS.values() if o.name in s.options) + ": " + text
    return text.replace("%", "%%")  # argparse formats help with %


def add(p, name: str, **override) -> argparse.Action:
    """The declared option ``name`` as an argument of ``p`` (a parser or an argument group);
    ``override``: argparse keywords that differ for this subcommand (``help``, ``required``)."""
    o = OPTION[name]
    kwargs: dict = {"dest": o.name, "help": option_help(o), "default": o.default}
    if o.type is not str:
        kwargs["type"] = o.type
    if o.choices:
        kwargs["choices"] = o.choices
    if o.metavar:
        kwargs["metavar"] = o.metavar
    if o.repeat:
        kwargs["action"] = "append"
    if "help" in override:
        override["help"] = override["help"].replace("%", "%%")
    return p.add_argument(*o.cli_flags, **{**kwargs, **override})


def add_group(p, group_name: str, skip: tuple[str, ...] = ()) -> None:
    """Every declared option of ``group_name`` that has a flag (in declaration order)."""
    for o in group(group_name):
        if o.cli_flags and o.name not in skip:
            add(p, o.name)


def given(args: argparse.Namespace, group_name: str) -> dict:
    """``{name: value}`` of the options of ``group_name`` set to something other than their default."""
    values = {o.name: getattr(args, o.name, o.default) for o in group(group_name) if o.cli_flags}
    return {name: v for name, v in values.items() if OPTION[name].given(v)}


def model(p, help: str | None = None) -> None:
    """``-m/--model``: one name of the registry, or ``auto``."""
    p.add_argument(
        "-m",
        "--model",
        default=registry.AUTO,
        choices=registry.names(),
        help=help or "model (default: auto): " + "; ".join(f"{n}: {h}" for n, h in registry.help_lines().items()),
    )


def models(p) -> None:
    """``-m/--models``: comma-separated names (benchmarks)."""
    p.add_argument(
        "-m", "--models", default=registry.BASELINE, help=f"comma-separated models (default: {registry.BASELINE})"
    )


def device(p, help: str | None = None) -> None:
    add(p, "device", **({"help": help} if help else {}))


def quiet(p, help: str = "no progress bar") -> None:
    p.add_argument("-q", "--quiet", action="store_true", help=help)
