"""Attached pictures in every tag family are counted, so the junk check lets them through."""

from __future__ import annotations

import base64
from pathlib import Path

import av
import mutagen
import numpy as np
import pytest
from mutagen.flac import Picture
from mutagen.id3 import APIC
from mutagen.mp4 import MP4Cover

from mertag.tagger import audio as audio_module
from mertag.tagger.artwork import picture_bytes
from mertag.tagger.audio import AudioFile, decode
from tests.tagger.fault_helpers import FORMATS, add_picture, make_track

SIZE = 3 << 20
"""Picture bytes per file: three times the junk limit these tests set."""


def embed_picture(path: Path, data: bytes) -> None:
    """`data` as front-cover art, where the file's tag family keeps pictures."""
    if path.suffix == ".flac":
        add_picture(path, len(data))
        return
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    if path.suffix == ".m4a":
        audio.tags["covr"] = [MP4Cover(data, imageformat=MP4Cover.FORMAT_JPEG)]
    elif path.suffix == ".opus":
        picture = Picture()
        picture.type, picture.mime, picture.data = 3, "image/jpeg", data
        audio.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(picture.write()).decode()]
    else:
        audio.tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="", data=data))
    audio.save()


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_pictures_bigger_than_the_junk_limit_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    path = make_track(tmp_path / f"t{suffix}")
    plain = decode(path)
    embed_picture(path, np.random.default_rng(0).bytes(SIZE))
    # base64 in a Vorbis comment: 4/3 of the picture, as it sits in the file
    assert SIZE <= picture_bytes(path) <= SIZE * 4 // 3 + 1000
    monkeypatch.setattr(audio_module, "JUNK_LIMIT", 1 << 20)
    np.testing.assert_array_equal(decode(path), plain)


def test_files_without_pictures_count_none(tmp_path: Path) -> None:
    assert picture_bytes(make_track(tmp_path / "t.flac")) == 0
    (tmp_path / "notes.flac").write_text("not audio\n")
    assert picture_bytes(tmp_path / "notes.flac") == 0
    assert picture_bytes(tmp_path / "missing.flac") == 0


@pytest.mark.parametrize("suffix", [".flac", ".mp3", ".m4a"])
def test_ffmpeg_never_loads_the_pictures_it_can_be_shown_past(tmp_path: Path, suffix: str) -> None:
    """FFmpeg keeps every attached picture it reads in memory while the file is open (70 MB of
    scans cost ~145 MB); in these formats the decoder shows it the pictures as items it skips,
    so no picture stream appears, and the audio is the same."""
    path = make_track(tmp_path / f"t{suffix}")
    plain = decode(path)
    embed_picture(path, np.random.default_rng(0).bytes(1 << 20))
    with AudioFile(path) as audio:
        assert not audio._container.streams.video  # an attached picture is a video stream
        np.testing.assert_array_equal(audio.read(), plain)
    with av.open(str(path)) as container:  # as FFmpeg sees the file on its own
        assert len(container.streams.video) == 1
