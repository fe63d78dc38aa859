"""Decoding: any file of the library to mono float32 samples at one rate, with PyAV.

PyAV carries FFmpeg inside its wheels, so MP3, FLAC, Ogg Vorbis, Opus, AAC/ALAC in MP4, WAV and
AIFF all decode without an ffmpeg program on the machine, and it can seek, so an excerpt of a
long track is read without decoding the whole file. Training and tagging both decode here.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000

JUNK_LIMIT = 64 << 20
"""Bytes FFmpeg may read without any audio coming out before the rest of the file counts as junk.

Looking for the next frame, FFmpeg reads on to the end of the file, so a huge zero-filled or
sparse file, or a long damaged tail, would cost a read of the whole file. The pictures a file's
tags hold (cover art, booklet scans: `mertag.tagger.artwork`) do not count against it."""

RESAMPLE_BATCH = 4096
"""Decoded samples (per channel) handed to the resampler at a time. A call per decoded frame (a
Vorbis frame can be 128 samples) cost more than the resampling itself: ~40 % of the CPU of an
Ogg track's snippets. The resampler streams, so how its input is cut changes no sample."""

END_MARGIN = 256
"""Output samples before the end of a read from which frames are resampled one by one (the
resampler holds a few samples back, so it never gives more than its input promises)."""

_SEEK_COST = 64
"""What one seek counts for against JUNK_LIMIT. Some demuxers walk junk by seeking (given a huge
tail of empty chunks, the WAV demuxer asks for the file size every 8 bytes); this bounds that walk
at about a million seeks, while a real file, even a long fragmented MP4, needs far fewer."""


HEADER_PROBE = {"probesize": "32768"}
"""FFmpeg's stream analysis for WAV, RF64 and AIFF files (`_options_for`): 32 KB instead of
its default 5 MB. Their header says all the decoder needs, yet FFmpeg reads and decodes up to
5 MB to analyse the stream first: ~24 of the ~26 ms of CPU that opening a 12-s WAV cost. The
same stream info and the same samples (tests/tagger/test_audio.py)."""


def _options_for(head: bytes) -> dict[str, str]:
    """The FFmpeg options for opening a file that starts with `head` (its first 12 bytes):
    HEADER_PROBE for a RIFF/RF64 WAVE or an AIFF/AIFC file, else FFmpeg's defaults."""
    riff = head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE"
    aiff = head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC")
    return HEADER_PROBE if riff or aiff else {}


def open_options(path: Path) -> dict[str, str]:
    """The FFmpeg options for opening the file at `path` (`_options_for` its first bytes)."""
    with open(path, "rb") as file:
        return _options_for(file.read(12))


class AudioError(Exception):
    """A file that cannot be decoded; the message is one line saying why."""


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file's audio stream before decoding it."""

    duration: float | None  # seconds, None when the container does not say
    codec: str
    sample_rate: int
    channels: int


