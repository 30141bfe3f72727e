"""``python -m vmatte.cli``: the ``vmatte`` command."""

import sys

from .main import main

sys.exit(main())
