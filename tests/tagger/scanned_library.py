"""A real scanned library for the tests of the commands that read the index (playlist, list,
stats, map, untag, prune), and small synthetic ones for what needs many tracks.

`scanned_library` runs one real `mertag scan` over a copy of ../shared/corpus plus two generated
WAV tracks (one with ID3 artist/title) and a bad file, once per test session; `copy_library` gives
a test its own writable copy with the index rewritten to the new paths (the `library` fixture in
conftest.py). `synthetic_library`
indexes short generated WAV files at chosen points of the valence-arousal plane without
analysing them, for journeys and maps over many tracks.
"""

from __future__ import annotations

import shutil
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import mutagen
import numpy as np
import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, TIT2, TPE1
from mutagen.mp3 import MP3
from mutagen.wave import WAVE
from typer.testing import CliRunner, Result

from mertag.tagger.cli import app
from mertag.tagger.index import Index, IndexRow
from mertag.tagger.mood import predict_mood
from mertag.tagger.output_files import M3U8_MARK
from tests.conftest import CORPUS_FILES, need_module

CORPUS_NAMES = CORPUS_FILES
GENERATED = ("tone [A440].wav", "Generated/chord.wav")
BAD = "bad/text.mp3"
WRITTEN_FIELDS = {
    "MOOD": "Happy",
    "MERTAG_QUADRANT": "Q1",
    "MERTAG_VALENCE": "0.500",
    "MERTAG_AROUSAL": "0.500",
    "MERTAG_CONFIDENCE": "0.900",
    "MERTAG_MODEL": "test",
}
"""The fields of one analysed track, as `write_tags` takes them, for tests that tag a file
without the model."""

runner = CliRunner()


TEST_CONFIG = "uncertain_below = 0\n"
"""The config every test runs under unless it writes its own: the defaults, but with the doubt
threshold off, so that a test tone or a corpus track the model is unsure of still gets its
MOOD word and the tests of tags, playlists and queries see every track. The tests of doubt
(test_uncertain.py) set the threshold themselves."""


def neutral_config(folder: Path) -> Path:
    """The config file TEST_CONFIG: tests never read the real user's config."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mertag-test-config.toml"
    path.write_text(TEST_CONFIG, encoding="utf-8")
    return path


def invoke(args: Sequence[str]) -> Result:
    """Run `mertag ARGS` in-process, stdout and stderr kept apart."""
    return runner.invoke(app, [str(a) for a in args])


def make_wav(
    path: Path,
    seconds: float = 4.0,
    freqs: Sequence[float] = (440.0,),
    *,
    rate: int = 22050,
    artist: str | None = None,
    title: str | None = None,
) -> Path:
    """A 16-bit mono PCM WAV of summed sines, optionally with ID3 artist and title."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    signal = sum(np.sin(2 * np.pi * f * t) for f in freqs) / max(len(freqs), 1)
    pcm = (np.asarray(signal) * 0.3 * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    if artist or title:
        audio = WAVE(path)
        audio.add_tags()
        if artist:
            audio.tags.add(TPE1(encoding=3, text=[artist]))
        if title:
            audio.tags.add(TIT2(encoding=3, text=[title]))
        audio.save()
    return path


@dataclass(frozen=True)
class Library:
    """A music folder and the index that describes it."""

    lib: Path
    index: Path

    def path(self, name: str) -> Path:
        return self.lib / name

    def rows(self) -> list[IndexRow]:
        with Index(self.index) as idx:
            return list(idx.rows())


OUTPUT_FILES = [
    ("map", "map.html"), ("map", "map.png"), ("map", "map.svg"), ("map", "map.pdf"),
    ("export", "rows.csv"), ("export", "rows.json"),
]  # fmt: skip
"""Each (command, file name) of the maps and exports, for `output_command`."""


def output_command(library: Library, command: str, target: Path) -> list[object]:
    """`map` or `export` of `library` into `target`, its format by its suffix (skips a picture
    map where matplotlib is absent)."""
    if command == "map" and target.suffix not in (".html", ".htm"):
        need_module("matplotlib", "map")
    args: list[object] = [command, "--index", library.index, "-o", target]
    if command == "export" and target.suffix == ".json":
        args += ["--format", "json"]
    return args


_SCANNED: dict[Path, tuple[Library, Result]] = {}


def scanned_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Library, Result]:
    """One real `mertag scan` of the corpus copy plus generated tracks, shared by the session."""
    from tests.conftest import copy_corpus

    key = tmp_path_factory.getbasetemp()
    if key in _SCANNED:
        return _SCANNED[key]
    root = tmp_path_factory.mktemp("scanned")
    lib = copy_corpus(root / "lib", CORPUS_NAMES)
    make_wav(lib / GENERATED[0], freqs=(440.0,), artist="Test Tones", title="A above middle C")
    make_wav(lib / GENERATED[1], freqs=(261.6, 329.6, 392.0))
    add_pictures(lib)
    (lib / BAD).parent.mkdir()
    (lib / BAD).write_text("not music\n" * 100)
    index = root / "index.sqlite3"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERTAG_CONFIG", str(neutral_config(root)))
        result = invoke(["scan", lib, "--index", index, "--jobs", "1", "--quiet"])
    _SCANNED[key] = (Library(lib, index), result)
    return _SCANNED[key]


def copy_library(src: Library, dst: Path) -> Library:
    """Copy files (mtimes kept) and the index, its paths rewritten to the copy."""
    lib = dst / "lib"
    shutil.copytree(src.lib, lib, copy_function=shutil.copy2)
    index = dst / "index.sqlite3"
    with Index(src.index) as old, Index(index) as new:
        for row in old.rows():
            rel = Path(row.path).relative_to(src.lib)
            new.upsert(replace(row, path=str(lib / rel)))
    return Library(lib, index)


