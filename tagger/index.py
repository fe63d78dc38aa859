"""The SQLite index: one row per track, what was found and whether it was written to the file.

The index makes rescans incremental (a track whose size, mtime and model are unchanged is not
analysed again) and is what `export` reads. Each upsert commits at once, so an interrupted scan
keeps every finished row, and WAL mode with a long busy timeout lets two scans share one index.

Paths are stored in the `path` column as TEXT when their bytes are valid UTF-8 (nearly always, and
readable with the sqlite3 shell) and as a BLOB of the raw bytes otherwise, so undecodable names
(str with surrogateescape) round-trip exactly: SQLite keeps a BLOB a BLOB even in a TEXT column,
and a BLOB never equals a TEXT value, so the mapping is one-to-one.

A file is taken for mertag's index only when it carries mertag's mark (`PRAGMA application_id`
APPLICATION_ID, set when mertag creates it) or is an index from before the mark (mertag's two
tables and schema version 1, nothing else); any other file is refused before anything is
written to it or beside it. An older index is migrated in place after a backup copy is made
beside it; a newer one is refused. Reading (`Index(path, read_only=True)`) opens the file
read-only and never creates a side file, so a read-only index can be listed and exported.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path
from types import TracebackType

from platformdirs import user_data_dir

from mertag.tagger.display import display

SCHEMA_VERSION = 4
"""The index layout this mertag writes; an older index is migrated to it (see `_MIGRATIONS`)."""

APPLICATION_ID = 0x6D657274
"""mertag's mark in the SQLite header of every index it creates (the bytes 'mert')."""

_BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process (a second scan) to release the index."""

STATUSES = ("ok", "error", "silent")
"""ok: analysed, with a mood; error: could not be analysed (`error` says why); silent: (near)
silence, no mood (`error` says how quiet)."""

SnapshotEntry = tuple[int, int, str, str | None]
"""(size, mtime_ns, status, model_id) of one indexed track, as `Index.snapshot` gives it."""

Leftover = tuple[str | None, bool]
"""(why its last result failed, or None; analysed but untagged) of a track, as
`Index.scan_state` gives it."""


def utc_now() -> str:
    """The current time as ISO 8601 UTC to the second, e.g. '2025-01-31T12:00:00+00:00'."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class IndexRow:
    """One track in the index: its file identity, the analysis result and the tag-write outcome.

    `status` is one of STATUSES. `uncertain` is 1 when the confidence was below the model's
    threshold (no mood word, or the uncertain word, was written). `tagged` is 1 when mertag's
    tags are in the file, 0 when they were not written (--no-write, or the write failed, with
    `tag_error` saying why, or `not_tagged` saying why a format mertag cannot tag was left
    alone), None when unknown. `artist`, `album`, `title` and `duration`
    (seconds) are read from the file's tags when it is analysed; `audio_sha256` is the hash of its
    audio stream alone (`tags.audio_fingerprint`), so a file whose tags alone changed since is
    still known to be the audio that was analysed.
    """

    path: str
    size: int
    mtime_ns: int
    status: str
    error: str | None = None
    quadrant: str | None = None
    mood: str | None = None
    p_q1: float | None = None
    p_q2: float | None = None
    p_q3: float | None = None
    p_q4: float | None = None
    valence: float | None = None
    arousal: float | None = None
    confidence: float | None = None
    uncertain: int | None = None
    model_id: str | None = None
    feature_schema: str | None = None
    analysed_at: str = field(default_factory=utc_now)
    tagged: int | None = None
    tag_error: str | None = None
    not_tagged: str | None = None
    artist: str | None = None
    album: str | None = None
    title: str | None = None
    duration: float | None = None
    audio_sha256: str | None = None


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(IndexRow))
"""The index columns in order, path first; also the column order of exports."""

_INT_COLUMNS = frozenset({"size", "mtime_ns", "tagged", "uncertain"})
_FLOAT_COLUMNS = frozenset(
    {"p_q1", "p_q2", "p_q3", "p_q4", "valence", "arousal", "confidence", "duration"}
)