class _Source(io.RawIOBase):
    """A file as FFmpeg reads it, which ends once JUNK_LIMIT bytes that are neither audio nor
    attached pictures have gone by without audio, and in which FFmpeg does not see the pictures
    of FLAC, MP3 or MP4 files (see `_hidden_pictures`)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.name = str(path)  # FFmpeg's format probe also weighs the file name's extension
        self._path = path
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        self._unproductive = 0
        self._pictures: int | None = None  # bytes of attached pictures, counted when needed
        self.exhausted = False
        self.first_audio_at: int | None = None
        """Where FFmpeg was reading in the file when the first audio came out."""
        try:
            self.probe_options = _options_for(self._file.read(12))
            """FFmpeg options for opening this file (HEADER_PROBE for a WAV or AIFF)."""
            self._file.seek(0)
            self._hidden = _hidden_pictures(self._file)
        finally:
            self._file.seek(0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._unproductive >= JUNK_LIMIT and self._past_pictures():
            self.exhausted = True
            return 0
        start = self._file.tell()
        n = self._file.readinto(buffer) or 0
        self._unproductive += n
        for at, (value, _) in self._hidden.items():
            if start <= at < start + n:
                buffer[at - start] = value
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._unproductive += _SEEK_COST
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()

    def audio_seen(self) -> None:
        """Audio came out: what was read so far was not junk."""
        self._unproductive = 0
        if self.first_audio_at is None:
            self.first_audio_at = self._file.tell()

    def _past_pictures(self) -> bool:
        """Whether more than JUNK_LIMIT bytes besides the file's attached pictures went by.

        Counted only once JUNK_LIMIT is reached, so an ordinary file is never parsed for them.
        """
        if self._pictures is None:
            from mertag.tagger.artwork import picture_bytes

            self._pictures = picture_bytes(self._path)
        seen = self._pictures - sum(size for _, size in self._hidden.values())
        return self._unproductive >= JUNK_LIMIT + max(0, seen)

    def size(self) -> int:
        return os.fstat(self._file.fileno()).st_size


_FLAC_PICTURE = 6
_FLAC_PADDING = 1
_MAX_HEADERS = 4096
"""FLAC metadata blocks, ID3 frames or MP4 atoms looked at for pictures (real files have tens)."""


def _hidden_pictures(file: io.RawIOBase) -> dict[int, tuple[int, int]]:
    """Bytes to show FFmpeg otherwise so that it skips the file's pictures: offset -> (the value
    it sees there, the size of the picture item that hides).

    FFmpeg reads every attached picture into memory and keeps it while the file is open: 70 MB
    of booklet scans cost ~145 MB at peak, and count as bytes read without audio. Shown a FLAC
    PICTURE block as PADDING, an ID3 APIC frame (in front of an MP3 or FLAC) or an MP4 `covr`
    item as one it does not know, it seeks past the picture instead. Offsets and sizes stay as
    they are, and so does the audio; pictures elsewhere (Ogg, RIFF chunks) are counted instead
    by `_past_pictures`.
    """
    head = file.read(10)
    if head[:4] == b"fLaC":
        return _flac_pictures(file)
    if head[:3] == b"ID3":
        return _id3_pictures(file, head)
    if head[4:8] == b"ftyp":
        return _mp4_pictures(file)
    return {}


def _flac_pictures(file: io.RawIOBase) -> dict[int, tuple[int, int]]:
    found, at = {}, 4
    for _ in range(_MAX_HEADERS):
        file.seek(at)
        header = file.read(4)
        if len(header) < 4:
            break
        size = int.from_bytes(header[1:4], "big")
        if header[0] & 0x7F == _FLAC_PICTURE:
            found[at] = ((header[0] & 0x80) | _FLAC_PADDING, size)  # keeps the last-block flag
        at += 4 + size
        if header[0] & 0x80:  # the last metadata block
            break
    return found


_MP4_PATH = {b"moov": 0, b"udta": 0, b"meta": 4, b"ilst": 0}
"""The atoms on the way to iTunes cover art (moov/udta/meta/ilst/covr), and the bytes of
version and flags after each one's header (meta is a full box)."""


def _mp4_pictures(file: io.RawIOBase) -> dict[int, tuple[int, int]]:
    found = {}
    ranges = [(0, os.fstat(file.fileno()).st_size)]
    for _ in range(_MAX_HEADERS):
        if not ranges:
            break
        at, end = ranges.pop()
        if at + 8 > end:
            continue
        file.seek(at)
        header = file.read(16)
        size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        skip = 8
        if size == 1 and len(header) == 16:  # a 64-bit size follows the type
            size, skip = int.from_bytes(header[8:16], "big"), 16
        elif size == 0:  # to the end of its container
            size = end - at
        if size < skip or len(header) < 8:
            continue  # damaged: FFmpeg says so, if it matters
        ranges.append((at + size, end))
        if kind in _MP4_PATH:
            ranges.append((at + skip + _MP4_PATH[kind], min(end, at + size)))
        elif kind == b"covr":
            found[at + 4] = (ord("x"), size)  # "xovr": an item FFmpeg does not know: skipped
    return found


def _syncsafe(data: bytes) -> int:
    return sum((b & 0x7F) << (7 * i) for i, b in enumerate(reversed(data)))


