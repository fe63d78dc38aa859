"""Writing audio files with PyAV (FFmpeg in its wheels): lossy codecs, other rates and layouts.

The codec augmentation (`mertag.trainer.augment.Degrade`) and bench/robustness.py both write real
files and read them back through `mertag.tagger.audio`, so a perturbed copy goes through the same
decoder, resampler and downmix as a user's file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CODECS: dict[str, tuple[str, str]] = {
    "mp3": ("libmp3lame", ".mp3"),
    "aac": ("aac", ".m4a"),
    "opus": ("libopus", ".opus"),
    "wav": ("pcm_s16le", ".wav"),
    "wav32": ("pcm_f32le", ".wav"),
    "flac": ("flac", ".flac"),
}
"""Codec name -> (FFmpeg encoder, file extension)."""
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_audio(
    path: Path,
    x: np.ndarray,
    sr: int,
    codec: str = "wav",
    bitrate: int | None = None,
    rate: int | None = None,
) -> Path:
    """Write `x` ((channels, samples) or (samples,) float32 at `sr`) as `codec`, resampled to
    `rate` (default `sr`, or the nearest rate the encoder takes); returns the path written."""
    import av

    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    layout = LAYOUTS[x.shape[0]]
    encoder, _ = CODECS[codec]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=rate or sr, layout=layout)
        assert isinstance(stream, av.AudioStream)  # an audio encoder gives an audio stream
        rates = stream.codec_context.codec.audio_rates
        if rates and (rate or sr) not in rates:
            stream.codec_context.sample_rate = min(rates, key=lambda r: abs(r - (rate or sr)))
        if bitrate:
            stream.bit_rate = bitrate
        formats = [f.name for f in stream.codec_context.codec.audio_formats or []]
        fmt = "fltp" if "fltp" in formats else ("flt" if "flt" in formats else formats[0])
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout=layout)
        frame.sample_rate = sr
        resampler = av.AudioResampler(
            format=fmt, layout=layout, rate=stream.codec_context.sample_rate
        )
        for source in (frame, None):
            for out in resampler.resample(source):
                for packet in stream.encode(out):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Path(path)