_TRACKS = f"""
CREATE TABLE IF NOT EXISTS tracks (
    path TEXT PRIMARY KEY,  -- TEXT, or a BLOB of the raw bytes when not valid UTF-8
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN {STATUSES!r}),
    error TEXT,
    quadrant TEXT,
    mood TEXT,
    p_q1 REAL,
    p_q2 REAL,
    p_q3 REAL,
    p_q4 REAL,
    valence REAL,
    arousal REAL,
    confidence REAL,
    uncertain INTEGER CHECK (uncertain IN (0, 1)),
    model_id TEXT,
    feature_schema TEXT,
    analysed_at TEXT NOT NULL,
    tagged INTEGER CHECK (tagged IN (0, 1)),
    tag_error TEXT,
    not_tagged TEXT,
    artist TEXT,
    album TEXT,
    title TEXT,
    duration REAL,
    audio_sha256 TEXT
)"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
{_TRACKS};
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
PRAGMA application_id = {APPLICATION_ID};
"""


def _rebuild_tracks(conn: sqlite3.Connection) -> None:
    """Copy the tracks table into the current layout: SQLite changes a CHECK constraint (the
    statuses) only so. Every column both layouts have keeps its values."""
    present = _columns(conn, "tracks")
    conn.execute(_TRACKS.replace("IF NOT EXISTS tracks", "tracks_new", 1))
    kept = ", ".join(c for c in COLUMNS if c in present)
    conn.execute(f"INSERT INTO tracks_new ({kept}) SELECT {kept} FROM tracks")
    conn.execute("DROP TABLE tracks")
    conn.execute("ALTER TABLE tracks_new RENAME TO tracks")


_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None] | None] = {
    1: None,  # v1 -> v2: only the application_id mark, which every migration sets
    2: _rebuild_tracks,  # v2 -> v3: status 'silent', column uncertain
    3: None,  # v3 -> v4: not_tagged, artist, album, title, duration, audio_sha256 (empty columns)
}
"""version -> what takes an index from it to the next version (None: nothing beyond the
columns `_add_missing_columns` adds). A migration also sets the mark and the schema version; add
the next one here when the layout changes."""

_V1_TABLES = frozenset({"meta", "tracks"})
"""The tables of an index written before the mark: it is recognised by them alone."""

_REQUIRED_COLUMNS = ("path", "size", "mtime_ns", "status", "analysed_at")
"""Columns every schema version has; a column added later reads as NULL from an older index."""

_UPSERT = (
    f"INSERT OR REPLACE INTO tracks ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


class IndexFileError(Exception):
    """The index file cannot be used; the message names the file and says why, in one line."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{display(path)}: {reason}")
        self.path = Path(path)
        self.reason = reason


class NotAnIndex(IndexFileError):
    """The file is not mertag's index (another program's database, garbage, not a file); nothing
    was written to it or beside it."""


class IndexVersionError(IndexFileError):
    """The index was written by a newer mertag, with a schema this one does not know."""


class IndexMissing(IndexFileError):
    """There is no index to read yet (no file, or an empty one)."""


class IndexUnavailable(IndexFileError):
    """The index cannot be opened as asked: read-only, immutable, unreachable, or its folder
    cannot hold it."""


class IndexWriteError(IndexFileError):
    """A write to an open index failed (disk full, I/O error, the file deleted or replaced);
    every row committed before is kept, unless the file itself is gone."""


@dataclass(frozen=True)
class Migration:
    """An older index brought to SCHEMA_VERSION; `backup` is the copy made before."""

    path: Path
    from_version: int
    to_version: int
    backup: Path

    def __str__(self) -> str:
        return (
            f"{display(self.path)}: migrated the index from schema v{self.from_version} to "
            f"v{self.to_version}; the old one is kept as {display(self.backup)}"
        )


def default_index_path() -> Path:
    """Where the index lives unless the user says otherwise: the user data dir of mertag."""
    return Path(user_data_dir("mertag")) / "index.sqlite3"


def _to_db(path: str) -> str | bytes:
    """The stored form of a path: itself when its bytes are UTF-8, else the raw bytes."""
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _from_db(value: str | bytes) -> str:
    """The path back from its stored form (see `_to_db`)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _row(values: tuple[object, ...]) -> IndexRow:
    row = IndexRow(*values)  # type: ignore[arg-type]
    row.path = _from_db(values[0])  # type: ignore[arg-type]
    return row


