"""Reading, writing and removing the tags mertag writes, for every supported format.

MOOD goes in the field players read (ID3v2.4 TMOO, TXXX:MOOD in ID3v2.3, Vorbis MOOD, the iTunes
freeform MOOD atom); mertag's own values sit beside it as MERTAG_* custom fields. One table
(FIELD_TABLE) says which key each format uses and one small storage class per container family
(ID3, Vorbis comment, MP4) reads and edits them, as mediafile does. Every save goes through
mertag.tagger.safe_write, so a file is never left half-written and keeps its inode, and
everything else in the file (other tags and frames, the ID3 version, pictures, the audio itself)
is kept.

MOOD belongs to the user (mood_changes has the rules): mertag's word always goes to MERTAG_MOOD,
and into MOOD only where MOOD is empty or holds the word mertag put there, or, asked to
(`overwrite_mood`), over a MOOD mertag found, whose values are kept in MERTAG_PREVIOUS_MOOD first
so that remove_tags puts them back. A MOOD the user set after mertag wrote one is never rewritten.
The fields for other players a write adds on request (ENERGY, and the mood word appended to
COMMENT or GROUPING) follow the same rules, one table for all (mertag.tagger.field_policy).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, NamedTuple

import mutagen
from mutagen._util import resize_bytes
from mutagen.aiff import AIFF, AIFFFile
from mutagen.flac import FLAC
from mutagen.id3 import COMM, ID3, TMOO, TXXX, Encoding, Frames, ID3v1SaveOptions

# Private, but it is the exact function mutagen's own ID3v1 handling uses; sharing it keeps our
# idea of where the ID3v1 tag starts identical to mutagen's.
from mutagen.id3._id3v1 import find_id3v1

# Private too: mutagen's own single-frame writer and chunk readers, so that a frame mertag does
# not touch is kept as the file had it rather than re-encoded.
from mutagen.id3._tags import ID3SaveConfig, save_frame
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE, _WaveFile

from mertag.tagger.field_policy import (
    OWNED_FIELDS,
    Changes,
    Values,
    field_changes,
    field_withdrawal,
    join,
    removal_changes,
)
from mertag.tagger.safe_write import (
    FileChangedError,
    SafeWriteError,
    describe_os_error,
    file_state,
    finish_own_journal,
    rewrite_file,
)
from mertag.tagger.vorbis_bytes import keeping_bytes

#: The fields a tag write sets: MOOD (where the policy lets it), mertag's word and its numbers.
MERTAG_FIELDS: tuple[str, ...] = (
    "MOOD",
    "MERTAG_MOOD",
    "MERTAG_QUADRANT",
    "MERTAG_VALENCE",
    "MERTAG_AROUSAL",
    "MERTAG_CONFIDENCE",
    "MERTAG_MODEL",
)

#: Where the MOOD a file had before mertag is kept, value for value.
PREVIOUS_MOOD = OWNED_FIELDS["MOOD"].previous

#: The fields for other players a write adds only when asked (`--energy`, `--mood-field`).
PLAYER_FIELDS: tuple[str, ...] = tuple(name for name in OWNED_FIELDS if name != "MOOD")

#: Every field mertag may leave in a file, or change (an owned field's record and previous
#: value beside it).
ALL_FIELDS: tuple[str, ...] = (
    *MERTAG_FIELDS,
    PREVIOUS_MOOD,
    *(k for n in PLAYER_FIELDS for f in [OWNED_FIELDS[n]] for k in (f.name, f.record, f.previous)),
)

#: The fields a caller gives write_tags values for (the records follow from the owned fields).
WRITTEN_FIELDS: frozenset[str] = frozenset(
    f for f in (*MERTAG_FIELDS, *PLAYER_FIELDS) if f != "MERTAG_MOOD"
)

#: The pseudo-field a TagChange uses for an ID3 version switch.
ID3_VERSION = "ID3 version"


class TagError(Exception):
    """Tags could not be read or written; the message is one line with the reason, no path."""


class FileChanged(TagError):
    """The file differs from the (size, mtime) the caller analysed: nothing was written."""


class UnsupportedFormat(TagError):
    """The file is audio, but of a kind mertag cannot tag (RF64, raw AAC...): it is analysed and
    indexed, not tagged, and that is not a failure. The message names the format."""

    per_file: ClassVar[bool] = False
    """Whether the reason is about this file's tag rather than its format: a scan then names
    every such file, where a format's reason is said once."""


ID3V22_REASON = "ID3v2.2 tags cannot be written without converting them"
"""How the reason an ID3v2.2 file is left untagged starts (a scan names each such file: it tells
them apart by ID3v22Kept.per_file, never by this text)."""

CONVERT_ID3V22 = "--convert-id3v22"
"""The option of `mertag scan`, `mertag write` and `mertag untag` that converts ID3v2.2 tags to
write them."""


