"""Paths as one printable line, whatever bytes their names hold."""

from __future__ import annotations

from pathlib import Path


def display(path: Path | str) -> str:
    """A path on one line: control characters and undecodable bytes are escaped."""
    text = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
