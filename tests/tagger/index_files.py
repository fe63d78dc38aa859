"""Index files made by the tests: an index as mertag wrote it before it marked its files
(schema 1), and a folder's state to prove that nothing in it changed."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

# The tracks table of schema 1, as mertag created it before it set PRAGMA application_id: the
# layout a migration starts from, kept here as a fixture of that old format.
V1_TRACKS = {
    "path": "TEXT PRIMARY KEY",
    "size": "INTEGER NOT NULL",
    "mtime_ns": "INTEGER NOT NULL",
    "status": "TEXT NOT NULL CHECK (status IN ('ok', 'error'))",
    "error": "TEXT",
    "quadrant": "TEXT",
    "mood": "TEXT",
    "p_q1": "REAL",
    "p_q2": "REAL",
    "p_q3": "REAL",
    "p_q4": "REAL",
    "valence": "REAL",
    "arousal": "REAL",
    "confidence": "REAL",
    "model_id": "TEXT",
    "feature_schema": "TEXT",
    "analysed_at": "TEXT NOT NULL",
    "tagged": "INTEGER CHECK (tagged IN (0, 1))",
    "tag_error": "TEXT",
}


def write_v1_index(
    path: Path, rows: int = 3, *, checkpoint: bool = True, lacking: tuple[str, ...] = ()
) -> None:
    """An index as mertag wrote it before the mark (WAL, schema 1, no application_id), with
    `rows` error rows; without `checkpoint` its tables and rows stay in the write-ahead log, as a
    killed scan leaves them; `lacking` leaves optional columns out, as a pre-release did."""
    columns = ", ".join(f"{k} {v}" for k, v in V1_TRACKS.items() if k not in lacking)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(f"CREATE TABLE tracks ({columns})")
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    for i in range(rows):
        conn.execute(
            "INSERT INTO tracks (path, size, mtime_ns, status, error, analysed_at)"
            " VALUES (?, ?, ?, 'error', 'cannot decode', '2025-01-31T12:00:00+00:00')",
            (f"/music/{i}.flac", 100 + i, 1000 + i),
        )
    if checkpoint:
        conn.close()
        return
    # Keep the log: take the files as they are while the connection is open, like a kill -9.
    for suffix in ("", "-wal", "-shm"):
        os.link(f"{path}{suffix}", f"{path}.killed{suffix}")
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        os.replace(f"{path}.killed{suffix}", f"{path}{suffix}")


def write_newer_index(path: Path, version: int = 99) -> None:
    """A current index relabelled as written by a newer mertag, with schema `version`."""
    from mertag.tagger.index import Index

    Index(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    """name -> sha256 of every file in `folder`: the database and any -wal/-shm/-journal."""
    return {p.name: sha(p) for p in sorted(folder.iterdir()) if p.is_file()}
