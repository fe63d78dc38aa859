"""Vorbis comments read and written back byte for byte, valid UTF-8 or not.

The Vorbis comment spec says UTF-8, but old rippers and taggers wrote Latin-1 ("Caf\\xe9") into
FLAC and Ogg files. mutagen decodes comments with errors="replace" and writes back what it
decoded, so every such value a tag write did not touch came back as "Caf\\ufffd": the user's
bytes were gone, and untag could not bring them back. The loaders here decode with
surrogateescape instead and encode the same way, so a comment mertag does not change is written
back exactly as the file had it (and a MOOD of the user's saved in MERTAG_PREVIOUS_MOOD too).

`keeping_bytes(kind)` gives, for a mutagen file type with Vorbis comments (FLAC, Ogg Vorbis,
Opus, Ogg FLAC, Speex), a subclass that loads its comments that way; other types unchanged. A
comment block that only mutagen's repairing read accepts (an entry without '=', a key that is
not ASCII) is read that way, as before.
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

from mutagen._vorbis import VComment, VorbisEncodingError
from mutagen.flac import FLAC, VCFLACDict
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis

_ERRORS = "surrogateescape"


def _uint(n: int) -> bytes:
    return struct.pack("<I", n)


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", _ERRORS)


class _BytesKept(VComment):  # type: ignore[misc]  # mutagen is untyped
    """VComment.load and VComment.write with surrogateescape in place of replace / strict."""

    def load(self, fileobj: Any, errors: str = "replace", framing: bool = True) -> None:
        start = fileobj.tell()
        try:
            super().load(fileobj, errors=_ERRORS, framing=framing)
        except (UnicodeError, VorbisEncodingError):
            # A malformed entry (no '=', a key that is not ASCII) that only mutagen's own
            # reading repairs: read it so, as before (its bytes are not kept then).
            del self[:]
            fileobj.seek(start)
            super().load(fileobj, errors=errors, framing=framing)

    def write(self, framing: bool = True) -> bytes:
        # VComment.write, encoding with surrogateescape (its own encodes strictly).
        self.validate()
        out = BytesIO()
        vendor = _encode(self.vendor)
        out.write(_uint(len(vendor)))
        out.write(vendor)
        out.write(_uint(len(self)))
        for key, value in self:
            comment = _encode(key) + b"=" + _encode(value)
            out.write(_uint(len(comment)))
            out.write(comment)
        if framing:
            out.write(b"\x01")
        return out.getvalue()


def _kept(tags: type) -> type:
    return type(f"BytesKept{tags.__name__}", (tags, _BytesKept), {})


_FLAC_BLOCKS = [_kept(b) if b is VCFLACDict else b for b in FLAC.METADATA_BLOCKS]

_KINDS: dict[type, type] = {
    FLAC: type("BytesKeptFLAC", (FLAC,), {"METADATA_BLOCKS": _FLAC_BLOCKS}),
    **{
        kind: type(f"BytesKept{kind.__name__}", (kind,), {"_Tags": _kept(kind._Tags)})
        for kind in (OggVorbis, OggOpus, OggFLAC, OggSpeex)
    },
}


def keeping_bytes(kind: type) -> type:
    """The mutagen file type to load `kind`'s files with (module doc)."""
    return _KINDS.get(kind, kind)
