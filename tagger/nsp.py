"""Navidrome smart playlists (`.nsp`): JSON rules that Navidrome evaluates over its own view of
the tags and keeps up to date as the library changes.

A mood is Navidrome's `mood` tag (read from TMOO, MOOD and the MP4 MOOD atom by default). The
numbers mertag writes (MERTAG_VALENCE, MERTAG_AROUSAL, MERTAG_CONFIDENCE) and the model
(MERTAG_MODEL) become fields `mertag_valence`, ... once Navidrome's config declares them as tags
(`navidrome_config`), so a query over them turns into rules over those fields.

A query term with no Navidrome counterpart (a path given absolutely, a glob, a regular
expression, status:error) is an NspError naming it: a smart playlist that silently selected
other tracks than `mertag list` would be worse than none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from mertag.tagger.querylang import (
    TAG_FIELDS,
    MoodTerm,
    PathTerm,
    Query,
    RangeTerm,
    Sort,
    Term,
    TextTerm,
    ValueTerm,
)
from mertag.tagger.tags import FIELD_TABLE

SUFFIX = ".nsp"

TAGS: dict[str, str] = {
    "valence": "mertag_valence",
    "arousal": "mertag_arousal",
    "confidence": "mertag_confidence",
    "model": "mertag_model",
}
"""mertag's query fields that are written into the files, as Navidrome tag names."""

_SPAN = {"valence": (-1.0, 1.0), "arousal": (-1.0, 1.0), "confidence": (0.0, 1.0)}

_FIELDS = {"path": "filepath", **{f: f for f in TAG_FIELDS}, "mood": "mood", **TAGS}
"""Navidrome's name for each field mertag can sort or match by."""

NUMERIC_TAGS = ("mertag_valence", "mertag_arousal", "mertag_confidence")


def _aliases(field: str) -> list[str]:
    """Every key a file may hold `field` under (tags.FIELD_TABLE), as Navidrome aliases."""
    return list(dict.fromkeys(FIELD_TABLE[field]))


def navidrome_config() -> str:
    """The navidrome.toml lines that make mertag's fields smart-playlist fields: the numbers as
    floats, the model as text, and the mood also read from ID3v2.3's TXXX:MOOD (Navidrome reads
    TMOO, MOOD and the MP4 atom by default; setting Aliases replaces its list, so all are given).
    """
    lines = ["# navidrome.toml: mertag's tags as smart-playlist fields"]
    for tag in TAGS.values():
        quoted = ", ".join(f'"{a}"' for a in _aliases(tag.upper()))
        lines.append(f"[Tags.{tag}]")
        lines.append(f"Aliases = [{quoted}]")
        if tag in NUMERIC_TAGS:
            lines.append('Type = "float"')
    moods = ", ".join(f'"{a}"' for a in [*_aliases("MOOD"), "WM/Mood"])
    lines += ["[Tags.mood]", f"Aliases = [{moods}]"]
    return "\n".join(lines) + "\n"


class NspError(ValueError):
    """A query that a Navidrome smart playlist cannot express; the message names the term."""


def _cannot(term: Term, why: str) -> NspError:
    return NspError(f"a Navidrome smart playlist cannot hold {term.text!r}: {why}")


def mood_rule(words: Sequence[str], *, negate: bool = False) -> dict[str, object]:
    """Navidrome's mood tag is one of `words` (or, negated, none of them)."""
    if negate:
        return {"all": [{"isNot": {"mood": w}} for w in words]}
    if len(words) == 1:
        return {"is": {"mood": words[0]}}
    return {"any": [{"is": {"mood": w}} for w in words]}


