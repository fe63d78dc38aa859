"""Text as mertag prints it: paths as one printable line, whatever bytes their names hold, and
counts with their noun in the right number."""

from __future__ import annotations

from pathlib import Path


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 track', '0 tracks', '2 tracks' (`plural` for a noun that does not just take an s)."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def display(path: Path | str) -> str:
    """A path on one line: control characters and undecodable bytes are escaped."""
    text = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
