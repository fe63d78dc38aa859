"""Shared by the fault trials: small libraries made by the tests, the mertag command, and the
checks that every file is intact and the index is whole after a scan was killed or stopped."""

from __future__ import annotations

import ctypes
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np
from mutagen.flac import FLAC, Picture

from mertag.tagger.audio import decode
from mertag.tagger.safe_write import TEMP_SUFFIX
from mertag.tagger.tags import MERTAG_FIELDS, audio_fingerprint, read_tags, write_tags
from mertag.tagger.write_journal import JournalRecord, create, file_digest, journal_path, mark
from tests.audio_files import encode_tone

REPO = Path(__file__).resolve().parents[2]

# suffix -> (container, codec, sample rate): one entry per container family mertag tags.
FORMATS = {
    ".wav": ("wav", "pcm_s16le", 22050),
    ".flac": ("flac", "flac", 22050),
    ".mp3": ("mp3", "libmp3lame", 22050),
    ".m4a": ("ipod", "aac", 22050),
    ".opus": ("ogg", "libopus", 48000),
    ".aiff": ("aiff", "pcm_s16be", 22050),
}


def make_track(path: Path, seconds: float = 3.5, index: int = 0) -> Path:
    """A short tone (just long enough to analyse) in the format its suffix names."""
    fmt, codec, rate = FORMATS[path.suffix]
    return encode_tone(path, seconds, fmt, codec, rate=rate, freq=220.0 * 2 ** (index / 5))


