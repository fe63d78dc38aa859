"""A map, an export or a trainer's report cut short mid-write leaves the file that was there whole.

`map --out` (a picture), `export --output` and the trainer's reports used to be written in
place: a kill or a full disk mid-write left a torn file, the user's own when `--overwrite` was
given. Each now goes through `output_files.write_bytes_atomic`. The failure here is real: the
command runs in a subprocess under RLIMIT_FSIZE smaller than what it writes, so its write fails
half-way with EFBIG, as on a disk filling up. Real index, real CLI, real files.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from mertag.tagger.output_files import written_by_mertag
from tests.conftest import REPO, need_module
from tests.tagger.scanned_library import Library, grid_points, invoke, synthetic_library

LIMIT = 3000
"""The file size limit of the cut-short runs: below every file written here (the smallest, the
CSV export of 36 rows, is about 10 kB)."""
MINE = b"the user's own file, kept whole\n" * 10


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """36 indexed WAV files over the valence-arousal plane."""
    return synthetic_library(tmp_path_factory.mktemp("grid"), list(grid_points(6)))


def cut_short(code: str) -> tuple[int, str]:
    """Run `code` in a fresh Python under RLIMIT_FSIZE=LIMIT (SIGXFSZ ignored, as Python does,
    so a write past it fails with EFBIG); its exit code and stderr."""
    import subprocess

    child = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, resource.RLIM_INFINITY))
        """
    ) + textwrap.dedent(code)
    # -B: no bytecode written under the limit; only the command's own output is.
    done = subprocess.run(
        [sys.executable, "-B", "-c", child], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr


def mertag_cut_short(args: list[object]) -> tuple[int, str]:
    argv = ["mertag", *map(str, args)]
    return cut_short(f"sys.argv = {argv!r}\nfrom mertag.tagger.cli import main\nmain()\n")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(
    ("command", "name"),
    [("map", "map.png"), ("map", "map.svg"), ("map", "map.pdf"),
     ("export", "rows.csv"), ("export", "rows.json")],
)  # fmt: skip
def test_a_write_cut_short_keeps_the_file_that_was_there(
    grid: Library, tmp_path: Path, command: str, name: str
) -> None:
    if command == "map":
        need_module("matplotlib", "map")
    target = tmp_path / name
    args: list[object] = [command, "--index", grid.index, "-o", target]
    if name.endswith(".json"):
        args += ["--format", "json"]
    # The full file, written once in this process (which also builds matplotlib's font cache,
    # so the cut-short run writes nothing but the map).
    assert invoke(args).exit_code == 0
    whole = target.read_bytes()
    assert len(whole) > LIMIT and written_by_mertag(target)

    for before in (whole, MINE):  # mertag's own file, then the user's under --overwrite
        target.write_bytes(before)
        code, stderr = mertag_cut_short([*args, "--overwrite"])
        assert code == 2, stderr
        assert stderr.strip() == f"mertag: error: {target}: File too large"
        assert target.read_bytes() == before  # not torn, not truncated
        assert leftovers(tmp_path) == []  # the half-written temp file is gone

    result = invoke([*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == whole  # the same library gives the same bytes
    assert leftovers(tmp_path) == []


def test_a_cv_report_cut_short_keeps_the_report_that_was_there(tmp_path: Path) -> None:
    """`train --report` writes the markdown and the JSON beside it through write_report."""
    pytest.importorskip("torch")
    from mertag.trainer.train import write_report

    report = tmp_path / "cv.md"
    meta = {"n_clips": 16, "data": "x" * (2 * LIMIT), "folds": 2, "seed": 0}
    written = write_report([], meta, report)
    assert written == [report, report.with_suffix(".json")]
    ours = {p: p.read_bytes() for p in written}
    assert all(map(written_by_mertag, written)) and all(len(b) > LIMIT for b in ours.values())
    meta["data"] = "y" * (2 * LIMIT)
    code, stderr = cut_short(
        f"""
        from pathlib import Path
        from mertag.trainer.train import write_report
        try:
            write_report([], {meta!r}, Path({str(report)!r}))
        except OSError as exc:
            print(exc.strerror, file=sys.stderr)
        """
    )
    assert code == 0 and stderr.strip() == "File too large", stderr
    assert {p: p.read_bytes() for p in written} == ours
    assert leftovers(tmp_path) == []