def _coerce(row: IndexRow) -> tuple[object, ...]:
    """The row as SQL parameters, numpy scalars turned into plain int and float."""
    if row.status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {row.status!r}")
    out: list[object] = []
    for name in COLUMNS:
        value = getattr(row, name)
        if value is not None and name in _INT_COLUMNS:
            value = int(value)
        elif value is not None and name in _FLOAT_COLUMNS:
            value = float(value)
        out.append(value)
    out[0] = _to_db(row.path)
    return tuple(out)


def needs_analysis(
    entry: SnapshotEntry | None,
    size: int,
    mtime_ns: int,
    model_ids: frozenset[str],
    *,
    force: bool,
    retry_failed: bool,
) -> bool:
    """Whether a track must be analysed, given its snapshot entry (None if not indexed).

    A file whose size or mtime changed is always analysed again. An unchanged file is skipped
    when its row is ok with one of `model_ids` (the scan's model, and the one it hands tracks
    heard as snippets to); a failed row stays skipped while the file is unchanged (re-failing
    every scan is wasted work) unless `retry_failed`; `force` re-analyses everything.
    """
    if force or entry is None:
        return True
    old_size, old_mtime_ns, status, old_model_id = entry
    if old_size != size or old_mtime_ns != mtime_ns:
        return True
    if status != "ok":
        return retry_failed
    return old_model_id not in model_ids


