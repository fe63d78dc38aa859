"""Reading, writing and removing the tags mertag writes, for every supported format.

MOOD goes in the field players read (ID3v2.4 TMOO, TXXX:MOOD in ID3v2.3, Vorbis MOOD, the iTunes
freeform MOOD atom); mertag's own values sit beside it as MERTAG_* custom fields. One table
(FIELD_TABLE) says which key each format uses and one small storage class per container family
(ID3, Vorbis comment, MP4) reads and edits them, as mediafile does. Every save goes through
mertag.tagger.safe_write, so a file is never left half-written, and everything else in the file
(other
tags, pictures, the audio itself) is kept.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import mutagen
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.id3 import TMOO, TXXX, Encoding, ID3v1SaveOptions

# Private, but it is the exact function mutagen's own ID3v1 handling uses; sharing it keeps our
# idea of where the ID3v1 tag starts identical to mutagen's.
from mutagen.id3._id3v1 import find_id3v1
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from mertag.tagger.safe_write import SafeWriteError, describe_os_error, file_state, rewrite_file

MERTAG_FIELDS: tuple[str, ...] = (
    "MOOD",
    "MERTAG_QUADRANT",
    "MERTAG_VALENCE",
    "MERTAG_AROUSAL",
    "MERTAG_CONFIDENCE",
    "MERTAG_MODEL",
)

#: Separator shown when a field holds several values (mertag itself writes one).
MULTI_VALUE_SEPARATOR = "; "


class TagError(Exception):
    """Tags could not be read or written; the message is one line with the reason, no path."""


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
FIELD_TABLE: dict[str, FieldKeys] = {
    "MOOD": FieldKeys("TMOO", "TXXX:MOOD", "MOOD", _ITUNES + "MOOD"),
    **{name: _custom(name) for name in MERTAG_FIELDS[1:]},
}

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


def _join(values: list[str]) -> str:
    return MULTI_VALUE_SEPARATOR.join(values)


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

    def keys_for(self, field: str) -> list[str]:
        raise NotImplementedError

    def get(self, key: str) -> str | None:
        raise NotImplementedError

    def set(self, key: str, value: str) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        if key in self.tags:
            del self.tags[key]

    def save(self, fileobj: BinaryIO) -> None:
        fileobj.seek(0)  # mutagen reads and writes from where the file object stands
        self.audio.save(fileobj)

    def in_target_form(self) -> bool:
        """Whether saving would change nothing beyond the fields (ID3: the version is right)."""
        return True

    def prepare(self) -> None:
        """Convert the tag to the form it will be saved in (ID3: the version)."""

    def read(self, field: str) -> str | None:
        for key in self.keys_for(field):
            value = self.get(key)
            if value is not None:
                return value
        return None

    def holds(self, values: dict[str, str]) -> bool:
        if not self.in_target_form():
            return False
        for field, value in values.items():
            target, *others = self.keys_for(field)
            if self.get(target) != value or any(self.get(k) is not None for k in others):
                return False
        return True

    def write(self, values: dict[str, str]) -> None:
        for field, value in values.items():
            target, *others = self.keys_for(field)
            for key in others:
                self.delete(key)
            self.set(target, value)

    def removable(self, mood_value: str | None) -> list[str]:
        """The fields remove() would take out: all MERTAG_*, MOOD only if it is `mood_value`."""
        return [f for f in MERTAG_FIELDS if self._matching_keys(f, mood_value)]

    def remove(self, field: str, mood_value: str | None) -> None:
        for key in self._matching_keys(field, mood_value):
            self.delete(key)

    def _matching_keys(self, field: str, mood_value: str | None) -> list[str]:
        keys = [k for k in self.keys_for(field) if self.get(k) is not None]
        if field == "MOOD":
            keys = [k for k in keys if mood_value is not None and self.get(k) == mood_value]
        return keys


class _ID3Storage(_Storage):
    """ID3v2 in MP3, and the ID3 chunk of WAV and AIFF.

    Loaded untranslated (see _open), so a tag saved in the version it already has keeps every
    frame as it was; a version switch goes through mutagen's update_to_v23 / update_to_v24.
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
        return [target] + [k for k in (keys.id3v24, keys.id3v23) if k != target]

    def get(self, key: str) -> str | None:
        frames = self.tags.getall(key)
        if not frames:
            return None
        return _join([str(text) for frame in frames for text in frame.text])

    def set(self, key: str, value: str) -> None:
        if key == "TMOO":
            frame: Any = TMOO(encoding=Encoding.UTF8, text=[value])
        else:
            frame = TXXX(encoding=Encoding.UTF8, desc=key.removeprefix("TXXX:"), text=[value])
        self.tags.setall(key, [frame])

    def delete(self, key: str) -> None:
        self.tags.delall(key)

    def in_target_form(self) -> bool:
        return self.loaded == (2, self.target)

    def prepare(self) -> None:
        if self.loaded == (2, self.target):
            return
        if self.target == 4:
            self.tags.update_to_v24()
            return
        kept = [frame for frame_id in _V24_ONLY_KEPT for frame in self.tags.getall(frame_id)]
        moods = self.tags.getall("TMOO")
        self.tags.update_to_v23()
        for frame in kept:
            self.tags.add(frame)
        if moods and not self.tags.getall("TXXX:MOOD"):
            self.tags.add(TXXX(encoding=Encoding.UTF8, desc="MOOD", text=moods[0].text))

    def save(self, fileobj: BinaryIO) -> None:
        # v23_sep=None: multiple values stay NUL-separated, as mutagen read them, not '/'-joined.
        options: dict[str, Any] = {"v2_version": self.target, "v23_sep": None}
        if not isinstance(self.audio, MP3):
            fileobj.seek(0)
            self.tags.save(fileobj, **options)
            return
        # Everything after the ID3v2 tag (audio, APEv2, ID3v1) must come out byte-identical.
        before = _digest_after_id3v2(fileobj)
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
        if _digest_after_id3v2(fileobj) != before:
            raise TagError("audio data would change: tags not saved")


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
    """Vorbis comments: FLAC, Ogg Vorbis, Opus. Keys are case-insensitive."""

    def keys_for(self, field: str) -> list[str]:
        return [FIELD_TABLE[field].vorbis]

    def get(self, key: str) -> str | None:
        return _join(list(self.tags[key])) if key in self.tags else None

    def set(self, key: str, value: str) -> None:
        self.tags[key] = [value]


