"""The beets plugin against a real beets library: `beet import -A` of the scanned library's copy in
a temp BEETSDIR, `beet mertag` run as a user runs it (a subprocess), the items' flexible
attributes read back from beets' database through beets' own API, and `beet ls` queries."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mutagen
import pytest

from mertag.tagger.index import Index, IndexRow
from mertag.tagger.mood import energy_level
from tests.conftest import need_module
from tests.tagger.scanned_library import TEST_CONFIG, Library, invoke, make_wav


class Beets:
    """A beets library of its own (BEETSDIR) with the mertag plugin, reading mertag's config
    `mertag_config`; its `config.yaml` imports files where they are, unchanged."""

    def __init__(
        self, folder: Path, music: Path, mertag_config: Path, extra: str = "", **plugin: Any
    ) -> None:
        need_module("beets", "beets")
        self.dir = folder
        self.db = folder / "library.db"
        self.music = music
        folder.mkdir(parents=True, exist_ok=True)
        options = {"config": str(mertag_config), "jobs": 1, **plugin}
        lines = [
            f"directory: {_yaml(str(music))}",
            f"library: {_yaml(str(self.db))}",
            "plugins: mertag smartplaylist",
            "import:",
            "  copy: no",
            "  move: no",
            "  write: no",
            "  duplicate_action: keep",  # untagged tracks look alike to beets
            "mertag:",
            *(f"  {key}: {_yaml(value)}" for key, value in options.items()),
            extra,
        ]
        (folder / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "BEETSDIR": str(self.dir), "NO_COLOR": "1"}
        return subprocess.run(
            [sys.executable, "-m", "beets", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    def paths(self, *query: str) -> set[Path]:
        done = self.run("ls", "-p", *query)
        assert done.returncode == 0, done.stderr
        return {Path(line) for line in done.stdout.splitlines() if line}

    def items(self) -> dict[Path, dict[str, Any]]:
        """Every item's fields as beets' database holds them (flexible ones as stored)."""
        from beets.library import Library as BeetsLibrary

        lib = BeetsLibrary(str(self.db), str(self.music))  # paths are kept relative to it
        try:
            return {Path(os.fsdecode(item.path)): dict(item.items()) for item in lib.items()}
        finally:
            lib._close()


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def mertag_config(folder: Path, index: Path, extra: str = "") -> Path:
    """A mertag config naming `index` (the tests' defaults besides, see TEST_CONFIG)."""
    path = folder / "mertag.toml"
    base = "" if "uncertain_below" in extra else TEST_CONFIG
    path.write_text(f'{base}index = "{index}"\n{extra}', encoding="utf-8")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows_by_path(library: Library) -> dict[Path, IndexRow]:
    with Index(library.index, read_only=True) as idx:
        return {Path(r.path): r for r in idx.rows() if r.status == "ok"}


def imported(library: Library, tmp_path: Path, beets_yaml: str = "", **plugin: Any) -> Beets:
    """`beet import -A` of the library, with the mertag plugin set up to read its index."""
    config = mertag_config(tmp_path, library.index)
    beets = Beets(tmp_path / "beets", library.lib, config, beets_yaml, **plugin)
    done = beets.run("import", "-A", "-q", str(library.lib))
    assert done.returncode == 0, done.stderr
    return beets


def assert_filled_like(fields: dict[str, Any], row: IndexRow) -> None:
    """The item's fields are the index row's analysis (floats as beets stores them: text)."""
    assert float(fields["valence"]) == pytest.approx(row.valence, abs=1e-12)
    assert float(fields["arousal"]) == pytest.approx(row.arousal, abs=1e-12)
    assert float(fields["mood_confidence"]) == pytest.approx(row.confidence, abs=1e-12)
    assert row.arousal is not None
    assert int(fields["energy"]) == energy_level(row.arousal)
    assert fields["mood_quadrant"] == row.quadrant
    assert fields["mood_model"] == row.model_id


def test_beet_mertag_fills_the_items_from_the_index_and_leaves_the_index_as_it_was(
    library: Library, tmp_path: Path
) -> None:
    playlists = tmp_path / "playlists"
    smartplaylist = f"""smartplaylist:
  playlist_dir: {_yaml(str(playlists))}
  playlists:
    - name: relaxed.m3u
      query: "mood:Relaxed"
    - name: energetic.m3u
      query: "energy:8.."
"""
    beets = imported(library, tmp_path, smartplaylist)
    rows = rows_by_path(library)
    index_before = digest(library.index)
    beside = sorted(p.name for p in library.index.parent.iterdir())

    done = beets.run("mertag")

    assert done.returncode == 0, done.stderr
    items = beets.items()
    assert set(items) == set(rows)  # every analysed track was imported (not the bad file)
    assert f"{len(rows)} tracks: {len(rows)} from mertag's index" in done.stderr
    for path, row in rows.items():
        assert items[path]["mood"] == row.mood
        assert items[path]["mood_uncertain"] == "0"  # a boolean, as beets stores it
        assert_filled_like(items[path], row)
    for word in {row.mood for row in rows.values()}:
        assert beets.paths(f"mood:{word}") == {p for p, r in rows.items() if r.mood == word}
    assert beets.paths("energy:7..") == {
        p for p, r in rows.items() if r.arousal is not None and energy_level(r.arousal) >= 7
    }
    assert beets.paths("valence:..0") == {
        p for p, r in rows.items() if r.valence is not None and r.valence <= 0
    }
    # beets' smartplaylist plugin makes its playlists from the fields.
    assert beets.run("splupdate").returncode == 0
    for name, chosen in (
        ("relaxed.m3u", {p for p, r in rows.items() if r.mood == "Relaxed"}),
        ("energetic.m3u", {p for p, r in rows.items() if energy_level(r.arousal or 0) >= 8}),
    ):
        lines = (playlists / name).read_text(encoding="utf-8").splitlines()
        assert chosen and {Path(line) for line in lines if not line.startswith("#")} == chosen
    assert digest(library.index) == index_before
    assert sorted(p.name for p in library.index.parent.iterdir()) == beside
    # Nothing of the files changed either: the fields live in beets' database only.
    for path, row in rows.items():
        assert path.stat().st_mtime_ns == row.mtime_ns


def test_what_the_index_does_not_hold_is_analysed_as_a_scan_analyses_it(
    library: Library, tmp_path: Path
) -> None:
    new = [
        make_wav(library.path("new/low.wav"), freqs=(110.0, 164.8)),
        make_wav(library.path("new/high.wav"), freqs=(880.0, 1320.0)),
    ]
    retagged = library.path("bay.mp3")  # its tags changed since the scan, its audio did not
    audio = mutagen.File(retagged, easy=True)
    audio["title"] = "Bay (edited in beets)"
    audio.save()
    changed = library.path("celtic.mp3")  # its audio changed: the index no longer describes it
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    beets = imported(library, tmp_path)
    index_before = digest(library.index)

    done = beets.run("mertag", "-j", "2")

    assert done.returncode == 0, done.stderr
    assert digest(library.index) == index_before
    lines = done.stderr.splitlines()
    analysed = {Path(line.split(": ", 2)[1]) for line in lines if line.endswith(", analysed)")}
    assert analysed == {*new, changed}
    items = beets.items()
    # A scan of the same files gives the same numbers.
    scan = ["scan", "--no-write", "--jobs", "1", "--quiet", "--index", library.index, library.lib]
    assert invoke(scan).exit_code == 1  # the bad file fails
    rows = rows_by_path(library)
    for path in [*new, changed, retagged]:
        assert items[path]["mood"] == rows[path].mood
        assert_filled_like(items[path], rows[path])

    done = beets.run("mertag")  # filled before, and now in the index: all from the index
    assert f"{len(rows)} from mertag's index" in done.stderr


def test_an_uncertain_track_has_no_mood_word_unless_the_config_gives_one(
    library: Library, tmp_path: Path
) -> None:
    beets = imported(library, tmp_path)
    assert beets.run("mertag").returncode == 0
    assert beets.paths("mood::.")  # every track has its word
    rows = rows_by_path(library)

    # Every track is below a threshold of 1: each loses the word mertag gave it.
    mertag_config(tmp_path, library.index, "uncertain_below = 1\n")
    done = beets.run("mertag")
    assert done.returncode == 0, done.stderr
    items = beets.items()
    assert not beets.paths("mood::.")
    assert beets.paths("mood_uncertain:true") == set(rows)
    for path, row in rows.items():
        assert "mood" not in items[path]
        assert items[path]["mood_uncertain"] == "1"
        assert "mood" not in items[path]["mertag_fields"].split()
        assert_filled_like(items[path], row)

    mertag_config(tmp_path, library.index, 'uncertain_below = 1\nuncertain_word = "Unsure"\n')
    assert beets.run("mertag").returncode == 0
    assert beets.paths("mood:Unsure") == set(rows)


def test_a_bad_file_is_one_error_line_and_the_others_are_filled(
    library: Library, tmp_path: Path
) -> None:
    beets = imported(library, tmp_path)
    broken = library.path("farm.ogg")
    broken.write_bytes(b"\x00" * 4096)  # beets knows it; its audio is gone
    gone = library.path("lava.wav")
    gone.unlink()

    done = beets.run("mertag")

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if str(broken) in line or str(gone) in line]
    assert len(errors) == 2, done.stderr
    assert all(line.startswith("mertag: ") for line in errors), errors
    assert "Traceback" not in done.stderr
    assert "error: mertag: 2 of 10 tracks failed" in done.stderr
    items = beets.items()
    assert "valence" not in items[broken] and "valence" not in items[gone]
    filled = {p for p, fields in items.items() if "valence" in fields}
    assert filled == set(items) - {broken, gone}