def _range_rule(term: Term, cond: RangeTerm) -> dict[str, object]:
    if cond.field == "energy":
        raise _cannot(term, "Navidrome has no energy field; select by arousal, e.g. arousal:0.4..")
    if cond.field not in _SPAN:
        raise _cannot(term, f"{cond.field} is not written into the files")
    tag = TAGS[cond.field]
    low, high = _SPAN[cond.field]
    if not term.negate:
        lo = low if cond.low is None else cond.low
        hi = high if cond.high is None else cond.high
        return {"inTheRange": {tag: [lo, hi]}}
    outside: list[dict[str, object]] = []
    if cond.low is not None:
        outside.append({"lt": {tag: cond.low}})
    if cond.high is not None:
        outside.append({"gt": {tag: cond.high}})
    return outside[0] if len(outside) == 1 else {"any": outside}


def _text_rule(term: Term, cond: TextTerm) -> dict[str, object]:
    if cond.pattern is not None:
        raise _cannot(term, "Navidrome's rules have no regular expressions")
    op = "notContains" if term.negate else "contains"
    body = term.text[1:] if term.negate else term.text
    value = body.partition(":")[2] if term.field else body
    rules: list[dict[str, object]] = [{op: {_FIELDS[f]: value}} for f in cond.fields]
    exact = "isNot" if term.negate else "is"  # model:fast also means the fast model's id
    rules += [{exact: {_FIELDS[f]: v}} for f in cond.fields for v in cond.exact]
    if len(rules) == 1:
        return rules[0]
    return {"all" if term.negate else "any": rules}


def _path_rule(term: Term, cond: PathTerm) -> dict[str, object]:
    if cond.glob is not None:
        raise _cannot(term, "Navidrome's rules have no globs; give a folder, e.g. path:Jazz/")
    if cond.prefixes:
        raise _cannot(
            term,
            "Navidrome's file paths are relative to its music folder; give the path as it is "
            "below the library's root, e.g. path:Jazz/",
        )
    text = "/".join(cond.parts) + ("/" if cond.folder else "")
    return {"notContains" if term.negate else "contains": {"filepath": text}}


def term_rule(term: Term, words: Mapping[str, Sequence[str]]) -> dict[str, object] | None:
    """The Navidrome rule for one query term; None when every track Navidrome sees with a mertag
    mood already passes it (status:ok, tagged:yes, uncertain:no)."""
    cond = term.condition
    if isinstance(cond, MoodTerm):
        chosen = [w for q in sorted(cond.quadrants) for w in words.get(q, ())]
        return mood_rule(chosen, negate=term.negate)
    if isinstance(cond, RangeTerm):
        return _range_rule(term, cond)
    if isinstance(cond, PathTerm):
        return _path_rule(term, cond)
    if isinstance(cond, TextTerm):
        return _text_rule(term, cond)
    if isinstance(cond, ValueTerm):
        passing = {"status": {"ok"}, "uncertain": {0}}.get(cond.field, {1})
        passes = passing == set(cond.values)
        if passes != term.negate:
            return None
        raise _cannot(term, "Navidrome sees only tracks whose mood is in their tags")
    raise _cannot(term, "no Navidrome field matches it")  # pragma: no cover - every kind above


def query_rules(query: Query, words: Mapping[str, Sequence[str]]) -> list[dict[str, object]]:
    """The rules (all must hold) for a query; its ',' groups become one 'any' rule."""
    groups = [[r for t in g if (r := term_rule(t, words)) is not None] for g in query.groups]
    if len(groups) == 1:
        return groups[0]
    return [{"any": [{"all": g} for g in groups]}]


def _sort(sorts: Sequence[Sort]) -> dict[str, str]:
    if not sorts:
        return {}
    first = sorts[0]
    if first.field not in _FIELDS:
        raise NspError(f"a Navidrome smart playlist cannot be sorted by {first.field}")
    return {"sort": _FIELDS[first.field], "order": "desc" if first.descending else "asc"}


def render_nsp(
    name: str, comment: str, rules: list[dict[str, object]], sorts: Sequence[Sort] = ()
) -> str:
    """The text of an .nsp file: its name, a comment, the rules (all must hold), the order."""
    doc: dict[str, object] = {"name": name, "comment": comment, "all": rules, **_sort(sorts)}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
