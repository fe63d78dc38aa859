"""`mertag list`, `stats` and `prune` over a real scanned library."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import statistics
from collections import Counter
from pathlib import Path

import pytest

from mertag.tagger.index import COLUMNS, Index
from mertag.tagger.query import is_gone, resolve_quadrant
from tests.tagger.scanned_library import BAD, CORPUS_NAMES, GENERATED, Library, invoke

N_FILES = len(CORPUS_NAMES) + len(GENERATED) + 1


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: one line per track


def _json(args: list[object]) -> list[dict]:
    result = invoke(args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_table_shows_every_track_literally(library: Library) -> None:
    result = invoke(["list", "--index", library.index])
    assert result.exit_code == 0, result.output
    for name in [*CORPUS_NAMES, *GENERATED, BAD]:
        assert Path(name).name in result.stdout, name
    assert "tone [A440].wav" in result.stdout  # '[...]' is not taken as rich markup
    assert f"{N_FILES} tracks" in result.stdout
    assert "error" in result.stdout  # the failed row brings its error column


def test_list_csv_and_json_carry_every_column(library: Library) -> None:
    result = invoke(["list", "--format", "csv", "--index", library.index])
    assert result.exit_code == 0
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(table[0]) == COLUMNS and len(table) == 1 + N_FILES
    docs = _json(["list", "-f", "json", "--index", library.index])
    assert len(docs) == N_FILES and set(docs[0]) == set(COLUMNS)


def test_list_filters(library: Library) -> None:
    rows = [r for r in library.rows() if r.status == "ok"]
    index = ["--index", library.index, "-f", "json"]
    errors = _json(["list", "--status", "error", *index])
    assert [Path(d["path"]).name for d in errors] == ["text.mp3"]
    assert len(_json(["list", "--status", "ok", *index])) == len(rows)
    for q, word in (("Q3", "sad"), ("Q4", "RELAXED"), ("Q1", "Happy")):
        by_word = _json(["list", "--mood", word, *index])
        assert _json(["list", "--mood", q.lower(), *index]) == by_word
        assert sorted(d["path"] for d in by_word) == sorted(r.path for r in rows if r.quadrant == q)
    both = _json(["list", "-m", "sad", "-m", "Q4", *index])
    assert {d["quadrant"] for d in both} <= {"Q3", "Q4"}
    assert len(both) == sum(r.quadrant in ("Q3", "Q4") for r in rows)
    threshold = statistics.median(r.confidence for r in rows)
    confident = _json(["list", "--min-confidence", threshold, *index])
    assert len(confident) == sum(r.confidence >= threshold for r in rows)
    generated = _json(["list", "--path", "*/Generated/*", *index])
    assert [Path(d["path"]).name for d in generated] == ["chord.wav"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mood", "ecstatic"], "unknown mood 'ecstatic'"),
        (["--status", "broken"], "--status must be ok, error, silent"),
        (["--format", "xml"], "--format must be table, csv or json"),
        (["--min-confidence", "2"], ""),
    ],
)
def test_list_usage_errors(library: Library, args: list[str], message: str) -> None:
    result = invoke(["list", *args, "--index", library.index])
    assert result.exit_code == 2 and message in result.stderr


def test_stats_json(library: Library) -> None:
    doc = _json(["stats", "--format", "json", "--index", library.index])
    rows = library.rows()
    ok = [r for r in rows if r.status == "ok"]
    assert doc["tracks"] == N_FILES and doc["analysed"] == len(ok) == N_FILES - 1
    assert doc["failed"] == 1 and sum(doc["errors"].values()) == 1
    assert doc["tagged"] == len(ok) and doc["not_tagged"] == 0 and doc["gone"] == 0
    assert doc["models"] == dict(Counter(r.model_id for r in ok))  # short and long tracks' models
    assert sum(m["tracks"] for m in doc["moods"]) == len(ok)
    assert [m["quadrant"] for m in doc["moods"]] == ["Q1", "Q2", "Q3", "Q4"]
    assert doc["mean_confidence"] == pytest.approx(statistics.fmean(r.confidence for r in ok))
    for m in doc["moods"]:
        confs = [r.confidence for r in ok if r.quadrant == m["quadrant"]]
        assert m["tracks"] == len(confs)
        if confs:
            assert m["mean_confidence"] == pytest.approx(statistics.fmean(confs))
            assert m["mood"] == next(r.mood for r in ok if r.quadrant == m["quadrant"])
    assert doc["index_bytes"] >= library.index.stat().st_size > 0


def test_stats_table_and_gone_files(library: Library) -> None:
    library.path("lava.wav").unlink()
    result = invoke(["stats", "--index", library.index])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "tracks per mood" in out and "models in use" in out
    assert library.rows()[0].model_id in out
    gone_line = next(line for line in out.splitlines() if "files gone" in line)
    assert gone_line.split()[-1] == "1"


def test_prune_drops_only_rows_of_gone_files(library: Library) -> None:
    gone = [library.path("bay.mp3"), library.path(GENERATED[1])]
    for path in gone:
        path.unlink()
    dry = invoke(["prune", "--dry-run", "--index", library.index])
    assert dry.exit_code == 0 and "would drop 2 of 11 rows" in dry.stderr
    assert len(library.rows()) == N_FILES
    result = invoke(["prune", "--index", library.index])
    assert result.exit_code == 0, result.output
    assert "dropped 2 of 11 rows" in result.stderr
    left = {r.path for r in library.rows()}
    assert len(left) == N_FILES - 2 and not left & {str(p) for p in gone}
    again = invoke(["prune", "--index", library.index])
    assert "dropped 0 of 9 rows" in again.stderr


def test_prune_keeps_the_rows_under_a_folder_gone_as_a_whole(library: Library) -> None:
    """A library folder that is not there (a drive not mounted) makes every row under it 'gone':
    prune keeps those rows and names the folder; --gone-folders drops them, the dry run first."""
    shutil.rmtree(library.lib / "Generated")
    library.path("bay.mp3").unlink()  # one file gone, its folder there: no note for it
    folder = library.lib / "Generated"
    under = [r.path for r in library.rows() if r.path.startswith(str(folder) + os.sep)]
    assert len(under) == 1
    kept = invoke(["prune", "--index", library.index])
    assert kept.exit_code == 0, kept.output
    assert "dropped 1 of 11 rows (files gone); kept 1 under folders gone as a whole" in (
        kept.stderr
    )
    notes = [x for x in kept.stderr.splitlines() if x.startswith("note:")]
    assert notes == [
        f"note: {folder} is gone as a whole (1 row kept under it): is it a drive that is not "
        "mounted? `--gone-folders` drops them if it is gone"
    ]
    assert {r.path for r in library.rows()} >= set(under) and len(library.rows()) == N_FILES - 1
    dry = invoke(["prune", "--gone-folders", "--dry-run", "--index", library.index])
    assert dry.exit_code == 0, dry.output
    assert "would drop 1 of 10 rows (files gone)" in dry.stderr
    assert (
        f"note: {folder} is gone as a whole (1 row to drop under it): if it is a drive that "
        "is not mounted, mount it before pruning"
    ) in dry.stderr.splitlines()
    assert len(library.rows()) == N_FILES - 1
    result = invoke(["prune", "--gone-folders", "--index", library.index])
    assert "dropped 1 of 10 rows (files gone)" in result.stderr
    assert (
        f"note: {folder} is gone as a whole (1 row dropped under it): if it was a drive that "
        "was not mounted, `mertag scan` analyses its tracks again"
    ) in result.stderr.splitlines()
    assert not {r.path for r in library.rows()} & set(under)


def test_prune_limited_by_path(library: Library) -> None:
    library.path("bay.mp3").unlink()
    library.path(GENERATED[1]).unlink()
    result = invoke(["prune", "--path", "*/Generated/*", "--index", library.index])
    assert "dropped 1 of 1 row (files gone)" in result.stderr
    with Index(library.index) as idx:
        assert idx.get(str(library.path("bay.mp3"))) is not None


def test_is_gone_only_when_certain(tmp_path: Path) -> None:
    f = tmp_path / "f.mp3"
    f.write_bytes(b"x")
    assert not is_gone(str(f))
    assert is_gone(str(tmp_path / "missing.mp3"))
    assert is_gone(str(f / "below-a-file.mp3"))  # NotADirectoryError: gone too
    assert not is_gone(str(tmp_path))  # exists, though a folder


def test_reading_commands_never_create_an_index(tmp_path: Path) -> None:
    index = tmp_path / "none.sqlite3"
    for command in ("list", "stats", "prune", "export"):
        result = invoke([command, "--index", index])
        assert result.exit_code == 2 and "no index yet" in result.stderr, command
    assert not index.exists()


def test_resolve_quadrant() -> None:
    moods = {"Q1": "Joyful", "Q2": "Tense", "Q3": "Sad", "Q4": "Calm"}
    assert resolve_quadrant("q2", moods) == "Q2"
    assert resolve_quadrant(" JOYFUL ", moods) == "Q1"
    assert resolve_quadrant("happy", moods) == "Q1"  # the default word still works
    assert resolve_quadrant("mellow", moods, {"mellow": "Q4"}) == "Q4"  # from an older scan
    with pytest.raises(ValueError, match="Joyful, Tense, Sad, Calm"):
        resolve_quadrant("ecstatic", moods)


def test_prune_path_takes_the_forms_of_a_querys_path_term(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("bay.mp3", GENERATED[1], "lava.wav"):
        library.path(name).unlink()
    args = ["--dry-run", "--index", library.index]
    # A folder relative to the library, as `mertag list path:Generated/` takes it.
    relative = invoke(["prune", "--path", "Generated/", *args])
    assert relative.exit_code == 0 and "would drop 1 of 1 row (files gone)" in relative.stderr
    absolute = invoke(["prune", "--path", str(library.lib / "Generated"), *args])
    assert "would drop 1 of 1 row (files gone)" in absolute.stderr
    monkeypatch.chdir(library.lib)
    here = invoke(["prune", "--path", "./lava.wav", *args])  # from the current folder
    assert "would drop 1 of 1 row (files gone)" in here.stderr
    every = invoke(["prune", "--path", ".", "--index", library.index])
    assert "dropped 3 of 11 rows" in every.stderr
    bad = invoke(["prune", "--path", "", "--index", library.index])
    assert bad.exit_code == 2 and bad.stderr.startswith("mertag: error: --path: ")
