"""Write the requested outputs for one input, atomically.

:class:`OutputSet` opens one writer per format. Every output is written under a temporary name in
the output folder (``.{final_name}.vmatte-{run}.partial``, ``run`` this run's random id) and
renamed to its final name only by :meth:`OutputSet.close`, once *every* output is complete;
:meth:`OutputSet.abort` deletes the temporaries. So a failed or interrupted run never leaves a
half-written file under a final name, and an existing output (with ``overwrite=True``) stays
intact until its replacement is complete.

The set is owned by one run (:mod:`vmatte.io.ownership`): a second run on the same folder and
stem is refused while the first is alive. Only what vmatte wrote is ever removed: ``--overwrite``
replaces a file output only by a file, and a PNG output folder only when it holds nothing but
frame PNGs; anything else under an output's name is the user's, and the run stops with one line.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import av.error
import numpy as np

from vmatte.errors import OutputError

from .background import Background
from .encoders import FrameData, Writer, WriterOptions
from .formats import DEFAULT_FORMATS, FORMATS, FormatSpec, parse_formats
from .ownership import OutputLock, run_temp_name
from .reader import VideoInfo

__all__ = ["Background", "DEFAULT_FORMATS", "FORMATS", "FormatSpec", "OutputSet", "parse_formats", "temp_name"]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def prepare_output_dir(d: Path, what: str = "output folder", option: str = "--output") -> None:
    """Create folder ``d`` if needed and make sure files can be written in it; an
    :class:`OutputError` naming ``option`` (the way to choose another) otherwise."""
    fix = f"choose another {option}"
    if d.exists() and not d.is_dir():
        raise OutputError(f"{what} {d} is a file; {fix}")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot create {what} {d}: a file is in the way; {fix}") from None
    except NotADirectoryError:
        raise OutputError(f"cannot create {what} {d}: part of the path is a file; {fix}") from None
    except PermissionError:
        raise OutputError(f"cannot create {what} {d}: permission denied; {fix}") from None
    except OSError as e:
        raise OutputError(f"cannot create {what} {d}: {e.strerror}; {fix}") from None
    # os.access() says yes to root whatever the permission bits: really try to create a file.
    try:
        fd, probe = tempfile.mkstemp(prefix=".vmatte-write-test-", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
        raise OutputError(f"{what} {d} is not writable ({why}); {fix}") from None


def temp_name(final: Path, run: str) -> Path:
    """Where run ``run`` writes the output for ``final`` until it is complete."""
    return run_temp_name(final, run)


_FRAME_PNG = re.compile(r"\d{5,}\.png")


def check_replaceable(final: Path, is_dir: bool, frames: re.Pattern | None = None) -> None:
    """``--overwrite`` may replace ``final`` only if it is what vmatte writes there: a file for a
    file output, a folder of frame PNGs (``00000.png`` ...) for a PNG sequence, of the files
    ``frames`` matches for other image folders (EXR/DPX: ``STEM_exr.1001.exr`` ...). A folder named like
    a video, a file named like a PNG folder or a PNG folder with other files in it is the user's:
    an :class:`OutputError` says so."""
    if not os.path.lexists(final) or final.is_symlink():
        return  # a link is replaced, never followed
    where = f"{final.name} in {final.parent}"
    if not is_dir:
        if final.is_dir():
            raise OutputError(
                f"{where} is a folder, not a file vmatte wrote; --overwrite replaces only vmatte's "
                f"outputs: move it or choose another --output"
            )
        return
    if not final.is_dir():
        raise OutputError(f"{where} is a file, not an image folder vmatte wrote; move it or choose another --output")
    try:
        frames = frames or _FRAME_PNG
        others = [
            e.name for e in os.scandir(final) if not (frames.fullmatch(e.name) and e.is_file(follow_symlinks=False))
        ]
    except OSError as e:
        raise OutputError(f"cannot read {where}: {e.strerror or e}; move it or choose another --output") from None
    if others:
        raise OutputError(
            f"{where} holds files vmatte did not write ({', '.join(sorted(others)[:3])}); "
            f"--overwrite would lose them: move them or choose another --output"
        )


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class OutputSet:
    """All requested outputs for one input. Use as a context manager (abort on exception,
    close on success) or call :meth:`close` / :meth:`abort` yourself.

    ``paths`` maps each format name to its FINAL path (which exists only after ``close()``).
    Raises :class:`OutputError` at construction (before any work) when the folder cannot be
    used or an output already exists and ``overwrite`` is False.
    """

    def __init__(
        self,
        outdir: str | os.PathLike,
        stem: str,
        formats: Sequence[str],
        info: VideoInfo,
        background: Background | None = None,
        overwrite: bool = False,
        lock: OutputLock | None = None,
        exr_compression: str = "zip",
    ):
        if not os.fspath(outdir):
            raise OutputError("the output folder is an empty name; give --output a folder name ('.' for here)")
        self.outdir = Path(os.fspath(outdir)).expanduser()
        self.info = info
        self.overwrite = overwrite
        self.formats = parse_formats(formats)
        if not stem or "/" in stem or "\x00" in stem or stem in (".", ".."):
            raise OutputError(f"invalid output name {stem!r}; give a plain file name stem")
        self.background = background if background is not None else Background.default()
        self._state = "open"
        self._writers: dict[str, Writer] = {}
        self._alpha_buf: np.ndarray | None = None

        self._prepare_dir()
        specs: dict[str, FormatSpec] = {name: FORMATS[name] for name in self.formats}
        self.paths: dict[str, Path] = {n: self.outdir / s.output_name(stem) for n, s in specs.items()}
        limit = _name_max(self.outdir)
        long = [p.name for p in self.paths.values() if len(os.fsencode(p.name)) > limit]
        if long:
            raise OutputError(
                f"the output name {long[0][:60]}... is {len(os.fsencode(long[0]))} bytes, longer than "
                f"this file system allows ({limit}); rename the input to a shorter name"
            )
        if not overwrite:
            existing = [p for p in self.paths.values() if os.path.lexists(p)]
            if existing:
                names = ", ".join(p.name for p in existing)
                raise OutputError(
                    f"output already exists: {names} in {self.outdir}; use --overwrite to replace it "
                    f"or choose another --output"
                )
        for name, spec in specs.items():
            check_replaceable(self.paths[name], spec.is_dir, spec.frame_file(self.paths[name].name))
        from .exr import COMPRESSIONS

        if exr_compression not in COMPRESSIONS:
            raise OutputError(f"unknown EXR compression {exr_compression!r}; choose one of: {', '.join(COMPRESSIONS)}")
        # Ownership: the caller's lock (matte() holds one for the whole run), else our own.
        self._own_lock = lock is None
        self.lock = lock if lock is not None else OutputLock(self.outdir, stem).acquire()
        if self._own_lock:
            self.lock.sweep()
        audio = bool(info.has_audio and not info.is_image_sequence)
        options = self._options = WriterOptions(
            background=self.background, audio=audio, exr_compression=exr_compression
        )
        try:
            for name, spec in specs.items():
                final = self.paths[name]
                temp = temp_name(final, self.lock.run)
                if os.path.lexists(temp):  # this run's id is random: only this run can have made it
                    _remove(temp)
                w = spec.factory(final, temp, info, options)
                self._writers[name] = w  # registered first, so abort() cleans up a partial open
                w.open()
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError):
                raise self._os_error(e, name) from None
            if isinstance(e, av.error.FFmpegError):
                raise OutputError(
                    f"cannot start writing {self.paths[name].name}: {e}; check the output folder"
                ) from None
            raise

    # -- construction helpers ------------------------------------------------------------------
    def _prepare_dir(self) -> None:
        prepare_output_dir(self.outdir)

    def _os_error(self, e: OSError, name: str | None) -> OutputError:
        target = self.paths[name].name if name in getattr(self, "paths", {}) else str(self.outdir)
        if e.errno in _DISK_FULL:
            return OutputError(f"disk full while writing {target}; free space or choose another --output")
        if e.errno == errno.EFBIG:  # a file-size limit (ulimit -f, FAT32's 4 GiB): full, as far as we can tell
            return OutputError(
                f"disk full while writing {target}: the file reached the size limit of this file "
                f"system or process (EFBIG); free space, raise the limit or choose another --output"
            )
        why = e.strerror or str(e)
        return OutputError(
            f"cannot write {target} in {self.outdir}: {why}; check the folder or choose another --output"
        )

    def annotate(self, **metadata: str) -> None:
        """Header attributes for the EXR outputs (``model=...``), known only once the model loaded."""
        self._options.metadata.update({f"vmatte:{k}": v for k, v in metadata.items()})

    # -- per frame -----------------------------------------------------------------------------
    def write(
        self,
        index: int,
        image: np.ndarray,
        fgr: np.ndarray | None,
        alpha: np.ndarray,
        *,
        plate: np.ndarray | None = None,
        alphas: dict | None = None,
    ) -> None:
        """Add frame ``index``: ``alpha`` HxW float32 [0, 1], ``fgr`` HxWx3 float32 [0, 1]
        (straight; may be None if every format is alpha-only), ``image`` the source frame as read.
        EXR/DPX plates: ``plate`` the frame in the plate's colour space; ``alphas`` every target's
        alpha by id, for ``exr-layers``."""
        if self._state != "open":
            raise RuntimeError(f"OutputSet is {self._state}; cannot write")
        name = None
        try:
            if alpha.shape[:2] != (self.info.height, self.info.width):
                raise ValueError(
                    f"frame {index}: alpha is {alpha.shape[:2]}, expected {(self.info.height, self.info.width)}"
                )
            data = FrameData(index, image, fgr, alpha, self.background, self._alpha_buf)
            self._alpha_buf = data.alpha
            data.plate, data.alphas = plate, alphas
            for name, w in self._writers.items():  # noqa: B007 - `name` names the output in the errors below
                w.write(data)
        except OSError as e:
            self.abort()
            raise self._os_error(e, name) from None
        except av.error.FFmpegError as e:
            self.abort()
            raise OutputError(
                f"encoding {self.paths[name].name} failed at frame {index}: {e}; try another format"
            ) from None
        except BaseException:
            # Anything else (a bad background video, corrupt source audio, a programming error,
            # Ctrl-C): the outputs are in an unknown state, so none of them may be finished.
            self.abort()
            raise

    # -- end -----------------------------------------------------------------------------------
    def close(self) -> dict[str, Path]:
        """Finish every output, then move them all to their final names; returns the paths."""
        if self._state == "closed":
            return dict(self.paths)
        if self._state != "open":
            raise RuntimeError(f"OutputSet is {self._state}; cannot close")
        name = None
        try:
            for name, w in self._writers.items():  # noqa: B007 - `name` names the output in the errors below
                w.finish()
            for name, w in self._writers.items():  # noqa: B007 - as above
                self._commit(w)
        except OSError as e:
            self.abort()
            raise self._os_error(e, name) from None
        except av.error.FFmpegError as e:
            self.abort()
            raise OutputError(f"finishing {self.paths[name].name} failed: {e}; try another format") from None
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        self.background.close()
        self._release()
        return dict(self.paths)

    def _release(self) -> None:
        if self._own_lock:
            self.lock.release()

    def _commit(self, w: Writer) -> None:
        final, temp = w.final, w.temp
        if not os.path.lexists(final):
            os.rename(temp, final)
            return
        if not self.overwrite:
            raise OutputError(f"{final.name} appeared in {self.outdir} during the run; use --overwrite to replace it")
        spec = next(FORMATS[n] for n, p in self.paths.items() if p == final)
        check_replaceable(
            final, w.is_dir, spec.frame_file(final.name)
        )  # what appeared during the run may be the user's
        if not w.is_dir:
            os.replace(temp, final)  # atomic: the old file is there until this very moment
            return
        # A folder cannot be replaced atomically: move the old one aside (under this run's name),
        # put the new one in place, then delete the old one.
        old = run_temp_name(final, self.lock.run, "old")
        if os.path.lexists(old):
            _remove(old)
        os.rename(final, old)
        try:
            os.rename(temp, final)
        except BaseException:
            os.rename(old, final)
            raise
        _remove(old)

    def abort(self) -> None:
        """Delete every temporary output; final names (and existing files) are left untouched."""
        if self._state in ("closed", "aborted"):
            return
        self._state = "aborted"
        for w in self._writers.values():
            try:
                w.discard()
            except Exception:
                pass
            if os.path.lexists(w.temp):
                _remove(w.temp)
        self.background.close()
        if hasattr(self, "lock"):
            self._release()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and self._state == "open":
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"OutputSet({self.outdir}, {self.formats}, state={self._state})"