class ID3v22Kept(UnsupportedFormat):
    """The file's ID3 tag is v2.2, which mutagen reads but cannot write: a write (or taking
    mertag's fields out: `removing`) would convert it (to v2.4, or the version asked for), and
    v2.2 frames with no later form would go. So the file keeps its tag, unless the caller asks
    to convert (`convert_id3v22`)."""

    per_file = True

    def __init__(self, target: int, *, removing: bool = False) -> None:
        command, does = (
            ("untag", "converts them and takes mertag's fields out")
            if removing
            else ("write", "converts and tags them")
        )
        super().__init__(
            f"{ID3V22_REASON} to v2.{target}: left as they are "
            f"(`mertag {command} {CONVERT_ID3V22}` {does})"
        )


class FieldKeys(NamedTuple):
    """The key that holds one field in each kind of tag."""

    id3v24: str
    id3v23: str
    vorbis: str
    mp4: str


_ITUNES = "----:com.apple.iTunes:"


def _custom(name: str) -> FieldKeys:
    return FieldKeys(f"TXXX:{name}", f"TXXX:{name}", name, _ITUNES + name)


#: Which key holds each field, per tag kind: the one table every storage class reads.
#: ENERGY is where Mixed In Key keeps its energy level; COMMENT is ID3's COMM frame with an empty
#: description (any language is read, "eng" is written); GROUPING is ID3's TIT1, or iTunes' GRP1
#: where the file has one (ITUNES_GROUPING; docs/PLAYERS.md says why).
FIELD_TABLE: dict[str, FieldKeys] = {
    "MOOD": FieldKeys("TMOO", "TXXX:MOOD", "MOOD", _ITUNES + "MOOD"),
    "ENERGY": FieldKeys(
        "TXXX:EnergyLevel", "TXXX:EnergyLevel", "ENERGYLEVEL", _ITUNES + "EnergyLevel"
    ),
    "COMMENT": FieldKeys("COMM::eng", "COMM::eng", "COMMENT", "\xa9cmt"),
    "GROUPING": FieldKeys("TIT1", "TIT1", "GROUPING", "\xa9grp"),
    **{name: _custom(name) for name in ALL_FIELDS if name.startswith("MERTAG_")},
}

#: Where iTunes 12.5 and later (and Mixxx, when the file has it) keep an ID3 grouping; their TIT1
#: is the Work. A file that has this frame keeps its grouping there, not in FIELD_TABLE's TIT1.
ITUNES_GROUPING = "GRP1"

# ID3v2.4-only frames that mutagen's update_to_v23 deletes without converting them to a v2.3
# frame. They are the user's data (sort orders, replay gain...), so a v2.4 -> v2.3 switch keeps
# them off-spec, as mutagen's docs suggest, rather than losing them. TMOO is not among them: it
# moves to TXXX:MOOD.
_V24_ONLY_KEPT = (
    "ASPI",
    "EQU2",
    "RVA2",
    "SEEK",
    "SIGN",
    "TDEN",
    "TDRL",
    "TDTG",
    "TPRO",
    "TSOA",
    "TSOP",
    "TSOT",
    "TSST",
)


@dataclass(frozen=True)
class TagChange:
    """One field a write or removal changes: its values before and after (None: absent)."""

    field: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        return f"{self.field}: {_shown(self.old)} -> {_shown(self.new)}"


def _shown(value: str | None) -> str:
    return "(none)" if value is None else repr(value)


def mood_changes(current: Mapping[str, Values], word: str, *, overwrite: bool) -> Changes:
    """What writing mertag's `word` changes in MOOD, MERTAG_MOOD and MERTAG_PREVIOUS_MOOD
    (field_policy.field_changes has the rules)."""
    return field_changes(current, "MOOD", word, overwrite=overwrite)


def mood_withdrawal(current: Mapping[str, Values]) -> Changes:
    """What taking mertag's word back out of MOOD changes (field_policy.field_withdrawal)."""
    return field_withdrawal(current, "MOOD")


