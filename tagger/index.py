"""The SQLite index: one row per track, what was found and whether it was written to the file.

The index makes rescans incremental (a track whose size, mtime and model are unchanged is not
analysed again) and is what `export` reads. Each upsert commits at once, so an interrupted scan
keeps every finished row, and WAL mode with a long busy timeout lets two scans share one index.

Paths are stored in the `path` column as TEXT when their bytes are valid UTF-8 (nearly always, and
readable with the sqlite3 shell) and as a BLOB of the raw bytes otherwise, so undecodable names
(str with surrogateescape) round-trip exactly: SQLite keeps a BLOB a BLOB even in a TEXT column,
and a BLOB never equals a TEXT value, so the mapping is one-to-one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path
from types import TracebackType

from platformdirs import user_data_dir

SCHEMA_VERSION = 1

_BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process (a second scan) to release the index."""

STATUSES = ("ok", "error")

SnapshotEntry = tuple[int, int, str, str | None]
"""(size, mtime_ns, status, model_id) of one indexed track, as `Index.snapshot` gives it."""


def utc_now() -> str:
    """The current time as ISO 8601 UTC to the second, e.g. '2025-01-31T12:00:00+00:00'."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class IndexRow:
    """One track in the index: its file identity, the analysis result and the tag-write outcome.

    `status` is 'ok' (analysed) or 'error' (with `error` saying why). `tagged` is 1 when mertag's
    tags are in the file, 0 when they were not written (--no-write, or the write failed, with
    `tag_error` saying why), None when unknown.
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
    model_id: str | None = None
    feature_schema: str | None = None
    analysed_at: str = field(default_factory=utc_now)
    tagged: int | None = None
    tag_error: str | None = None


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(IndexRow))
"""The index columns in order, path first; also the column order of exports."""

_INT_COLUMNS = frozenset({"size", "mtime_ns", "tagged"})
_FLOAT_COLUMNS = frozenset({"p_q1", "p_q2", "p_q3", "p_q4", "valence", "arousal", "confidence"})

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
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
    model_id TEXT,
    feature_schema TEXT,
    analysed_at TEXT NOT NULL,
    tagged INTEGER CHECK (tagged IN (0, 1)),
    tag_error TEXT
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
"""

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM tracks"
_UPSERT = (
    f"INSERT OR REPLACE INTO tracks ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


class IndexVersionError(RuntimeError):
    """The index file was written by a mertag with a different schema version."""


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


class Index:
    """An open index file; use as a context manager, or call `close`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: each write below is its own explicit transaction, committed at once.
        self._conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            self._set_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            (version,) = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if int(version) != SCHEMA_VERSION:
                raise IndexVersionError(
                    f"{self.path} has index schema version {version}, this mertag uses "
                    f"{SCHEMA_VERSION}: use another --index file or delete this one"
                )
        except BaseException:
            self._conn.close()
            raise

    def _set_wal(self) -> None:
        """Switch to WAL, retrying while another process holds the file.

        SQLite does not always call the busy handler when changing the journal mode, so two scans
        opening a new index at once could fail with 'database is locked' without this loop.
        """
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

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

    def upsert(self, row: IndexRow) -> None:
        """Insert or replace the row for `row.path`, committed before returning."""
        self._conn.execute(_UPSERT, _coerce(row))

    def get(self, path: str) -> IndexRow | None:
        """The row for `path`, or None when it is not indexed."""
        values = self._conn.execute(f"{_SELECT} WHERE path = ?", (_to_db(path),)).fetchone()
        return None if values is None else _row(values)

    def rows(
        self, *, status: str | None = None, path_glob: str | None = None
    ) -> Iterator[IndexRow]:
        """The rows, ordered by path bytes, optionally filtered.

        `status` keeps one status; `path_glob` keeps paths matching an fnmatch pattern (the syntax
        of the walk's --exclude, where '*' also matches '/').
        """
        sql = _SELECT
        params: tuple[object, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        # CAST orders TEXT and BLOB paths together, by their UTF-8/raw bytes.
        sql += " ORDER BY CAST(path AS BLOB)"
        for values in self._conn.execute(sql, params):
            row = _row(values)
            if path_glob is None or fnmatch(row.path, path_glob):
                yield row

    def paths(self) -> set[str]:
        """Every indexed path."""
        return {_from_db(p) for (p,) in self._conn.execute("SELECT path FROM tracks")}

    def snapshot(self) -> dict[str, SnapshotEntry]:
        """path -> (size, mtime_ns, status, model_id) for every row, in one query, so an
        incremental rescan can decide what to analyse without a query per file."""
        cursor = self._conn.execute("SELECT path, size, mtime_ns, status, model_id FROM tracks")
        return {_from_db(p): (size, mtime, st, model) for p, size, mtime, st, model in cursor}

    def delete(self, paths: Iterable[str]) -> int:
        """Remove the rows of `paths` (absent ones are ignored) in one transaction; returns how
        many rows were removed."""
        removed = 0
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
        (n,) = self._conn.execute("SELECT COUNT(*) FROM tracks").fetchone()
        return int(n)
