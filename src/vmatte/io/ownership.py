"""One run owns an output set: a lock file per output stem, and temporary names only it uses.

Two runs writing the same folder and stem (the same command started twice, or two inputs named
``clip.mp4`` from different folders with one ``-o``) would otherwise interleave their temporary
files and rename each other's half-written outputs into place. So a run first takes
``OUTDIR/.STEM.vmatte-lock``:

* the lock is an advisory ``flock`` on that file; the kernel drops it when the owner dies, however
  it dies (SIGKILL too), so a lock left by a dead run is simply taken over;
* the file records the owner (pid, host, start time, run id), for the one-line refusal a second
  run gets while the first is alive;
* each run has a random run id, and its temporaries are named ``.NAME.vmatte-RUNID.partial`` /
  ``.NAME.vmatte-RUNID.old``. A file is removed as a leftover only when its name carries the run
  id of the dead run recorded in the lock it took over: that is the proof vmatte wrote it. A
  user's own ``.NAME.partial`` or ``.NAME.old`` never matches and is never touched.

Where ``flock`` is not available (no ``fcntl``, or a file system that refuses it), the lock falls
back to the recorded pid: a live pid on this host owns it, a dead one does not.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import time
from pathlib import Path

from vmatte.errors import OutputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_SUFFIX = ".vmatte-lock"


_ROOM = 180  # bytes of a name kept before our suffixes, so the whole stays under NAME_MAX (255)


def _fit(name: str) -> str:
    """``name``, or its start + a digest of the whole when too long for a name with our suffixes."""
    raw = os.fsencode(name)
    if len(raw) <= _ROOM:
        return name
    import hashlib

    return os.fsdecode(raw[: _ROOM - 13]) + "~" + hashlib.sha256(raw).hexdigest()[:12]


def lock_path(outdir: Path, stem: str) -> Path:
    return Path(outdir) / f".{_fit(stem)}{LOCK_SUFFIX}"


def run_temp_name(final: Path, run: str, kind: str = "partial") -> Path:
    """Where run ``run`` writes ``final`` until it is complete (``kind`` "partial"), or parks the
    old ``final`` while replacing a folder ("old")."""
    return final.with_name(f".{_fit(final.name)}.vmatte-{run}.{kind}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _read_record(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode("utf-8", "replace") or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


class OutputLock:
    """Exclusive ownership of the outputs named ``stem`` in ``outdir`` for this run.

    :meth:`acquire` raises :class:`OutputError` (one line) when another live run holds it.
    ``run`` is this run's id (for :func:`run_temp_name`); ``previous`` is the record of a dead
    run whose lock was taken over (its temporaries are swept by :meth:`sweep`)."""

    def __init__(self, outdir: Path, stem: str, run: str | None = None):
        self.path = lock_path(outdir, stem)
        self.outdir = Path(outdir)
        self.stem = stem
        self.run = run or secrets.token_hex(6)
        self.previous: dict = {}
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> OutputLock:
        if self._fd is not None:
            return self
        for _ in range(50):  # a lock released and unlinked between our open and flock: try again
            try:
                fd = os.open(
                    self.path,
                    os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                    0o644,
                )
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise OutputError(
                        f"{self.path.name} in {self.outdir} is a link, not a vmatte lock; remove "
                        f"it or choose another --output"
                    ) from None
                raise OutputError(
                    f"cannot lock the outputs {self.stem} in {self.outdir}: {e.strerror or e}; "
                    f"check the folder or choose another --output"
                ) from None
            owner = _read_record(fd)
            if not self._lock_fd(fd, owner):
                os.close(fd)
                raise self._busy(owner)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            self.previous = owner if owner.get("run") else {}
            record = {"pid": os.getpid(), "host": socket.gethostname(), "start": time.time(), "run": self.run}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(record).encode())
            self._fd = fd
            return self
        raise OutputError(
            f"cannot lock the outputs {self.stem} in {self.outdir}: it keeps changing; "
            f"another run is starting there, wait for it or choose another --output"
        )

    @staticmethod
    def _lock_fd(fd: int, owner: dict) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError:
                pass  # no flock here (some network file systems): judge by the recorded owner
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return True
        return owner.get("host") != socket.gethostname() or not _pid_alive(pid)

    def _busy(self, owner: dict) -> OutputError:
        who = ""
        if owner:
            started = owner.get("start")
            when = (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
                if isinstance(started, (int, float))
                else "?"
            )
            who = f" (pid {owner.get('pid')} on {owner.get('host')}, started {when})"
        return OutputError(
            f"another vmatte run{who} is writing the outputs {self.stem} in {self.outdir}; wait for "
            f"it to finish, or choose another --output"
        )

    def sweep(self) -> list[Path]:
        """Remove the temporaries of the dead run whose lock was taken over (their names carry its
        run id); returns what was removed."""
        import shutil

        run = self.previous.get("run")
        if not isinstance(run, str) or not run:
            return []
        removed = []
        ends = (f".vmatte-{run}.partial", f".vmatte-{run}.old")
        try:
            names = os.listdir(self.outdir)
        except OSError:
            return []
        for name in names:
            if name.startswith(".") and name.endswith(ends):  # the random run id is the proof
                p = self.outdir / name
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    try:
                        os.unlink(p)
                    except OSError:
                        continue
                removed.append(p)
        self.previous = {}
        return removed

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.path)  # before unlocking: a waiter that opened this inode sees it is gone
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # a lock object dropped without release: do not leak the descriptor
        try:
            if self._fd is not None:
                os.close(self._fd)
        except Exception:
            pass


def lock_outputs(outdir: Path, stems, run: str | None = None) -> list[OutputLock]:
    """Lock every stem in ``stems`` (one run id for all); all or nothing."""
    run = run or secrets.token_hex(6)
    held: list[OutputLock] = []
    try:
        for stem in dict.fromkeys(stems):
            held.append(OutputLock(outdir, stem, run).acquire())
            held[-1].sweep()
    except BaseException:
        for lk in held:
            lk.release()
        raise
    return held
