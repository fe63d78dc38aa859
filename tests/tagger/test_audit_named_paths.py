"""A file the user cannot read, named on the command line, is one bad file like any other.

Found by the red-team audit: `mertag scan secret.flac good.wav` stopped before any work with
Click's usage box ("path 'secret.flac' is not readable", exit 2), and so did `untag` and
`show`, while the same file inside a scanned folder, or a missing path on the command line, gets
one line, an error row, and the batch goes on. Run as root without root's permission override,
in a subprocess (`fault_helpers.run_obeying_permissions`). And an empty path was taken for the
current folder.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mertag.tagger.index import Index
from mertag.tagger.tags import read_tags
from tests.tagger.fault_helpers import make_track, mertag_command, run_obeying_permissions
from tests.tagger.scanned_library import invoke
from tests.tagger.test_faults import error_lines


def mertag(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`mertag ARGS` obeying permission bits (as root: without CAP_DAC_OVERRIDE)."""
    return run_obeying_permissions([*mertag_command(), *(str(a) for a in args)])


def test_an_unreadable_file_named_on_the_command_line_fails_alone(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs mertag as root without its permission override: needs root")
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    good = make_track(lib / "good.wav")
    secret = make_track(lib / "secret.flac", index=1)
    secret.chmod(0o000)

    done = mertag("scan", secret, good, "--index", index, "-j", "1")
    assert done.returncode == 1, done.stderr
    assert "Usage:" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    (line,) = error_lines(done.stderr, secret)
    assert "permission denied" in line
    with Index(index, read_only=True) as idx:
        rows = {Path(r.path).name: r for r in idx.rows()}
    assert rows["secret.flac"].status == "error"
    assert rows["good.wav"].status == "ok" and rows["good.wav"].tagged == 1
    assert "MERTAG_QUADRANT" in read_tags(good)

    done = mertag("show", secret, good, "--index", index, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert str(good) in done.stdout and str(secret) in done.stdout

    done = mertag("untag", secret, good, "--index", index)
    assert done.returncode == 1, done.stderr
    assert "Usage:" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    (line,) = error_lines(done.stderr, secret)
    assert "permission denied" in line
    assert read_tags(good) == {}  # the batch went on


def test_an_empty_path_is_refused_not_taken_for_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `mertag scan "$MUSIC"` with MUSIC unset: Path("") is ".", and the scan tagged the folder
    # the shell stood in (found by the audit: a home folder would do).
    here = tmp_path / "cwd"
    here.mkdir()
    track = make_track(here / "not-for-tagging.wav")
    data = track.read_bytes()
    index = tmp_path / "index.sqlite3"
    monkeypatch.chdir(here)
    for args in (["scan", ""], ["scan", str(track), ""], ["untag", ""], ["show", ""]):
        result = invoke([*args, "--index", str(index)])
        assert result.exit_code == 2, (args, result.output)
        assert "an empty path" in result.output, result.output
        assert track.read_bytes() == data and not index.exists(), args
