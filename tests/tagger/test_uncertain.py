"""Doubt and silence through `mertag scan` on real files: an uncertain track keeps its numbers but
gets no MOOD word (or the configured uncertain word), a word mertag wrote before is taken back and
the user's MOOD is never touched; lists, queries and playlists show it as uncertain; a silent
track is indexed as silent, gets no tags, and loses those mertag gave it before."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import mutagen
import pytest
from mutagen.flac import FLAC

from mertag.tagger.index import Index
from mertag.tagger.model import MoodModel
from mertag.tagger.tags import audio_fingerprint, read_tags
from tests.tagger.scanned_library import invoke

NAMES = ("bay.mp3", "egypt.flac", "farm.ogg", "hacienda.m4a")


def _library(corpus: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A library of the corpus tracks NAMES, and where its index goes."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in NAMES:
        shutil.copy2(corpus / name, lib / name)
    return lib, tmp_path / "index.sqlite3"


def _config(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("MERTAG_CONFIG", str(path))


def _scan(lib: Path, index: Path, *args: str) -> dict:
    result = invoke(["scan", lib, "--index", index, "-j", "1", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    doc: dict = json.loads(result.stdout)
    return doc


def _rows(index: Path) -> dict[str, object]:
    with Index(index, read_only=True) as idx:
        return {Path(r.path).name: r for r in idx.rows()}


def test_the_models_threshold_decides_by_default(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, "", monkeypatch)  # the shipped defaults, threshold on
    lib, index = _library(corpus, tmp_path)
    threshold = MoodModel().uncertain_below
    assert threshold is not None and 0.5 < threshold < 0.9
    doc = _scan(lib, index)
    rows = _rows(index)
    models = {m: MoodModel(m) for m in ("default", "fast")}
    below = {m.model_id: m.uncertain_below for m in models.values()}
    for name, row in rows.items():
        tags = read_tags(lib / name)
        assert row.uncertain == int(row.confidence < below[row.model_id]), name
        assert tags["MERTAG_CONFIDENCE"] == f"{row.confidence:.3f}"
        if row.uncertain:
            assert row.mood is None and "MOOD" not in tags and "MERTAG_MOOD" not in tags
            assert tags["MERTAG_QUADRANT"] == row.quadrant  # the numbers stay
        else:
            assert tags["MOOD"] == row.mood == tags["MERTAG_MOOD"]
    uncertain = sum(r.uncertain for r in rows.values())
    assert doc["summary"]["uncertain"] == uncertain
    assert sum(doc["summary"]["moods"].values()) == len(NAMES) - uncertain


def test_a_rescan_takes_back_mertags_word_and_keeps_the_users(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, "", monkeypatch)
    lib, index = _library(corpus, tmp_path)
    mine = FLAC(lib / "egypt.flac")
    mine["MOOD"] = ["Wistful"]
    mine.save()
    fingerprints = {n: audio_fingerprint(lib / n) for n in NAMES}

    _scan(lib, index, "--uncertain-below", "0")  # sure of every track
    assert all(not r.uncertain and r.mood for r in _rows(index).values())
    assert read_tags(lib / "egypt.flac")["MOOD"] == "Wistful"
    assert all("MOOD" in read_tags(lib / n) for n in NAMES)

    doc = _scan(lib, index, "--force", "--uncertain-below", "1")  # unsure of every track
    assert doc["summary"]["uncertain"] == len(NAMES) and doc["summary"]["moods"] == {}
    for name in NAMES:
        tags = read_tags(lib / name)
        assert "MERTAG_MOOD" not in tags and "MERTAG_CONFIDENCE" in tags
        assert audio_fingerprint(lib / name) == fingerprints[name]
        if name == "egypt.flac":
            assert tags["MOOD"] == "Wistful"  # the user's, untouched
        else:
            assert "MOOD" not in tags, name  # mertag's word, taken back

    listed = invoke(["list", "--index", index])
    assert listed.exit_code == 0 and listed.stdout.count("uncertain (Q") == len(NAMES)
    queried = invoke(["list", "uncertain:yes", "--index", index, "--format", "json"])
    assert len(json.loads(queried.stdout)) == len(NAMES)
    quadrant = next(iter(_rows(index).values())).quadrant
    by_mood = invoke(["list", f"mood:{quadrant}", "--index", index, "--format", "json"])
    assert json.loads(by_mood.stdout) == []  # an uncertain track has no mood to select by
    by_quadrant = invoke(["list", f"quadrant:{quadrant}", "--index", index, "--format", "json"])
    assert len(json.loads(by_quadrant.stdout)) >= 1

    out = tmp_path / "playlists"
    result = invoke(["playlist", "--out", out, "--index", index])
    assert result.exit_code == 0, result.output
    assert not out.exists() or not list(out.iterdir())
    assert f"{len(NAMES)} tracks with an uncertain mood left out" in result.stderr


def test_the_uncertain_word_is_written_and_cannot_be_a_mood_word(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, 'uncertain_word = "Unsure"\nuncertain_below = 1\n', monkeypatch)
    lib, index = _library(corpus, tmp_path)
    _scan(lib, index)
    for name, row in _rows(index).items():
        assert row.uncertain == 1 and row.mood == "Unsure"
        assert read_tags(lib / name)["MOOD"] == "Unsure"
    listed = invoke(["list", "--index", index])
    assert listed.stdout.count("Unsure (Q") == len(NAMES)
    result = invoke(["scan", lib, "--index", index, "--uncertain-word", "sad"])
    assert result.exit_code == 2
    assert "--uncertain-word: the uncertain word 'sad' is Q3's mood word" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("uncertain_below = 2\n", 'uncertain_below: must be "model" or a number from 0 to 1'),
        ('uncertain_below = "sure"\n', 'uncertain_below: must be "model" or a number'),
        ("uncertain_word = 3\n", "uncertain_word: must be a word"),
    ],
)
def test_a_bad_doubt_setting_is_one_line_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    _config(tmp_path, text, monkeypatch)
    result = invoke(["scan", tmp_path, "--index", tmp_path / "i.sqlite3"])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _silence(path: Path, seconds: float = 20.0) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(b"\0\0\0\0" * int(seconds * 44100))
    return path


def test_silence_is_indexed_as_silent_left_untagged_and_not_analysed_again(
    corpus: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(corpus / "bay.mp3", lib / "bay.mp3")
    quiet = _silence(lib / "quiet.wav")
    before = quiet.read_bytes()
    index = tmp_path / "index.sqlite3"
    doc = _scan(lib, index)
    assert doc["summary"]["silent"] == 1 and doc["summary"]["failed"] == []
    record = next(r for r in doc["results"] if r["path"].endswith("quiet.wav"))
    assert record["status"] == "silent" and "LUFS" in record["reason"]
    row = _rows(index)["quiet.wav"]
    assert row.status == "silent" and row.quadrant is None and row.mood is None
    assert "silent" in (row.error or "")
    assert quiet.read_bytes() == before and mutagen.File(quiet).tags is None
    assert _scan(lib, index)["summary"]["unchanged"] == 2  # not analysed again
    listed = invoke(["list", "status:silent", "--index", index])
    assert listed.exit_code == 0 and "quiet.wav" in listed.stdout and "silent" in listed.stdout


def test_stats_count_uncertain_and_silent_tracks_apart(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, "uncertain_below = 1\n", monkeypatch)
    lib, index = _library(corpus, tmp_path)
    _silence(lib / "quiet.wav")
    _scan(lib, index)
    result = invoke(["stats", "--index", index, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["uncertain"] == len(NAMES) and doc["silent"] == 1 and doc["failed"] == 0
    assert sum(m["tracks"] for m in doc["moods"]) == 0


def test_a_track_that_fell_silent_loses_the_tags_mertag_gave_it_and_keeps_the_users(
    corpus: Path, tmp_path: Path
) -> None:
    """The same file, once music and tagged, now silence (the user replaced its audio and kept
    its tags): it has no mood any more, so mertag's fields go; the user's title and MOOD-less
    tags stay, and the next scan leaves it alone."""
    lib = tmp_path / "lib"
    lib.mkdir()
    track = lib / "lava.wav"
    shutil.copy2(corpus / "lava.wav", track)
    tagged = mutagen.File(track)
    if tagged.tags is None:
        tagged.add_tags()
    tagged.tags.add(mutagen.id3.TIT2(encoding=3, text=["Lava (my edit)"]))
    tagged.save()
    index = tmp_path / "index.sqlite3"
    _scan(lib, index)
    before = read_tags(track)
    assert before["MOOD"] and before["MERTAG_MODEL"]
    frames = mutagen.File(track).tags

    quiet = _silence(tmp_path / "quiet.wav")  # the silent audio, with the file's old tags
    replaced = mutagen.File(quiet)
    replaced.add_tags()
    for frame in frames.values():
        replaced.tags.add(frame)
    replaced.save()
    shutil.copyfile(quiet, track)
    doc = _scan(lib, index)
    assert doc["summary"]["silent"] == 1 and doc["summary"]["failed"] == []
    assert read_tags(track) == {}  # no MOOD, no MERTAG_* field
    assert [str(t) for t in mutagen.File(track).tags.getall("TIT2")] == ["Lava (my edit)"]
    row = _rows(index)["lava.wav"]
    assert row.status == "silent" and (row.size, row.mtime_ns) == (
        track.stat().st_size,
        track.stat().st_mtime_ns,
    )
    assert _scan(lib, index)["summary"]["unchanged"] == 1


def test_a_journey_shows_uncertain_tracks_as_lists_do(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, "uncertain_below = 1\n", monkeypatch)  # every track is uncertain
    lib, index = _library(corpus, tmp_path)
    _scan(lib, index)
    out = tmp_path / "journey.m3u8"
    args = ["playlist", "--journey", "sad", "happy", "-n", 3, "--max-distance", 2, "-o", out]
    result = invoke([*args, "--index", index])
    assert result.exit_code == 0, result.output
    shown = result.stdout + result.stderr
    assert "None" not in shown and shown.count("uncertain (Q") == 3


def test_a_query_nsp_counts_what_navidrome_will_show(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Navidrome selects by the mood in the tags, which an uncertain track lacks: the .nsp
    of a query counts only the tracks it will show, while the .m3u8 lists every match."""
    _config(tmp_path, "uncertain_below = 0\n", monkeypatch)
    lib, index = _library(corpus, tmp_path)
    _scan(lib, index)
    confidences = sorted(r.confidence for r in _rows(index).values())
    threshold = (confidences[1] + confidences[2]) / 2  # two tracks below it, two above
    _scan(lib, index, "--force", "--uncertain-below", f"{threshold:.6f}")
    assert sum(r.uncertain for r in _rows(index).values()) == 2
    for suffix in ("nsp", "m3u8"):
        result = invoke(
            ["playlist", "valence:-1..", "-o", tmp_path / f"q.{suffix}", "--index", index]
        )
        assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "q.nsp").read_text(encoding="utf-8"))
    assert "2 tracks" in doc["comment"]
    entries = [x for x in (tmp_path / "q.m3u8").read_text().splitlines() if x[:1] not in "#"]
    assert len([x for x in entries if x.strip()]) == 4


