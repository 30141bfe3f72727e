"""User-facing errors.

Every problem the user can fix (bad path, unreadable video, unknown format, ...) is raised as a
:class:`VmatteError`. The CLI prints its message on one line and exits with code 2; programs
using the API can catch it. The message says what is wrong *and* how to fix it.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class VmatteError(Exception):
    """A problem with the user's input, environment or options: one line, with the fix."""

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str):
        # Keep messages to one line so the CLI output stays a single readable error.
        super().__init__(" ".join(str(message).split()))


class InputError(VmatteError):
    """The input video, image folder or mask cannot be used."""


class OutputError(VmatteError):
    """An output cannot be written (directory, permissions, disk, existing files)."""


class WeightsError(VmatteError):
    """Model weights are missing, corrupt, untrusted or do not match the network."""


class Stopped(KeyboardInterrupt):
    """SIGTERM (docker stop, a farm's time limit) or SIGHUP (a closed terminal), raised in the
    main thread like Ctrl-C's KeyboardInterrupt, so the same clean-up runs; the CLI exits with
    128 + the signal number."""

    def __init__(self, signum: int, name: str):
        super().__init__(name)
        self.signum = signum
        self.name = name
        self.exit_code = 128 + signum
