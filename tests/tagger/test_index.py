"""The SQLite index on real files: round-trips, odd paths, concurrency, the incremental rule."""

from __future__ import annotations

import multiprocessing
import os
import re
import sqlite3
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mertag.tagger.index import (
    APPLICATION_ID,
    COLUMNS,
    SCHEMA_VERSION,
    Index,
    IndexMissing,
    IndexRow,
    IndexVersionError,
    IndexWriteError,
    Migration,
    NotAnIndex,
    default_index_path,
    inspect_index,
    needs_analysis,
)
from tests.tagger.index_files import folder_state, write_newer_index, write_v1_index


def full_row(path: str = "/music/a.mp3", **changes: object) -> IndexRow:
    """A row with every field set to a distinctive non-default value."""
    row = IndexRow(
        path=path,
        size=123_456_789_012,
        mtime_ns=1_700_000_000_123_456_789,
        status="ok",
        error=None,
        quadrant="Q2",
        mood="tense",
        p_q1=0.1,
        p_q2=0.6,
        p_q3=0.2,
        p_q4=0.1,
        valence=-0.25,
        arousal=0.75,
        confidence=0.6,
        uncertain=1,
        model_id="mertag-4q-v1",
        feature_schema="musicnn-v1",
        analysed_at="2025-01-31T12:00:00+00:00",
        tagged=1,
        tag_error=None,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def test_columns_follow_the_row_fields() -> None:
    assert COLUMNS == tuple(f.name for f in fields(IndexRow))
    assert COLUMNS[0] == "path"
    assert {"tagged", "tag_error", "p_q4", "analysed_at"} <= set(COLUMNS)


def test_default_index_path_is_in_the_user_data_dir() -> None:
    path = default_index_path()
    assert path.name == "index.sqlite3" and "mertag" in str(path.parent)


def test_creates_parent_dirs_schema_and_wal(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "index.sqlite3"
    with Index(db) as index:
        assert index.count() == 0
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert con.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
        cols = [r[1] for r in con.execute("PRAGMA table_info(tracks)")]
        assert tuple(cols) == COLUMNS
    finally:
        con.close()


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    write_newer_index(db, 99)
    with pytest.raises(IndexVersionError, match="newer mertag.*schema v99"):
        Index(db)


@pytest.mark.parametrize(
    "row",
    [
        full_row(),
        full_row(tagged=0, tag_error="read-only file: permission denied"),
        IndexRow(path="/music/b.flac", size=0, mtime_ns=0, status="error", error="cannot decode"),
    ],
    ids=["ok", "tag-write-failed", "error"],
)
def test_upsert_get_round_trips_every_field(tmp_path: Path, row: IndexRow) -> None:
    with Index(tmp_path / "i.sqlite3") as index:
        index.upsert(row)
    with Index(tmp_path / "i.sqlite3") as index:  # reopened: it was committed
        assert index.get(row.path) == row
        assert index.get("/music/absent.mp3") is None


def test_error_row_has_defaults_and_a_utc_timestamp() -> None:
    row = IndexRow(path="/x.mp3", size=1, mtime_ns=2, status="error", error="boom")
    assert row.quadrant is None and row.tagged is None
    assert row.analysed_at.endswith("+00:00") and "T" in row.analysed_at


def test_upsert_replaces_and_accepts_numpy_scalars(tmp_path: Path) -> None:
    with Index(tmp_path / "i.sqlite3") as index:
        index.upsert(full_row())
        index.upsert(full_row(p_q1=np.float32(0.5), size=np.int64(7), confidence=np.float64(0.25)))
        got = index.get("/music/a.mp3")
        assert index.count() == 1
    assert got is not None
    assert (got.p_q1, got.size, got.confidence) == (0.5, 7, 0.25)
    assert type(got.p_q1) is float and type(got.size) is int


def test_bad_status_is_refused(tmp_path: Path) -> None:
    with Index(tmp_path / "i.sqlite3") as index, pytest.raises(ValueError, match="status"):
        index.upsert(full_row(status="maybe"))


def test_rows_filters_orders_and_snapshot_paths_delete(tmp_path: Path) -> None:
    with Index(tmp_path / "i.sqlite3") as index:
        for path, status in [
            ("/m/b/2.mp3", "ok"),
            ("/m/a/1.mp3", "error"),
            ("/m/c.flac", "ok"),
            ("/m/b/1.mp3", "ok"),
        ]:
            index.upsert(full_row(path, status=status, model_id=f"model-{path[-5]}"))
        assert [r.path for r in index.rows()] == [
            "/m/a/1.mp3",
            "/m/b/1.mp3",
            "/m/b/2.mp3",
            "/m/c.flac",
        ]
        assert [r.path for r in index.rows(status="error")] == ["/m/a/1.mp3"]
        assert [r.path for r in index.rows(path_glob="/m/b/*")] == ["/m/b/1.mp3", "/m/b/2.mp3"]
        assert [r.path for r in index.rows(status="ok", path_glob="*.flac")] == ["/m/c.flac"]
        assert index.paths() == {"/m/a/1.mp3", "/m/b/1.mp3", "/m/b/2.mp3", "/m/c.flac"}
        size, mtime_ns = full_row().size, full_row().mtime_ns
        assert index.snapshot()["/m/a/1.mp3"] == (size, mtime_ns, "error", "model-1")
        assert len(index.snapshot()) == 4
        assert index.delete(["/m/a/1.mp3", "/m/c.flac", "/m/absent.mp3"]) == 2
        assert index.delete([]) == 0
        assert index.paths() == {"/m/b/1.mp3", "/m/b/2.mp3"}
        assert index.count() == 2


ODD_PATHS = [
    os.fsdecode(b"/music/bad\xff.mp3"),
    "/music/new\nline.mp3",
    "/music/caf\u00e9 \u97f3\u697d \U0001f3b5.flac",
    "/music/quote ' and \" and ; DROP TABLE tracks.mp3",
]


def test_odd_paths_round_trip(tmp_path: Path) -> None:
    with Index(tmp_path / "i.sqlite3") as index:
        for path in ODD_PATHS:
            index.upsert(full_row(path))
        # Valid UTF-8 'bad\xc3\xbf' is a different file from the raw byte 0xff: no collision.
        index.upsert(full_row("/music/bad\u00ff.mp3", mood="other"))
    with Index(tmp_path / "i.sqlite3") as index:
        for path in ODD_PATHS:
            got = index.get(path)
            assert got is not None and got.path == path and got.mood == "tense"
        assert index.paths() == {*ODD_PATHS, "/music/bad\u00ff.mp3"}
        assert set(index.snapshot()) == index.paths()
        assert {r.path for r in index.rows()} == index.paths()
        assert index.delete([ODD_PATHS[0]]) == 1
        assert index.get(ODD_PATHS[0]) is None
        assert index.get("/music/bad\u00ff.mp3") is not None


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b))
def test_any_byte_path_round_trips(tmp_path: Path, raw: bytes) -> None:
    path = os.fsdecode(b"/" + raw)
    with Index(tmp_path / "i.sqlite3") as index:
        index.upsert(full_row(path, size=len(raw)))
        got = index.get(path)
        assert got is not None and got.path == path and got.size == len(raw)
        assert path in index.snapshot()