class _Storage:
    """The tags of one file, for one container family: find, edit and save mertag's fields.

    Subclasses say where a field may live (`keys_for`, target key first) and how to get, set and
    delete one key; the logic of what to write or remove is shared here.
    """

    def __init__(self, audio: Any) -> None:
        self.audio = audio
        if audio.tags is None:
            audio.add_tags()
        self.tags: Any = audio.tags
        self.touched: set[str] = set()  # the keys apply() set or deleted

    def keys_for(self, field: str) -> list[str]:
        raise NotImplementedError

    def get(self, key: str) -> Values | None:
        raise NotImplementedError

    def set(self, key: str, values: Values) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        if key in self.tags:
            del self.tags[key]

    def save(self, fileobj: BinaryIO) -> None:
        fileobj.seek(0)  # mutagen reads and writes from where the file object stands
        self.audio.save(fileobj)

    def check_writable(self, convert_id3v22: bool, *, removing: bool = False) -> None:
        """Raise UnsupportedFormat when the tag cannot be saved as it is (ID3v2.2: only by
        converting it, which `convert_id3v22` asks for; `removing`: to take mertag's fields
        out, which the reason names)."""

    def version_change(self) -> TagChange | None:
        """What saving changes beyond the fields (ID3: the version), or None."""
        return None

    def prepare(self) -> None:
        """Convert the tag to the form it will be saved in (ID3: the version)."""

    def read(self, field: str) -> Values | None:
        for key in self.keys_for(field):
            values = self.get(key)
            if values is not None:
                return values
        return None

    def current(self) -> dict[str, Values]:
        """Every field of ALL_FIELDS the file holds, with its values."""
        return {f: v for f in ALL_FIELDS if (v := self.read(f)) is not None}

    def apply(self, changes: Mapping[str, Values | None]) -> None:
        for field, values in changes.items():
            keys = self.keys_for(field)
            self.touched.update(keys)
            if values is None:
                for key in keys:
                    self.delete(key)
            else:
                # Where the file keeps the field already, or else the format's own key.
                key = next((k for k in keys if self.get(k) is not None), keys[0])
                self.set(key, values)


