"""A playlist, map or export of the user's is never replaced by one of mertag's.

Found by the red-team audit: `mertag playlist --out DIR` wrote `Happy.m3u8` over the user's own
playlist of that name, and so did a journey, `map --out` and `export --output` over any file at
their target. Now each file mertag writes carries its mark (a comment line in M3U8, the .nsp
comment, the map's generator or creator, the export's columns): a file with the mark is
replaced, as before, so a command run again updates what it wrote; any other file is refused
with one line and exit 2 before anything is written, unless `--overwrite`. Real files, the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mertag.tagger.output_files import written_by_mertag
from tests.tagger.fault_helpers import FILE_SIZE_LIMIT, atomic_leftovers, cut_short
from tests.tagger.scanned_library import (
    OUTPUT_FILES,
    Library,
    grid_points,
    invoke,
    output_command,
    synthetic_library,
)

MAIN = "from mertag.tagger.cli import main\nmain()\n"
"""The mertag command's entry point, as code for `cut_short`."""
MINE = "#EXTM3U\n#EXTINF:200,Me - My favourite\n/music/mine.mp3\n"


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """36 indexed WAV files over the valence-arousal plane: every mood has tracks."""
    return synthetic_library(tmp_path_factory.mktemp("grid"), list(grid_points(6)))


def refused(args: list[object], victim: Path, mine: bytes) -> None:
    """The command refuses, in one line naming the file and --overwrite, and keeps it."""
    result = invoke(args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(victim) in lines[0] and "--overwrite" in lines[0], lines
    assert victim.read_bytes() == mine


def test_mood_playlists_replace_their_own_files_only(grid: Library, tmp_path: Path) -> None:
    out = tmp_path / "lists"
    args: list[object] = ["playlist", "-o", out, "--index", grid.index]
    assert invoke(args).exit_code == 0
    assert invoke(args).exit_code == 0  # its own files: replaced
    ours = {f.name: f.read_bytes() for f in out.glob("*.m3u8")}
    assert set(ours) == {"Happy.m3u8", "Angry.m3u8", "Sad.m3u8", "Relaxed.m3u8"}
    assert all(written_by_mertag(out / name) for name in ours)
    victim = out / "Sad.m3u8"
    victim.write_text(MINE, encoding="utf-8")
    (out / "Happy.m3u8").unlink()
    refused(args, victim, MINE.encode())
    assert not (out / "Happy.m3u8").exists()  # nothing written: refused before any file
    result = invoke([*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert {f.name: f.read_bytes() for f in out.glob("*.m3u8")} == ours


@pytest.mark.parametrize("name", ["mine.m3u8", "mine.nsp"])
def test_one_playlist_replaces_its_own_file_only(grid: Library, tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    args: list[object] = ["playlist", "-o", target, "--index", grid.index, "mood:happy"]
    assert invoke(args).exit_code == 0
    ours = target.read_bytes()
    assert invoke(args).exit_code == 0 and target.read_bytes() == ours
    mine = MINE.encode() if name.endswith(".m3u8") else b'{"name": "mine", "all": []}\n'
    target.write_bytes(mine)
    refused(args, target, mine)
    assert invoke([*args, "--overwrite"]).exit_code == 0 and target.read_bytes() == ours


def test_a_journey_replaces_its_own_file_only(grid: Library, tmp_path: Path) -> None:
    target = tmp_path / "Sad to Happy.m3u8"
    args: list[object] = ["playlist", "--journey", "sad", "happy", "-n", 4, "-o", tmp_path]
    args += ["--index", grid.index]
    assert invoke(args).exit_code == 0
    ours = target.read_bytes()
    assert invoke(args).exit_code == 0 and target.read_bytes() == ours
    target.write_text(MINE, encoding="utf-8")
    refused(args, target, MINE.encode())
    assert invoke([*args, "--overwrite"]).exit_code == 0 and target.read_bytes() == ours


@pytest.mark.parametrize(("command", "name"), OUTPUT_FILES)
def test_maps_and_exports_replace_their_own_files_only(
    grid: Library, tmp_path: Path, command: str, name: str
) -> None:
    target = tmp_path / name
    args = output_command(grid, command, target)
    assert invoke(args).exit_code == 0
    assert written_by_mertag(target)
    assert invoke(args).exit_code == 0  # its own file: replaced
    mine = b"the user's own file\n"
    target.write_bytes(mine)
    refused(args, target, mine)
    assert invoke([*args, "--overwrite"]).exit_code == 0 and written_by_mertag(target)


def test_an_empty_json_export_is_mertags_too(grid: Library, tmp_path: Path) -> None:
    target = tmp_path / "none.json"
    args: list[object] = ["export", "--index", grid.index, "-o", target, "--format", "json"]
    args.append("path:/nowhere/*")
    assert invoke(args).exit_code == 0 and target.read_text() == "[]\n"
    assert invoke(args).exit_code == 0


def test_a_map_or_export_cut_short_keeps_the_file_that_was_there(
    grid: Library, tmp_path: Path
) -> None:
    """They were written in place after the check: a kill or a full disk mid-write left a torn
    file, the user's own under --overwrite. Now made whole in memory and written atomically;
    the failure is real, the command's write cut half-way by RLIMIT_FSIZE (EFBIG)."""
    for command, name in OUTPUT_FILES:
        target = tmp_path / name
        args = [*output_command(grid, command, target), "--overwrite"]
        # Written once in this process first (which also builds matplotlib's font cache, so
        # the cut-short run writes nothing but the output).
        assert invoke(args).exit_code == 0
        whole = target.read_bytes()
        assert len(whole) > FILE_SIZE_LIMIT, name
        for before in (whole, b"the user's own file, kept whole\n" * 10):
            target.write_bytes(before)
            argv = ["mertag", *map(str, args)]
            code, stderr = cut_short(f"sys.argv = {argv!r}\n" + MAIN)
            assert code == 2, stderr
            assert stderr.strip() == f"mertag: error: {target}: File too large"
            assert target.read_bytes() == before, name  # not torn, not truncated
            assert atomic_leftovers(tmp_path) == []  # the half-written temp file is gone
        assert invoke(args).exit_code == 0 and target.read_bytes() == whole