def test_the_html_map_labels_uncertain_tracks_as_lists_do(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, "uncertain_below = 1\n", monkeypatch)
    lib, index = _library(corpus, tmp_path)
    _scan(lib, index)
    out = tmp_path / "map.html"
    result = invoke(["map", "--out", out, "--index", index])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.count('"uncertain (Q') == len(NAMES) and ",null]" not in page


def test_the_maps_count_uncertain_and_silent_tracks_as_stats_and_lists_do(
    corpus: Path, tmp_path: Path
) -> None:
    """An uncertain track is in no quadrant's box, on the page or in the picture: each box counts
    what `stats` counts for its mood; the uncertain and silent tracks are counted apart."""
    pytest.importorskip("matplotlib", reason="the picture needs the map extra (matplotlib)")
    from mertag.tagger.libmap import map_figure
    from tests.tagger.test_htmlmap import embedded

    lib, index = _library(corpus, tmp_path)
    _silence(lib / "quiet.wav")
    _scan(lib, index)  # under the tests' config every track is confident
    confidences = sorted(r.confidence for r in _rows(index).values() if r.status == "ok")
    threshold = (confidences[1] + confidences[2]) / 2
    # `mertag write` records the verdict of this threshold in the index, as a scan with it would.
    done = invoke(["write", "--uncertain-below", f"{threshold:.6f}", "--index", index])
    assert done.exit_code == 0, done.output
    rows = _rows(index)
    uncertain = sorted(str(lib / n) for n, r in rows.items() if r.uncertain)
    assert len(uncertain) == 2
    stats = json.loads(invoke(["stats", "--index", index, "--format", "json"]).stdout)
    boxes = {m["quadrant"]: m["tracks"] for m in stats["moods"]}
    assert stats["uncertain"] == 2 and stats["silent"] == 1 and sum(boxes.values()) == 2
    listed = invoke(["list", "uncertain:yes", "--format", "json", "--index", index])
    assert sorted(r["path"] for r in json.loads(listed.stdout)) == uncertain

    page = tmp_path / "map.html"
    result = invoke(["map", "--out", page, "--index", index])
    assert result.exit_code == 0 and "(4 tracks)" in result.stderr, result.output
    data = embedded(page)
    group = data["fields"].index("group")
    paths = data["fields"].index("path")
    groups = [t[group] for t in data["tracks"]]
    assert {q: groups.count(q) for q in boxes} == boxes
    assert sorted(t[paths] for t in data["tracks"] if t[group] == "uncertain") == uncertain
    assert data["silent"] == "1 silent track (no mood) not drawn"

    with Index(index, read_only=True) as idx:
        picture, drawn = map_figure(idx.rows())
    texts = [t.get_text() for t in picture.axes[0].texts]
    for q, n in boxes.items():
        word = next(m["mood"] for m in stats["moods"] if m["quadrant"] == q)
        assert f"{q} {word} \u00b7 {n} track{'' if n == 1 else 's'}" in texts
    assert "uncertain \u00b7 2 tracks" in texts and drawn == 4
    heading = picture.axes[0].get_title(loc="left")
    assert heading.endswith("4 tracks\n2 uncertain; 1 silent track (no mood) not drawn")