class _ID3Storage(_Storage):
    """ID3v2 in MP3, and the ID3 chunk of WAV and AIFF.

    Loaded untranslated (see _open), so a tag saved in the version it already has keeps every
    frame as it was (TYER, TDAT, TRDA, RVAD... in v2.3); a version switch, only when asked for,
    goes through mutagen's update_to_v23 / update_to_v24.
    """

    def __init__(self, audio: Any, target: int | None) -> None:
        had_tags = audio.tags is not None
        super().__init__(audio)
        self.loaded: tuple[int, int] | None = tuple(self.tags.version[:2]) if had_tags else None
        if self.loaded is not None and self.loaded < (2, 3):
            # ID3v2.2 cannot be written; reading it needs its frames in v2.3+ form too.
            self.tags.update_to_v24()
        if target is None:
            target = 3 if self.loaded == (2, 3) else 4
        self.target = target
        self.column = "id3v23" if target == 3 else "id3v24"

    def keys_for(self, field: str) -> list[str]:
        keys = FIELD_TABLE[field]
        target = getattr(keys, self.column)
        if field == "GROUPING" and self.tags.getall(ITUNES_GROUPING):
            return [ITUNES_GROUPING]  # the file's grouping is iTunes' (its TIT1 is the Work)
        if target.startswith("COMM:"):
            # A comment is a COMM frame without a description, in whatever language it has:
            # the one in the target's language, else the first; one key, so that taking the
            # field out never touches a comment in another language.
            own = [f.HashKey for f in self.tags.getall("COMM") if not f.desc]
            return [target if target in own or not own else own[0]]
        return [target] + [k for k in (keys.id3v24, keys.id3v23) if k != target]

    def get(self, key: str) -> Values | None:
        frames = self.tags.getall(key)
        if not frames:
            return None
        return [str(text) for frame in frames for text in frame.text]

    def set(self, key: str, values: Values) -> None:
        text = list(values)
        encoding = self._encoding(key, text)
        if key.startswith("TXXX:"):
            frame: Any = TXXX(encoding=encoding, desc=key.removeprefix("TXXX:"), text=text)
        elif key.startswith("COMM:"):
            _, desc, lang = key.split(":", 2)
            frame = COMM(encoding=encoding, lang=lang, desc=desc, text=text)
        else:  # a plain text frame: TMOO, TIT1
            frame = Frames[key](encoding=encoding, text=text)
        self.tags.setall(key, [frame])

    def _encoding(self, key: str, text: Values) -> int:
        """The text encoding the frame `key` has now, where it can hold `text`, else UTF-8: so a
        user's Latin-1 comment that mertag appends to and untag restores is Latin-1 again."""
        frames = self.tags.getall(key)
        if not frames:
            return int(Encoding.UTF8)
        encoding = int(frames[0].encoding)
        if encoding == Encoding.LATIN1:
            try:
                for value in text:
                    value.encode("latin-1")
            except UnicodeEncodeError:
                return int(Encoding.UTF8)
        return encoding

    def delete(self, key: str) -> None:
        self.tags.delall(key)

    def check_writable(self, convert_id3v22: bool, *, removing: bool = False) -> None:
        if self.loaded == (2, 2) and not convert_id3v22:
            raise ID3v22Kept(self.target, removing=removing)

    def version_change(self) -> TagChange | None:
        if self.loaded == (2, self.target) or (self.loaded is None and not len(self.tags)):
            return None
        old = None if self.loaded is None else f"2.{self.loaded[1]}"
        return TagChange(ID3_VERSION, old, f"2.{self.target}")

    def prepare(self) -> None:
        if self.loaded == (2, self.target):
            return
        if self.target == 4:
            moods = self.tags.getall("TXXX:MOOD")
            self.tags.update_to_v24()
            if moods and not self.tags.getall("TMOO"):
                self.tags.delall("TXXX:MOOD")
                self.tags.add(TMOO(encoding=Encoding.UTF8, text=moods[0].text))
            return
        kept = [frame for frame_id in _V24_ONLY_KEPT for frame in self.tags.getall(frame_id)]
        moods = self.tags.getall("TMOO")
        self.tags.update_to_v23()
        for frame in kept:
            self.tags.add(frame)
        if moods and not self.tags.getall("TXXX:MOOD"):
            self.tags.add(TXXX(encoding=Encoding.UTF8, desc="MOOD", text=moods[0].text))

    def save(self, fileobj: BinaryIO) -> None:
        if not isinstance(self.audio, MP3):
            self._save_in_chunk(fileobj)
            return
        # Everything after the ID3v2 tag (audio, APEv2, ID3v1) must come out byte-identical.
        before = _digest_after_id3v2(fileobj)
        fileobj.seek(0)
        header = fileobj.read(10)
        old = header + fileobj.read(_id3_size(header)) if _id3_size(header) else b""
        new = self._spliced(old)
        if new is not None:
            if len(new) != len(old):
                resize_bytes(fileobj, len(old), len(new), 0)
            fileobj.seek(0)
            fileobj.write(new)
        else:
            self._save_by_mutagen(fileobj)
        if _digest_after_id3v2(fileobj) != before:
            raise TagError("audio data would change: tags not saved")

    def _save_by_mutagen(self, fileobj: BinaryIO) -> None:
        """mutagen writes the whole tag anew (a new tag, or a version switch)."""
        # v23_sep=None: multiple values stay NUL-separated, as mutagen read them, not '/'-joined.
        options: dict[str, Any] = {"v2_version": self.target, "v23_sep": None}
        # mutagen can only regenerate an ID3v1 tag from the v2 frames; keep the old one verbatim.
        v1_tag, offset = find_id3v1(fileobj)
        tail = b""
        if v1_tag is not None:
            fileobj.seek(offset, 2)
            tail = fileobj.read()
        fileobj.seek(0)  # mutagen looks for the old ID3v2 header where the file object stands
        self.tags.save(fileobj, v1=ID3v1SaveOptions.REMOVE, **options)
        if tail:
            fileobj.seek(0, 2)
            fileobj.write(tail)

    def _save_in_chunk(self, fileobj: BinaryIO) -> None:
        """WAV and AIFF: the tag is the data of an `id3 ` / `ID3 ` chunk."""
        fileobj.seek(0)
        if not len(self.tags):
            # No frame left: take the chunk out rather than leave an empty `id3 ` chunk.
            self.tags.delete(fileobj)
            return
        chunks: Any = _WaveFile(fileobj) if isinstance(self.audio, WAVE) else AIFFFile(fileobj)
        name = "id3" if isinstance(self.audio, WAVE) else "ID3"
        new = None
        if name in chunks:
            chunk = chunks[name]
            new = self._spliced(chunk.read())
        if new is None:
            fileobj.seek(0)
            self.tags.save(fileobj, v2_version=self.target, v23_sep=None)
            return
        chunk.resize(len(new))
        chunk.write(new)

    def _spliced(self, old: bytes) -> bytes | None:
        """The tag `old` with only the frames apply() touched replaced, every other frame kept
        byte for byte (mutagen would re-encode them all); None when that cannot be done safely
        (no tag yet, a version switch, unsynchronisation, an extended header or footer)."""
        if self.loaded != (2, self.target) or not old:
            return None
        frames = _split_frames(old)
        if frames is None:
            return None
        config = ID3SaveConfig(self.target, None)
        ours = []
        for key in sorted(self.touched):
            for frame in self.tags.getall(key):
                if self.target == 3:
                    frame = frame._get_v23_frame(sep=None)
                ours.append(save_frame(frame, config=config))
        body = b"".join([raw for key, raw in frames if key not in self.touched] + ours)
        room = _id3_size(old[:10])
        size = room if len(body) <= room else len(body) + _ID3_PADDING
        new = old[:6] + _synchsafe(size) + body + bytes(size - len(body))
        # The spliced tag must read back as exactly the frames mutagen holds, else mutagen saves.
        try:
            spliced = ID3(io.BytesIO(new), translate=False)
        except mutagen.MutagenError:
            return None
        if _frames_shown(spliced) != _frames_shown(self.tags):
            return None
        return new


def _frames_shown(tags: Any) -> list[str]:
    return sorted(f"{key}={frame.pprint()}" for key, frame in tags.items())


#: Padding added when a tag must grow, so that later edits fit in place (mutagen adds ~1 KB too).
_ID3_PADDING = 1024


def _id3_size(header: bytes) -> int:
    """The size after its 10-byte header of the ID3v2 tag `header` starts, 0 if it is none."""
    if len(header) < 10 or header[:3] != b"ID3":
        return 0
    size = 0
    for byte in header[6:10]:
        size = size << 7 | (byte & 0x7F)
    return size


