"""Export index rows as CSV or JSON, for spreadsheets, scripts and playlist tools.

Every format carries the same columns in the same order (`index.COLUMNS`). Text that cannot be
encoded (a file name whose bytes are not UTF-8) is written with backslash escapes, e.g.
'bad\\xff.mp3', so an export never fails halfway on one odd name.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from typing import TextIO

from mertag.tagger.index import COLUMNS, IndexRow

FORMATS = ("csv", "json")


def printable(text: str) -> str:
    """`text` itself when it encodes as UTF-8, else with undecodable bytes as backslash escapes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that did not come from undecodable bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _values(row: IndexRow) -> list[object]:
    return [printable(v) if isinstance(v, str) else v for v in (getattr(row, c) for c in COLUMNS)]


def export_rows(rows: Iterable[IndexRow], fmt: str, out: TextIO) -> int:
    """Write `rows` to `out` as 'csv' or 'json' and return how many rows were written.

    CSV has a header row, then one line per row, None as an empty field; open a file for it
    with newline=''. JSON is a list of objects keyed by column, numbers as numbers and None (and
    a non-finite float, which JSON cannot hold) as null. Rows are streamed, not collected.
    """
    if fmt.lower() not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    n = 0
    if fmt.lower() == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(_values(row))
            n += 1
        return n
    out.write("[")
    for row in rows:
        values = [
            None if isinstance(v, float) and not math.isfinite(v) else v for v in _values(row)
        ]
        out.write(",\n " if n else "\n ")
        out.write(json.dumps(dict(zip(COLUMNS, values, strict=True)), ensure_ascii=False))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n
