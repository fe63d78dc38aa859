"""Queries in the beets style, one parser for `list`, `export`, `playlist` and `map`.

A query is a list of terms, all of which must hold; a lone ',' between terms starts another
group, and a row is kept when any group holds (beets' `beet ls a , b`):

    mood:Relaxed  quadrant:Q4  mood:Sad,Relaxed     a mood word (any case) or Q1-Q4, ',' = or
    uncertain:yes                                    below the confidence threshold
    arousal:..-0.3  valence:0.2..  confidence:0.7..  number ranges, both ends included;
    valence:-0.5..0.5  arousal:0.3  energy:8..       a lone number matches to its last digit
    path:Jazz/  path:~/Music/Jazz  path:'*.flac'     a file or folder (see `PathTerm`)
    status:error  tagged:no  model:fast              the index's own state (status: ok,
                                                     error or silent; model: a shipped
                                                     model's name, or part of a model id)
    artist:Björk  album:...  title:...              from the tags, as the scan indexed them
    duration:..180                                   seconds
    björk                                            a free word: artist, album, title or path
    ^mood:Angry  -arousal:0.5..                      '^' (or '-', after `--`) negates a term
    title::^The  path::\\.flac$                       '::' matches a regular expression

`energy` is the ENERGY 1..10 that `--energy` writes, computed from the row's arousal
(`mood.energy_level`), so it selects the same tracks whether or not the files hold it.

`mood:` selects the tracks whose mood is known: an uncertain track matches `quadrant:` (the
model's best guess) and `uncertain:yes`, never `mood:`.

Sorting is `FIELD+` / `FIELD-` (ascending / descending) as a term or through `--sort`.

Text matches are case-insensitive, Unicode-normalised substrings. `artist`, `album` and `title`
read the row's own column (a scan fills it from the file's tags) and the path where it is empty
(a file without that tag, or a row from an index older than those columns).
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from mertag.tagger.index import STATUSES, IndexRow
from mertag.tagger.model_names import packaged_model_id
from mertag.tagger.mood import DEFAULT_MOODS, ENERGY_LEVELS, QUADRANTS, energy_level

NUMBER_FIELDS: dict[str, tuple[float, float]] = {
    "valence": (-1.0, 1.0),
    "arousal": (-1.0, 1.0),
    "confidence": (0.0, 1.0),
    "p_q1": (0.0, 1.0),
    "p_q2": (0.0, 1.0),
    "p_q3": (0.0, 1.0),
    "p_q4": (0.0, 1.0),
    "energy": (1.0, float(ENERGY_LEVELS)),
    "duration": (0.0, math.inf),
}
"""Numeric fields and the span their values can take (what an open range end stands for)."""

TAG_FIELDS = ("artist", "album", "title")
"""Text read from the file's tags; the path stands in while the index does not hold them."""

MOOD_FIELDS = ("mood", "quadrant")
FIELDS: tuple[str, ...] = (
    *MOOD_FIELDS,
    *NUMBER_FIELDS,
    "path",
    "status",
    "tagged",
    "uncertain",
    "model",
    *TAG_FIELDS,
)
SORT_FIELDS: tuple[str, ...] = (*FIELDS, "analysed_at", "size")

_COLUMN = {"model": "model_id"}
_GLOB_CHARS = frozenset("*?[")
_YES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


class QueryError(ValueError):
    """A term the parser cannot read; the message names the term and says what would work."""


def fold(text: str) -> str:
    """Text as text matching compares it: NFC-normalised (a macOS 'ö' is two code points) and
    casefolded."""
    return unicodedata.normalize("NFC", text).casefold()


def index_words(rows: Iterable[IndexRow]) -> dict[str, str]:
    """mood word (casefolded) -> quadrant, for every word the index holds (an uncertain track's
    word, if it has one, says nothing of its quadrant)."""
    return {
        r.mood.casefold(): r.quadrant for r in rows if r.mood and r.quadrant and not r.uncertain
    }


def resolve_quadrant(
    text: str, moods: Mapping[str, str], known: Mapping[str, str] | None = None
) -> str:
    """The quadrant a user means by `text`: Q1..Q4 or a mood word, any case.

    Words are looked up in `moods` (the configured words) first, then in `known` (casefolded
    word -> quadrant, e.g. `index_words`, for words written by earlier scans), then in
    DEFAULT_MOODS. ValueError names the choices.
    """
    folded = text.strip().casefold()
    if folded.upper() in QUADRANTS:
        return folded.upper()
    for q, word in moods.items():
        if word.casefold() == folded:
            return q
    if known and folded in known:
        return known[folded]
    for q, word in DEFAULT_MOODS.items():
        if word.casefold() == folded:
            return q
    words = ", ".join(moods[q] for q in QUADRANTS)
    raise ValueError(f"unknown mood {text!r}: use a mood word ({words}) or Q1-Q4")


