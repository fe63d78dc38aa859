"""Counts printed with their noun in the right number."""

from __future__ import annotations

from mertag.tagger.display import counted


def test_counted() -> None:
    assert counted(1, "track") == "1 track"
    assert [counted(n, "row") for n in (0, 2)] == ["0 rows", "2 rows"]
    assert counted(3, "entry", "entries") == "3 entries"