def make_library(folder: Path, names: list[str]) -> dict[Path, str]:
    """Tracks named `names` in `folder`; returns path -> audio fingerprint."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        (p := make_track(folder / name, index=i)): audio_fingerprint(p)
        for i, name in enumerate(names)
    }


def add_picture(path: Path, size: int) -> None:
    """Embed `size` bytes of cover art in a FLAC file, so that copying it takes a while."""
    flac = FLAC(path)
    picture = Picture()
    picture.type, picture.mime = 3, "image/jpeg"
    picture.data = np.random.default_rng(0).bytes(size)
    flac.add_picture(picture)
    flac.save()


def mertag_command() -> list[str]:
    """The mertag entry point (mertag.tagger.cli:main) as a command for subprocess."""
    return [sys.executable, "-c", "from mertag.tagger.cli import main; main()"]


def drop_permission_override() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding
    set, so this root process obeys permission bits like any user (PR_CAPBSET_DROP = 24)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_obeying_permissions(
    command: list[str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`command` (from the repository) in a subprocess that obeys permission bits: as root,
    without root's permission override (`drop_permission_override`)."""
    return subprocess.run(
        command,
        cwd=REPO,
        preexec_fn=drop_permission_override if os.geteuid() == 0 else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


AS_FROM_A_TERMINAL = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
"""What a terminal gives a command: Ctrl-C raising KeyboardInterrupt. A test suite run as a
background job of a non-interactive shell (`pytest &`, nohup) inherits SIGINT ignored, and so
would every scan it starts, which then rightly ignores Ctrl-C as a background job should."""


def start_scan(args: list[str], **kwargs: object) -> subprocess.Popen[str]:
    """`mertag scan ARGS` in its own process group, so the test can signal it and its workers,
    with Ctrl-C as from a terminal (AS_FROM_A_TERMINAL)."""
    *python, code = mertag_command()
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [*python, AS_FROM_A_TERMINAL + code, "scan", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def live_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that still run (zombies wait for init and do nothing)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def wait_group_gone(pgid: int, timeout: float) -> list[int]:
    """Wait up to `timeout` s for the group to end; returns what is still running."""
    deadline = time.monotonic() + timeout
    while (left := live_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def temp_files(folder: Path) -> list[Path]:
    """mertag's temp copies in `folder` (hidden, skipped by the walker)."""
    return sorted(p for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX))


def check_track(path: Path, fingerprint: str, model_ids: set[str]) -> bool:
    """Assert the file is undamaged: it decodes, its audio is bit-identical to before, mutagen
    reads it, and it holds either none or all of mertag's fields. Returns whether it is tagged."""
    assert decode(path).size > 0, path
    assert audio_fingerprint(path) == fingerprint, f"{path.name}: audio changed"
    assert mutagen.File(path) is not None, path
    tags = read_tags(path)
    assert len(tags) in (0, len(MERTAG_FIELDS)), f"{path.name}: partly tagged {tags}"
    if tags:
        assert tags["MERTAG_MODEL"] in model_ids, tags
    return bool(tags)


OK_COLUMNS = (
    "quadrant",
    "mood",
    "p_q1",
    "p_q2",
    "p_q3",
    "p_q4",
    "valence",
    "arousal",
    "confidence",
    "model_id",
    "feature_schema",
    "tagged",
)


def check_index(index: Path) -> dict[str, sqlite3.Row]:
    """Assert the index is sound and every row whole; returns its rows by path."""
    if not index.exists():
        return {}
    conn = sqlite3.connect(index)
    conn.row_factory = sqlite3.Row
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = {os.fsdecode(r["path"]): r for r in conn.execute("SELECT * FROM tracks")}
    finally:
        conn.close()
    for path, row in rows.items():
        assert row["size"] is not None and row["mtime_ns"] is not None and row["analysed_at"]
        if row["status"] == "error":
            assert row["error"], path
            continue
        assert row["status"] == "ok", path
        missing = [c for c in OK_COLUMNS if row[c] is None]
        assert not missing, (path, missing)
        assert abs(sum(row[f"p_q{i}"] for i in range(1, 5)) - 1.0) < 1e-3
    return rows


def finished(rows: dict[str, sqlite3.Row], model_id: str) -> set[str]:
    """Paths the index records as done with `model_id` for the file as it is now."""
    done = set()
    for path, row in rows.items():
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if (
            row["status"] == "ok"
            and row["model_id"] == model_id
            and (row["size"], row["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
        ):
            done.add(path)
    return done


def killed_mid_write_back(path: Path, values: dict[str, str]) -> tuple[bytes, bytes]:
    """Leave exactly what a writer of `values` killed half-way through its write-back leaves: a
    complete, synced tagged copy, a journal record, and the file's first half overwritten.
    Returns the file's bytes before and the tagged bytes it must end with."""
    before = path.read_bytes()
    scratch = path.parent / "scratch"
    scratch.mkdir()
    tagged = scratch / path.name
    shutil.copy2(path, tagged)
    write_tags(tagged, values)
    result = tagged.read_bytes()
    copy = path.with_name(f".{path.name}.killed{TEMP_SUFFIX}")
    copy.write_bytes(result)
    shutil.rmtree(scratch)
    st = os.stat(path)
    with open(copy, "rb") as f:
        digest = file_digest(f)
    record = JournalRecord(
        path.name, copy.name, len(result), digest, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
    )
    os.close(create(record, path.parent))  # the writer dies: its lock goes with it
    with open(path, "rb") as f:
        mark(f.fileno(), journal_path(path))  # as the writer notes it on the inode
    # The write-back got half-way through the bytes that differ, then the kill came.
    common = min(len(before), len(result))
    first = next(i for i in range(common) if before[i] != result[i])
    last = max(i for i in range(common) if before[i] != result[i])
    with open(path, "r+b") as f:
        f.write(result[: (first + last) // 2 + 1])
    assert path.read_bytes() != before and path.read_bytes() != result
    return before, result


FILE_SIZE_LIMIT = 3000
"""The file size limit of `cut_short` runs (bytes): smaller than the outputs the tests cut."""


def cut_short(code: str) -> tuple[int, str]:
    """Run the Python `code` in a fresh interpreter under RLIMIT_FSIZE=FILE_SIZE_LIMIT, with
    SIGXFSZ ignored as Python ignores it, so a write past the limit fails half-way with EFBIG,
    as on a disk filling up; its exit code and stderr (-B: no bytecode is written)."""
    import textwrap

    child = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, resource.RLIM_INFINITY))
        """
    ) + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-B", "-c", child], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr


def atomic_leftovers(folder: Path) -> list[str]:
    """The temp files of `output_files.write_bytes_atomic` left in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