def common_folder(paths: Sequence[str]) -> str | None:
    """The deepest folder holding every path, when there is one below the file-system root."""
    try:
        root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else None
    except ValueError:  # relative and absolute mixed, or different drives
        return None
    if not root or os.path.dirname(root) == root:
        return None
    return root


def _below(path: str, root: str | None) -> str:
    """`path` relative to `root` when it lies below it, else the whole path."""
    if root is not None and path.startswith(root.rstrip(os.sep) + os.sep):
        return path[len(root.rstrip(os.sep)) + 1 :]
    return path


def row_number(row: IndexRow, field: str) -> float | None:
    """A numeric field of a row (NUMBER_FIELDS, or `size`); None when it has none. `energy` is
    computed from the arousal, never read from anywhere else."""
    if field == "energy":
        value = row.arousal
        if value is None or math.isnan(value):
            return None
        try:
            return float(energy_level(value))
        except ValueError:
            return None  # an arousal outside [-1, 1] (a foreign index) has no energy
    value = getattr(row, field)
    return None if value is None or value != value else value


def row_text(row: IndexRow, field: str, root: str | None = None) -> str:
    """A text field of a row: its column when the index has one and it is set, else the path
    (below `root`, the library's folder, so a word in the library's own path matches nothing
    special)."""
    if field == "path":
        return _below(row.path, root)
    value = getattr(row, _COLUMN.get(field, field), None)
    if value is None and field in TAG_FIELDS:
        return _below(row.path, root)
    return "" if value is None else str(value)


# ---- terms ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoodTerm:
    """The row's quadrant is one of `quadrants` (and, for `mood:`, the mood is not uncertain)."""

    quadrants: frozenset[str]
    confident: bool = False

    def matches(self, row: IndexRow) -> bool:
        return row.quadrant in self.quadrants and not (self.confident and row.uncertain)


@dataclass(frozen=True)
class RangeTerm:
    """A number field within [low, high] (high excluded when `high_open`); None: unbounded."""

    field: str
    low: float | None
    high: float | None
    high_open: bool = False

    def matches(self, row: IndexRow) -> bool:
        value = row_number(row, self.field)
        if value is None:
            return False
        if self.low is not None and value < self.low:
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


@dataclass(frozen=True)
class TextTerm:
    """One of `fields` holds `needle` (folded substring), matches `pattern` (a regex) or is one
    of `exact` (e.g. the model id a shipped model's name `model:fast` stands for)."""

    fields: tuple[str, ...]
    needle: str
    pattern: re.Pattern[str] | None = None
    root: str | None = None  # paths are matched below this folder
    exact: tuple[str, ...] = ()

    def matches(self, row: IndexRow) -> bool:
        for f in self.fields:
            text = row_text(row, f, self.root)
            if text in self.exact:
                return True
            if self.pattern is not None:
                if self.pattern.search(unicodedata.normalize("NFC", text)):
                    return True
            elif self.needle in fold(text):
                return True
        return False


@dataclass(frozen=True)
class ValueTerm:
    """A field equals one of `values` (status, tagged)."""

    field: str
    values: frozenset[object]

    def matches(self, row: IndexRow) -> bool:
        return getattr(row, self.field) in self.values


@dataclass(frozen=True)
class PathTerm:
    """A path as the user sees it, three ways, chosen from what they typed:

    - with a glob character ('*?[') and naming no existing file: fnmatch over the whole path
      (an absolute pattern, or one starting with '*'), else over any tail of it at a folder
      boundary ('Jazz/*.flac');
    - absolute, starting with '~', '.' or '..', or naming something that exists from the current
      folder: that file, or everything under that folder;
    - otherwise: whole path components anywhere in the path ('Jazz/' is every folder called
      Jazz; 'Jazz/Miles' a file or folder Miles in one), which is what a path relative to the
      library's root, or to any folder in it, names.

    Paths compare exactly (case and all), as the file system does.
    """

    glob: str | None = None
    prefixes: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    folder: bool = False

    def matches(self, row: IndexRow) -> bool:
        path = row.path
        if self.glob is not None:
            return fnmatchcase(path, self.glob)
        if self.prefixes:
            return any(
                path == p or path.startswith(p.rstrip(os.sep) + os.sep) for p in self.prefixes
            )
        have = path.split(os.sep)
        n = len(self.parts)
        last = len(have) - n - (1 if self.folder else 0)
        return any(tuple(have[i : i + n]) == self.parts for i in range(last + 1))


Condition = MoodTerm | RangeTerm | TextTerm | ValueTerm | PathTerm