def _decode_freeform(value: bytes) -> str:
    if getattr(value, "dataformat", None) == AtomDataType.UTF16:
        return value.decode("utf-16-be", errors="replace")
    return value.decode("utf-8", errors="replace")


class _MP4Storage(_Storage):
    """MP4/M4A: iTunes freeform atoms, values stored as UTF-8 bytes."""

    def keys_for(self, field: str) -> list[str]:
        return [FIELD_TABLE[field].mp4]

    def get(self, key: str) -> str | None:
        if key not in self.tags:
            return None
        return _join([_decode_freeform(v) for v in self.tags[key]])

    def set(self, key: str, value: str) -> None:
        self.tags[key] = [MP4FreeForm(value.encode("utf-8"), dataformat=AtomDataType.UTF8)]


_FAMILIES: dict[type, type[_Storage]] = {
    MP3: _ID3Storage,
    WAVE: _ID3Storage,
    AIFF: _ID3Storage,
    FLAC: _VorbisStorage,
    OggVorbis: _VorbisStorage,
    OggOpus: _VorbisStorage,
    MP4: _MP4Storage,
}


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


def _detect(path: Path) -> type:
    """The mutagen class for `path`, or TagError.

    mutagen.File weighs the file name's extension as well as the content, so a FLAC file named
    .mp3 fails to load as MP3; the content alone then decides.
    """
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
        raise TagError(f"unsupported format: {kind.__name__}")
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
        return family(kind(source))
    except (mutagen.MutagenError, OSError) as e:
        raise TagError(f"cannot read tags: {_reason(e)}") from e