_SQLITE_MAGIC = b"SQLite format 3\x00"
_NOT_A_DATABASE = "not a mertag index: file is not a database"
_READ_ONLY_USE = "a scan cannot record its results in it (list, stats and export can read it)"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _absent_place(path: Path, write: bool) -> None:
    """For an index not there yet: raise unless a scan could create it (its nearest existing
    folder is a writable folder on a writable file system)."""
    folder = Path(os.path.abspath(path)).parent
    while True:
        try:
            st = os.stat(folder)
            break
        except (FileNotFoundError, NotADirectoryError):
            folder = folder.parent
        except OSError as exc:
            raise IndexUnavailable(path, f"cannot reach it: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        where = "cannot be created" if write else "no index here"
        raise IndexUnavailable(path, f"{where}: {display(folder)} is a file, not a folder")
    if not write:
        raise IndexMissing(path, "no index yet (run `mertag scan` first)")
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise IndexUnavailable(path, f"cannot be created: {display(folder)} is read-only")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise IndexUnavailable(path, f"cannot be created: {display(folder)} is not writable")


def _writable(path: Path) -> None:
    """Raise unless the existing index file and its folder can be written (SQLite keeps its
    journal and write-ahead log beside the index). Opening the file for writing writes nothing."""
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        raise IndexUnavailable(path, f"on a read-only file system: {_READ_ONLY_USE}")
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError as exc:
        reason = {
            errno.EPERM: "immutable or append-only (chattr +i/+a)",
            errno.EACCES: "read-only file (permission denied)",
            errno.EROFS: "on a read-only file system",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise IndexUnavailable(path, f"{reason}: {_READ_ONLY_USE}") from exc
    folder = Path(os.path.abspath(path)).parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise IndexUnavailable(
            path, f"its folder is not writable (SQLite writes its journal there): {_READ_ONLY_USE}"
        )


def _header(path: Path) -> bytes | None:
    """The SQLite header of the file at `path`: None for an empty file (which may become an
    index); NotAnIndex when the file is not an SQLite database or is not a file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexUnavailable(path, f"cannot reach it: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise NotAnIndex(path, f"not a mertag index: {_kind(st.st_mode)}, not a file")
    if st.st_size == 0:
        return None
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise IndexUnavailable(path, f"cannot read it: {exc.strerror}") from exc
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise NotAnIndex(path, _NOT_A_DATABASE)
    app_id = int.from_bytes(header[68:72], "big")
    if app_id not in (0, APPLICATION_ID):
        raise NotAnIndex(path, _foreign(f"application_id {app_id:#010x}"))
    return header


def _foreign(what: str) -> str:
    return f"not a mertag index: another program's SQLite database ({what}); left as it is"


def _connect_read_only(path: Path, *, immutable: bool) -> sqlite3.Connection:
    """A read-only connection; `immutable` also takes no locks and reads no side file, so it
    creates none (for a file that no connection writes to at the moment)."""
    uri = Path(os.path.abspath(path)).as_uri() + (
        "?mode=ro&immutable=1" if immutable else "?mode=ro"
    )
    return sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None)


def _identify(conn: sqlite3.Connection, path: Path) -> int | None:
    """The schema version of the mertag index on `conn`; None for an empty database (no tables,
    no mark); NotAnIndex for anything else, IndexVersionError for a newer mertag's index."""
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    if app_id not in (0, APPLICATION_ID):
        raise NotAnIndex(path, _foreign(f"application_id {app_id:#010x}"))
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if app_id == 0 and not tables:
        return None

    def refuse(what: str) -> NotAnIndex:
        if app_id == 0:  # no mark: someone else's database that merely looks like ours
            return NotAnIndex(path, _foreign(what))
        return NotAnIndex(path, f"not a mertag index: it has mertag's mark but {what} (damaged?)")

    # Without the mark, only exactly the tables of a v1 index; with it, at least those.
    if not (tables == _V1_TABLES if app_id == 0 else _V1_TABLES <= tables):
        shown = ", ".join(sorted(tables)[:4]) + (", ..." if len(tables) > 4 else "")
        raise refuse(f"tables {shown}" if tables else "no tables")
    meta_ok = {"key", "value"} <= _columns(conn, "meta")
    if not meta_ok or not set(_REQUIRED_COLUMNS) <= _columns(conn, "tracks"):
        raise refuse("other columns in its tables meta, tracks")
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(found[0])
    except (TypeError, ValueError):
        raise refuse("no schema_version in its meta table") from None
    if app_id == 0 and version != 1:
        raise refuse(f"schema_version {found[0]!r} in its meta table")
    if version > SCHEMA_VERSION:
        raise IndexVersionError(
            path,
            f"written by a newer mertag (index schema v{version}; this mertag knows up to "
            f"v{SCHEMA_VERSION}): upgrade mertag, or use another --index",
        )
    return version


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _has_wal(path: Path) -> bool:
    """Whether the index has a write-ahead log with frames in it (and its shared-memory file),
    that is, committed rows that may not be in the main file yet."""
    try:
        return os.stat(f"{path}-wal").st_size > 32 and os.path.exists(f"{path}-shm")
    except OSError:
        return False


def _probe(path: Path) -> int | None:
    """Identify the file at `path` without writing anything to it or beside it: the header, then
    the tables through an immutable connection (no locks, no side files)."""
    header = _header(path)
    if header is None:
        return None
    try:
        conn = _connect_read_only(path, immutable=True)
        try:
            version = _identify(conn, path)
        finally:
            conn.close()
        if version is None and _has_wal(path):
            version = _identify_copy(path)
    except sqlite3.Error as exc:
        raise _read_error(path, exc) from exc
    except OSError as exc:  # the copy
        raise IndexUnavailable(path, f"cannot read it: {exc.strerror or exc}") from exc
    if version is None:
        raise NotAnIndex(path, _foreign("no tables"))
    return version


def _identify_copy(path: Path) -> int | None:
    """Identify a file whose tables are only in its write-ahead log (an index from before the
    mark whose scan was killed early) on a copy, since reading the log writes to its -shm."""
    with tempfile.TemporaryDirectory(prefix="mertag-probe-") as tmp:
        copy = Path(tmp) / "probe.sqlite3"
        shutil.copyfile(path, copy)
        shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        conn = _connect_read_only(copy, immutable=False)
        try:
            return _identify(conn, path)
        finally:
            conn.close()


def _read_error(path: Path, exc: sqlite3.Error) -> IndexFileError:
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return NotAnIndex(path, _NOT_A_DATABASE)
    return IndexFileError(path, f"cannot read it: {exc}")


def inspect_index(path: Path, *, write: bool) -> int | None:
    """The schema version of the mertag index at `path`, or None when there is none yet (no file,
    or an empty one) and `write` says one may be created. Writes nothing anywhere.

    Raises NotAnIndex for any file that is not mertag's index, IndexVersionError for a newer
    mertag's, IndexMissing when there is nothing to read, and (with `write`) IndexUnavailable
    when a scan could not write there (read-only, immutable, a parent that is a file).
    """
    path = Path(path)
    if not os.path.exists(path):
        if os.path.islink(path):
            raise IndexUnavailable(path, "a broken symlink")
        _absent_place(path, write)
        return None
    version = _probe(path)
    if version is None and not write:
        raise IndexMissing(path, "empty file: no index yet (run `mertag scan` first)")
    if write:
        _writable(path)
    return version


def upgrade_index(path: Path) -> Migration | None:
    """Migrate an older index at `path` in place, after a backup copy beside it; None when there
    is nothing to migrate (current, or no index yet). Refuses what `inspect_index` refuses."""
    version = inspect_index(path, write=True)
    if version is None or version == SCHEMA_VERSION:
        return None
    with Index(path) as index:
        return index.migration


def _free_name(path: Path) -> Path:
    """`path`, or the first of `path-2`, `path-3`, ... that does not exist."""
    candidate, n = path, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _backup(path: Path, version: int) -> Path:
    """Copy the index as it is to '<index>.bak-v<version>' beside it, through a second read-only
    connection: the caller holds the write lock, so no write can slip in between."""
    target = _free_name(path.with_name(f"{path.name}.bak-v{version}"))
    partial = target.with_name(f"{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        source = _connect_read_only(path, immutable=False)
        try:
            dest = sqlite3.connect(partial)
            try:
                source.backup(dest)
                # A plain rollback-journal file: opening it read-only makes no side file.
                dest.execute("PRAGMA journal_mode = DELETE")
            finally:
                dest.close()
        finally:
            source.close()
        os.rename(partial, target)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise IndexUnavailable(
            path, f"cannot migrate it from schema v{version}: the backup copy failed: {reason}"
        ) from exc
    return target


def _migrate(conn: sqlite3.Connection, path: Path, version: int) -> Migration:
    """Bring the index on `conn` (inside its write transaction) from `version` to SCHEMA_VERSION,
    after a backup copy."""
    backup = _backup(path, version)
    for step in range(version, SCHEMA_VERSION):
        change = _MIGRATIONS[step]
        if change is not None:
            change(conn)
    _add_missing_columns(conn)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    return Migration(path, version, SCHEMA_VERSION, backup)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Add (empty) every column of the current layout that the index lacks, so a new nullable
    column needs no migration statement of its own, and an index from a pre-release works."""
    template = sqlite3.connect(":memory:")
    try:
        template.executescript(_SCHEMA)
        wanted = [(row[1], row[2]) for row in template.execute("PRAGMA table_info(tracks)")]
    finally:
        template.close()
    present = _columns(conn, "tracks")
    for name, declared_type in wanted:
        if name not in present:
            conn.execute(f"ALTER TABLE tracks ADD COLUMN {name} {declared_type}")


def _select(conn: sqlite3.Connection) -> str:
    """The row query for this file: a column an older schema lacks reads as NULL."""
    present = _columns(conn, "tracks")
    columns = [c if c in present else f"NULL AS {c}" for c in COLUMNS]
    return f"SELECT {', '.join(columns)} FROM tracks"


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


class Index:
    """An open index file; use as a context manager, or call `close`.

    `Index(path)` opens for writing: it creates the index when there is none, migrates an
    older one (`migration` then says so) and refuses any other file (see `inspect_index`).
    `Index(path, read_only=True)` only reads, through a read-only connection, and creates no
    file; it reads older schemas as they are.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.migration: Migration | None = None
        self._stamp: tuple[int, int, int] | None = None  # set when reading without locks
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        if read_only:
            self._conn = self._open_read_only()
        else:
            self._conn = self._open_for_writing()
        try:
            self._select = _select(self._conn)
        except sqlite3.Error as exc:
            self._conn.close()
            raise _read_error(self.path, exc) from exc

    def _open_read_only(self) -> sqlite3.Connection:
        inspect_index(self.path, write=False)
        header = _header(self.path)
        # A WAL index without its side files has no writer: read it without locks, which
        # would create them. A writer starting meanwhile is caught by `_check_unchanged`.
        immutable = header is not None and header[18] == 2 and not _has_wal(self.path)
        try:
            conn = self._connect_read_only(immutable)
        except sqlite3.Error as exc:
            if immutable:
                raise _read_error(self.path, exc) from exc
            # A log left on a read-only file system cannot be read through its -shm there.
            immutable = True
            try:
                conn = self._connect_read_only(immutable)
            except sqlite3.Error as exc:
                raise _read_error(self.path, exc) from exc
        if immutable:
            self._stamp = _stamp(self.path)
        return conn

    def _connect_read_only(self, immutable: bool) -> sqlite3.Connection:
        conn = _connect_read_only(self.path, immutable=immutable)
        try:
            _identify(conn, self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_for_writing(self) -> sqlite3.Connection:
        inspect_index(self.path, write=True)  # refuses before anything is written
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: each write below is its own explicit transaction.
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise IndexUnavailable(self.path, f"cannot open it: {reason}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            self._set_up(conn)
            _set_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            st = os.stat(self.path)
        except sqlite3.Error as exc:
            conn.close()
            raise IndexUnavailable(self.path, f"cannot open it: {exc}") from exc
        except OSError as exc:
            conn.close()
            raise IndexUnavailable(self.path, f"cannot open it: {exc.strerror}") from exc
        except BaseException:
            conn.close()
            raise
        self._identity = (st.st_dev, st.st_ino)
        return conn

    def _set_up(self, conn: sqlite3.Connection) -> None:
        """Under the write lock: identify the file again (another process may have made it
        meanwhile), then create the schema or migrate it. One transaction, in the rollback
        journal (WAL comes after), so a new file is either whole or empty after a crash."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _identify(conn, self.path)
            if version is None:
                if os.stat(self.path).st_size:  # nothing of ours is on disk before a commit
                    raise NotAnIndex(self.path, _foreign("no tables"))
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            elif version < SCHEMA_VERSION:
                self.migration = _migrate(conn, self.path, version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def __enter__(self) -> Index:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; every upsert is already committed."""
        self._conn.close()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _read_error(self.path, exc) from exc
        self._check_unchanged()

    def _check_unchanged(self) -> None:
        """Read without locks: a write that reached the main file meanwhile (a scan started and
        checkpointed) may have torn what was read, so say so instead of returning it."""
        if self._stamp is not None and _stamp(self.path) != self._stamp:
            raise IndexFileError(
                self.path, "changed while it was read (a scan wrote to it): run the command again"
            )

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self._check_still_there()
        try:
            yield
        except sqlite3.Error as exc:
            raise IndexWriteError(self.path, f"cannot write to it: {exc}") from exc

    def _check_still_there(self) -> None:
        """A deleted (or replaced) index file takes every write to a file nobody will see: stop
        at the next write instead."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise IndexWriteError(self.path, "the index was deleted while in use") from None
        except OSError as exc:
            raise IndexWriteError(self.path, f"cannot reach it: {exc.strerror}") from exc
        if self._identity is not None and (st.st_dev, st.st_ino) != self._identity:
            raise IndexWriteError(self.path, "the index was replaced by another file while in use")

    def upsert(self, row: IndexRow) -> None:
        """Insert or replace the row for `row.path`, committed before returning."""
        values = _coerce(row)
        with self._writing():
            self._conn.execute(_UPSERT, values)

    def get(self, path: str) -> IndexRow | None:
        """The row for `path`, or None when it is not indexed."""
        with self._reading():
            query = f"{self._select} WHERE path = ?"
            values = self._conn.execute(query, (_to_db(path),)).fetchone()
        return None if values is None else _row(values)

    def rows(
        self, *, status: str | None = None, path_glob: str | None = None
    ) -> Iterator[IndexRow]:
        """The rows, ordered by path bytes, optionally filtered.

        `status` keeps one status; `path_glob` keeps paths matching an fnmatch pattern (the syntax
        of the walk's --exclude, where '*' also matches '/').
        """
        sql = self._select
        params: tuple[object, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        # CAST orders TEXT and BLOB paths together, by their UTF-8/raw bytes.
        sql += " ORDER BY CAST(path AS BLOB)"
        with self._reading():
            for values in self._conn.execute(sql, params):
                row = _row(values)
                if path_glob is None or fnmatch(row.path, path_glob):
                    yield row

    def paths(self) -> set[str]:
        """Every indexed path."""
        with self._reading():
            return {_from_db(p) for (p,) in self._conn.execute("SELECT path FROM tracks")}

    def snapshot(self) -> dict[str, SnapshotEntry]:
        """path -> (size, mtime_ns, status, model_id) for every row, in one query, so an
        incremental rescan can decide what to analyse without a query per file."""
        with self._reading():
            cursor = self._conn.execute("SELECT path, size, mtime_ns, status, model_id FROM tracks")
            return {_from_db(p): (size, mtime, st, model) for p, size, mtime, st, model in cursor}

    def scan_state(self) -> tuple[dict[str, SnapshotEntry], dict[str, Leftover]]:
        """The snapshot, and what earlier scans left unfinished, in one query: path -> (why the
        last result failed, or None; whether it is analysed but carries no mertag tags) for the
        rows where either holds (a failed analysis, a failed tag write, an untagged track of a
        format mertag can tag)."""
        snapshot: dict[str, SnapshotEntry] = {}
        leftovers: dict[str, Leftover] = {}
        wanted = ("error", "tagged", "tag_error", "not_tagged")
        with self._reading():
            present = _columns(self._conn, "tracks")  # an older index lacks some: NULL
            extra = ", ".join(c if c in present else f"NULL AS {c}" for c in wanted)
            sql = f"SELECT path, size, mtime_ns, status, model_id, {extra} FROM tracks"
            for (
                raw,
                size,
                mtime,
                st,
                model,
                error,
                tagged,
                tag_error,
                not_tagged,
            ) in self._conn.execute(sql):
                path = _from_db(raw)
                snapshot[path] = (size, mtime, st, model)
                if st == "error":  # silent is an answer, not a failure
                    leftovers[path] = (error or st, False)
                elif st != "ok":
                    continue
                elif tag_error:
                    leftovers[path] = (tag_error, False)
                elif tagged == 0 and not not_tagged:
                    leftovers[path] = (None, True)
        return snapshot, leftovers

    def delete(self, paths: Iterable[str]) -> int:
        """Remove the rows of `paths` (absent ones are ignored) in one transaction; returns how
        many rows were removed."""
        removed = 0
        with self._writing():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for path in paths:
                    removed += self._conn.execute(
                        "DELETE FROM tracks WHERE path = ?", (_to_db(path),)
                    ).rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return removed

    def count(self) -> int:
        """How many tracks are indexed."""
        with self._reading():
            (n,) = self._conn.execute("SELECT COUNT(*) FROM tracks").fetchone()
        return int(n)


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another process holds the file.

    SQLite does not always call the busy handler when changing the journal mode, so two scans
    opening a new index at once could fail with 'database is locked' without this loop.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
