"""Walking a real temp tree: order, hidden entries, symlinks, excludes, odd names, problems."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mertag.tagger.library import AUDIO_EXTENSIONS, Walk, is_audio_name, walk
from tests.tagger.fault_helpers import FORMATS, make_track

BAD_NAME = os.fsdecode(b"bad\xff.mp3")  # not valid UTF-8: a str with a surrogate escape


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small library with every case the walk must handle; returns its root."""
    root = tmp_path / "music"
    for rel in [
        "Artist/Album/01 a.mp3",
        "Artist/Album/02 b.FLAC",
        "Artist/Album/cover.jpg",
        "Artist/.hidden.mp3",
        ".hiddendir/x.mp3",
        ".x.mertag-tmp",
        "x.mp3/inner.ogg",  # a folder named like a track
        "a/song.wav",
        "Podcasts/ep1.mp3",
        "new\nline.mp3",
        "notes.txt",
    ]:
        touch(root / rel)
    # Made through a bytes path, as a filesystem with a non-UTF-8 name would hand it over.
    with open(os.path.join(os.fsencode(root), b"bad\xff.mp3"), "wb"):
        pass
    (root / "a" / "loop").symlink_to("..")  # a loop back to the root
    (root / "link.mp3").symlink_to(root / "Artist/Album/01 a.mp3")  # a second way to one file
    outside = tmp_path / "outside"
    touch(outside / "ext.opus")
    touch(outside / "dir" / "more.m4a")
    (root / "ext-link.opus").symlink_to(outside / "ext.opus")
    (root / "linkdir").symlink_to(outside / "dir")
    (root / "broken.mp3").symlink_to(tmp_path / "nowhere.mp3")
    return root


def test_walk_finds_tracks_in_name_order(tree: Path) -> None:
    result = walk([tree])
    assert result.tracks == [
        tree / "Artist/Album/01 a.mp3",
        tree / "Artist/Album/02 b.FLAC",
        tree / "Podcasts/ep1.mp3",
        tree / "a/song.wav",
        tree / BAD_NAME,
        tree / "ext-link.opus",
        tree / "linkdir/more.m4a",
        tree / "new\nline.mp3",
        tree / "x.mp3/inner.ogg",
    ]
    assert all(p.is_absolute() for p in result.tracks)
    assert result.passed_over == 2  # cover.jpg, notes.txt
    assert result.excluded == 0
    assert result.problems == [(tree / "broken.mp3", result.problems[0][1])]
    assert "broken symlink" in result.problems[0][1]
    assert "\n" not in result.problems[0][1]
    assert result.outward_links == [tree / "a/loop"]  # a link back to the root: not followed


def test_a_folder_link_above_the_library_is_not_followed(tree: Path) -> None:
    """`up -> ..` (or a link to / or the home folder) would take the walk, and a scan's tag
    writes, out of the folder the user named into everything around it."""
    (tree / "Artist" / "up").symlink_to("../..")  # the folder holding the library
    (tree / "root").symlink_to("/")
    result = walk([tree])
    assert result.outward_links == [tree / "Artist/up", tree / "a/loop", tree / "root"]
    assert all(p.is_relative_to(tree) for p in result.tracks)  # nothing from above it
    assert tree / "linkdir/more.m4a" in result.tracks  # a link to music elsewhere is followed
    # Named as roots, a folder and one inside it: the inner one's link to the outer is outward.
    inner = walk([tree / "Artist", tree / "a"])
    assert tree / "a/loop" in inner.outward_links


def test_walk_is_deterministic(tree: Path) -> None:
    assert walk([tree]) == walk([tree])


def test_paths_are_not_resolved_through_symlinks(tree: Path) -> None:
    tracks = walk([tree]).tracks
    assert tree / "linkdir/more.m4a" in tracks
    assert tree / "ext-link.opus" in tracks


def test_overlapping_roots_give_no_duplicates(tree: Path) -> None:
    both = walk([tree, tree / "Artist", tree / "Artist/Album/01 a.mp3"])
    assert both.tracks == walk([tree]).tracks


def test_single_file_roots(tree: Path) -> None:
    result = walk([tree / "a/song.wav", tree / "notes.txt"])
    assert result.tracks == [tree / "a/song.wav"]
    assert result.passed_over == 1