def _synchsafe(size: int) -> bytes:
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


def _txxx_description(data: bytes) -> str:
    """The description of a TXXX frame's data (encoding byte, description, NUL, value)."""
    encoding, body = data[:1], data[1:]
    if encoding in (b"\x01", b"\x02"):
        for i in range(0, len(body) - 1, 2):
            if body[i : i + 2] == b"\0\0":
                codec = "utf-16" if encoding == b"\x01" else "utf-16-be"
                return body[:i].decode(codec, errors="replace")
        return ""
    text = body.split(b"\0", 1)[0]
    return text.decode("latin-1" if encoding == b"\x00" else "utf-8", errors="replace")


def _split_frames(tag: bytes) -> list[tuple[str, bytes]] | None:
    """The frames of an ID3v2.3/2.4 tag as (mutagen's key, the frame's raw bytes), or None when
    the tag is not plain enough to edit frame by frame."""
    if len(tag) < 10 or tag[3] not in (3, 4) or tag[5] & 0xD0:  # unsynch, ext header, footer
        return None
    end = 10 + _id3_size(tag[:10])
    if end > len(tag):
        return None
    pos, frames = 10, []
    while pos + 10 <= end and tag[pos] != 0:
        frame_id = tag[pos : pos + 4]
        if not all(48 <= c <= 57 or 65 <= c <= 90 for c in frame_id):
            return None
        raw_size = tag[pos + 4 : pos + 8]
        if tag[3] == 4 and any(b & 0x80 for b in raw_size):
            return None  # a v2.4 size that is not synchsafe (iTunes' old bug): mutagen knows it
        size = _id3_size(b"ID3" + bytes(3) + raw_size) if tag[3] == 4 else int.from_bytes(raw_size)
        flags = int.from_bytes(tag[pos + 8 : pos + 10])
        if pos + 10 + size > end:
            return None
        key = frame_id.decode("ascii")
        if key in ("TXXX", "COMM"):
            if flags & 0xFF:  # compressed, encrypted, unsynchronised...: its text is not plain
                return None
            data = tag[pos + 10 : pos + 10 + size]
            if key == "TXXX":
                key = "TXXX:" + _txxx_description(data)
            else:  # encoding, language, then the description as in TXXX
                lang = data[1:4].decode("latin-1")
                key = f"COMM:{_txxx_description(data[:1] + data[4:])}:{lang}"
        frames.append((key, tag[pos : pos + 10 + size]))
        pos += 10 + size
    if any(tag[pos:end]):
        return None  # not padding: something this walk does not understand
    return frames


def _digest_after_id3v2(fileobj: BinaryIO) -> bytes:
    """sha256 of everything after the leading ID3v2 tag (synchsafe size, optional footer)."""
    fileobj.seek(0)
    header = fileobj.read(10)
    start = 0
    if len(header) == 10 and header[:3] == b"ID3":
        size = 0
        for byte in header[6:10]:
            size = size << 7 | (byte & 0x7F)
        start = 10 + size + (10 if header[5] & 0x10 else 0)
    fileobj.seek(start)
    digest = hashlib.sha256()
    while chunk := fileobj.read(1 << 20):
        digest.update(chunk)
    fileobj.seek(0)
    return digest.digest()


class _VorbisStorage(_Storage):
    """Vorbis comments: FLAC, Ogg Vorbis, Opus, Ogg FLAC, Speex. Keys are case-insensitive."""

    def keys_for(self, field: str) -> list[str]:
        return [FIELD_TABLE[field].vorbis]

    def get(self, key: str) -> Values | None:
        return list(self.tags[key]) if key in self.tags else None

    def set(self, key: str, values: Values) -> None:
        self.tags[key] = list(values)


def _decode_freeform(value: bytes) -> str:
    if getattr(value, "dataformat", None) == AtomDataType.UTF16:
        return value.decode("utf-16-be", errors="replace")
    return value.decode("utf-8", errors="replace")


class _MP4Storage(_Storage):
    """MP4/M4A: iTunes freeform atoms, values stored as UTF-8 bytes, and iTunes' own text atoms
    (comment, grouping)."""

    def keys_for(self, field: str) -> list[str]:
        """The field's atom: a freeform one under the name the file spells it with, in any
        case (some taggers write `----:com.apple.iTunes:mood`, and FFmpeg, which matches tag
        names in any case, takes it for MOOD), the exact name first."""
        key = FIELD_TABLE[field].mp4
        if not key.startswith(_ITUNES) or key in self.tags:
            return [key]
        name = key.removeprefix(_ITUNES).casefold()
        spelt = (
            k for k in self.tags if k.startswith(_ITUNES) and k[len(_ITUNES) :].casefold() == name
        )
        return [next(spelt, key)]

    def get(self, key: str) -> Values | None:
        if key not in self.tags:
            return None
        if not key.startswith("----"):  # an iTunes text atom (\xa9cmt, \xa9grp): mutagen's str
            return [str(v) for v in self.tags[key]]
        return [_decode_freeform(v) for v in self.tags[key]]

    def set(self, key: str, values: Values) -> None:
        if not key.startswith("----"):
            self.tags[key] = list(values)
            return
        self.tags[key] = [
            MP4FreeForm(v.encode("utf-8"), dataformat=AtomDataType.UTF8) for v in values
        ]


