"""Ogg Speex: analysed, tagged and untagged like every Vorbis-comment format.

The audit named Speex (`mutagen.oggspeex`) as supported but untried: no file was at hand. Here a
real one is made at test time by the reference encoder, `speexenc` (Debian package `speex`),
from a corpus track, with the user's own MOOD in its comment header; the test skips, naming the
package, where the encoder is absent (CI does not install it). PyAV (FFmpeg's Speex decoder)
decodes it for the analysis; mutagen reads the tags back; `speexdec` decodes the tagged file.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from mutagen.oggspeex import OggSpeex

from mertag.tagger.index import Index
from mertag.tagger.tags import audio_fingerprint
from tests.tagger.scanned_library import invoke

SPEEXENC = shutil.which("speexenc")
pytestmark = pytest.mark.skipif(
    SPEEXENC is None, reason="speexenc is absent (Debian package speex): no Speex file to try"
)


def pcm_wav(src: Path, dst: Path, seconds: int = 30, rate: int = 16000) -> Path:
    """`seconds` of `src` as 16-bit mono WAV at `rate` (Speex wideband's rate)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    chunks = []
    with av.open(str(src)) as container:
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    pcm = np.concatenate(chunks)[: rate * seconds]
    with wave.open(str(dst), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return dst


def comments(path: Path) -> list[tuple[str, str]]:
    """The comment header as the file holds it: (key, value) in order, keys as spelt."""
    tags: Any = OggSpeex(path).tags
    return list(tags)


@pytest.fixture
def spx(corpus: Path, tmp_path: Path) -> Path:
    wav = pcm_wav(corpus / "bay.mp3", tmp_path / "bay.wav")
    lib = tmp_path / "lib"
    lib.mkdir()
    out = lib / "bay.spx"
    assert SPEEXENC is not None
    args = [SPEEXENC, "--wideband", "--title", "Bay", "--author", "The Users"]
    subprocess.run([*args, "--comment", "MOOD=Dreamy", wav, out], check=True, capture_output=True)
    return out


def test_speex_is_analysed_tagged_and_untag_restores_it(spx: Path, tmp_path: Path) -> None:
    before, audio = comments(spx), audio_fingerprint(spx)
    index = tmp_path / "index.sqlite3"
    result = invoke(["scan", spx.parent, "--index", index, "-j", "1"])
    assert result.exit_code == 0, result.output
    with Index(index, read_only=True) as idx:
        (row,) = idx.rows()
    assert row.status == "ok" and row.tagged == 1 and row.quadrant, row
    tags: Any = OggSpeex(spx).tags
    assert tags["MOOD"] == ["Dreamy"]  # the user's, kept
    assert tags["MERTAG_PREVIOUS_MOOD"] == ["Dreamy"] and tags["MERTAG_QUADRANT"] == [row.quadrant]
    assert audio_fingerprint(spx) == audio
    decoded = subprocess.run(
        ["speexdec", spx, tmp_path / "out.wav"], capture_output=True, check=False
    )
    assert decoded.returncode == 0, decoded.stderr

    result = invoke(["write", "--index", index, "--overwrite-mood"])
    assert result.exit_code == 0, result.output
    assert OggSpeex(spx).tags["MOOD"] == [row.mood]

    result = invoke(["untag", spx.parent, "--index", index])
    assert result.exit_code == 0, result.output
    assert comments(spx) == before
    assert audio_fingerprint(spx) == audio
