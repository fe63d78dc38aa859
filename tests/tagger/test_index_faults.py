"""Trouble with the index file, through the real CLI on real SQLite files: another program's
database is refused and left byte-identical; a read-only index can still be listed; an older one
is migrated after a backup; every fault is one line and a defined exit, never a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mertag.tagger.cli import app
from mertag.tagger.index import APPLICATION_ID, SCHEMA_VERSION, Index, IndexRow
from mertag.tagger.scan import run_scan
from tests.tagger.fault_helpers import (
    REPO,
    check_index,
    make_library,
    mertag_command,
    run_obeying_permissions,
    start_scan,
)
from tests.tagger.index_files import folder_state, sha, write_newer_index, write_v1_index
from tests.tagger.onnx_models import linear_model, linear_scan

runner = CliRunner()
READING = (["list"], ["stats"], ["export"])


def run(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result: Result, *fragments: str) -> str:
    """The result's stderr is one line, mertag's error, naming every fragment; no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mertag: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linear_model(tmp_path_factory.mktemp("model") / "m.onnx")


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    make_library(tmp_path / "lib", ["a.wav", "b.flac"])
    return tmp_path / "lib"


def scan(lib: Path, index: Path, model: Path, *extra: str) -> Result:
    return run("scan", lib, "--index", index, "--model", model, "-j", "1", *extra)


# -- another program's database ----------------------------------------------------------------


def player_db_in_use(folder: Path) -> tuple[Path, sqlite3.Connection]:
    """A music player's library database with its own `tracks` table, open in WAL mode with
    committed rows still in its -wal (the player is running)."""
    db = folder / "player.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE tracks (id INTEGER PRIMARY KEY, path TEXT, rating INTEGER)")
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.execute("INSERT INTO tracks (path, rating) VALUES ('/music/a.flac', 5)")
    assert (folder / "player.db-wal").stat().st_size > 0
    return db, conn


def foreign_files(kind: str, folder: Path) -> tuple[Path, sqlite3.Connection | None]:
    db = folder / f"{kind}.db"
    if kind == "player-in-use":
        return player_db_in_use(folder)
    conn = sqlite3.connect(db)
    if kind == "application-id":  # a marked database of another program, in a rollback journal
        conn.execute("PRAGMA application_id = 0x0F055112")
        conn.execute("CREATE TABLE tracks (path TEXT)")
    elif kind == "lookalike":  # our two tables, but not ours: no schema_version
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE tracks (path TEXT, size INTEGER)")
    elif kind == "no-tables":  # another program's fresh database, nothing in it yet
        conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    return db, None


@pytest.mark.parametrize("kind", ["player-in-use", "application-id", "lookalike", "no-tables"])
def test_another_programs_database_is_refused_and_left_byte_identical(
    tmp_path: Path, lib: Path, model: Path, kind: str
) -> None:
    folder = tmp_path / "player"
    folder.mkdir()
    db, player = foreign_files(kind, folder)
    try:
        before = folder_state(folder)
        tracks_before = {p: sha(p) for p in lib.iterdir()}
        for args in [
            ["scan", lib, "--index", db, "--model", model, "-j", "1"],
            ["scan", lib, "--index", db, "--model", model, "--dry-run"],
            ["scan", lib, "--index", db, "--model", model, "--no-write"],
            *([*a, "--index", db] for a in READING),
            ["prune", "--index", db],
            ["untag", lib, "--index", db],
        ]:
            result = run(*args)
            assert result.exit_code == 2, (args, result.output)
            one_error_line(result, f"{db.name}: not a mertag index: another program's")
            assert folder_state(folder) == before, args  # no byte changed, no file added
        assert {p: sha(p) for p in lib.iterdir()} == tracks_before  # refused before any work
    finally:
        if player is not None:
            player.close()
    if player is not None:  # the player's rows are all there, its table untouched by us
        conn = sqlite3.connect(db)
        assert conn.execute("SELECT path, rating FROM tracks").fetchall() == [("/music/a.flac", 5)]
        assert conn.execute("PRAGMA application_id").fetchone() == (0,)
        conn.close()


