"""Carry the source's audio into a video output, streaming and interleaved with the video."""

from __future__ import annotations

from pathlib import Path

import av
import av.error

from vmatte.errors import InputError

_AUDIO_LEAD = 0.1  # keep audio packets that end at most this long before the first video frame
_AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000}
_AUDIO_READ_ERRORS = (av.error.FFmpegError, OSError, EOFError, ValueError)


class AudioCarrier:
    """Streams the source's first audio track into an output container, interleaved with video.

    It owns its own demuxer of the source, so nothing buffers the whole track: ``pump(t)``
    muxes the packets that start before output time ``t`` (the end of the video written so far)
    and ``finish(t_end)`` the rest up to the end of the video. Packets are copied when the
    container accepts the codec (AAC into mp4/mov, Opus/Vorbis into WebM), otherwise decoded and
    re-encoded (AAC for mp4/mov, Opus for WebM).
    """

    def __init__(self, source: Path, out: av.container.OutputContainer, container: str, start_time: float):
        self._source = source
        self._out = out
        self._offset = float(start_time)  # source time of output t=0 (the first video frame)
        self._in = av.open(str(source), metadata_errors="ignore")
        try:
            ias = self._in.streams.audio[0]
            self._ias = ias
            self._encoder = None
            try:
                # Raises ValueError when the muxer cannot store this codec (avformat_query_codec).
                self.stream = out.add_stream_from_template(ias)
                self.copy = True
            except ValueError:
                self.copy = False
                self.stream = self._add_encoder(out, container, ias)
            self._packets = self._in.demux(ias)
        except BaseException:
            self._in.close()
            raise
        self._pending = None
        self._done = False
        self._shift: int | None = None  # offset in the packet time base, set on the first packet
        self._samples = 0  # samples sent to the encoder (transcoding only)

    @staticmethod
    def _add_encoder(out, container: str, ias):
        channels = getattr(ias.codec_context, "channels", None) or 2
        layout = "mono" if channels == 1 else "stereo"
        if container == "webm":
            for name in ("libopus", "opus"):
                try:
                    s = out.add_stream(name, rate=48000)
                    break
                except (ValueError, av.error.FFmpegError):
                    continue
            else:  # pragma: no cover - both opus encoders ship with PyAV wheels
                raise ValueError("no Opus encoder available")
            s.bit_rate = 128000
        else:
            rate = ias.rate if ias.rate in _AAC_RATES else 48000
            s = out.add_stream("aac", rate=rate)
            s.bit_rate = 192000
        s.layout = layout
        return s

    def _next_packet(self):
        if self._pending is not None:
            pkt, self._pending = self._pending, None
            return pkt
        try:
            return next(self._packets, None)
        except _AUDIO_READ_ERRORS as e:
            raise InputError(
                f"the audio of {self._source} is corrupt or truncated ({e}); re-export the input"
            ) from None

    def pump(self, until: float) -> None:
        """Mux every packet that starts before ``until`` seconds of output time."""
        while not self._done:
            pkt = self._next_packet()
            if pkt is None:
                self._done = True
                break
            if pkt.dts is None:  # the demuxer's final flush packet, or an unusable one
                continue
            tb = pkt.time_base
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            start = float(ts * tb) - self._offset
            if start >= until:
                self._pending = pkt
                break
            if start + float((pkt.duration or 0) * tb) < -_AUDIO_LEAD:
                continue  # audio from before the first video frame: not part of the output
            self._emit(pkt, start)

    def _emit(self, pkt, start: float) -> None:
        if self.copy:
            if self._shift is None:
                self._shift = int(round(self._offset / pkt.time_base)) if self._offset else 0
            if self._shift:
                if pkt.pts is not None:
                    pkt.pts -= self._shift
                pkt.dts -= self._shift
            pkt.stream = self.stream
            self._out.mux(pkt)
            return
        try:
            frames = pkt.decode()
        except _AUDIO_READ_ERRORS as e:
            raise InputError(f"the audio of {self._source} cannot be decoded ({e}); re-export the input") from None
        for frame in frames:
            if self._samples == 0 and start > 0.001:
                # The re-encoded track is laid out contiguously from t=0 (the encoder numbers the
                # samples), so a track that starts after the video gets leading silence to stay
                # in sync.
                self._encode(_silence(frame, int(round(start * frame.sample_rate))))
            self._encode(frame)

    def _encode(self, frame) -> None:
        frame.pts = None
        self._samples += frame.samples
        self._out.mux(self.stream.encode(frame))

    def finish(self, end: float) -> None:
        self.pump(end)
        if not self.copy:
            self._out.mux(self.stream.encode(None))
        self.close()

    def close(self) -> None:
        if self._in is not None:
            try:
                self._in.close()
            except Exception:
                pass
            self._in = None


def _silence(like: av.AudioFrame, samples: int) -> av.AudioFrame:
    """A silent frame with the format, layout and rate of ``like``."""
    frame = av.AudioFrame(format=like.format.name, layout=like.layout.name, samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = like.sample_rate
    return frame
