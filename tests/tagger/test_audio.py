"""Decoding real files of every format, excerpts by seeking, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from mertag.tagger.audio import SAMPLE_RATE, AudioError, AudioFile, decode, probe
from tests.audio_files import encode_tone
from tests.conftest import CORPUS_FILES


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_corpus_format_decodes_to_mono_16k(corpus: Path, name: str) -> None:
    path = corpus / name
    info = probe(path)
    y = decode(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert info.duration is not None
    assert abs(y.size / SAMPLE_RATE - info.duration) < 0.1
    assert 0.01 < float(np.abs(y).max()) <= 1.5


def test_aiff_decodes(tmp_path: Path) -> None:
    path = encode_tone(tmp_path / "tone.aiff", 2.0, "aiff", "pcm_s16be")
    y = decode(path)
    assert abs(y.size - 2 * SAMPLE_RATE) <= 2
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / y.size - 440) < 2


@pytest.mark.parametrize("name", ["bay.mp3", "egypt.flac", "garden.opus", "hacienda.m4a"])
def test_excerpt_by_seeking_matches_whole_decode(corpus: Path, name: str) -> None:
    path = corpus / name
    whole = decode(path)
    part = decode(path, offset=10.0, duration=5.0)
    assert part.size == 5 * SAMPLE_RATE
    # Align by cross-correlation: MP3 seeking may land a decoder delay away (~25 ms), and the
    # resampler's phase differs by a fraction of a sample, so compare by correlation.
    region = whole[10 * SAMPLE_RATE : 10 * SAMPLE_RATE + 4000 + 40000]
    lag = int(np.argmax(np.correlate(region, part[2000:42000], "valid"))) - 2000
    assert abs(lag) <= 800
    start = 10 * SAMPLE_RATE + lag
    same = np.corrcoef(part[2000:42000], whole[start + 2000 : start + 42000])[0, 1]
    assert same > 0.95


@pytest.mark.parametrize(("fmt", "codec"), [("wav", "pcm_s16le"), ("flac", "flac")])
def test_one_open_file_reads_windows_in_any_order_as_fresh_opens(
    tmp_path: Path, fmt: str, codec: str
) -> None:
    """A track's snippets share one open file; for lossless audio each read is exactly what a
    fresh decode of that window gives, whatever was read before (a read from 0 seeks back)."""
    rng = np.random.default_rng(2)
    path = tmp_path / f"chirps.{fmt}"
    rate = 44100
    t = np.arange(40 * rate) / rate
    pcm = np.sin(2 * np.pi * (200 + 20 * t) * t) + 0.1 * rng.standard_normal(t.size)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (pcm * 8000).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    windows = [(20.0, 3.0), (5.0, 3.0), (0.0, 3.0), (33.0, 3.0), (20.0, None)]
    with AudioFile(path) as audio:
        assert audio.info.duration == pytest.approx(40.0, abs=0.05)
        reads = [audio.read(offset, length) for offset, length in windows]
    for (offset, length), got in zip(windows, reads, strict=True):
        np.testing.assert_array_equal(got, decode(path, offset=offset, duration=length))


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.mp3", b"", "empty file"),
        ("text.mp3", b"this is not audio at all\n" * 40, "not a readable audio file"),
        ("noise.flac", np.random.default_rng(1).bytes(20000), "not a readable audio file|no audio"),
    ],
)
def test_bad_files_raise_one_line_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as info:
        decode(path)
    assert "\n" not in str(info.value)


def test_directory_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x.mp3").mkdir()
    with pytest.raises(AudioError, match="is a directory"):
        decode(tmp_path / "x.mp3")
    with pytest.raises(AudioError, match="not found"):
        decode(tmp_path / "gone.mp3")


def test_truncated_mp3_keeps_what_decodes(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "bay.mp3").read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 3])
    y = decode(cut)
    assert 20 * SAMPLE_RATE < y.size < 100 * SAMPLE_RATE