@dataclass(frozen=True)
class Term:
    """One condition as typed, possibly negated."""

    text: str
    field: str | None  # None: a free word
    condition: Condition
    negate: bool = False

    def matches(self, row: IndexRow) -> bool:
        return self.condition.matches(row) != self.negate


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class Query:
    """Groups of terms (a row is kept when every term of some group holds) and sort keys."""

    groups: tuple[tuple[Term, ...], ...] = ((),)
    sorts: tuple[Sort, ...] = ()

    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(t for g in self.groups for t in g)

    def matches(self, row: IndexRow) -> bool:
        return any(all(t.matches(row) for t in group) for group in self.groups)

    def select(self, rows: Iterable[IndexRow]) -> list[IndexRow]:
        """The rows that match, sorted by the sort keys (index order, by path, otherwise)."""
        return sort_rows([r for r in rows if self.matches(r)], self.sorts)


def sort_rows(rows: list[IndexRow], sorts: Sequence[Sort]) -> list[IndexRow]:
    """Sorted by each key in turn (the first key the main one); empty values go last."""
    for key in reversed(sorts):
        value = _sort_value(key.field)
        known = [r for r in rows if value(r) is not None]
        empty = [r for r in rows if value(r) is None]
        known.sort(key=value, reverse=key.descending)  # type: ignore[arg-type,return-value]
        rows = known + empty
    return rows


def _sort_value(field: str) -> Callable[[IndexRow], object]:
    if field in NUMBER_FIELDS or field == "size":
        return lambda row: row_number(row, field)
    if field == "path":
        return lambda row: os.fsencode(row.path)
    return lambda row: fold(row_text(row, field)) or None


# ---- parsing ----------------------------------------------------------------------------------