def point_row(
    path: Path | str,
    valence: float,
    arousal: float,
    *,
    size: int = 1,
    mtime_ns: int = 1,
    model_id: str = "synthetic",
) -> IndexRow:
    """An ok, tagged index row for `path` at (valence, arousal), with probabilities to match.

    The probabilities are the ones whose expectation is the point: with p1+p2+p3+p4 = 1,
    valence = p1+p4-p2-p3 and arousal = p1+p2-p3-p4 leave one degree of freedom, fixed here by
    making the smallest probability as small as it can be.
    """
    v, a = valence, arousal
    # p1 - p3 = (v + a) / 2, p4 - p2 = (v - a) / 2; put the mass on the larger of each pair.
    d13, d42 = (v + a) / 2, (v - a) / 2
    rest = 1 - abs(d13) - abs(d42)
    base = rest / 4
    p = np.full(4, base)
    p[0 if d13 >= 0 else 2] += abs(d13)
    p[3 if d42 >= 0 else 1] += abs(d42)
    pred = predict_mood(p, model_id)
    return IndexRow(
        path=str(path),
        size=size,
        mtime_ns=mtime_ns,
        status="ok",
        quadrant=pred.quadrant,
        mood=pred.mood,
        p_q1=pred.probabilities[0],
        p_q2=pred.probabilities[1],
        p_q3=pred.probabilities[2],
        p_q4=pred.probabilities[3],
        valence=pred.valence,
        arousal=pred.arousal,
        confidence=pred.confidence,
        model_id=model_id,
        feature_schema="synthetic",
        tagged=1,
    )


def synthetic_library(folder: Path, points: Sequence[tuple[float, float]]) -> Library:
    """Short real WAV files, one per point, indexed at those points (no analysis)."""
    lib = folder / "lib"
    index = folder / "index.sqlite3"
    with Index(index) as idx:
        for i, (v, a) in enumerate(points):
            path = make_wav(lib / f"track{i:04d}.wav", seconds=0.05, freqs=(220.0 + i,))
            st = path.stat()
            idx.upsert(point_row(path, v, a, size=st.st_size, mtime_ns=st.st_mtime_ns))
    return Library(lib, index)


def grid_points(n: int = 15, jitter: float = 0.02, seed: int = 0) -> Iterator[tuple[float, float]]:
    """An n x n grid over the reachable plane, slightly jittered."""
    rng = np.random.default_rng(seed)
    for v in np.linspace(-0.95, 0.95, n):
        for a in np.linspace(-0.95, 0.95, n):
            dv, da = rng.uniform(-jitter, jitter, 2)
            yield float(np.clip(v + dv, -1, 1)), float(np.clip(a + da, -1, 1))


@dataclass(frozen=True)
class PlaylistEntry:
    seconds: int
    title: str
    location: str
    path: Path  # the location resolved as a player resolves it: against the playlist's folder


def read_playlist(playlist: Path) -> list[PlaylistEntry]:
    """Parse an M3U8 file twice, by its lines and with the `m3u8` package in strict mode, check
    both agree, and return the entries with their locations resolved."""
    import re

    import m3u8

    raw = playlist.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no byte-order mark"
    text = raw.decode("utf-8")  # strict: an M3U8 file is UTF-8
    assert text.endswith("\n") and "\r" not in text
    lines = text[:-1].split("\n")
    assert lines[:2] == ["#EXTM3U", M3U8_MARK], lines[:2]
    body = lines[2:]
    assert len(body) % 2 == 0, body
    entries = []
    for info, location in zip(body[::2], body[1::2], strict=True):
        match = re.fullmatch(r"#EXTINF:(-1|\d+),(.+)", info)
        assert match, info
        assert location and not location.startswith("#"), location
        resolved = Path(location) if Path(location).is_absolute() else playlist.parent / location
        entries.append(PlaylistEntry(int(match[1]), match[2], location, resolved))
    # The `m3u8` package is an HLS parser: in strict mode it refuses comment lines, which
    # players skip (RFC 8216 4.1 too); the rest of the file must pass it.
    parsed = m3u8.parse(text.replace(M3U8_MARK + "\n", "", 1), strict=True)
    assert [s["uri"] for s in parsed["segments"]] == [e.location for e in entries]
    assert [s["title"] for s in parsed["segments"]] == [e.title for e in entries]
    assert [s["duration"] for s in parsed["segments"]] == [float(e.seconds) for e in entries]
    return entries


def other_tags(path: Path) -> dict[str, str]:
    """Every tag and picture mertag does not own, as text, for before/after comparisons."""
    f = mutagen.File(path)
    out: dict[str, str] = {}
    if f is None:
        return out
    for key, value in f.tags.items() if f.tags is not None else []:
        upper = key.upper()
        if "MERTAG" in upper or upper in ("TMOO", "MOOD", "TXXX:MOOD") or upper.endswith(":MOOD"):
            continue
        out[key] = repr(value)
    for i, picture in enumerate(getattr(f, "pictures", [])):  # FLAC picture blocks
        out[f"picture{i}"] = repr((picture.type, picture.mime, picture.data))
    if isinstance(f, MP3) or isinstance(f, WAVE):
        out["id3_version"] = repr(f.tags.version if f.tags is not None else None)
    return out


PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5270de30000000049454e44ae426082"
)


def add_pictures(lib: Path) -> None:
    """A cover picture in bay.mp3 (APIC) and egypt.flac (a FLAC picture block)."""
    mp3 = MP3(lib / "bay.mp3")
    mp3.tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=PNG_1x1))
    mp3.save()
    flac = FLAC(lib / "egypt.flac")
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", PNG_1x1
    flac.add_picture(picture)
    flac.save()
