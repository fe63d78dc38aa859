"""The query language: every kind of term over a real scanned index, through `mertag list` and
`mertag export`, and the parser's one-line errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mertag.tagger.index import Index, IndexRow
from mertag.tagger.querylang import QueryError, parse_query, parse_term, run_query
from tests.tagger.scanned_library import GENERATED, Library, invoke, point_row


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def _names(args: list[object], library: Library, command: str = "list") -> list[str]:
    fmt = ["-f", "json"]
    result = invoke([command, *args, *fmt, "--index", library.index])
    assert result.exit_code == 0, result.output
    return [Path(d["path"]).name for d in json.loads(result.stdout)]


def _ok(library: Library) -> list[IndexRow]:
    return [r for r in library.rows() if r.status == "ok"]


def test_mood_and_quadrant_terms(library: Library) -> None:
    rows = _ok(library)
    for q, word in (("Q3", "sad"), ("Q4", "RELAXED"), ("Q1", "Happy"), ("Q2", "angry")):
        want = sorted(Path(r.path).name for r in rows if r.quadrant == q)
        assert sorted(_names([f"mood:{word}"], library)) == want
        assert sorted(_names([f"quadrant:{q}"], library)) == want
    both = _names(["mood:Sad,Relaxed"], library)
    assert len(both) == sum(r.quadrant in ("Q3", "Q4") for r in rows)
    not_sad = _names(["^mood:sad"], library)
    assert len(not_sad) == len(library.rows()) - sum(r.quadrant == "Q3" for r in rows)


def test_number_ranges(library: Library) -> None:
    rows = _ok(library)
    mid = sorted(r.arousal for r in rows)[len(rows) // 2]
    low = _names([f"arousal:..{mid}"], library)
    assert sorted(low) == sorted(Path(r.path).name for r in rows if r.arousal <= mid)
    high = _names([f"arousal:{mid}.."], library)
    assert sorted(high) == sorted(Path(r.path).name for r in rows if r.arousal >= mid)
    v = sorted(r.valence for r in rows)
    span = _names([f"valence:{v[1]}..{v[-2]}"], library)
    assert len(span) == sum(v[1] <= r.valence <= v[-2] for r in rows)
    conf = _names(["confidence:0.7.."], library)
    assert len(conf) == sum(r.confidence >= 0.7 for r in rows)
    both = _names([f"arousal:..{mid}", "confidence:0.5.."], library)
    assert len(both) == sum(r.arousal <= mid and r.confidence >= 0.5 for r in rows)
    one = rows[0]
    rounded = _names([f"valence:{one.valence:.2f}"], library)  # to its last digit
    assert Path(one.path).name in rounded
    assert all(abs(r.valence - round(one.valence, 2)) <= 0.005 for r in rows if r.path in rounded)


def test_status_model_tagged_and_free_words(library: Library) -> None:
    assert _names(["status:error"], library) == ["text.mp3"]
    assert len(_names(["status:ok"], library)) == len(_ok(library))
    assert len(_names(["tagged:yes"], library)) == len(_ok(library))
    model = _ok(library)[0].model_id
    assert len(_names([f"model:{model}"], library)) == sum(
        r.model_id == model for r in library.rows()
    )
    assert _names(["weirwood"], library) == ["Kart Grand Prix — Weirwood.mp3"]  # any case
    assert _names(["kart", "prix"], library) == ["Kart Grand Prix — Weirwood.mp3"]  # all words
    assert _names(["title:hacienda"], library) == ["hacienda.m4a"]  # no title column: the path
    assert _names(["path::\\.(flac|ogg)$"], library) == ["egypt.flac", "farm.ogg"]
    either = _names(["egypt", ",", "farm"], library)
    assert sorted(either) == ["egypt.flac", "farm.ogg"]


def test_paths_as_the_user_sees_them(
    library: Library, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    want = ["chord.wav"]
    assert _names(["path:Generated/"], library) == want  # a folder anywhere in the library
    assert _names(["path:Generated"], library) == want
    assert _names([f"path:{library.lib / 'Generated'}"], library) == want  # absolute
    assert _names(["path:Generated/chord.wav"], library) == want
    assert _names(["path:*/Generated/*"], library) == want  # a glob, as --path took
    assert _names(["path:Generated/*.wav"], library) == want
    assert _names(["--path", "*/Generated/*"], library) == want
    assert _names(["path:chord.wav/"], library) == []  # a file is not a folder
    assert _names(["path:enerated/"], library) == []  # whole names only
    monkeypatch.chdir(library.lib)  # relative to the current folder
    assert _names(["path:Generated"], library) == want
    assert _names(["path:./Generated/chord.wav"], library) == want
    assert len(_names(["path:."], library)) == len(library.rows())
    monkeypatch.chdir(library.lib / "Generated")
    assert _names(["path:../bad/"], library) == ["text.mp3"]
    # A symlinked folder: the index holds the real paths, the user types the link.
    link = tmp_path / "link"
    link.symlink_to(library.lib / "Generated")
    assert _names([f"path:{link}"], library) == want


def test_sort(library: Library) -> None:
    rows = _ok(library)
    by_arousal = [Path(r.path).name for r in sorted(rows, key=lambda r: -r.arousal)]
    assert _names(["status:ok", "--sort", "arousal-"], library) == by_arousal
    assert _names(["status:ok", "arousal-"], library) == by_arousal  # a sort term, beets style
    assert _names(["status:ok", "--sort", "arousal"], library) == by_arousal[::-1]
    names = _names(["--sort", "confidence+"], library)
    assert names[-1] == "text.mp3"  # no confidence: last, whichever the direction
    assert _names(["--sort", "confidence-"], library)[-1] == "text.mp3"
    exported = _names(["mood:sad", "--sort", "valence-"], library, command="export")
    sad = sorted((r for r in rows if r.quadrant == "Q3"), key=lambda r: -r.valence)
    assert exported == [Path(r.path).name for r in sad]


def test_export_selects_with_a_query(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "sad.json"
    result = invoke(["export", "mood:sad", "-f", "json", "-o", out, "--index", library.index])
    assert result.exit_code == 0, result.output
    docs = json.loads(out.read_text(encoding="utf-8"))
    assert {d["quadrant"] for d in docs} <= {"Q3"}
    assert len(docs) == sum(r.quadrant == "Q3" for r in library.rows())
    one = tmp_path / "one.csv"
    result = invoke(["export", "egypt", "-o", one, "--index", library.index])
    assert result.exit_code == 0 and f"wrote 1 row to {one}" in result.stderr, result.output


@pytest.mark.parametrize(
    "term, message",
    [
        ("mood:ecstatic", "unknown mood 'ecstatic'"),
        ("arousal:high", "'high' is not a number"),
        ("arousal:0.5..0.1", "the range is empty"),
        ("valence:..", "a range needs at least one end"),
        ("colour:red", "unknown field 'colour'"),
        ("status:broken", "status is ok or error"),
        ("title::[", "not a regular expression"),
        ("mood::x", "text fields only"),
        ("tagged:maybe", "tagged is yes or no"),
    ],
)
def test_a_bad_query_is_one_line_and_exit_2(library: Library, term: str, message: str) -> None:
    for command in ("list", "export", "map", "playlist"):
        extra = ["-o", library.lib / "x.html"] if command in ("map", "playlist") else []
        result = invoke([command, term, *extra, "--index", library.index])
        assert result.exit_code == 2, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("mertag: error:")
    assert not (library.lib / "x.html").exists()


def test_bad_sort_is_a_usage_error(library: Library) -> None:
    result = invoke(["list", "--sort", "loudness-", "--index", library.index])
    assert result.exit_code == 2 and "cannot sort by 'loudness-'" in result.stderr


def test_tag_fields_use_the_index_columns_when_it_has_them(tmp_path: Path) -> None:
    """artist/album/title read the row's own fields when the index grows them."""

    class TaggedRow(IndexRow):
        artist: str | None = None
        album: str | None = None
        title: str | None = None

    row = point_row(tmp_path / "Various/01.mp3", 0.5, 0.5)
    tagged = TaggedRow(**vars(row))
    tagged.artist, tagged.album, tagged.title = "Björk", "Homogenic", "Jóga"
    untagged = TaggedRow(**vars(point_row(tmp_path / "Björk/02.mp3", 0.5, 0.5)))
    query = parse_query(["artist:björk"])
    assert [r.path for r in query.select([tagged, untagged])] == [tagged.path, untagged.path]
    assert parse_query(["title:jóga"]).select([tagged, untagged]) == [tagged]
    assert parse_query(["homogenic"]).select([tagged, untagged]) == [tagged]  # a free word
    # NFD (as macOS file names are) matches NFC typing.
    assert parse_query(["jo\u0301ga"]).select([tagged, untagged]) == [tagged]


