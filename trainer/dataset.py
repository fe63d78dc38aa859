"""Labelled training data: a folder with Q1..Q4 subfolders, or a CSV naming files and quadrants.

Loading never decodes audio; it lists the clips and reports each row it cannot use (missing file,
unknown label, duplicate) by name with a one-line reason. Clips whose audio turns out to be
undecodable are reported later, by extraction. Needs neither torch nor scikit-learn, so
`mertag evaluate` can use it on a machine without the training extra.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mertag.tagger.library import is_audio_name
from mertag.tagger.mood import QUADRANTS
from mertag.trainer.mood_words import parse_words

PATH_COLUMNS = ("file", "path", "filename")
LABEL_COLUMNS = ("quadrant", "label")
GROUP_COLUMNS = ("artist", "group")
GENRE_COLUMNS = ("genres", "genre")
MOOD_WORD_COLUMNS = ("moods", "mood_words")
NAME_COLUMNS = ("clip", "name", "id")
MIN_PER_QUADRANT = 2


class DatasetError(Exception):
    """Data that cannot be used at all (unreadable source, no usable clips); one line."""


@dataclass(frozen=True)
class Clip:
    """One labelled audio file; `group` keeps clips of one artist in the same fold."""

    name: str
    path: Path
    quadrant: str
    group: str
    genre: str = ""
    """The clip's genre family: the first of its `genres` ("Pop/Rock; Blues" -> "Pop/Rock")."""
    moods: tuple[str, ...] = ()
    """The clip's mood words, if the CSV has them (mertag.trainer.mood_words)."""

    @property
    def label(self) -> int:
        return QUADRANTS.index(self.quadrant)


@dataclass(frozen=True)
class Problem:
    """A row or file that was skipped, and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


@dataclass
class Dataset:
    """The usable clips of a source, in source order, and the rows that were skipped."""

    source: Path
    clips: list[Clip]
    problems: list[Problem] = field(default_factory=list)
    grouping: str = "none: each clip is its own group"


def load_dataset(source: Path) -> Dataset:
    """Load a Q1..Q4 folder or a labels CSV; raises DatasetError if the source is unusable."""
    source = Path(source)
    if source.is_dir():
        return load_folder(source)
    if source.is_file():
        return load_csv(source)
    raise DatasetError(f"{source}: no such folder or CSV file")


def parse_quadrant(text: str) -> str | None:
    """'Q1'..'Q4' (any case, surrounding blanks ignored), or None for anything else."""
    label = text.strip().upper()
    return label if label in QUADRANTS else None


def load_folder(root: Path) -> Dataset:
    """Audio files under root/Q1..root/Q4 (any case, recursively); each file is its own group."""
    clips: list[Clip] = []
    problems: list[Problem] = []
    subfolders = sorted(p for p in root.iterdir() if p.is_dir())
    for folder in subfolders:
        quadrant = parse_quadrant(folder.name)
        if quadrant is None:
            problems.append(
                Problem(f"{folder.name}/", f"folder is not one of {', '.join(QUADRANTS)}; skipped")
            )
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or not is_audio_name(path.name):
                continue
            name = path.relative_to(root).as_posix()
            clips.append(Clip(name=name, path=path, quadrant=quadrant, group=name))
    if not any(parse_quadrant(p.name) for p in subfolders):
        raise DatasetError(f"{root}: has no {'/'.join(QUADRANTS)} subfolders of audio files")
    return Dataset(source=root, clips=clips, problems=problems)


def _pick(header: list[str], candidates: tuple[str, ...]) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    return None


def load_csv(path: Path) -> Dataset:
    """Rows of a CSV with a path column (relative to the CSV's folder), a quadrant column and
    optionally a group (artist) column; a row without a group is its own group."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            header = list(rows[0].keys()) if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read as CSV ({exc})") from exc
    if not rows:
        raise DatasetError(f"{path}: no rows")
    path_col = _pick(header, PATH_COLUMNS)
    label_col = _pick(header, LABEL_COLUMNS)
    if path_col is None or label_col is None:
        raise DatasetError(
            f"{path}: needs a path column ({'/'.join(PATH_COLUMNS)}) and a label column "
            f"({'/'.join(LABEL_COLUMNS)}); has {', '.join(header)}"
        )
    group_col = _pick(header, GROUP_COLUMNS)
    genre_col = _pick(header, GENRE_COLUMNS)
    moods_col = _pick(header, MOOD_WORD_COLUMNS)
    name_col = _pick(header, NAME_COLUMNS)
    base = path.parent
    clips: list[Clip] = []
    problems: list[Problem] = []
    seen: dict[Path, str] = {}
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        rel = (row.get(path_col) or "").strip()
        name = (row.get(name_col) or "").strip() if name_col else ""
        name = name or rel or f"row {number}"
        where = f"{path.name} line {number} ({name})"
        if not rel:
            problems.append(Problem(where, "empty path"))
            continue
        quadrant = parse_quadrant(row.get(label_col) or "")
        if quadrant is None:
            problems.append(
                Problem(where, f"unknown label {row.get(label_col)!r} (not {', '.join(QUADRANTS)})")
            )
            continue
        file = (base / rel).resolve()
        if not file.is_file():
            problems.append(Problem(where, f"file not found: {rel}"))
            continue
        if file in seen:
            problems.append(Problem(where, f"same file as {seen[file]}; skipped"))
            continue
        seen[file] = name
        group = (row.get(group_col) or "").strip() if group_col else ""
        genre = (row.get(genre_col) or "").split(";")[0].strip() if genre_col else ""
        moods = parse_words(row.get(moods_col) or "") if moods_col else ()
        clips.append(
            Clip(
                name=name,
                path=file,
                quadrant=quadrant,
                group=group or f"clip:{name}",
                genre=genre,
                moods=moods,
            )
        )
    grouping = f"grouped by the {group_col!r} column" if group_col else Dataset.grouping
    return Dataset(source=path, clips=clips, problems=problems, grouping=grouping)


def check_usable(clips: list[Clip], folds: int) -> None:
    """Raise DatasetError unless every quadrant has enough clips (and groups) for `folds` folds."""
    per_quadrant = Counter(c.quadrant for c in clips)
    need = max(MIN_PER_QUADRANT, folds)
    short = [
        f"{q} has {per_quadrant.get(q, 0)}" for q in QUADRANTS if per_quadrant.get(q, 0) < need
    ]
    if short:
        raise DatasetError(
            f"too few usable clips to train: {len(clips)} in all, and {'; '.join(short)} "
            f"(each quadrant needs at least {need}"
            + (f" for {folds}-fold cross-validation)" if folds else ")")
        )
    groups = len({c.group for c in clips})
    if folds and groups < folds:
        raise DatasetError(
            f"too few groups (artists) for {folds}-fold cross-validation: {groups}; "
            "use fewer --folds"
        )
