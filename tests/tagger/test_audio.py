"""Decoding real files of every format, excerpts by seeking, and clear errors for bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from mertag.tagger import audio as audio_module
from mertag.tagger.artwork import picture_bytes
from mertag.tagger.audio import SAMPLE_RATE, AudioError, AudioFile, decode, probe
from mertag.tagger.embeddings import PATCH_SAMPLES
from mertag.tagger.features import (
    FEATURE_DIM,
    SNIPPETS,
    WHOLE_TRACK_MAX,
    decode_excerpt,
    extract_track,
)
from tests.audio_files import encode_tone, understate_flac_length
from tests.conftest import CORPUS_FILES
from tests.tagger.fault_helpers import add_picture


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


def _plain_read(path: Path) -> tuple[tuple, np.ndarray]:
    """A file's stream facts and its whole decode to mono 16 kHz by PyAV with FFmpeg's defaults."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        facts = (stream.duration, stream.time_base, ctx.name, ctx.sample_rate, ctx.channels)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        frames = [*container.decode(stream), None]
        pieces = [o.to_ndarray().reshape(-1) for f in frames for o in resampler.resample(f)]
    return facts, np.concatenate(pieces)


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "options"),
    [
        ("tone.wav", "wav", "pcm_s16le", None),
        ("tone64.wav", "wav", "pcm_s16le", {"rf64": "always"}),
        ("tone.aiff", "aiff", "pcm_s16be", None),
    ],
)
def test_wav_and_aiff_open_on_their_header_alone_with_the_same_audio(
    tmp_path: Path, name: str, fmt: str, codec: str, options: dict[str, str] | None
) -> None:
    from mertag.tagger.tags import audio_fingerprint

    path = encode_tone(tmp_path / name, 8.0, fmt, codec, options=options)
    assert audio_module.open_options(path) == audio_module.HEADER_PROBE
    facts, whole = _plain_read(path)
    with AudioFile(path) as opened:
        stream = opened._container.streams.audio[0]
        ctx = stream.codec_context
        assert (stream.duration, stream.time_base, ctx.name, ctx.sample_rate, ctx.channels) == facts
        np.testing.assert_array_equal(opened.read(0.0, None), whole)
    # The audio hash (already stored in users' indexes) is the one FFmpeg's defaults give.
    plain = hashlib.sha256()
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.audio[0]):
            plain.update(bytes(packet))
    assert audio_fingerprint(path) == plain.hexdigest()


def test_other_formats_open_with_ffmpegs_defaults(corpus: Path) -> None:
    for name in ("bay.mp3", "egypt.flac", "garden.opus", "hacienda.m4a", "farm.ogg"):
        assert audio_module.open_options(corpus / name) == {}, name
    assert audio_module.open_options(corpus / "lava.wav") == audio_module.HEADER_PROBE


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


def test_a_whole_read_is_bounded_whatever_the_header_says(tmp_path: Path) -> None:
    """A FLAC whose STREAMINFO says 10 s but holds 120 s: a whole read stops at the limit and
    estimates the real length from the share of the file it took."""
    path = encode_tone(tmp_path / "long.flac", 120.0, "flac", "flac", rate=22050)
    understate_flac_length(path, 10.0)
    with AudioFile(path) as audio:
        assert audio.info.duration == pytest.approx(10.0)
        y, longer = audio.read_whole(45.0)
    assert y.size == 45 * SAMPLE_RATE
    assert longer == pytest.approx(120.0, rel=0.1)
    # A track that ends within the limit is read whole, exactly as a plain read gives it.
    short = encode_tone(tmp_path / "short.flac", 30.0, "flac", "flac", rate=22050)
    understate_flac_length(short, 10.0)
    with AudioFile(short) as audio:
        y, longer = audio.read_whole(45.0)
    assert longer is None
    np.testing.assert_array_equal(y, decode(short))
    assert abs(y.size - 30 * SAMPLE_RATE) <= 2


def test_the_excerpt_policy_hears_an_understated_track_as_snippets(tmp_path: Path) -> None:
    path = encode_tone(tmp_path / "long.flac", 120.0, "flac", "flac", rate=22050)
    understate_flac_length(path, 10.0)
    y, duration = decode_excerpt(path)
    assert y.size == SNIPPETS * PATCH_SAMPLES  # not 120 s, not even the 45 s head
    assert duration == pytest.approx(120.0, rel=0.1)
    assert duration > WHOLE_TRACK_MAX
    tf = extract_track(path)
    assert tf.snippets and tf.sequences[0].shape == (SNIPPETS, FEATURE_DIM)


def _audio_start(flac: bytes) -> int:
    """Where a FLAC file's first audio frame starts: after its last metadata block."""
    pos = 4
    while True:
        last, size = flac[pos] & 0x80, int.from_bytes(flac[pos + 1 : pos + 4], "big")
        pos += 4 + size
        if last:
            return pos


def test_large_pictures_are_not_junk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Booklet scans in front of the audio do not count against the junk limit (1 MB here, so
    the file stays small); bytes that are neither audio nor pictures still do."""
    monkeypatch.setattr(audio_module, "JUNK_LIMIT", 1 << 20)
    path = encode_tone(tmp_path / "booklet.flac", 5.0, "flac", "flac")
    add_picture(path, 3 << 20)
    assert picture_bytes(path) == 3 << 20
    y = decode(path)
    assert abs(y.size - 5 * SAMPLE_RATE) <= 2
    data = path.read_bytes()
    start = _audio_start(data)
    junk = tmp_path / "booklet-and-junk.flac"
    junk.write_bytes(data[:start] + bytes(3 << 20) + data[start:])
    with pytest.raises(AudioError, match="no audio found in 1 MB"):
        decode(junk)
    zeros = tmp_path / "zeros.flac"
    zeros.write_bytes(bytes(3 << 20))
    assert picture_bytes(zeros) == 0
    with pytest.raises(AudioError, match="no audio found in 1 MB|not a readable audio file"):
        decode(zeros)