def _write_rows(db: str, tag: str, n: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    """Child process: open the shared index and upsert n rows, one transaction each."""
    barrier.wait()  # open together too: creating the schema and switching to WAL can race
    with Index(Path(db)) as index:
        for i in range(n):
            index.upsert(full_row(f"/music/{tag}/{i:03d}.mp3"))


def test_two_processes_upsert_into_one_index(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    db = str(tmp_path / "shared.sqlite3")  # not created yet: both also race to create it
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_rows, args=(db, tag, 200, barrier)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    with Index(Path(db)) as index:
        assert index.count() == 400
        assert len({p for p in index.paths() if p.startswith("/music/a/")}) == 200


# (entry, size, mtime_ns, model_id, force, retry_failed) -> expected
OK = (10, 1000, "ok", "m1")
FAILED = (10, 1000, "error", "m1")


@pytest.mark.parametrize(
    ("entry", "size", "mtime_ns", "model_id", "force", "retry_failed", "expected"),
    [
        (None, 10, 1000, "m1", False, False, True),  # new file
        (OK, 10, 1000, "m1", False, False, False),  # unchanged: skip
        (OK, 10, 1000, "m1", False, True, False),  # retry_failed does not touch ok rows
        (OK, 10, 1000, "m1", True, False, True),  # force
        (OK, 11, 1000, "m1", False, False, True),  # size changed
        (OK, 10, 1001, "m1", False, False, True),  # mtime changed
        (OK, 10, 1000, "m2", False, False, True),  # other model
        (FAILED, 10, 1000, "m1", False, False, False),  # failed, unchanged: skip
        (FAILED, 10, 1000, "m2", False, False, False),  # failed stays skipped under a new model
        (FAILED, 10, 1000, "m1", False, True, True),  # unless retry_failed
        (FAILED, 10, 1001, "m1", False, False, True),  # failed but changed: try again
        (FAILED, 10, 1000, "m1", True, False, True),  # force
    ],
)
def test_needs_analysis(
    entry: tuple[int, int, str, str | None] | None,
    size: int,
    mtime_ns: int,
    model_id: str,
    force: bool,
    retry_failed: bool,
    expected: bool,
) -> None:
    got = needs_analysis(
        entry, size, mtime_ns, frozenset({model_id}), force=force, retry_failed=retry_failed
    )
    assert got is expected


def test_a_row_by_either_of_the_scans_models_is_finished() -> None:
    # A scan accepts its model and the one it hands snippet tracks to (MoodModel.snippet_model).
    flags = {"force": False, "retry_failed": False}
    assert not needs_analysis(OK, 10, 1000, frozenset({"m0", "m1"}), **flags)
    assert needs_analysis(OK, 10, 1000, frozenset({"m0", "m2"}), **flags)


# -- whose file it is, schema versions, read-only ----------------------------------------------


@pytest.mark.parametrize("lacking", [(), ("tagged", "tag_error")], ids=["v1", "pre-release"])
def test_an_index_from_before_the_mark_is_read_as_is_and_migrated_when_written(
    tmp_path: Path, lacking: tuple[str, ...]
) -> None:
    db = tmp_path / "index.sqlite3"
    write_v1_index(db, rows=2, lacking=lacking)
    before = folder_state(tmp_path)
    with Index(db, read_only=True) as index:
        assert inspect_index(db, write=False) == 1
        rows = list(index.rows())
        assert [r.path for r in rows] == ["/music/0.flac", "/music/1.flac"]
        assert rows[0].tagged is None and rows[0].error == "cannot decode"
        with pytest.raises(IndexWriteError, match="cannot write to it"):
            index.upsert(full_row())
    assert folder_state(tmp_path) == before  # reading changed nothing
    with Index(db) as index:
        backup = tmp_path / "index.sqlite3.bak-v1"
        assert index.migration == Migration(db, 1, SCHEMA_VERSION, backup)
        index.upsert(full_row())
        assert index.get("/music/a.mp3") == full_row() and index.count() == 3
    assert inspect_index(db, write=True) == SCHEMA_VERSION
    with Index(backup, read_only=True) as old:  # the copy is the index as it was
        assert [r.path for r in old.rows()] == ["/music/0.flac", "/music/1.flac"]
    with Index(db) as index:
        assert index.migration is None


def test_a_migrated_index_keeps_every_row_and_takes_silent_and_uncertain_rows(
    tmp_path: Path,
) -> None:
    db = tmp_path / "index.sqlite3"
    write_v1_index(db, rows=3)
    with Index(db) as index:
        assert index.migration is not None and index.migration.from_version == 1
        kept = list(index.rows())
        assert [(r.path, r.status, r.error, r.size) for r in kept] == [
            (f"/music/{i}.flac", "error", "cannot decode", 100 + i) for i in range(3)
        ]
        silent = full_row("/music/quiet.flac", status="silent", error="silent (-75 LUFS)",
                          quadrant=None, mood=None, uncertain=None)  # fmt: skip
        index.upsert(silent)
        index.upsert(full_row(uncertain=1, mood=None))
        assert index.get("/music/quiet.flac") == silent
        assert index.get("/music/a.mp3") == full_row(uncertain=1, mood=None)
    with pytest.raises(sqlite3.IntegrityError):  # the CHECK still guards the statuses
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("UPDATE tracks SET status = 'maybe'")


def test_a_backup_never_replaces_an_older_backup(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    write_v1_index(db)
    (tmp_path / "index.sqlite3.bak-v1").write_text("the user's own copy\n")
    with Index(db) as index:
        assert index.migration is not None
        assert index.migration.backup == tmp_path / "index.sqlite3.bak-v1-2"
    assert (tmp_path / "index.sqlite3.bak-v1").read_text() == "the user's own copy\n"
    assert not list(tmp_path.glob("*.partial"))


def _open_index(db: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    Index(Path(db)).close()


def test_two_processes_opening_an_old_index_migrate_it_once(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    write_v1_index(db, rows=50)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_open_index, args=(str(db), barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(p.name for p in tmp_path.glob("*.bak*")) == ["index.sqlite3.bak-v1"]
    with Index(db, read_only=True) as index:
        assert index.count() == 50


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        (lambda c: c.execute("PRAGMA application_id = 1"), NotAnIndex, "application_id 0x0000"),
        (lambda c: c.execute("CREATE TABLE songs (x)"), NotAnIndex, "(tables songs)"),
        (
            lambda c: c.executescript("CREATE TABLE meta (k); CREATE TABLE tracks (p)"),
            NotAnIndex,
            "other columns in its tables meta, tracks",
        ),
        (lambda c: c.execute("PRAGMA user_version = 3"), NotAnIndex, "(no tables)"),
    ],
    ids=["application-id", "other-tables", "lookalike", "no-tables"],
)
def test_another_database_is_refused_by_every_open_and_left_as_it_is(
    tmp_path: Path,
    setup,
    error,
    message,  # type: ignore[no-untyped-def]
) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    setup(conn)
    conn.commit()
    conn.close()
    before = folder_state(tmp_path)
    for open_it in (
        lambda: inspect_index(db, write=True),
        lambda: Index(db),
        lambda: Index(db, read_only=True),
    ):
        with pytest.raises(error, match=re.escape(message)):
            open_it()
        assert folder_state(tmp_path) == before


def test_an_index_in_use_when_deleted_refuses_the_next_write(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    with Index(db) as index:
        index.upsert(full_row("/m/1.mp3"))
        db.unlink()
        with pytest.raises(IndexWriteError, match="deleted while in use"):
            index.upsert(full_row("/m/2.mp3"))
        with pytest.raises(IndexWriteError, match="deleted while in use"):
            index.delete(["/m/1.mp3"])


def test_an_empty_file_becomes_an_index_and_reads_as_none_yet(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    db.touch()
    with pytest.raises(IndexMissing, match="empty file: no index yet"):
        Index(db, read_only=True)
    with pytest.raises(IndexMissing, match="no index yet"):
        Index(tmp_path / "absent.sqlite3", read_only=True)
    assert not (tmp_path / "absent.sqlite3").exists()
    with Index(db) as index:
        assert index.count() == 0 and index.migration is None
