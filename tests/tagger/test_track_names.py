"""The index's artist, album, title, duration and audio hash: filled by a real scan from the files'
tags, migrated into an older index, used by queries, `list` and `export`."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import mutagen
import pytest

from mertag.tagger.index import APPLICATION_ID, COLUMNS, SCHEMA_VERSION, Index, Migration
from mertag.tagger.tags import audio_fingerprint
from tests.tagger.index_files import V1_TRACKS, folder_state
from tests.tagger.scanned_library import GENERATED, Library, invoke


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def _by_name(library: Library) -> dict[str, object]:
    return {Path(r.path).name: r for r in library.rows()}


def test_a_scan_indexes_each_tracks_names_from_its_tags(library: Library) -> None:
    rows = _by_name(library)
    bay = rows["bay.mp3"]
    assert (bay.artist, bay.album, bay.title) == ("0zone0ne", "SuperTuxKart", "Bay")
    tone = rows[Path(GENERATED[0]).name]
    assert (tone.artist, tone.title, tone.album) == ("Test Tones", "A above middle C", None)
    chord = rows[Path(GENERATED[1]).name]
    assert (chord.artist, chord.title) == (None, None)  # no tags: nothing made up
    for name, row in rows.items():
        if row.status != "ok":
            assert row.duration is None and row.audio_sha256 is None, name
            continue
        audio = mutagen.File(row.path)
        assert row.duration == pytest.approx(audio.info.length), name
        assert row.audio_sha256 == audio_fingerprint(Path(row.path)), name


def test_queries_list_and_export_use_the_indexed_names(library: Library) -> None:
    args = ["--index", library.index]
    found = json.loads(invoke(["list", "artist:0zone0ne", "-f", "json", *args]).stdout)
    names = {Path(d["path"]).name for d in found}
    assert names == {"bay.mp3", "celtic.mp3", "egypt.flac"}
    assert all("0zone0ne" in d["artist"] for d in found)
    # The title tag, not the file name: 'Kart Grand Prix' is the title, 'Weirwood' the artist.
    titled = json.loads(invoke(["list", "title:kart", "-f", "json", *args]).stdout)
    assert [d["artist"] for d in titled] == ["Weirwood"]
    short = json.loads(invoke(["list", "duration:..30", "-f", "json", *args]).stdout)
    assert {Path(d["path"]).name for d in short} >= {"egypt.flac", "lava.wav"}
    assert all(d["duration"] <= 30 for d in short)
    table = invoke(["list", "album:SuperTuxKart", *args])
    assert table.exit_code == 0, table.output
    assert "artist" in table.stdout and "0zone0ne" in table.stdout and "Bay" in table.stdout
    out = invoke(["export", "-f", "csv", *args]).stdout
    header, *lines = list(csv.reader(io.StringIO(out)))
    assert tuple(header) == COLUMNS
    assert {"artist", "album", "title", "duration", "audio_sha256"} <= set(header)
    assert ["Bay"] == [line[header.index("title")] for line in lines if "bay.mp3" in line[0]]


def _write_v2_index(path: Path) -> None:
    """An index as the mertag before the names wrote it: marked, schema 2, without the columns."""
    columns = ", ".join(f"{k} {v}" for k, v in V1_TRACKS.items())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(f"CREATE TABLE tracks ({columns})")
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '2')")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(
        "INSERT INTO tracks (path, size, mtime_ns, status, mood, quadrant, analysed_at, tagged)"
        " VALUES ('/music/a.flac', 10, 20, 'ok', 'Sad', 'Q3', '2025-01-31T12:00:00+00:00', 1)"
    )
    conn.close()


def test_a_v2_index_is_read_as_is_and_migrated_when_written(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    _write_v2_index(db)
    before = folder_state(tmp_path)
    with Index(db, read_only=True) as index:
        (row,) = index.rows()
        assert row.mood == "Sad" and row.artist is None and row.audio_sha256 is None
    assert folder_state(tmp_path) == before
    result = invoke(["list", "-f", "json", "--index", db])  # read-only commands migrate nothing
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["title"] is None
    assert folder_state(tmp_path) == before
    with Index(db) as index:
        assert index.migration == Migration(db, 2, SCHEMA_VERSION, tmp_path / f"{db.name}.bak-v2")
        (row,) = index.rows()
        assert row.mood == "Sad" and row.tagged == 1 and row.title is None
    conn = sqlite3.connect(db)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(tracks)")]
    assert tuple(columns) == COLUMNS
    assert conn.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
    conn.close()


def test_scan_state_reads_what_earlier_scans_left_from_an_older_index_too(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    _write_v2_index(db)
    with Index(db, read_only=True) as index:  # v2: no not_tagged column yet
        snapshot, leftovers = index.scan_state()
    assert snapshot == {"/music/a.flac": (10, 20, "ok", None)} and leftovers == {}
    with Index(db) as index:
        row = index.get("/music/a.flac")
        index.upsert(replace(row, tagged=0))
        index.upsert(replace(row, path="/music/b.flac", status="error", error="cannot decode"))
        index.upsert(replace(row, path="/music/c.wav", tagged=0, not_tagged="RF64"))
        index.upsert(replace(row, path="/music/d.mp3", tagged=0, tag_error="tag write failed"))
        _, leftovers = index.scan_state()
    assert leftovers == {
        "/music/a.flac": (None, True),
        "/music/b.flac": ("cannot decode", False),
        "/music/d.mp3": ("tag write failed", False),
    }