def test_a_garbage_file_is_not_a_database(tmp_path: Path, lib: Path, model: Path) -> None:
    index = tmp_path / "index.sqlite3"
    index.write_bytes(os.urandom(3000))
    before = folder_state(tmp_path)
    for args in (["scan", lib, "--index", index, "--model", model], *READING):
        result = run(*args) if args[0] == "scan" else run(*args, "--index", index)
        assert result.exit_code == 2, result.output
        one_error_line(result, "index.sqlite3: not a mertag index: file is not a database")
        assert folder_state(tmp_path) == before


@pytest.mark.parametrize("kind", ["/dev/null", "fifo", "folder"])
def test_an_index_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, lib: Path, model: Path, kind: str
) -> None:
    if kind == "/dev/null":
        index, what = Path("/dev/null"), "a character device, not a file"
    elif kind == "fifo":
        index, what = tmp_path / "index.fifo", "a named pipe, not a file"
        os.mkfifo(index)
    else:
        index, what = tmp_path / "dir.sqlite3", "a folder, not a file"
        index.mkdir()
    dev_before = set(os.listdir("/dev"))
    tmp_before = set(os.listdir(tmp_path))
    for args in (["scan", lib, "--index", index, "--model", model], *READING):
        result = run(*args) if args[0] == "scan" else run(*args, "--index", index)
        assert result.exit_code == 2, result.output
        one_error_line(result, f"{index}: not a mertag index: {what}")
    assert set(os.listdir("/dev")) == dev_before  # no /dev/null.lock, no /dev/null-journal
    assert set(os.listdir(tmp_path)) == tmp_before