def test_older_options_and_the_query_are_one_parser(library: Library) -> None:
    rows = library.rows()
    with Index(library.index) as idx:
        _, by_query = run_query(idx.rows(), ["mood:sad", "confidence:0.5.."])
    expected = [r for r in rows if r.quadrant == "Q3" and (r.confidence or 0) >= 0.5]
    assert by_query == expected
    names = _names(["--mood", "sad", "--min-confidence", "0.5"], library)
    assert names == [Path(r.path).name for r in expected]


def test_parse_errors_name_the_term() -> None:
    with pytest.raises(QueryError, match="'arousal:0.2..x'"):
        parse_term("arousal:0.2..x")
    with pytest.raises(QueryError, match="one of them is empty"):
        parse_query(["mood:sad", ","])
    assert parse_term("^mood:Q1").negate and parse_term("-mood:Q1").negate
    query = parse_query(["arousal-", "path:x"], sorts=["title"])
    assert [(s.field, s.descending) for s in query.sorts] == [("arousal", True), ("title", False)]


def test_generated_names_with_brackets_are_plain_words(library: Library) -> None:
    assert _names(["[A440]"], library) == [Path(GENERATED[0]).name]
    assert os.sep not in Path(GENERATED[0]).name


def test_no_color_is_honoured(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    colour = re.compile("\x1b\\[[0-9;]*(3[0-9]|38;[0-9;]+)m")  # a foreground colour
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = invoke(["list", "--index", library.index])
    assert coloured.exit_code == 0 and colour.search(coloured.stdout)  # moods in their colours
    monkeypatch.setenv("NO_COLOR", "1")
    for args in (["list"], ["stats"]):
        plain = invoke([*args, "--index", library.index])
        assert plain.exit_code == 0 and not colour.search(plain.stdout), args
    journey = invoke(
        ["playlist", "--journey", "sad", "happy", "-n", 3, "-o", library.lib / "j.m3u8"]
        + ["--index", library.index]
    )
    assert journey.exit_code == 0 and "journey:" in journey.stderr
    assert not colour.search(journey.stderr)


def test_model_names_select_the_rows_of_the_shipped_models(library: Library) -> None:
    from mertag.tagger.model import model_path as shipped_path
    from mertag.tagger.model import read_model_info

    rows = library.rows()
    for name in ("default", "fast", "FAST"):
        model_id = read_model_info(shipped_path(name.casefold())).model_id  # a real session
        want = sorted(Path(r.path).name for r in rows if r.model_id == model_id)
        assert sorted(_names([f"model:{name}"], library)) == want, name
        assert want or name != "default"  # the scan ran the default model
        negated = _names([f"^model:{name}"], library)
        assert len(negated) == len(rows) - len(want)
    assert any(r.model_id for r in rows)  # the scan classified something with a shipped model
    assert sorted(_names(["model:default", ",", "model:fast"], library)) == sorted(
        Path(r.path).name for r in rows if r.model_id
    )
    part = next(r.model_id for r in rows if r.model_id)[-8:]  # id substrings still match
    assert _names([f"model:{part}"], library)
    assert _names(["model:no-such-model"], library) == []


def test_energy_is_computed_from_arousal_for_queries_and_sorting(library: Library) -> None:
    from mertag.tagger.mood import energy_level

    rows = _ok(library)
    energies = {Path(r.path).name: energy_level(r.arousal) for r in rows}
    top = max(energies.values())
    assert sorted(_names([f"energy:{top}.."], library)) == sorted(
        n for n, e in energies.items() if e >= top
    )
    assert sorted(_names([f"energy:{top}"], library)) == sorted(
        n for n, e in energies.items() if e == top
    )
    low = _names(["energy:..5"], library, "export")
    assert sorted(low) == sorted(n for n, e in energies.items() if e <= 5)
    ordered = _names(["status:ok", "--sort", "energy-"], library)
    assert [energies[n] for n in ordered] == sorted(energies.values(), reverse=True)
    assert _names(["status:ok", "energy+"], library)[0] in {
        n for n, e in energies.items() if e == min(energies.values())
    }
    bad = invoke(["list", "energy:high", "--index", library.index])
    assert bad.exit_code == 2 and "'energy:high'" in bad.stderr
    assert "energy:8.." in invoke(["list", "--help"]).stdout


def test_energy_playlist_holds_what_list_selects(library: Library, tmp_path: Path) -> None:
    target = tmp_path / "loud.m3u8"
    result = invoke(["playlist", "energy:6..", "-o", target, "--index", library.index])
    listed = _names(["energy:6.."], library)
    assert result.exit_code == 0, result.output
    if listed:
        lines = [ln for ln in target.read_text(encoding="utf-8").splitlines() if ln[:1] != "#"]
        assert sorted(Path(ln).name for ln in lines) == sorted(listed)