def _id3_pictures(file: io.RawIOBase, head: bytes) -> dict[int, tuple[int, int]]:
    if len(head) < 10 or head[3] not in (2, 3, 4) or head[5] & 0x80:
        return {}  # unsynchronised frames are not where their sizes say: leave them be
    version, flags, end = head[3], head[5], 10 + _syncsafe(head[6:10])
    at = 10
    if flags & 0x40 and version > 2:  # an extended header
        file.seek(at)
        size = file.read(4)
        at += _syncsafe(size) if version == 4 else 4 + int.from_bytes(size, "big")
    name_len, header_len = (3, 6) if version == 2 else (4, 10)
    picture = b"PIC" if version == 2 else b"APIC"
    found = {}
    for _ in range(_MAX_HEADERS):
        if at + header_len > end:
            break
        file.seek(at)
        header = file.read(header_len)
        if len(header) < header_len or not header[:name_len].isalnum():
            break  # padding, or frames this walk does not follow
        raw = header[name_len : 2 * name_len]
        size = _syncsafe(raw) if version == 4 else int.from_bytes(raw, "big")
        if header[:name_len] == picture:
            found[at] = (ord("X"), size)  # "XPIC": a frame FFmpeg does not know: skipped
        at += header_len + size
    return found


def _junk_reason() -> str:
    return f"no audio found in {JUNK_LIMIT >> 20} MB of data (a zero-filled or sparse file?)"


def _open(path: Path):  # type: ignore[no-untyped-def]
    """The container of `path` and the _Source it reads from; AudioError if it has no audio."""
    import av

    try:
        if path.is_dir():
            raise AudioError("is a directory")
        if path.stat().st_size == 0:
            raise AudioError("empty file (0 bytes)")
        source = _Source(path)
    except PermissionError as exc:
        raise AudioError("permission denied") from exc
    except FileNotFoundError as exc:
        raise AudioError("file not found") from exc
    except OSError as exc:
        raise AudioError(exc.strerror or str(exc)) from exc
    try:
        container = av.open(source, metadata_errors="ignore", options=source.probe_options)
    except av.error.FFmpegError as exc:
        source.close()
        if source.exhausted:
            raise AudioError(_junk_reason()) from exc
        raise AudioError(f"not a readable audio file ({_reason(exc)})") from exc
    except BaseException:
        source.close()
        raise
    if not container.streams.audio:
        container.close()
        raise AudioError("no audio stream in the file")
    if container.streams.audio[0].codec_context is None:
        container.close()
        raise AudioError("the audio stream's codec is unknown (a damaged file?)")
    return container, source


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


def _info(container) -> AudioInfo:  # type: ignore[no-untyped-def]
    stream = container.streams.audio[0]
    duration: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    return AudioInfo(
        duration=duration,
        codec=stream.codec_context.name,
        sample_rate=stream.codec_context.sample_rate or 0,
        channels=stream.codec_context.channels or 0,
    )