_FAMILIES: dict[type, type[_Storage]] = {
    MP3: _ID3Storage,
    WAVE: _ID3Storage,
    AIFF: _ID3Storage,
    FLAC: _VorbisStorage,
    OggVorbis: _VorbisStorage,
    OggOpus: _VorbisStorage,
    OggFLAC: _VorbisStorage,
    OggSpeex: _VorbisStorage,
    MP4: _MP4Storage,
}

# RIFF's 64-bit variants (RF64, and BW64 from broadcasting): FFmpeg decodes them, mutagen does not.
_UNTAGGABLE_HEADERS = {b"RF64": "RF64", b"BW64": "BW64"}


def _os_reason(error: OSError) -> str:
    # mutagen raises a bare OSError when a read comes up short (its read_full).
    if error.errno is None and not str(error):
        return "file ends too early (truncated or damaged)"
    return describe_os_error(error)


def _reason(error: BaseException) -> str:
    """One line saying why, digging out the OS error mutagen wraps in its own exceptions."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError):
            return _os_reason(seen)
        if seen.args and isinstance(seen.args[0], OSError):
            return _os_reason(seen.args[0])
        if isinstance(seen, UnicodeDecodeError) or (
            seen.args and isinstance(seen.args[0], UnicodeDecodeError)
        ):
            # mutagen met bytes where a chunk or frame name should be: garbage, not a codec bug
            return "damaged file: a chunk or frame header is not text"
        seen = seen.__cause__ or seen.__context__
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _kind_by_content(path: Path) -> type | None:
    """The supported mutagen class whose header test `path` passes best, ignoring its name."""
    try:
        with open(path, "rb") as f:
            header = f.read(128)
            kinds: list[Any] = list(_FAMILIES)  # mutagen's FileType.score is untyped
            scores = [(kind.score("", f, header), kind.__name__, kind) for kind in kinds]
    except OSError:
        return None  # the caller reports the error mutagen.File met first
    score, _, kind = max(scores)
    return kind if score > 0 else None


def _untaggable_header(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return _UNTAGGABLE_HEADERS.get(f.read(4))
    except OSError:
        return None


def _detect(path: Path) -> type:
    """The mutagen class for `path`, or TagError (UnsupportedFormat for audio mertag cannot tag).

    mutagen.File weighs the file name's extension as well as the content, so a FLAC file named
    .mp3 fails to load as MP3; the content alone then decides.
    """
    header = _untaggable_header(path)
    if header is not None:
        raise UnsupportedFormat(f"unsupported format: {header} files cannot be tagged")
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as e:
        kind = _kind_by_content(path)
        if kind is None:
            raise TagError(f"cannot parse file: {_reason(e)}") from e
        return kind
    if audio is None:
        raise TagError("unrecognised audio format")
    kind = type(audio)
    if kind not in _FAMILIES:
        raise UnsupportedFormat(f"unsupported format: {kind.__name__} files cannot be tagged")
    return kind


def _storage(kind: type, source: Path | BinaryIO, target: int | None) -> _Storage:
    """Load `source` as `kind` and wrap its tags in the family's storage class."""
    family = _FAMILIES[kind]
    if not isinstance(source, Path):
        source.seek(0)  # mutagen reads a file object from where it stands
    try:
        if family is _ID3Storage:
            # Untranslated, and without merging ID3v1 fields into the v2 tag on save.
            return _ID3Storage(kind(source, translate=False, load_v1=False), target)
        return family(keeping_bytes(kind)(source))  # Vorbis comments kept byte for byte
    except (mutagen.MutagenError, OSError) as e:
        raise TagError(f"cannot read tags: {_reason(e)}") from e


def _check_values(values: Mapping[str, str]) -> None:
    for key, value in values.items():
        if key not in WRITTEN_FIELDS:
            raise ValueError(f"not a mertag field: {key!r}")
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError(f"{key} must be a string without NUL characters")


def _check_version(id3_version: int | None) -> None:
    if id3_version not in (None, 3, 4):
        raise ValueError(f"id3_version must be None, 3 or 4, not {id3_version!r}")


def _state(path: Path, expect: tuple[int, int] | None) -> tuple[int, int]:
    """The file's (size, mtime_ns), once a killed earlier write of it is finished."""
    try:
        finish_own_journal(path)
    except SafeWriteError as e:
        raise TagError(str(e)) from e
    try:
        state = file_state(path)
    except OSError as e:
        raise TagError(describe_os_error(e)) from e
    if expect is not None and tuple(expect) != state:
        raise FileChanged("file changed during tag write")
    return state


