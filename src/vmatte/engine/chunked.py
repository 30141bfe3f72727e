"""A journaled run of :func:`vmatte.matte`: chunk by chunk into the journal, then joined.

See :mod:`vmatte.engine.resume` for the journal. Joining copies packets (no re-encode), so the
final files hold exactly the packets each chunk's encoder made, whether the chunks came from one
run or several; the source's audio is muxed in while joining.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import av

from ..errors import OutputError
from ..io.audio import AudioCarrier
from ..io.formats import FORMATS
from ..io.reader import Frame, VideoInfo
from ..io.writers import temp_name
from .loop import FrameResult, run
from .outputs import OutputPlan, TargetOutputs
from .resume import Interrupted, Journal, stream_state


def run_chunks(journal: Journal, frames: Iterable[Frame], matter, info: VideoInfo, plan: OutputPlan,
               need_fgr: bool, on_frame=None) -> int:
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

    try:
        run(matter, frames, write, foreground=need_fgr, on_frame=on_frame, after=after, skip=skip,
            state=journal.saved_state())
        count = last[0] + 1
        if current:  # the last, shorter chunk
            commit((count - 1) // chunk, stream_state(matter))
    except KeyboardInterrupt:
        for out in current:
            out.abort()
        raise Interrupted(f"interrupted at frame {last[0] + 1}; {journal.completed * chunk} frames are kept in "
                          f"{journal.folder}: run the same command again with --resume to continue") from None
    except BaseException:
        for out in current:
            out.abort()
        raise
    return count


def join_chunks(journal: Journal, outdir: Path, plan: OutputPlan, info: VideoInfo, frames: int) -> dict[str, Path]:
    """Join the chunks into the final outputs (temporary names first, renamed once all are done)."""
    chunks = [journal.chunk_dir(k) for k in range(journal.completed)]
    done: list[tuple[Path, Path]] = []
    paths: dict[str, Path] = {}
    try:
        for i in plan.ids:
            stem = plan.stem_of(i)
            for n in plan.names:
                spec = FORMATS[n]
                final = outdir / spec.output_name(stem)
                if os.path.lexists(final) and not plan.overwrite:
                    raise OutputError(f"output already exists: {final.name} in {outdir}; use --overwrite to replace "
                                      f"it or choose another --output")
                temp = temp_name(final)
                shutil.rmtree(temp, ignore_errors=True) if temp.is_dir() else temp.unlink(missing_ok=True)
                parts = [c / spec.output_name(stem) for c in chunks]
                if spec.is_dir:
                    temp.mkdir()
                    for part in parts:
                        for f in sorted(part.iterdir()):
                            os.replace(f, temp / f.name)
                else:
                    _remux(parts, temp, spec.container, info, frames)
                done.append((temp, final))
                paths[plan.key(n, i)] = final
        for temp, final in done:
            if os.path.lexists(final) and (final.is_dir() and not final.is_symlink()):
                shutil.rmtree(final)
            os.replace(temp, final)
    except OSError as e:
        raise OutputError(f"joining the outputs in {outdir} failed: {e.strerror or e}; free space or check the "
                          f"folder, then run again with --resume") from None
    finally:
        for temp, _ in done:
            if os.path.lexists(temp):
                shutil.rmtree(temp, ignore_errors=True) if temp.is_dir() else temp.unlink(missing_ok=True)
    return paths


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


def journaled_matte(src, matter, info: VideoInfo, plan: OutputPlan, options: dict, resume: bool, chunk_frames: int,
                    bar=None, on_frame=None) -> tuple[dict[str, Path], int]:
    """:func:`vmatte.matte`'s run with a journal: returns (final paths, frames)."""
    from .resume import open_journal

    outdir = Path(os.fspath(plan.folder)).expanduser()
    journal = open_journal(outdir, plan.stem, info.path, options, chunk_frames, resume)
    if bar is not None and journal.completed:
        bar.update(journal.completed * chunk_frames)
    need_fgr = any(FORMATS[n].uses_foreground for n in plan.names)
    count = run_chunks(journal, src, matter, info, plan, need_fgr, on_frame=on_frame)
    paths = join_chunks(journal, outdir, plan, info, count)
    journal.remove()
    return paths, count