class AudioFile:
    """One audio file, opened (and probed by FFmpeg) once; any pieces of it decoded by seeking.

    Opening costs more than a short read for some formats (~19 ms of CPU for a WAV file, whose
    stream FFmpeg analyses first), so the several snippets of one track share one open file.
    Use as a context manager; AudioError (one line) for a file that cannot be opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._container, self._source = _open(self.path)
        self._container.streams.audio[0].thread_type = "AUTO"
        self._used = False  # whether a read has moved on from the start (a read from 0 seeks)
        self.info = _info(self._container)

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def read(
        self, offset: float = 0.0, duration: float | None = None, sr: int = SAMPLE_RATE
    ) -> np.ndarray:
        """Decode [offset, offset + duration) seconds to mono float32 at `sr`."""
        pieces = list(self._chunks(sr, offset, duration))
        if not pieces:
            raise AudioError("no audio decoded (empty or unreadable stream)")
        y = np.concatenate(pieces).astype(np.float32, copy=False)
        if not np.all(np.isfinite(y)):
            raise AudioError("decoded audio holds NaN or infinite samples")
        return y

    def read_whole(self, limit: float, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, float | None]:
        """Decode the whole stream, but never more than `limit` seconds of it, whatever the
        container says: (samples, None) when the stream ends within `limit`; else (the first
        `limit` seconds, an estimate of the stream's real length).

        A header can understate a file's length (a FLAC saying 10 s that holds 19 minutes), so
        a read "to the end" is bounded by what the caller chose to read, not by the header. The
        estimate scales `limit` by the share of the file's audio bytes those seconds took.
        """
        cap = int(round(limit * sr))
        y = self.read(0.0, (cap + 1) / sr, sr)
        if y.size <= cap:
            return y, None
        return y[:cap], max(self._length_estimate(limit), limit + 1 / sr)

    def _length_estimate(self, decoded: float) -> float:
        """Seconds of audio in the file if its bytes go on as the `decoded` seconds read from
        its start did (the tail's tags count as audio: a small overestimate)."""
        start = self._source.first_audio_at or 0
        done = self._source.tell() - start
        rest = self._source.size() - start
        return decoded * rest / done if done > 0 else decoded

    def _chunks(self, sr: int, offset: float, duration: float | None) -> Iterator[np.ndarray]:
        """Yield mono float32 pieces at `sr` covering [offset, offset + duration) of the file."""
        import av

        container, source = self._container, self._source
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        skip: int | None = None  # output samples before `offset`, known from the first frame
        wanted = None if duration is None else int(round(duration * sr))
        produced = 0

        def near_the_end(pending: int, rate: int) -> bool:
            """Whether `pending` decoded samples may hold the end of what is wanted. From there
            on each frame goes to the resampler alone and decoding stops at the frame that
            completes the read, as it always did: a lossy decoder's state after the next seek
            depends on the last frame it decoded (AAC's first frames after a seek change)."""
            if wanted is None:
                return False
            coming = pending * sr / max(rate, 1) - (skip or 0)
            return produced + coming >= wanted - END_MARGIN

        def batches() -> Iterator[Any]:
            """The decoded audio in pieces of RESAMPLE_BATCH samples or more (frame by frame
            near the end of a read: `near_the_end`), then None."""
            nonlocal skip
            fifo = av.AudioFifo()
            try:
                for frame in container.decode(stream):
                    if skip is None:
                        start = frame.time if frame.time is not None else 0.0
                        skip = max(0, int(round((offset - start) * sr))) if offset > 0 else 0
                    source.audio_seen()
                    frame.pts = None  # the FIFO would check that timestamps run on; unused here
                    if near_the_end(fifo.samples + frame.samples, frame.sample_rate):
                        if fifo.samples:
                            yield fifo.read()
                        yield frame
                        continue
                    fifo.write(frame)
                    if fifo.samples >= RESAMPLE_BATCH:
                        yield fifo.read()
            except av.error.FFmpegError:
                if fifo.samples:  # what decoded before the damage, as when read frame by frame
                    yield fifo.read()
                raise
            if fifo.samples:
                yield fifo.read()
            yield None  # flush the resampler

        try:
            if offset > 0 or self._used:
                # Seek lands on a packet at or before `offset`; samples before it are cut below.
                # After an earlier read, lossless audio decodes exactly as from a fresh open
                # (tested); lossy decoders keep some state (MP3 differs in its first ~60 ms).
                container.seek(int(offset * 1_000_000), any_frame=False, backward=True)
            self._used = True
            for batch in batches():
                for out in resampler.resample(batch):
                    pcm = out.to_ndarray().reshape(-1)
                    if skip and batch is not None:
                        cut = min(skip, pcm.size)
                        pcm, skip = pcm[cut:], skip - cut
                    if wanted is not None:
                        pcm = pcm[: wanted - produced]
                    if pcm.size:
                        produced += pcm.size
                        yield pcm
                    if wanted is not None and produced >= wanted:
                        return
        except av.error.FFmpegError as exc:
            if produced == 0:
                raise AudioError(f"cannot decode audio ({_reason(exc)})") from exc
            # A damaged tail: keep what decoded cleanly, as players do.
        if produced == 0 and source.exhausted:
            raise AudioError(_junk_reason())


def probe(path: Path) -> AudioInfo:
    """Read the duration and codec of the first audio stream without decoding."""
    with AudioFile(path) as audio:
        return audio.info


def decode(
    path: Path, sr: int = SAMPLE_RATE, offset: float = 0.0, duration: float | None = None
) -> np.ndarray:
    """Decode [offset, offset + duration) seconds of `path` to mono float32 at `sr`."""
    with AudioFile(Path(path)) as audio:
        return audio.read(offset, duration, sr)
