"""Attached pictures: how many bytes of a file are cover art or booklet scans kept in its tags.

The decoder's junk check (`mertag.tagger.audio.JUNK_LIMIT`) stops reading a file once tens of
megabytes went by without audio; pictures are not junk, so a FLAC carrying 70 MB of booklet
scans in front of its audio is read like any other. mutagen knows where each format keeps them:
FLAC PICTURE blocks, ID3 APIC frames (MP3, WAV, AIFF), MP4 `covr` atoms, and the base64
METADATA_BLOCK_PICTURE (or older COVERART) fields of Vorbis comments (Ogg, and FLAC too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

VORBIS_PICTURE_FIELDS = ("metadata_block_picture", "coverart")
"""Vorbis comment fields that hold a base64 picture (counted at their size in the file)."""


def picture_bytes(path: Path) -> int:
    """Bytes of the pictures that `path`'s tags hold, as mutagen reads them; 0 for a file that
    mutagen cannot parse (then every byte without audio counts as junk)."""
    import mutagen

    try:
        audio: Any = mutagen.File(path)
    except (mutagen.MutagenError, OSError):
        return 0
    if audio is None:
        return 0
    total = sum(len(p.data) for p in getattr(audio, "pictures", ()))  # FLAC PICTURE blocks
    tags = audio.tags
    if tags is None:
        return total
    if hasattr(tags, "getall"):  # ID3
        return total + sum(len(frame.data) for frame in tags.getall("APIC"))
    if "covr" in tags:  # MP4
        return total + sum(len(cover) for cover in tags["covr"])
    for name in VORBIS_PICTURE_FIELDS:
        if name in tags:
            total += sum(len(value) for value in tags[name])
    return total
