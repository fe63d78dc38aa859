"""Bad input: one plain line per bad file, and the batch goes on.

Found by the red-team audit: a WAV header followed by garbage was reported by `untag` as
"cannot read tags: 'ascii' codec can't decode byte 0xe5 in position 0: ordinal not in
range(128)", mutagen's internals instead of a reason a user can act on; and a WAV that FFmpeg
wrote to a pipe (sizes 0xFFFFFFFF) ended the whole scan in a traceback at its tag write.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from mertag.tagger.index import Index
from mertag.tagger.tags import read_tags, write_tags
from tests.tagger.fault_helpers import make_track
from tests.tagger.scanned_library import invoke

VALUES = {"MOOD": "Happy", "MERTAG_QUADRANT": "Q1", "MERTAG_MODEL": "mertag-test 1.0"}


def test_untag_names_each_bad_file_with_a_plain_reason(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    good = make_track(lib / "good.flac")
    write_tags(good, VALUES)
    header = make_track(tmp_path / "w.wav").read_bytes()[:44]
    (lib / "garbage.wav").write_bytes(header + bytes(range(0x80, 0x100)) * 64)
    (lib / "text.mp3").write_text("not music\n")
    (lib / "zero.ogg").write_bytes(b"")
    (lib / "x.flac").mkdir()  # a folder named like a track is walked, not read

    result = invoke(["untag", lib, "--index", tmp_path / "index.sqlite3"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    (line,) = [x for x in errors if "/garbage.wav:" in x]
    assert "damaged file" in line and "codec" not in line and "ordinal" not in line, line
    assert all(len(x.splitlines()) == 1 for x in errors)
    assert read_tags(good) == {}  # the batch went on


class _Pipe:
    """A write-only stream, as FFmpeg sees a pipe: it cannot seek back to fill in the sizes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> int:
        self.data += bytes(chunk)
        return len(chunk)


def streamed_wav(path: Path, seconds: float = 4.0, rate: int = 22050) -> Path:
    """A WAV as `ffmpeg ... -f wav - > file` leaves it: RIFF and data sizes 0xFFFFFFFF."""
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * 330 * t) * 8000).astype(np.int16)
    pipe = _Pipe()
    with av.open(pipe, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.repeat(pcm, 2)[None, :], format="s16", layout="stereo"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    path.write_bytes(bytes(pipe.data))
    assert path.read_bytes()[4:8] == b"\xff\xff\xff\xff"
    return path


def test_a_streamed_wav_is_one_failed_tag_write_not_a_crashed_scan(tmp_path: Path) -> None:
    # Before: mutagen's struct.error escaped the worker and the scan ended in a traceback.
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    streamed = streamed_wav(lib / "from-a-pipe.wav")
    data = streamed.read_bytes()
    good = make_track(lib / "good.flac")
    result = invoke(["scan", lib, "--index", index, "-j", "1"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert str(streamed) in line and "chunk size in the file's header is out of range" in line
    assert streamed.read_bytes() == data  # nothing written
    assert "MERTAG_QUADRANT" in read_tags(good)  # the batch went on
    with Index(index, read_only=True) as idx:
        row = idx.get(str(streamed))
    assert row is not None and row.status == "ok" and row.tagged == 0 and row.tag_error