def test_relative_root_gives_absolute_paths(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    assert walk([Path("Podcasts")]).tracks == [tree / "Podcasts/ep1.mp3"]


def test_missing_root_is_a_problem(tmp_path: Path) -> None:
    result = walk([tmp_path / "absent"])
    assert result == Walk(tracks=[], problems=[(tmp_path / "absent", result.problems[0][1])])


@pytest.mark.parametrize(
    ("pattern", "gone", "excluded"),
    [
        ("*.wav", ["a/song.wav"], 1),
        ("Podcasts/*", ["Podcasts/ep1.mp3"], 1),
        ("Podcasts", ["Podcasts/ep1.mp3"], 1),
        ("*.MP3", [], 0),  # case-sensitive, as fnmatch is on POSIX
        ("*ine.mp3", ["new\nline.mp3"], 1),  # '*' spans the newline
    ],
)
def test_exclude_patterns(tree: Path, pattern: str, gone: list[str], excluded: int) -> None:
    if pattern == "*.MP3" and os.path.normcase("A") == "a":
        pytest.skip("fnmatch is case-insensitive on this platform")
    everything = walk([tree]).tracks
    result = walk([tree], exclude=[pattern])
    assert result.tracks == [p for p in everything if p not in [tree / g for g in gone]]
    assert result.excluded == excluded


def test_hidden_root_is_still_walked(tmp_path: Path) -> None:
    touch(tmp_path / ".music" / "a.mp3")
    assert walk([tmp_path / ".music"]).tracks == [tmp_path / ".music" / "a.mp3"]


def test_excluded_folder_counts_once_and_a_link_still_reaches_its_file(tree: Path) -> None:
    result = walk([tree], exclude=["Artist/Album"])
    assert result.excluded == 1
    assert tree / "Artist/Album/02 b.FLAC" not in result.tracks
    assert tree / "link.mp3" in result.tracks  # not excluded itself, so now the one way in


def test_symlinked_folder_is_entered_once(tree: Path) -> None:
    (tree / "linkdir2").symlink_to(tree.parent / "outside" / "dir")
    tracks = walk([tree]).tracks
    assert tree / "linkdir/more.m4a" in tracks and tree / "linkdir2/more.m4a" not in tracks


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: permission bits do not stop root from listing a folder",
)
def test_unreadable_folder_is_a_problem_and_the_walk_goes_on(tree: Path) -> None:
    locked = tree / "Artist"
    locked.chmod(0)
    try:
        result = walk([tree])
    finally:
        locked.chmod(0o755)
    assert tree / "Podcasts/ep1.mp3" in result.tracks
    assert not any(p.is_relative_to(locked) for p in result.tracks)
    assert [p for p, _ in result.problems] == [locked, tree / "broken.mp3"]
    reason = dict(result.problems)[locked]
    assert "ermission" in reason and "\n" not in reason


def test_audio_extensions_match_case_insensitively() -> None:
    assert ".flac" in AUDIO_EXTENSIONS
    assert is_audio_name("X.FLAC") and is_audio_name("y.Opus") and is_audio_name("z.aiff")
    assert not is_audio_name("cover.jpg") and not is_audio_name("mp3")


def test_folder_that_cannot_be_listed_is_a_problem(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same case as above by injection, so it is covered when the tests run as root."""
    real_scandir = os.scandir
    locked = tree / "Artist"

    def scandir(path: Path) -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("mertag.tagger.library.os.scandir", scandir)
    result = walk([tree])
    assert tree / "Podcasts/ep1.mp3" in result.tracks
    assert dict(result.problems)[locked] == "cannot list folder: Permission denied"


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_a_named_file_without_an_audio_suffix_is_decided_by_content(
    tmp_path: Path, suffix: str
) -> None:
    track = make_track(tmp_path / f"t{suffix}")
    bare, wrong = tmp_path / "track", tmp_path / "track.txt"
    os.link(track, bare)
    os.link(track, wrong)
    (tmp_path / "notes").write_text("not audio\n")
    result = walk([bare, wrong, tmp_path / "notes"])
    assert result.tracks == [bare]  # one file, reached twice: listed once
    assert result.passed_over == 1 and not result.problems
    # Inside a folder the name alone decides, so a walk never opens every file of a library.
    assert walk([tmp_path]).tracks == [track]