def test_an_index_under_a_file_is_refused(tmp_path: Path, lib: Path, model: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    index = tmp_path / "notes.txt" / "deeper" / "index.sqlite3"
    result = scan(lib, index, model)
    assert result.exit_code == 2, result.output
    one_error_line(result, "cannot be created:", "notes.txt is a file, not a folder")
    result = run("list", "--index", index)
    assert result.exit_code == 2
    one_error_line(result, "notes.txt is a file, not a folder")
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder\n"


def proc_index() -> Path:
    """An index path in /proc, where not even root can create its lock file; skips elsewhere."""
    index = Path(f"/proc/mertag-test-{os.getpid()}.sqlite3")
    try:
        os.close(os.open(f"{index}.lock", os.O_RDWR | os.O_CREAT, 0o644))
    except OSError:
        return index
    os.unlink(f"{index}.lock")
    pytest.skip("this /proc takes new files: the lock file would not fail there")


@pytest.mark.parametrize("where", ["lock-is-a-folder", "proc"])
def test_a_lock_file_that_cannot_be_made_is_one_line_not_a_wait(
    tmp_path: Path, lib: Path, model: Path, where: str
) -> None:
    """Only a lock another scan holds means waiting; a lock file that cannot be created or locked
    is one line naming the index and why, exit 2 (it was: 'in use by another scan; waiting',
    forever). A subprocess, so a wait fails the test instead of hanging it."""
    if where == "proc":
        index, reason = proc_index(), "No such file or directory"
    else:
        index, reason = tmp_path / "index.sqlite3", "Is a directory"
        Path(f"{index}.lock").mkdir()
    done = subprocess.run(
        mertag_scan(lib, index, model), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"mertag: error: {index}: cannot create its scan lock {index}.lock: {reason}"
    ]
    assert not index.exists()


def test_write_says_in_one_line_that_it_cannot_lock_the_index(
    tmp_path: Path, lib: Path, model: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    assert scan(lib, index, model, "--no-write").exit_code == 0
    lock = Path(f"{index}.lock")
    lock.unlink()
    lock.mkdir()
    before = folder_state(lib)
    result = run("write", "--index", index)
    assert result.exit_code == 2, result.output
    one_error_line(result, f"{index}: cannot create its scan lock {lock}: Is a directory")
    assert folder_state(lib) == before  # no tag written without the lock


READ_ONLY_COMMANDS = (
    *READING,
    ["show", "."],
    ["playlist", "--out", "{out}/playlists"],
    ["playlist", "--journey", "sad", "happy", "--out", "{out}/j.m3u8"],
    ["map", "--out", "{out}/map.html"],
    ["write", "--dry-run"],
    ["prune", "--dry-run"],
)


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_a_command_that_reads_creates_nothing_when_there_is_no_index(
    tmp_path: Path, command: list[str]
) -> None:
    """No folder, no lock file, no database, no output: just 'no index yet' (exit 2)."""
    out = tmp_path / "out"
    out.mkdir()
    index = tmp_path / "not-yet" / "deeper" / "index.sqlite3"
    args = [a.replace("{out}", str(out)) for a in command]
    result = run(*args, "--index", index)
    assert result.exit_code == 2, result.output
    one_error_line(result, f"{index}: no index yet (run `mertag scan` first)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert list(out.iterdir()) == []
    index.parent.mkdir(parents=True)  # the folder is there, the index not: still nothing made
    assert run(*args, "--index", index).exit_code == 2
    assert list(index.parent.iterdir()) == [] and list(out.iterdir()) == []


# -- read-only indexes -------------------------------------------------------------------------


def read_back(index: Path) -> None:
    """list, stats and export read the index: exit 0 and both tracks there."""
    for args in READING:
        result = run(*args, "--index", index)
        assert result.exit_code == 0, (args, result.output)
        assert result.stderr == ""
        assert "a.wav" in result.stdout or "2" in result.stdout
    export = run("export", "--index", index, "--format", "json")
    assert export.stdout.count('"path"') == 2


def test_a_read_only_file_system_refuses_a_scan_and_still_reads(
    tmp_path: Path, tmpfs: Path, lib: Path, model: Path
) -> None:
    index = tmpfs / "index.sqlite3"
    assert scan(lib, index, model, "--no-write").exit_code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    before = folder_state(tmpfs)
    result = scan(lib, index, model, "--force")
    assert result.exit_code == 2, result.output
    one_error_line(result, "index.sqlite3: on a read-only file system: a scan cannot record")
    read_back(index)
    assert scan(lib, index, model, "--dry-run", "-q").exit_code == 0
    assert folder_state(tmpfs) == before
    new = tmpfs / "new.sqlite3"
    result = scan(lib, new, model)
    assert result.exit_code == 2
    one_error_line(result, "new.sqlite3: cannot be created:", "is read-only")


def test_reading_creates_no_side_file_and_keeps_the_journal_mode(
    tmp_path: Path, lib: Path, model: Path
) -> None:
    index = tmp_path / "idx" / "index.sqlite3"
    assert scan(lib, index, model, "--no-write").exit_code == 0
    before = folder_state(index.parent)
    files = ["index.sqlite3", "index.sqlite3.lock"]
    assert list(before) == files  # closed cleanly: no -wal, no -shm
    read_back(index)
    assert folder_state(index.parent) == before
    # While a scan holds the index (its -wal and -shm exist), reading sees its latest rows.
    writer = Index(index)
    writer.upsert(IndexRow(path="/music/new.flac", size=1, mtime_ns=2, status="error", error="x"))
    export = run("export", "--index", index, "--format", "json")
    assert export.exit_code == 0 and "/music/new.flac" in export.stdout
    writer.close()
    assert list(folder_state(index.parent)) == files
    conn = sqlite3.connect(index)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_a_read_only_or_immutable_index_file_refuses_a_scan_and_still_reads(
    tmp_path: Path, lib: Path, model: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs without root's permission override and uses chattr: needs root")
    index = tmp_path / "index.sqlite3"
    assert scan(lib, index, model, "--no-write").exit_code == 0
    index.chmod(0o444)
    before = folder_state(tmp_path)
    done = run_obeying_permissions([*mertag_scan(lib, index, model), "--force"], timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"mertag: error: {index}: read-only file (permission denied): a scan cannot record its "
        "results in it (list, stats and export can read it)"
    ]
    assert folder_state(tmp_path) == before
    index.chmod(0o644)
    if subprocess.run(["chattr", "+i", str(index)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not take chattr +i")
    try:
        result = scan(lib, index, model, "--force")
        assert result.exit_code == 2, result.output
        one_error_line(result, "index.sqlite3: immutable or append-only (chattr +i/+a)")
        read_back(index)
        assert folder_state(tmp_path) == before
    finally:
        subprocess.run(["chattr", "-i", str(index)], check=True)


def mertag_scan(lib: Path, index: Path, model: Path) -> list[str]:
    return [*mertag_command(), "scan", str(lib), "--index", str(index), "--model", str(model)]


# -- schema versions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkpoint", "lacking"),
    [(True, ()), (False, ()), (True, ("tagged", "tag_error"))],
    ids=["closed", "killed-before-checkpoint", "pre-release-columns"],
)
def test_an_older_index_is_read_as_is_and_migrated_by_a_scan_after_a_backup(
    tmp_path: Path, lib: Path, model: Path, checkpoint: bool, lacking: tuple[str, ...]
) -> None:
    index = tmp_path / "idx" / "index.sqlite3"
    index.parent.mkdir()
    write_v1_index(index, rows=3, checkpoint=checkpoint, lacking=lacking)
    before = folder_state(index.parent)
    export = run("export", "--index", index, "--format", "json")  # read as it is
    assert export.exit_code == 0, export.output
    assert export.stdout.count('"path"') == 3
    after = folder_state(index.parent)
    if not checkpoint:  # reading a log rebuilds SQLite's shared-memory index, a scratch file
        del before["index.sqlite3-shm"], after["index.sqlite3-shm"]
    assert after == before
    result = scan(lib, index, model, "--no-write")
    assert result.exit_code == 0, result.output
    backup = index.parent / "index.sqlite3.bak-v1"
    assert result.stderr.splitlines()[0] == (
        f"mertag: {index}: migrated the index from schema v1 to v{SCHEMA_VERSION}; "
        f"the old one is kept as {backup}"
    )
    rows = check_index(index)
    assert {f"/music/{i}.flac" for i in range(3)} <= set(rows) and len(rows) == 5
    conn = sqlite3.connect(index)
    assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
    assert conn.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
    conn.close()
    old = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)  # the backup: v1, as it was
    assert old.execute("PRAGMA application_id").fetchone() == (0,)
    assert old.execute("SELECT value FROM meta").fetchall() == [("1",)]
    assert old.execute("SELECT COUNT(*) FROM tracks").fetchone() == (3,)
    old.close()
    again = scan(lib, index, model, "--no-write", "--force")  # migrated once only
    assert again.exit_code == 0 and "migrated" not in again.stderr
    assert sorted(p.name for p in index.parent.iterdir() if "bak" in p.name) == [backup.name]


def test_untag_on_an_older_index_says_it_migrated_it(tmp_path: Path, lib: Path) -> None:
    """untag writes to the index it is given, so an older one is migrated first (after its
    backup), and the command says so in one line, as a scan does."""
    index = tmp_path / "idx" / "index.sqlite3"
    index.parent.mkdir()
    write_v1_index(index, rows=3)
    result = run("untag", lib, "--index", index)
    assert result.exit_code == 0, result.output
    backup = index.parent / "index.sqlite3.bak-v1"
    assert result.stderr.splitlines()[0] == (
        f"mertag: {index}: migrated the index from schema v1 to v{SCHEMA_VERSION}; "
        f"the old one is kept as {backup}"
    )
    assert backup.is_file()
    again = run("untag", lib, "--index", index)
    assert again.exit_code == 0 and "migrated" not in again.stderr


def test_a_newer_index_is_refused_and_left_as_it_is(tmp_path: Path, lib: Path, model: Path) -> None:
    index = tmp_path / "index.sqlite3"
    write_newer_index(index, 99)
    before = folder_state(tmp_path)
    for args in (["scan", lib, "--index", index, "--model", model], *READING):
        result = run(*args) if args[0] == "scan" else run(*args, "--index", index)
        assert result.exit_code == 2, result.output
        one_error_line(result, "written by a newer mertag (index schema v99", "upgrade mertag")
        assert folder_state(tmp_path) == before


# -- faults in the middle of a scan ------------------------------------------------------------


def test_a_full_disk_stops_the_scan_with_its_summary_and_keeps_every_finished_row(
    tmp_path: Path, tmpfs: Path, model: Path
) -> None:
    names = [f"{i:02d}.wav" for i in range(8)]
    make_library(tmp_path / "lib", names)
    index = tmpfs / "index.sqlite3"
    Index(index).close()
    # Leave room for a few rows only: each commits a page or two to the write-ahead log.
    fs = os.statvfs(tmpfs)
    room = 32768 + 6 * 4096  # its -shm (32 kB), then a few pages
    (tmpfs / "filler").write_bytes(b"\1" * (fs.f_bavail * fs.f_frsize - room))
    result = scan(tmp_path / "lib", index, model, "--no-write", "-v")
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("mertag: error:")]
    assert line == (
        f"mertag: error: {index}: cannot write to it: database or disk is full; the scan stopped"
    )
    assert "analysed" in result.stderr  # the summary
    reported = {x.split()[-1] for x in result.stderr.splitlines() if x.startswith("Q")}
    assert 0 < len(reported) < len(names), result.stderr  # stopped midway
    (tmpfs / "filler").unlink()
    rows = check_index(index)
    assert set(rows) == reported  # every finished track kept
    # The JSON summary says why the scan stopped, too.
    (tmpfs / "filler").write_bytes(b"\1" * (os.statvfs(tmpfs).f_bavail * fs.f_frsize - room))
    result = scan(tmp_path / "lib", index, model, "--no-write", "--force", "--format", "json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["index_error"] == line.removeprefix("mertag: error: ")


def test_an_index_deleted_mid_scan_is_noticed(tmp_path: Path, model: Path) -> None:
    names = [f"{i:02d}.wav" for i in range(6)]
    make_library(tmp_path / "lib", names)
    index = tmp_path / "index.sqlite3"
    proc = start_scan(
        [str(tmp_path / "lib"), "--index", str(index), "--model", str(model)]
        + ["-j", "1", "-v", "--no-write"]
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    while first and not first.startswith("Q"):  # the first track's line: its row is committed
        first = proc.stderr.readline()
    index.unlink()
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 1, rest
    errors = [x for x in rest.splitlines() if x.startswith("mertag: error:")]
    assert errors == [
        f"mertag: error: {index}: the index was deleted while in use; the scan stopped"
    ]
    assert "Traceback" not in rest and "analysed" in rest
    assert len([x for x in rest.splitlines() if x.startswith("Q")]) < len(names) - 1


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("deleted", "the index was deleted while in use"),
        ("replaced", "the index was replaced by another file while in use"),
    ],
)
def test_a_scan_whose_index_is_deleted_or_replaced_stops_at_the_next_row(
    tmp_path: Path, model: Path, how: str, reason: str
) -> None:
    lib, index, other = tmp_path / "lib", tmp_path / "index.sqlite3", tmp_path / "other.sqlite3"
    make_library(lib, ["a.wav", "b.flac", "c.wav"])
    Index(other).close()
    options = linear_scan(lib, index, model, write=False)
    seen = []

    def on_outcome(outcome: object) -> None:
        seen.append(outcome)
        if len(seen) == 1:
            index.unlink() if how == "deleted" else os.replace(other, index)

    summary = run_scan(options, on_outcome=on_outcome)
    assert summary.index_error == f"{index}: {reason}; the scan stopped"
    assert summary.analysed == 1 and len(seen) == 1 and not summary.ok