def test_a_value_the_user_set_is_kept_unless_overwrite(library: Library, tmp_path: Path) -> None:
    beets = imported(library, tmp_path)
    egypt = library.path("egypt.flac")
    assert beets.run("modify", "-y", "mood=Chill", f"path:{egypt}").returncode == 0

    for _ in range(2):  # and still on the next run, once the other fields are mertag's
        done = beets.run("mertag")
        assert done.returncode == 0, done.stderr
        assert f"{egypt}: kept the mood mertag did not set" in done.stderr
        assert beets.items()[egypt]["mood"] == "Chill"
    assert "valence" in beets.items()[egypt]

    with (beets.dir / "config.yaml").open("a", encoding="utf-8") as f:
        f.write("  overwrite: yes\n")
    assert beets.run("mertag").returncode == 0
    assert beets.items()[egypt]["mood"] == rows_by_path(library)[egypt].mood


def test_auto_fills_the_items_on_import(library: Library, tmp_path: Path) -> None:
    beets = imported(library, tmp_path, auto=True)
    rows = rows_by_path(library)
    items = beets.items()
    for path, row in rows.items():
        assert items[path]["mood"] == row.mood
        assert_filled_like(items[path], row)


def test_a_bad_setting_is_one_line_and_nothing_is_filled(library: Library, tmp_path: Path) -> None:
    beets = imported(library, tmp_path, jobs=0)
    done = beets.run("mertag")
    assert (done.returncode, done.stderr) == (1, "error: mertag: jobs: must be a whole number "
                                                 "of at least 1, not 0\n")  # fmt: skip
    config = mertag_config(tmp_path, library.index, 'model = "no-such-model.onnx"\n')
    done = beets.run("mertag", "-j", "1")
    assert done.returncode == 1
    assert done.stderr.startswith("error: mertag: ") and done.stderr.count("\n") == 1
    assert "no-such-model.onnx" in done.stderr
    config.write_text("moods = 3\n", encoding="utf-8")
    done = beets.run("mertag", "-j", "1")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "moods" in done.stderr, done.stderr
    assert not any("valence" in fields for fields in beets.items().values())
