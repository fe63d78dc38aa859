"""Export: CSV and JSON parsed back equal the rows; odd names and bad formats."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from mertag.tagger.export import FORMATS, export_rows
from mertag.tagger.index import COLUMNS, IndexRow

ROWS = [
    IndexRow(
        path='/music/a, "quoted"\nname.mp3',
        size=1234,
        mtime_ns=1_700_000_000_123_456_789,
        status="ok",
        quadrant="Q1",
        mood="happy",
        p_q1=0.7,
        p_q2=0.1,
        p_q3=0.05,
        p_q4=0.15000000000000002,
        valence=0.5,
        arousal=-1e-9,
        confidence=0.7,
        model_id="mertag-4q-v1",
        feature_schema="musicnn-v1",
        analysed_at="2025-01-31T12:00:00+00:00",
        tagged=0,
        tag_error="read-only file",
    ),
    IndexRow(
        path="/music/caf\u00e9.flac",
        size=0,
        mtime_ns=0,
        status="error",
        error="cannot decode: no audio stream",
        analysed_at="2025-01-31T12:00:01+00:00",
    ),
]

INT_COLUMNS = {"size", "mtime_ns", "tagged"}
FLOAT_COLUMNS = {"p_q1", "p_q2", "p_q3", "p_q4", "valence", "arousal", "confidence"}


def from_csv(record: dict[str, str]) -> IndexRow:
    """A CSV record back into a row: '' is None, numbers parsed by column."""
    values: dict[str, object] = {}
    for name, text in record.items():
        if text == "":
            values[name] = None
        elif name in INT_COLUMNS:
            values[name] = int(text)
        elif name in FLOAT_COLUMNS:
            values[name] = float(text)
        else:
            values[name] = text
    return IndexRow(**values)  # type: ignore[arg-type]


def test_csv_round_trips() -> None:
    out = io.StringIO()
    assert export_rows(iter(ROWS), "csv", out) == 2
    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    assert [from_csv(r) for r in reader] == ROWS


def test_json_round_trips() -> None:
    out = io.StringIO()
    assert export_rows(ROWS, "JSON", out) == 2
    records = json.loads(out.getvalue())
    assert [list(r) for r in records] == [list(COLUMNS)] * 2
    assert [IndexRow(**r) for r in records] == ROWS
    assert records[1]["p_q1"] is None and isinstance(records[0]["p_q4"], float)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_export_is_valid(fmt: str) -> None:
    out = io.StringIO()
    assert export_rows([], fmt, out) == 0
    if fmt == "json":
        assert json.loads(out.getvalue()) == []
    else:
        assert out.getvalue() == ",".join(COLUMNS) + "\n"


@pytest.mark.parametrize("fmt", FORMATS)
def test_undecodable_name_is_escaped_not_fatal(fmt: str) -> None:
    row = IndexRow(path=os.fsdecode(b"/music/bad\xff.mp3"), size=1, mtime_ns=1, status="ok")
    out = io.StringIO()
    export_rows([row], fmt, out)
    out.getvalue().encode("utf-8")  # the output is clean UTF-8, writable to any file
    assert "/music/bad\\xff.mp3" in (
        out.getvalue() if fmt == "csv" else json.loads(out.getvalue())[0]["path"]
    )


def test_non_finite_float_is_null_in_json() -> None:
    row = IndexRow(path="/x.mp3", size=1, mtime_ns=1, status="ok", confidence=float("nan"))
    out = io.StringIO()
    export_rows([row], "json", out)
    assert json.loads(out.getvalue())[0]["confidence"] is None


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown export format 'xml'.*csv, json"):
        export_rows(ROWS, "xml", io.StringIO())


def test_export_into_a_missing_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mertag.tagger.cli import app
    from mertag.tagger.index import Index

    index = tmp_path / "index.db"
    with Index(index):
        pass
    target = tmp_path / "missing" / "x.csv"
    result = CliRunner().invoke(app, ["export", "--index", str(index), "--output", str(target)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and "No such file" in lines[0], lines
