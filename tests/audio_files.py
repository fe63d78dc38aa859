"""Audio the tests make themselves: short tones encoded by PyAV (FFmpeg inside its wheel)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def encode_tone(
    path: Path,
    seconds: float,
    fmt: str,
    codec: str,
    rate: int = 44100,
    freq: float = 440.0,
    options: dict[str, str] | None = None,
) -> Path:
    """A stereo sine of `freq` Hz encoded with `codec` into container `fmt` at `path` (`options`
    go to the muxer, e.g. {"rf64": "always"} for a 64-bit WAV)."""
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.repeat(pcm, 2)[None, :], format="s16", layout="stereo"
        )
        frame.sample_rate = rate
        frame.pts = 0  # the Ogg muxer (Ogg FLAC) needs timestamps on every packet
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            if packet.size:  # FLAC's encoder ends with an empty packet carrying side data only
                container.mux(packet)
    return path


def understate_flac_length(path: Path, seconds: float) -> Path:
    """Make a FLAC file's STREAMINFO claim `seconds` of audio, whatever the file holds."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO must come first"
    # STREAMINFO: 10 bytes of block and frame sizes, then 20 bits of sample rate, 3 of channels,
    # 5 of bits per sample and 36 of total samples.
    word = int.from_bytes(data[18:26], "big")
    rate = word >> 44
    mask = (1 << 36) - 1
    data[18:26] = ((word & ~mask) | int(seconds * rate)).to_bytes(8, "big")
    path.write_bytes(bytes(data))
    return path
