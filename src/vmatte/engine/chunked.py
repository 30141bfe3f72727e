"""A journaled run of :func:`vmatte.matte`: chunk by chunk into the journal, then joined.

See :mod:`vmatte.engine.resume` for the journal. Joining copies packets (no re-encode), so the
final files hold exactly the packets each chunk's encoder made, whether the chunks came from one
run or several; the source's audio is muxed in while joining.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import av

from ..errors import OutputError
from ..io.audio import AudioCarrier
from ..io.formats import FORMATS
from ..io.ownership import run_temp_name
from ..io.reader import Frame, VideoInfo
from ..io.writers import check_replaceable, temp_name
from .journal_check import check_journal
from .loop import FrameResult, run
from .outputs import OutputPlan, TargetOutputs
from .resume import Interrupted, Journal, stream_state


def run_chunks(
    journal: Journal, frames: Iterable[Frame], matter, info: VideoInfo, plan: OutputPlan, need_fgr: bool, on_frame=None
) -> int:
    """Matte ``frames`` into the journal's chunks (through :func:`vmatte.engine.loop.run`).
    Returns the number of frames of the video."""
    chunk = journal.chunk_frames
    skip = journal.completed * chunk
    quiet_info = dataclasses.replace(info, has_audio=False)  # audio is muxed in when joining
    current: list[TargetOutputs] = []  # the chunk being written (opened at its first frame)
    last = [skip - 1]

    def write(r: FrameResult) -> None:  # in the writer thread, as matte()'s plain path
        if not current:
            current.append(TargetOutputs(plan, quiet_info, folder=journal.chunk_dir(r.index // chunk)))
        current[0].write(r)

    def commit(k: int, state) -> None:
        current.pop().close()
        journal.commit_chunk(k, state)

    def after(r: FrameResult):
        last[0] = r.index
        if (r.index + 1) % chunk == 0:  # the state now is the state after this chunk: snapshot it here
            return partial(commit, r.index // chunk, stream_state(matter))
        return None

    seen = [-1]  # the last frame decoded, matted or skipped: the video's real length, also when all is done

    def counted(source: Iterable[Frame]):
        for frame in source:
            seen[0] = frame.index
            yield frame

    try:
        run(
            matter,
            counted(frames),
            write,
            foreground=need_fgr,
            on_frame=on_frame,
            after=after,
            skip=skip,
            state=journal.saved_state(),
        )
        count = seen[0] + 1
        if current:  # the last, shorter chunk
            commit((count - 1) // chunk, stream_state(matter))
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP (errors.Stopped)
        for out in current:
            out.abort()
        name = getattr(e, "name", "")
        stop = Interrupted(
            f"{'stopped by ' + name if name else 'interrupted'} at frame {last[0] + 1}; "
            f"{journal.completed * chunk} frames are kept in {journal.folder}: run the same command "
            f"again with --resume to continue"
        )
        stop.exit_code = getattr(e, "exit_code", 130)
        raise stop from None
    except BaseException:
        for out in current:
            out.abort()
        raise
    return count


def join_chunks(
    journal: Journal, outdir: Path, plan: OutputPlan, info: VideoInfo, frames: int, run_id: str
) -> dict[str, Path]:
    """Join the chunks into the final outputs: every output complete under a temporary name first,
    then all renamed. Restartable at any instant: the chunks keep their PNGs (hard links or
    copies, never moves), and ``join.json`` records what each final name will be (device, inode,
    size, mtime), so a resumed join recognises the outputs a killed one already put in place."""
    chunks = [journal.chunk_dir(k) for k in range(journal.completed)]
    record = journal.folder / "join.json"
    placed = _read_placed(record)
    todo: list[tuple[Path, Path, bool]] = []
    paths: dict[str, Path] = {}
    try:
        for i, stem, names in plan.groups():
            for n in names:
                spec = FORMATS[n]
                final = outdir / spec.output_name(stem)
                paths[plan.key(n, i)] = final
                if placed.get(final.name) is not None and placed[final.name] == _identity(final):
                    continue  # put there by this journal's join before it was stopped
                if os.path.lexists(final) and not plan.overwrite:
                    raise OutputError(
                        f"output already exists: {final.name} in {outdir}; use --overwrite to replace "
                        f"it or choose another --output"
                    )
                check_replaceable(final, spec.is_dir, spec.frame_file(final.name))
                temp = temp_name(final, run_id)
                _remove(temp)
                todo.append((temp, final, spec.is_dir))
                parts = [c / spec.output_name(stem) for c in chunks]
                if spec.is_dir:
                    temp.mkdir()
                    for part in parts:
                        for f in sorted(part.iterdir()):
                            _link_or_copy(f, temp / f.name)
                else:
                    _remux(parts, temp, spec.container, info, frames)
        placed.update({final.name: _identity(temp) for temp, final, _ in todo})
        tmp_record = record.with_name(f".join.{run_id}.tmp")
        tmp_record.write_text(json.dumps(placed))
        os.replace(tmp_record, record)
        for temp, final, is_dir in todo:
            if is_dir and os.path.lexists(final):  # a folder cannot be replaced in one rename
                old = run_temp_name(final, run_id, "old")
                os.rename(final, old)
                os.rename(temp, final)
                _remove(old)
            else:
                os.replace(temp, final)
    except OSError as e:
        raise OutputError(
            f"joining the outputs in {outdir} failed: {e.strerror or e}; free space or check the "
            f"folder, then run again with --resume"
        ) from None
    finally:
        for temp, _, _ in todo:
            _remove(temp)
    return paths


def _identity(path: Path) -> list | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return [
        st.st_dev,
        st.st_ino,
        st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
        st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0,
    ]


def _read_placed(record: Path) -> dict:
    try:
        data = json.loads(record.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # the chunk keeps its name for the frame: a kill now loses nothing
    except OSError:
        shutil.copy2(src, dst)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink(missing_ok=True)


def _remux(parts: list[Path], temp: Path, container: str, info: VideoInfo, frames: int) -> None:
    fps = float(info.fps)
    with av.open(str(parts[0])) as first, av.open(str(temp), "w", format=container) as out:
        vin = first.streams.video[0]
        vout = out.add_stream_from_template(vin)
        vout.metadata.update(vin.metadata)  # e.g. WebM's alpha_mode
        out.metadata.update({k: v for k, v in first.metadata.items() if k != "encoder"})
        audio = None
        if info.has_audio and not info.is_image_sequence:
            audio = AudioCarrier(info.path, out, container, info.start_time)
        try:
            for part in parts:
                with av.open(str(part)) as c:
                    for pkt in c.demux(c.streams.video[0]):
                        if pkt.dts is None:
                            continue
                        end = float((pkt.pts + (pkt.duration or 1)) * pkt.time_base) if pkt.pts is not None else 0.0
                        pkt.stream = vout
                        out.mux(pkt)
                        if audio is not None:
                            audio.pump(min(end, frames / fps))
            if audio is not None:
                audio.finish(frames / fps)
        finally:
            if audio is not None:
                audio.close()


def journaled_matte(
    src,
    matter,
    info: VideoInfo,
    plan: OutputPlan,
    options: dict,
    resume: bool,
    chunk_frames: int,
    bar=None,
    on_frame=None,
    run_id: str = "",
    check=None,
) -> tuple[dict[str, Path], int]:
    """:func:`vmatte.matte`'s run with a journal: returns (final paths, frames). ``check(frames)``
    runs once the whole video is read, before the outputs are made."""
    from .resume import open_journal

    outdir = Path(os.fspath(plan.folder)).expanduser()
    files = info.plate.files if info.plate is not None else None
    journal = open_journal(outdir, plan.stem, info.path, options, chunk_frames, resume, files)
    if journal.completed:
        check_journal(journal, [(stem, names) for _, stem, names in plan.groups()])  # damaged: one line, never gaps
    if bar is not None and journal.completed:
        bar.update(journal.completed * chunk_frames)
    try:
        need_fgr = any(FORMATS[n].uses_foreground for n in plan.names)
        count = run_chunks(journal, src, matter, info, plan, need_fgr, on_frame=on_frame)
        if check is not None:
            check(count)
    except Interrupted:
        raise  # the journal is kept for --resume
    except BaseException:
        # A bad frame, a model error: running again hits it again, so nothing is kept (an error leaves nothing).
        journal.remove()
        raise
    run_id = run_id or secrets.token_hex(6)
    paths = join_chunks(journal, outdir, plan, info, count, run_id)
    # Out of the way in one rename (a kill in the deletion then leaves no half journal to resume):
    # the lock's next owner sweeps a leftover by its run id.
    trash = run_temp_name(journal.folder, run_id, "old")
    os.rename(journal.folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return paths, count