def _number(text: str, term: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise QueryError(
            f"{term!r}: {text!r} is not a number (use a range such as 0.2.., ..-0.3, "
            "-0.5..0.5, or one number such as 0.3)"
        ) from None
    if not math.isfinite(value):
        raise QueryError(f"{term!r}: {text!r} is not a finite number")
    return value


def _range(field: str, value: str, term: str) -> RangeTerm:
    if ".." in value:
        low_text, _, high_text = value.partition("..")
        low = _number(low_text, term) if low_text.strip() else None
        high = _number(high_text, term) if high_text.strip() else None
        if low is None and high is None:
            raise QueryError(f"{term!r}: a range needs at least one end, e.g. {field}:0.5..")
        if low is not None and high is not None and low > high:
            raise QueryError(f"{term!r}: the range is empty ({low:g} is above {high:g})")
        return RangeTerm(field, low, high)
    # One number matches what rounds to it: arousal:0.3 is [0.25, 0.35).
    exact = _number(value, term)
    digits = len(value.strip().partition(".")[2].rstrip()) if "." in value else 0
    half = 0.5 * 10.0**-digits
    return RangeTerm(field, exact - half, exact + half, high_open=True)


def _path(value: str, cwd: Path) -> PathTerm:
    if not value:
        raise QueryError("'path:' needs a file or folder, e.g. path:Jazz/")
    expanded = os.path.expanduser(value)
    if _GLOB_CHARS & set(value) and not os.path.lexists(os.path.join(cwd, expanded)):
        if os.path.isabs(expanded) or expanded.startswith("*"):
            return PathTerm(glob=expanded)
        return PathTerm(glob="*" + os.sep + expanded)
    here = cwd / expanded
    if (
        os.path.isabs(expanded)
        or value.startswith(("~", "./", "../"))
        or value in (".", "..")
        or here.exists()
    ):
        absolute = os.path.normpath(os.path.join(cwd, expanded))
        prefixes = {absolute, os.path.realpath(absolute)}
        return PathTerm(prefixes=tuple(sorted(prefixes)))
    parts = tuple(p for p in value.split("/") if p and p != ".")
    if os.sep != "/":  # pragma: no cover - Windows
        parts = tuple(q for p in parts for q in p.split(os.sep) if q)
    return PathTerm(parts=parts, folder=value.endswith(("/", os.sep)))


def _regex(value: str, term: str) -> re.Pattern[str]:
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise QueryError(f"{term!r}: not a regular expression ({exc})") from None


def _sort_term(text: str) -> Sort | None:
    """'arousal-' -> Sort('arousal', descending), when text is a sort field with a sign."""
    if len(text) > 1 and text[-1] in "+-" and fold(text[:-1]) in SORT_FIELDS:
        return Sort(fold(text[:-1]), descending=text[-1] == "-")
    return None


def parse_sort(text: str) -> Sort:
    """A --sort value: FIELD, FIELD+ or FIELD-."""
    sort = _sort_term(text) or (Sort(fold(text)) if fold(text) in SORT_FIELDS else None)
    if sort is None:
        raise QueryError(
            f"cannot sort by {text!r}: use one of {', '.join(SORT_FIELDS)}, then + or -"
        )
    return sort


def parse_term(
    text: str,
    *,
    moods: Mapping[str, str] | None = None,
    known: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    root: str | None = None,
) -> Term:
    """One term (see the module doc); QueryError when it cannot be read. Text is matched
    against paths below `root`, the library's folder."""
    moods = {**DEFAULT_MOODS, **(moods or {})}
    body, negate = text, False
    if body[:1] in "^-" and len(body) > 1:
        body, negate = body[1:], True
    field, sep, value = body.partition(":")
    if not sep:
        if not body.strip():
            raise QueryError(f"{text!r}: an empty term")
        return Term(text, None, TextTerm(("path", *TAG_FIELDS), fold(body), root=root), negate)
    field = fold(field.strip())
    regex = value.startswith(":")
    if regex:
        value = value[1:]
    if field not in FIELDS:
        raise QueryError(f"{text!r}: unknown field {field!r} (fields: {', '.join(FIELDS)})")
    condition: Condition
    if regex and field not in ("path", "model", *TAG_FIELDS):
        raise QueryError(f"{text!r}: '::' (a regular expression) works on text fields only")
    if field in MOOD_FIELDS:
        try:
            quadrants = frozenset(
                resolve_quadrant(w, moods, known) for w in value.split(",") if w.strip()
            )
        except ValueError as exc:
            raise QueryError(f"{text!r}: {exc}") from None
        if not quadrants:
            raise QueryError(f"{text!r}: name a mood word or Q1-Q4, e.g. mood:Relaxed")
        condition = MoodTerm(quadrants, confident=field == "mood")
    elif field in NUMBER_FIELDS:
        condition = _range(field, value, text)
    elif field == "status":
        states = frozenset(fold(v.strip()) for v in value.split(",") if v.strip())
        if not states or not states <= set(STATUSES):
            raise QueryError(f"{text!r}: status is {' or '.join(STATUSES)}")
        condition = ValueTerm("status", states)  # type: ignore[arg-type]
    elif field in ("tagged", "uncertain"):
        if fold(value.strip()) not in _YES:
            raise QueryError(f"{text!r}: {field} is yes or no")
        condition = ValueTerm(field, frozenset({1 if _YES[fold(value.strip())] else 0}))
    elif field == "path" and not regex:
        condition = _path(value, cwd or Path.cwd())
    else:
        if not value:
            raise QueryError(f"{text!r}: give the text to look for, e.g. {field}:word")
        pattern = _regex(value, text) if regex else None
        shipped = packaged_model_id(value) if field == "model" and not regex else None
        exact = (shipped,) if shipped is not None else ()
        condition = TextTerm((field,), fold(value), pattern, root, exact)
    return Term(text, field, condition, negate)


def parse_query(
    terms: Sequence[str],
    *,
    sorts: Sequence[str] = (),
    moods: Mapping[str, str] | None = None,
    known: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    root: str | None = None,
) -> Query:
    """Terms (a lone ',' between groups) and --sort values into a Query; QueryError on a bad
    term. `moods` are the configured words, `known` the index's (`index_words`), `root` the
    library's folder (`common_folder`)."""
    groups: list[tuple[Term, ...]] = []
    current: list[Term] = []
    sort_keys: list[Sort] = []
    for text in terms:
        if text.strip() == ",":
            groups.append(tuple(current))
            current = []
            continue
        sort = _sort_term(text)
        if sort is not None:
            sort_keys.append(sort)
            continue
        current.append(parse_term(text, moods=moods, known=known, cwd=cwd, root=root))
    groups.append(tuple(current))
    if len(groups) > 1 and not all(groups):
        raise QueryError("',' separates two groups of terms: one of them is empty")
    sort_keys.extend(parse_sort(s) for s in sorts)
    return Query(tuple(groups), tuple(sort_keys))


def option_terms(
    *,
    moods: Sequence[str] | None = None,
    min_confidence: float | None = None,
    path_glob: str | None = None,
    status: str | None = None,
) -> list[str]:
    """The older filter options (--mood, --min-confidence, --path, --status) as query terms."""
    terms: list[str] = []
    if moods:
        terms.append("mood:" + ",".join(moods))
    if min_confidence is not None:
        terms.append(f"confidence:{min_confidence!r}..")
    if path_glob is not None:
        terms.append(f"path:{path_glob}")
    if status is not None:
        terms.append(f"status:{status}")
    return terms


def run_query(
    rows: Iterable[IndexRow],
    terms: Sequence[str],
    *,
    sorts: Sequence[str] = (),
    moods: Mapping[str, str] | None = None,
) -> tuple[Query, list[IndexRow]]:
    """The query and the rows it selects, sorted; the mood words the index holds are known
    words."""
    rows = list(rows)
    root = common_folder([r.path for r in rows])
    query = parse_query(terms, sorts=sorts, moods=moods, known=index_words(rows), root=root)
    return query, query.select(rows)
