"""`mertag playlist`: one M3U8 per mood over a real scanned library, read back by line and by a
strict third-party parser, every location resolving to the indexed file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import mutagen
import pytest

from mertag.tagger.index import Index, IndexRow
from mertag.tagger.playlist import location, playable, safe_file_name, track_entry
from tests.tagger.scanned_library import GENERATED, Library, invoke, read_playlist


def _ok_rows(lib: Library) -> list[IndexRow]:
    return [r for r in lib.rows() if r.status == "ok"]


def test_one_playlist_per_mood_ordered_by_confidence(library: Library, tmp_path: Path) -> None:
    gone = library.path(GENERATED[1])
    gone.unlink()
    out = tmp_path / "playlists"
    result = invoke(["playlist", "--out", out, "--index", library.index])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "chord.wav" in warnings[0] and "gone" in warnings[0]

    rows = {r.path: r for r in _ok_rows(library) if r.path != str(gone)}
    listed: list[str] = []
    moods = ("Happy", "Angry", "Sad", "Relaxed")
    for mood in moods:
        target = out / f"{mood}.m3u8"
        members = [r for r in rows.values() if r.mood == mood]
        if not members:  # no empty playlist files; the user is told which moods had none
            assert not target.exists()
            assert f"no tracks for {mood} (Q" in result.stderr
            continue
        entries = read_playlist(target)
        assert len(entries) == len(members)
        for e in entries:
            assert Path(e.location).is_absolute() and e.path.is_file()
            row = rows[e.location]
            assert row.mood == mood
            listed.append(e.location)
        confidences = [rows[e.location].confidence for e in entries]
        assert confidences == sorted(confidences, reverse=True)
    assert sorted(listed) == sorted(rows)  # every playable track exactly once
    assert {f.name for f in out.iterdir()} <= {f"{m}.m3u8" for m in moods}  # no temp files


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_playlist_modes_follow_the_umask(
    library: Library, tmp_path: Path, umask: int, mode: int
) -> None:
    out = tmp_path / "pl"
    old = os.umask(umask)
    try:
        assert invoke(["playlist", "-o", out, "--index", library.index]).exit_code == 0
        single = out / "all.m3u8"
        assert invoke(["playlist", "-o", single, "--index", library.index]).exit_code == 0
        journey = out / "journey.m3u8"
        args = ["playlist", "--journey", "sad", "happy", "-n", 3, "-o", journey]
        assert invoke([*args, "--index", library.index]).exit_code == 0
    finally:
        os.umask(old)
    files = sorted(out.iterdir())
    assert len(files) >= 3
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == mode, f.name


def test_a_rewritten_playlist_keeps_its_mode_and_its_symlink(
    library: Library, tmp_path: Path
) -> None:
    """Writing a playlist again replaces mertag's own file, but what the user did to it stays:
    the mode they set (here 0664, for a music server's group), and a symlink they made to it
    (the file it points to is rewritten; the link is still a link)."""
    out = tmp_path / "calm.m3u8"
    args = ["playlist", "arousal:..0", "-o", out, "--index", library.index]
    assert invoke(args).exit_code == 0
    out.chmod(0o664)
    shared = tmp_path / "server" / "calm.m3u8"
    shared.parent.mkdir()
    shared.symlink_to(out)
    out.write_text(out.read_text() + "#EXTINF:1,stale entry\n/nowhere.mp3\n")
    result = invoke(["playlist", "arousal:..0", "-o", shared, "--index", library.index])
    assert result.exit_code == 0, result.output
    assert shared.is_symlink() and shared.resolve() == out.resolve()
    assert "/nowhere.mp3" not in out.read_text() and read_playlist(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o664
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_killed_writers_temp_files_go_at_the_next_write_and_nothing_else(
    library: Library, tmp_path: Path
) -> None:
    """A writer killed between creating its temp file and renaming it leaves a hidden
    `.NAME.XXXXXXXX.tmp` beside the target; the next write of that target deletes it. A live
    writer's (flocked by another process), a just-made one and a user's file of another name
    stay."""
    import subprocess
    import sys
    import time

    out = tmp_path / "calm.m3u8"
    hour_ago = time.time() - 3600

    def leftover(name: str, old: bool = True) -> Path:
        path = tmp_path / name
        path.write_text("#EXTM3U\n")
        if old:
            os.utime(path, (hour_ago, hour_ago))
        return path

    dead = leftover(".calm.m3u8.k1ll3d_0.tmp")
    live = leftover(".calm.m3u8.l1ve0000.tmp")
    fresh = leftover(".calm.m3u8.fresh000.tmp", old=False)
    users = [leftover(".calm.m3u8.notes.tmp"), leftover(".other.m3u8.k1ll3d_0.tmp")]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(120)",
            str(live),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        args = ["playlist", "arousal:..0", "-o", out, "--index", library.index]
        assert invoke(args).exit_code == 0
        assert not dead.exists() and live.exists() and fresh.exists()
        assert all(p.exists() for p in users) and read_playlist(out)
    finally:
        holder.kill()
        holder.wait()
    os.utime(fresh, (hour_ago, hour_ago))
    assert invoke(args).exit_code == 0  # the holder is gone: its file is a dead writer's now
    assert not live.exists() and not fresh.exists() and all(p.exists() for p in users)


def test_a_query_selects_the_tracks_of_one_playlist(library: Library, tmp_path: Path) -> None:
    rows = _ok_rows(library)
    mid = sorted(r.arousal for r in rows)[len(rows) // 2]
    target = tmp_path / "calm.m3u8"
    args = ["playlist", f"arousal:..{mid}", "--sort", "arousal", "-o", target]
    result = invoke([*args, "--index", library.index])
    assert result.exit_code == 0, result.output
    entries = read_playlist(target)
    by_path = {r.path: r for r in rows}
    chosen = [by_path[e.location] for e in entries]
    assert len(chosen) == sum(r.arousal <= mid for r in rows)
    assert [r.arousal for r in chosen] == sorted(r.arousal for r in chosen)
    none = invoke(
        ["playlist", "arousal:5..", "-o", tmp_path / "none.m3u8", "--index", library.index]
    )
    assert none.exit_code == 0 and not (tmp_path / "none.m3u8").exists()
    assert "no tracks for" in none.stderr and "no playlist written" in none.stderr


def test_mood_playlists_of_a_query(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    result = invoke(["playlist", "path:Generated/", "-o", out, "--index", library.index])
    assert result.exit_code == 0, result.output
    files = list(out.glob("*.m3u8"))
    assert [e.path.name for f in files for e in read_playlist(f)] == ["chord.wav"]
    assert result.stderr.count("no playlist written") == 3


def test_extinf_has_duration_and_artist_title(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "pl"
    assert invoke(["playlist", "-o", out, "--index", library.index]).exit_code == 0
    entries = {e.path.name: e for f in out.glob("*.m3u8") for e in read_playlist(f)}
    assert entries["bay.mp3"].title == "0zone0ne - Bay"
    assert entries["hacienda.m4a"].title == "Claude Werner - Hacienda"
    assert entries["egypt.flac"].title == "0zone0ne - Egypt"
    assert entries["farm.ogg"].title.endswith(" - farm")  # artist, no title tag: the file name
    assert entries["lava.wav"].title == "lava"  # no tags at all
    assert entries["tone [A440].wav"].title == "Test Tones - A above middle C"  # ID3 in WAV
    for name, e in entries.items():
        assert e.seconds == round(mutagen.File(e.path).info.length), name


def test_relative_paths_resolve_from_the_playlist_folder(library: Library) -> None:
    out = library.lib / "Playlists"
    result = invoke(
        ["playlist", "--out", out, "--relative-to", out, "--index", library.index, "--path", "*"]
    )
    assert result.exit_code == 0, result.output
    entries = [e for f in sorted(out.glob("*.m3u8")) for e in read_playlist(f)]
    assert len(entries) == len(_ok_rows(library))
    names = set()
    for e in entries:
        assert not Path(e.location).is_absolute() and e.location.startswith("../")
        assert e.path.is_file()
        assert os.path.samefile(e.path, library.lib / Path(e.location).relative_to(".."))
        names.add(e.path.name)
    assert {"Kart Grand Prix — Weirwood.mp3", "tone [A440].wav", "chord.wav"} <= names


def test_filters_confidence_and_path(library: Library, tmp_path: Path) -> None:
    rows = _ok_rows(library)
    threshold = sorted(r.confidence for r in rows)[len(rows) // 2]
    out = tmp_path / "conf"
    args = ["playlist", "-o", out, "--index", library.index, "--min-confidence", threshold]
    assert invoke(args).exit_code == 0
    got = [e for f in out.glob("*.m3u8") for e in read_playlist(f)]
    assert len(got) == sum(r.confidence >= threshold for r in rows)
    out = tmp_path / "generated"
    args = ["playlist", "-o", out, "--index", library.index, "--path", "*/Generated/*"]
    assert invoke(args).exit_code == 0
    got = [e for f in out.glob("*.m3u8") for e in read_playlist(f)]
    assert [e.path.name for e in got] == ["chord.wav"]


def test_rerun_leaves_an_earlier_playlist_and_says_so(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "pl"
    assert invoke(["playlist", "-o", out, "--index", library.index]).exit_code == 0
    before = {f.name: f.read_bytes() for f in out.glob("*.m3u8")}
    args = ["playlist", "-o", out, "--index", library.index, "--path", "/nowhere/*"]
    result = invoke(args)
    assert result.exit_code == 0
    assert {f.name: f.read_bytes() for f in out.glob("*.m3u8")} == before  # nothing lost
    for name in before:
        assert f"{out / name} from an earlier run is left as it was" in result.stderr


def test_out_comes_from_the_config_or_is_required(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = invoke(["playlist", "--index", library.index])
    assert missing.exit_code == 2 and "--out" in missing.stderr
    not_dir = tmp_path / "file.txt"
    not_dir.write_text("x")
    assert invoke(["playlist", "-o", not_dir, "--index", library.index]).exit_code == 2
    config = tmp_path / "config.toml"
    config.write_text('playlist_dir = "lists"\n', encoding="utf-8")
    monkeypatch.setenv("MERTAG_CONFIG", str(config))
    assert invoke(["playlist", "--index", library.index]).exit_code == 0
    assert (tmp_path / "lists" / "Sad.m3u8").is_file()


def test_no_index_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(["playlist", "-o", tmp_path, "--index", tmp_path / "none.sqlite3"])
    assert result.exit_code == 2 and "no index yet" in result.stderr
    assert not (tmp_path / "none.sqlite3").exists()


def test_names_a_playlist_cannot_hold_are_left_out(tmp_path: Path) -> None:
    odd = tmp_path / os.fsdecode(b"bad\xff.wav")
    odd.write_bytes(b"x")
    broken = tmp_path / "two\nlines.wav"
    broken.write_bytes(b"x")
    rows = [
        IndexRow(path=str(p), size=1, mtime_ns=1, status="ok", quadrant="Q1", mood="Happy")
        for p in (odd, broken, tmp_path / "gone.wav")
    ]
    skipped: list[tuple[str, str]] = []
    assert playable(rows, skipped) == []
    reasons = dict(skipped)
    assert "UTF-8" in reasons[str(odd)]
    assert "line break" in reasons[str(broken)]
    assert "gone" in reasons[str(tmp_path / "gone.wav")]


def test_locations_and_file_names() -> None:
    assert location("/m/a b.mp3", None) == "/m/a b.mp3"
    assert location("/m/x/a.mp3", Path("/m/lists")) == "../x/a.mp3"
    assert location("/m/#1 hit.mp3", Path("/m")) == "./#1 hit.mp3"  # not a comment line
    assert safe_file_name("Calm/Quiet") == "Calm_Quiet"
    assert safe_file_name("..hidden") == "hidden"
    assert safe_file_name("") == "mood"


def test_track_entry_of_an_unreadable_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_text("not audio")
    assert track_entry(str(junk)) == track_entry(str(junk))
    entry = track_entry(str(junk))
    assert entry.seconds == -1 and entry.title == "junk"


def test_index_untouched_by_playlists(library: Library, tmp_path: Path) -> None:
    with Index(library.index) as idx:
        before = list(idx.rows())
    assert invoke(["playlist", "-o", tmp_path, "--index", library.index]).exit_code == 0
    with Index(library.index) as idx:
        assert list(idx.rows()) == before
