"""Decoding: any file of the library to mono float32 samples at one rate, with PyAV.

PyAV carries FFmpeg inside its wheels, so MP3, FLAC, Ogg Vorbis, Opus, AAC/ALAC in MP4, WAV and
AIFF all decode without an ffmpeg program on the machine, and it can seek, so an excerpt of a
long track is read without decoding the whole file. Training and tagging both decode here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


class AudioError(Exception):
    """A file that cannot be decoded; the message is one line saying why."""


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file's audio stream before decoding it."""

    duration: float | None  # seconds, None when the container does not say
    codec: str
    sample_rate: int
    channels: int


def _open(path: Path):  # type: ignore[no-untyped-def]
    import av

    try:
        if path.is_dir():
            raise AudioError("is a directory")
        if path.stat().st_size == 0:
            raise AudioError("empty file (0 bytes)")
        container = av.open(str(path), metadata_errors="ignore")
    except AudioError:
        raise
    except PermissionError as exc:
        raise AudioError("permission denied") from exc
    except FileNotFoundError as exc:
        raise AudioError("file not found") from exc
    except av.error.FFmpegError as exc:
        raise AudioError(f"not a readable audio file ({_reason(exc)})") from exc
    except OSError as exc:
        raise AudioError(exc.strerror or str(exc)) from exc
    if not container.streams.audio:
        container.close()
        raise AudioError("no audio stream in the file")
    return container


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


def probe(path: Path) -> AudioInfo:
    """Read the duration and codec of the first audio stream without decoding."""
    container = _open(path)
    try:
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
    finally:
        container.close()


def _chunks(path: Path, sr: int, offset: float, duration: float | None) -> Iterator[np.ndarray]:
    """Yield mono float32 pieces at `sr` covering [offset, offset + duration) of the file."""
    import av

    container = _open(path)
    try:
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        if offset > 0:
            # Seek lands on a packet at or before `offset`; samples before it are cut below.
            container.seek(int(offset * 1_000_000), any_frame=False, backward=True)
        first = True
        skip = 0
        wanted = None if duration is None else int(round(duration * sr))
        produced = 0
        try:
            for frame in container.decode(stream):
                if first:
                    start = frame.time if frame.time is not None else 0.0
                    skip = max(0, int(round((offset - start) * sr))) if offset > 0 else 0
                    first = False
                for out in resampler.resample(frame):
                    pcm = out.to_ndarray().reshape(-1)
                    if skip:
                        cut = min(skip, pcm.size)
                        pcm, skip = pcm[cut:], skip - cut
                    if wanted is not None:
                        pcm = pcm[: wanted - produced]
                    if pcm.size:
                        produced += pcm.size
                        yield pcm
                    if wanted is not None and produced >= wanted:
                        return
            for out in resampler.resample(None):
                pcm = out.to_ndarray().reshape(-1)
                if wanted is not None:
                    pcm = pcm[: wanted - produced]
                if pcm.size:
                    produced += pcm.size
                    yield pcm
        except av.error.FFmpegError as exc:
            if produced == 0:
                raise AudioError(f"cannot decode audio ({_reason(exc)})") from exc
            # A damaged tail: keep what decoded cleanly, as players do.
    finally:
        container.close()


def decode(
    path: Path, sr: int = SAMPLE_RATE, offset: float = 0.0, duration: float | None = None
) -> np.ndarray:
    """Decode [offset, offset + duration) seconds of `path` to mono float32 at `sr`."""
    pieces = list(_chunks(Path(path), sr, offset, duration))
    if not pieces:
        raise AudioError("no audio decoded (empty or unreadable stream)")
    y = np.concatenate(pieces).astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        raise AudioError("decoded audio holds NaN or infinite samples")
    return y
