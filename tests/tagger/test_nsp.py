"""Navidrome smart playlists: the .nsp files of a real scanned library, their rules evaluated
over the tags really in the files (as Navidrome would, with the config mertag documents) and
compared with what `mertag list` selects."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from mertag.tagger.nsp import NUMERIC_TAGS, TAGS, navidrome_config
from mertag.tagger.tags import TagError, read_tags
from mertag.tagger.trackinfo import read_names
from tests.tagger.scanned_library import Library, invoke

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _navidrome_tags(path: Path) -> dict[str, Any]:
    """What Navidrome would hold for a file with `navidrome_config()` in its config: the mood
    and mertag's numbers (floats), read from the file's real tags; its path, and its artist, album
    and title (the file name where the title tag is missing), as Navidrome reads them."""
    names = read_names(str(path))
    out: dict[str, Any] = {"filepath": str(path), "title": names.title or path.stem}
    out.update({k: v for k, v in (("artist", names.artist), ("album", names.album)) if v})
    try:
        tags = read_tags(path)
    except TagError:  # not audio: Navidrome would not list it either
        return out
    if "MOOD" in tags:
        out["mood"] = tags["MOOD"]
    for tag in TAGS.values():
        if tag.upper() in tags:
            value = tags[tag.upper()]
            out[tag] = float(value) if tag in NUMERIC_TAGS else value
    return out


def _holds(rule: dict[str, Any], track: dict[str, Any]) -> bool:
    """Navidrome's operators as its SQL has them (is, isNot, contains, ... inTheRange)."""
    ((op, arg),) = rule.items()
    if op in ("all", "any"):
        results = [_holds(r, track) for r in arg]
        return all(results) if op == "all" else any(results)
    ((field, value),) = arg.items()
    have = track.get(field)
    if op == "isNot":
        return have != value
    if have is None:
        return False
    if op == "is":
        return have == value
    if op == "contains":
        return str(value).casefold() in str(have).casefold()
    if op == "notContains":
        return str(value).casefold() not in str(have).casefold()
    if op == "inTheRange":
        return value[0] <= have <= value[1]
    if op == "lt":
        return have < value
    if op == "gt":
        return have > value
    raise AssertionError(f"not a Navidrome operator: {op}")


def _selects(nsp: Path, library: Library) -> list[str]:
    doc = json.loads(nsp.read_text(encoding="utf-8"))
    assert set(doc) <= {"name", "comment", "all", "any", "sort", "order", "limit"}
    files = sorted(p for p in library.lib.rglob("*") if p.is_file() and p.suffix != ".nsp")
    tracks = [_navidrome_tags(p) for p in files]
    return sorted(Path(t["filepath"]).name for t in tracks if _holds({"all": doc["all"]}, t))


def _listed(args: list[str], library: Library) -> list[str]:
    result = invoke(["list", *args, "-f", "json", "--index", library.index])
    assert result.exit_code == 0, result.output
    return sorted(Path(d["path"]).name for d in json.loads(result.stdout))


