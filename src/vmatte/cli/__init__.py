"""The ``vmatte`` command (``vmatte = "vmatte.cli:main"``): :mod:`.main` builds the parser from
one module per subcommand and runs it."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
