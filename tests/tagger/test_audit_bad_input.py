"""`untag` over bad input: one plain line per bad file, and the batch goes on.

Found by the red-team audit: a WAV header followed by garbage was reported by `untag` as
"cannot read tags: 'ascii' codec can't decode byte 0xe5 in position 0: ordinal not in
range(128)", mutagen's internals instead of a reason a user can act on.
"""

from __future__ import annotations

from pathlib import Path

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
