"""``python -m vmatte``: the ``vmatte`` command."""

import sys

from .cli import main

sys.exit(main())