def _rewrite(path: Path, edit: Any, state: tuple[int, int]) -> None:
    try:
        rewrite_file(path, edit, expect=state)
    except FileChangedError as e:
        raise FileChanged(str(e)) from e
    except SafeWriteError as e:
        raise TagError(str(e)) from e
    except mutagen.MutagenError as e:
        raise TagError(f"cannot save tags: {_reason(e)}") from e
    except struct.error as e:
        # mutagen rewrites a RIFF/IFF size field that cannot hold the new size: a WAV written
        # to a pipe says 0xFFFFFFFF (length unknown) there. The copy is dropped, the file kept.
        raise TagError(
            "cannot save tags: a chunk size in the file's header is out of range "
            "(a WAV streamed with its length unknown?)"
        ) from e


def _write_changes(
    storage: _Storage, values: Mapping[str, str], overwrite: frozenset[str]
) -> Changes:
    """The field changes writing `values` makes to the (prepared) tags in `storage`; the owned
    fields named in `overwrite` may replace a value of the user's."""
    current = storage.current()
    changes: Changes = {
        f: [v] for f, v in values.items() if f not in OWNED_FIELDS and current.get(f) != [v]
    }
    for name in OWNED_FIELDS:
        if values.get(name):
            changes.update(field_changes(current, name, values[name], overwrite=name in overwrite))
        elif name in values:
            changes.update(field_withdrawal(current, name))
    return changes


def _overwritten(overwrite_mood: bool, overwrite_energy: bool) -> frozenset[str]:
    """The owned fields whose user value a write may replace (saved first)."""
    return frozenset(
        name for name, asked in (("MOOD", overwrite_mood), ("ENERGY", overwrite_energy)) if asked
    )


def _as_tag_changes(
    current: Mapping[str, Values], changes: Mapping[str, Values | None]
) -> list[TagChange]:
    out = []
    for field in ALL_FIELDS:
        if field in changes:
            old, new = current.get(field), changes[field]
            out.append(TagChange(field, join(old) if old else None, join(new) if new else None))
    return out


def read_tags(path: Path) -> dict[str, str]:
    """The ALL_FIELDS present in the file, by name (ID3 MOOD from TMOO, else TXXX:MOOD); several
    values of one field are shown joined by field_policy.MULTI_VALUE_SEPARATOR."""
    storage = _storage(_detect(path), path, None)
    return {f: join(v) for f, v in storage.current().items()}


def read_tag_values(path: Path) -> dict[str, Values]:
    """As read_tags, each field's values as the list the file holds."""
    return _storage(_detect(path), path, None).current()


def plan_write(
    path: Path,
    values: Mapping[str, str],
    *,
    id3_version: int | None = None,
    overwrite_mood: bool = False,
    overwrite_energy: bool = False,
    convert_id3v22: bool = False,
) -> list[TagChange]:
    """What write_tags with these arguments would change (field: old -> new), writing nothing.

    For `mertag scan --dry-run`; the ID3 version appears as the pseudo-field ID3_VERSION.
    """
    _check_values(values)
    _check_version(id3_version)
    storage = _storage(_detect(path), path, id3_version)
    storage.check_writable(convert_id3v22)
    version = storage.version_change()
    storage.prepare()
    changes = _write_changes(storage, values, _overwritten(overwrite_mood, overwrite_energy))
    planned = _as_tag_changes(storage.current(), changes)
    return ([version] if version and (planned or id3_version) else []) + planned


def tagged_through_another_link(
    path: Path,
    values: Mapping[str, str],
    id3_version: int | None = None,
    overwrite_mood: bool = False,
    overwrite_energy: bool = False,
) -> bool:
    """Whether a file that changed since it was analysed changed only because mertag wrote these
    very values into it through another of its hard links (two names of one inode tagged by two
    runs at once): then the file is tagged and there is nothing to write."""
    try:
        if os.stat(path).st_nlink < 2:
            return False
        storage = _storage(_detect(path), path, id3_version)
    except (TagError, OSError):
        return False
    return not _write_changes(storage, values, _overwritten(overwrite_mood, overwrite_energy))


