"""Whose a field is: one set of rules for every field a user may have filled in themselves.

MOOD, ENERGY, COMMENT and GROUPING are the user's fields as much as mertag's (OWNED_FIELDS). Each
has two companions mertag keeps beside it: a record (MERTAG_MOOD, MERTAG_ENERGY...) of the value
mertag puts there, written even where the field itself stays the user's, and a previous-value
field (MERTAG_PREVIOUS_MOOD...) that keeps the user's values from before mertag changed the
field, value for value, so that removal puts them back exactly. Two kinds of field:

- replaced (MOOD, ENERGY): mertag's value goes in where the field is empty or still holds what
  mertag put there; a value mertag finds is the user's, saved in the previous-value field (which
  marks it as the user's from then on) and kept, unless the caller asks to overwrite it.
- appended (COMMENT, GROUPING): the user's text stays and mertag's word follows it after
  APPEND_SEPARATOR ("Late night; Relaxed"); a later word replaces only mertag's part.

Either way a field the user changed after mertag wrote it is left alone. The functions here are
pure: they take a file's current values (absent fields left out) and return the changes, None
deleting a field; mertag.tagger.tags applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Values = list[str]
"""One field's values, in the file's order (a field may hold several)."""

Changes = dict[str, Values | None]
"""Field -> its new values, or None to delete it."""

APPEND_SEPARATOR = "; "
"""What stands between the user's text and mertag's word in an appended field."""

MULTI_VALUE_SEPARATOR = "; "
"""Separator shown when a field holds several values (mertag itself writes one)."""


@dataclass(frozen=True)
class OwnedField:
    """A field the user may own, with the two fields mertag keeps about it."""

    name: str
    record: str  # mertag's own value for the field (its whole value, or its appended word)
    previous: str  # the user's values from before mertag changed the field
    appends: bool = False  # mertag's word is appended to the user's text instead of replacing it

    def ours(self, record: Values | None, previous: Values | None) -> Values | None:
        """What the field holds while it holds exactly what mertag made of it (None: unknown)."""
        if record is None:
            return None
        return appended(previous, record[0]) if self.appends else record


def _owned(name: str, appends: bool = False) -> OwnedField:
    return OwnedField(name, f"MERTAG_{name}", f"MERTAG_PREVIOUS_{name}", appends)


OWNED_FIELDS: dict[str, OwnedField] = {
    "MOOD": _owned("MOOD"),
    "ENERGY": _owned("ENERGY"),
    "COMMENT": _owned("COMMENT", appends=True),
    "GROUPING": _owned("GROUPING", appends=True),
}
"""Every field the user may own, by name: the one table of owned fields."""

_OWNED_KEYS = frozenset(k for f in OWNED_FIELDS.values() for k in (f.name, f.record, f.previous))

APPEND_FIELDS: tuple[str, ...] = tuple(n for n, f in OWNED_FIELDS.items() if f.appends)
"""The fields `--mood-field` may also put the mood word into."""


def join(values: Values) -> str:
    return MULTI_VALUE_SEPARATOR.join(values)


def appended(user: Values | None, word: str) -> Values:
    """The user's values with mertag's word after the first one (the word alone where the field
    is absent or its first value blank). The first, because a player that shows one value of a
    field shows the first (FFmpeg does so for ID3 COMM and MP4 comments: tested)."""
    if not user:
        return [word]
    first = user[0]
    return [f"{first}{APPEND_SEPARATOR}{word}" if first.strip() else word, *user[1:]]


def _parts(current: Mapping[str, Values], f: OwnedField) -> tuple[Values | None, ...]:
    return current.get(f.name), current.get(f.record), current.get(f.previous)


def _unchanged(current: Mapping[str, Values], target: Changes) -> Changes:
    return {k: v for k, v in target.items() if current.get(k) != v}


def field_changes(
    current: Mapping[str, Values], name: str, value: str, *, overwrite: bool = False
) -> Changes:
    """What writing mertag's `value` into the owned field `name` changes in it, its record and
    its previous-value field.

    Replaced fields (MOOD, ENERGY):
    - empty, nothing recorded: it gets the value (nothing of the user's is there).
    - holding what mertag recorded: it is mertag's, and follows the value.
    - holding a value mertag finds (the user's): kept, and saved in the previous-value field,
      which marks it as the user's from then on; `overwrite` replaces it (saved first).
    - differing from both (the user changed or removed it after mertag wrote): kept.
    A MOOD beside MERTAG_QUADRANT but no MERTAG_MOOD is the user's too, even when it is that
    quadrant's word: mertag writes no word for an uncertain track, and a user who then tags it
    by hand leaves exactly what a mertag from before MERTAG_MOOD left (its word), so the file
    cannot tell the two apart, and only the user's value is irreplaceable.
    Appended fields (COMMENT, GROUPING; `overwrite` does not apply):
    - nothing recorded: the user's values (if any) are saved, and the word appended to them.
    - holding the user's saved values with mertag's word appended: the new word replaces it.
    - anything else (the user edited it after mertag wrote): kept.
    """
    f = OWNED_FIELDS[name]
    have, mine, previous = _parts(current, f)
    target: Changes = {f.record: [value]}
    if f.appends:
        if mine is None:
            target[f.previous] = None if have is None else list(have)
            target[f.name] = appended(have, value)
        elif have == f.ours(mine, previous):
            target[f.name] = appended(previous, value)
        return _unchanged(current, target)
    if have is None:
        if mine is None and previous is None:
            target[f.name] = [value]
    elif mine is None:
        if previous is None:
            target[f.previous] = list(have)
        if overwrite and previous in (None, have):
            target[f.name] = [value]
    elif previous is not None and have == previous:
        if overwrite:
            target[f.name] = [value]
    elif have == mine:
        target[f.name] = [value]
    return _unchanged(current, target)


def _field_removal(current: Mapping[str, Values], f: OwnedField, legacy: str | None) -> Changes:
    """Taking mertag's part of one owned field out: its record and previous-value field go;
    the field goes back to the user's saved values (or goes, when there were none) where it
    still holds exactly what mertag made of it, and stays where it is the user's. The previous
    values stay only when they are the user's and found nowhere else (the user replaced
    mertag's value by hand after an overwrite). `legacy`: MOOD's value when mertag wrote it
    before it recorded MERTAG_MOOD."""
    have, mine, previous = _parts(current, f)
    target: Changes = {k: None for k in (f.record, f.previous) if k in current}
    if mine is None and previous is None:
        if have is not None and legacy is not None and join(have) == legacy:
            target[f.name] = None
    elif have is not None and have == f.ours(mine, previous) and have != previous:
        target[f.name] = previous
    elif previous is not None and have != previous:
        del target[f.previous]
    return target


def field_withdrawal(current: Mapping[str, Values], name: str) -> Changes:
    """What taking mertag's value back out of one owned field changes (an uncertain prediction
    without a word, or a field no longer asked for): as removal_changes, for that field, its
    record and its previous-value field only. A MOOD without MERTAG_MOOD beside it stays (see
    field_changes)."""
    return _unchanged(current, _field_removal(current, OWNED_FIELDS[name], None))


def removal_changes(current: Mapping[str, Values], mood_value: str | None) -> Changes:
    """What taking all of mertag's fields out changes, given the fields' `current` values.

    Every MERTAG_* field goes, and each owned field is handled as _field_removal says. For a
    file without MERTAG_MOOD (tagged by an older mertag) MOOD goes only if it is `mood_value`.
    """
    target: Changes = {k: None for k in current if k not in _OWNED_KEYS}
    for f in OWNED_FIELDS.values():
        target.update(_field_removal(current, f, mood_value if f.name == "MOOD" else None))
    return _unchanged(current, target)