def _check_values(values: dict[str, str]) -> None:
    for key, value in values.items():
        if key not in FIELD_TABLE:
            raise ValueError(f"not a mertag field: {key!r}")
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError(f"{key} must be a string without NUL characters")


def _state(path: Path, expect: tuple[int, int] | None) -> tuple[int, int]:
    try:
        state = file_state(path)
    except OSError as e:
        raise TagError(describe_os_error(e)) from e
    if expect is not None and tuple(expect) != state:
        raise TagError("file changed during tag write")
    return state


def _rewrite(path: Path, edit: Any, state: tuple[int, int]) -> None:
    try:
        rewrite_file(path, edit, expect=state)
    except SafeWriteError as e:
        raise TagError(str(e)) from e
    except mutagen.MutagenError as e:
        raise TagError(f"cannot save tags: {_reason(e)}") from e


def read_tags(path: Path) -> dict[str, str]:
    """The MERTAG_FIELDS present in the file, by name (ID3 MOOD from TMOO, else TXXX:MOOD)."""
    storage = _storage(_detect(path), path, None)
    return {f: v for f in MERTAG_FIELDS if (v := storage.read(f)) is not None}


def write_tags(
    path: Path,
    values: dict[str, str],
    *,
    id3v23: bool = False,
    expect: tuple[int, int] | None = None,
) -> bool:
    """Write `values` (keys from MERTAG_FIELDS; other fields untouched) into the file's tags.

    Returns False without touching the file when it already holds these values (and, for ID3, is
    in the requested version: v2.3 if `id3v23`, else v2.4); True after a write. `expect` is the
    (size, mtime_ns) the caller saw when it analysed the file: if the file differs, TagError.
    """
    _check_values(values)
    state = _state(path, expect)
    kind = _detect(path)
    target = 3 if id3v23 else 4
    if _storage(kind, path, target).holds(values):
        return False

    def edit(fileobj: BinaryIO) -> None:
        storage = _storage(kind, fileobj, target)
        storage.prepare()
        storage.write(values)
        fileobj.seek(0)
        storage.save(fileobj)
        if not _storage(kind, fileobj, target).holds(values):
            raise TagError("tags did not read back as written")

    _rewrite(path, edit, state)
    return True


def remove_tags(
    path: Path, mood_value: str | None, *, expect: tuple[int, int] | None = None
) -> list[str]:
    """Remove every MERTAG_* field, and MOOD only if it equals `mood_value` (mertag's own).

    Returns the names of the fields removed; when there is nothing to remove the file is not
    written. An ID3 tag is saved in the version it already has. `expect` as for write_tags.
    """
    state = _state(path, expect)
    kind = _detect(path)
    names = _storage(kind, path, None).removable(mood_value)
    if not names:
        return []

    def edit(fileobj: BinaryIO) -> None:
        storage = _storage(kind, fileobj, None)
        storage.prepare()
        for name in names:
            storage.remove(name, mood_value)
        fileobj.seek(0)
        storage.save(fileobj)
        if _storage(kind, fileobj, None).removable(mood_value):
            raise TagError("tags still present after removing them")

    _rewrite(path, edit, state)
    return names


def audio_fingerprint(path: Path) -> str:
    """sha256 (hex) of the audio stream alone: its compressed packets as FFmpeg demuxes them.

    Tags live outside the packets in every supported container, so the hash stays the same
    across any tag rewrite and changes if a single audio byte does.
    """
    import av  # lazy: PyAV is heavy to import and only needed here

    digest = hashlib.sha256()
    packets = 0
    try:
        # Tag text is not the audio: undecodable metadata must not stop the hash.
        with av.open(str(path), metadata_errors="ignore") as container:
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