def write_tags(
    path: Path,
    values: Mapping[str, str],
    *,
    id3_version: int | None = None,
    overwrite_mood: bool = False,
    overwrite_energy: bool = False,
    convert_id3v22: bool = False,
    expect: tuple[int, int] | None = None,
) -> bool:
    """Write `values` (keys from WRITTEN_FIELDS; other fields untouched).

    values["MOOD"] is mertag's word: it goes to MERTAG_MOOD, and to MOOD as mood_changes says
    (`overwrite_mood` replaces a MOOD mertag found, keeping its values in MERTAG_PREVIOUS_MOOD).
    An empty word takes back a word mertag wrote earlier (mood_withdrawal); without the key,
    MOOD and MERTAG_MOOD are left as they are. The other owned fields go the same way
    (field_policy): values["ENERGY"] (`overwrite_energy` replaces the user's), and the word
    to append to COMMENT or GROUPING; "" takes mertag's value back out of the field.
    An ID3 tag keeps its version unless `id3_version` (3 or 4) asks for one (a new tag is v2.4);
    an ID3v2.2 tag, which cannot be written as it is, raises ID3v22Kept (an UnsupportedFormat)
    unless `convert_id3v22` asks to convert it (to `id3_version`, else v2.4).
    Returns False without touching the file when nothing would change; True after a write.
    `expect` is the (size, mtime_ns) the caller saw when it analysed the file: if the file
    differs, TagError. A format mertag cannot tag raises UnsupportedFormat (a TagError).
    """
    _check_values(values)
    _check_version(id3_version)
    state = _state(path, expect)
    kind = _detect(path)
    storage = _storage(kind, path, id3_version)
    storage.check_writable(convert_id3v22)
    overwrite = _overwritten(overwrite_mood, overwrite_energy)
    if not _write_changes(storage, values, overwrite) and (
        id3_version is None or storage.version_change() is None
    ):
        return False

    def edit(fileobj: BinaryIO) -> None:
        storage = _storage(kind, fileobj, id3_version)
        storage.prepare()
        storage.apply(_write_changes(storage, values, overwrite))
        fileobj.seek(0)
        storage.save(fileobj)
        check = _storage(kind, fileobj, id3_version)
        if check.version_change() is not None or _write_changes(check, values, overwrite):
            raise TagError("tags did not read back as written")

    _rewrite(path, edit, state)
    return True


def plan_removal(
    path: Path, mood_value: str | None, *, convert_id3v22: bool = False
) -> list[TagChange]:
    """What remove_tags would change (field: old -> new, new None when the field goes; the ID3
    version as the pseudo-field ID3_VERSION when an ID3v2.2 tag is converted). Raises
    ID3v22Kept as remove_tags does."""
    storage = _storage(_detect(path), path, None)
    current = storage.current()
    changes = removal_changes(current, mood_value)
    if not changes:
        return []
    storage.check_writable(convert_id3v22, removing=True)
    version = storage.version_change()
    return ([version] if version else []) + _as_tag_changes(current, changes)


def remove_tags(
    path: Path,
    mood_value: str | None,
    *,
    convert_id3v22: bool = False,
    expect: tuple[int, int] | None = None,
) -> list[str]:
    """Take mertag's fields out (removal_changes says which; MOOD is restored from
    MERTAG_PREVIOUS_MOOD where mertag replaced it, and removed only where it is mertag's word;
    ENERGY, COMMENT and GROUPING likewise get back the user's values).

    `mood_value` is the word mertag wrote, for files without MERTAG_MOOD (older mertag). Returns
    the names of the fields changed; when there is nothing to change the file is not written. An
    ID3 tag is saved in the version it already has; a WAV or AIFF ID3 chunk left without a frame
    is taken out. An ID3v2.2 tag, which mutagen cannot write, raises ID3v22Kept (the file
    untouched) unless `convert_id3v22` asks to convert it to v2.4. `expect` as for write_tags.
    """
    state = _state(path, expect)
    kind = _detect(path)
    storage = _storage(kind, path, None)
    changes = removal_changes(storage.current(), mood_value)
    if not changes:
        return []
    storage.check_writable(convert_id3v22, removing=True)

    def edit(fileobj: BinaryIO) -> None:
        storage = _storage(kind, fileobj, None)
        storage.apply(changes)
        fileobj.seek(0)
        storage.save(fileobj)
        after = _storage(kind, fileobj, None).current()
        if any(after.get(f) != v for f, v in changes.items()):
            raise TagError("tags still present after removing them")

    _rewrite(path, edit, state)
    return [f for f in ALL_FIELDS if f in changes]


def audio_fingerprint(path: Path) -> str:
    """sha256 (hex) of the audio stream alone: its compressed packets as FFmpeg demuxes them.

    Tags live outside the packets in every supported container, so the hash stays the same
    across any tag rewrite and changes if a single audio byte does.
    """
    import av  # lazy: PyAV is heavy to import and only needed here

    from mertag.tagger.audio import open_options  # lazy: it imports numpy

    digest = hashlib.sha256()
    packets = 0
    try:
        # Tag text is not the audio: undecodable metadata must not stop the hash.
        options = open_options(path)
        with av.open(str(path), metadata_errors="ignore", options=options) as container:
            if not container.streams.audio:
                raise TagError("no audio stream")
            stream = container.streams.audio[0]
            for packet in container.demux(stream):
                if packet.size:
                    digest.update(bytes(packet))
                    packets += 1
    except (av.FFmpegError, OSError) as e:
        reason = getattr(e, "strerror", None) or _reason(e)
        raise TagError(f"cannot read audio: {reason}") from e
    if not packets:
        raise TagError("no audio packets")
    return digest.hexdigest()