def test_one_nsp_per_mood_selects_what_the_index_says(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "nsp"
    result = invoke(["playlist", "--format", "nsp", "-o", out, "--index", library.index])
    assert result.exit_code == 0, result.output
    written = sorted(out.glob("*.nsp"))
    moods = {r.mood for r in library.rows() if r.mood}
    assert [f.stem for f in written] == sorted(moods)  # only moods that have tracks
    for f in written:
        doc = json.loads(f.read_text(encoding="utf-8"))
        assert doc["name"] == f.stem and doc["all"] == [{"is": {"mood": f.stem}}]
        assert _selects(f, library) == _listed([f"mood:{f.stem}"], library)


def test_a_query_over_valence_and_arousal_becomes_numeric_rules(
    library: Library, tmp_path: Path
) -> None:
    rows = [r for r in library.rows() if r.status == "ok"]
    # A boundary in the widest gap between two tracks' arousals near the middle: the tags hold
    # the numbers to 4 decimals and the index in full, so no track may sit on the edge.
    arousals = sorted(r.arousal for r in rows)
    middle = range(len(arousals) // 4, 3 * len(arousals) // 4)
    k = max(middle, key=lambda i: arousals[i + 1] - arousals[i])
    mid = (arousals[k] + arousals[k + 1]) / 2
    query = [f"arousal:..{mid:.3f}", "valence:-1..", "confidence:0.3.."]
    target = tmp_path / "calm.nsp"
    args = ["playlist", *query, "--sort", "arousal-", "-o", target, "--index", library.index]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert {"inTheRange": {"mertag_arousal": [-1.0, float(f"{mid:.3f}")]}} in doc["all"]
    assert {"inTheRange": {"mertag_confidence": [0.3, 1.0]}} in doc["all"]
    assert doc["sort"] == "mertag_arousal" and doc["order"] == "desc"
    assert _selects(target, library) == _listed(query, library)


def test_negation_groups_and_free_words(library: Library, tmp_path: Path) -> None:
    for n, query in enumerate(
        (["^mood:sad"], ["egypt", ",", "farm"], ["^arousal:0..", "path:Generated/"], ["kart"])
    ):
        target = tmp_path / f"{n}.nsp"
        result = invoke(["playlist", *query, "-o", target, "--index", library.index])
        if not _listed(query, library):
            assert result.exit_code == 0 and not target.exists()
            continue
        assert result.exit_code == 0, result.output
        assert _selects(target, library) == _listed([*query, "status:ok"], library), query


@pytest.mark.parametrize(
    "query, message",
    [
        (["title::^A"], "no regular expressions"),
        (["path:*.flac"], "no globs"),
        (["status:error"], "sees only tracks whose mood is in their tags"),
        (["p_q1:0.5.."], "p_q1 is not written into the files"),
        (["energy:8.."], "Navidrome has no energy field; select by arousal, e.g. arousal:0.4.."),
    ],
)
def test_what_navidrome_cannot_express_is_a_usage_error(
    library: Library, tmp_path: Path, query: list[str], message: str
) -> None:
    target = tmp_path / "x.nsp"
    result = invoke(["playlist", *query, "-o", target, "--index", library.index])
    if message.startswith("sees only") and result.exit_code == 0:  # no failed track to list
        pytest.fail(result.output)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not target.exists()


def test_absolute_path_is_refused_relative_path_works(library: Library, tmp_path: Path) -> None:
    bad = invoke(
        ["playlist", f"path:{library.lib}", "-o", tmp_path / "a.nsp", "--index", library.index]
    )
    assert bad.exit_code == 2 and "relative to its music folder" in bad.stderr
    good = invoke(
        ["playlist", "path:Generated/", "-o", tmp_path / "g.nsp", "--index", library.index]
    )
    assert good.exit_code == 0, good.output
    assert _selects(tmp_path / "g.nsp", library) == ["chord.wav"]


def test_format_and_out_must_agree(library: Library, tmp_path: Path) -> None:
    result = invoke(["playlist", "-f", "nsp", "-o", tmp_path / "x.m3u8", "--index", library.index])
    assert result.exit_code == 2 and "does not go with" in result.stderr
    journey = invoke(
        ["playlist", "--journey", "sad", "happy", "-f", "nsp", "-o", tmp_path, "--index"]
        + [library.index]
    )
    assert journey.exit_code == 2 and "written as m3u8" in journey.stderr
    bad = invoke(["playlist", "-f", "xspf", "-o", tmp_path, "--index", library.index])
    assert bad.exit_code == 2 and "m3u8 or nsp" in bad.stderr


def test_the_navidrome_config_names_the_keys_mertag_writes() -> None:
    from mertag.tagger.tags import FIELD_TABLE

    config = tomllib.loads(navidrome_config())["Tags"]
    for tag in TAGS.values():
        keys = set(FIELD_TABLE[tag.upper()])
        assert keys == set(config[tag]["Aliases"]), tag
        assert config[tag].get("Type") == ("float" if tag in NUMERIC_TAGS else None)
    assert {"TMOO", "TXXX:MOOD", "MOOD", "----:com.apple.iTunes:MOOD"} <= set(
        config["mood"]["Aliases"]
    )


def test_model_name_becomes_the_model_id_navidrome_reads(library: Library, tmp_path: Path) -> None:
    from mertag.tagger.model_names import packaged_model_id

    for n, query in enumerate((["model:default"], ["^model:fast"])):
        target = tmp_path / f"m{n}.nsp"
        result = invoke(["playlist", *query, "-o", target, "--index", library.index])
        assert result.exit_code == 0, result.output
        doc = json.loads(target.read_text(encoding="utf-8"))
        name = query[0].lstrip("^").partition(":")[2]
        assert packaged_model_id(name) in json.dumps(doc["all"])
        assert _selects(target, library) == _listed([*query, "status:ok"], library), query
