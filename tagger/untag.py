"""Take mertag's tags out of files again: every MERTAG_* field; MOOD goes only where it still holds
the word mertag wrote, and where mertag replaced the user's MOOD (--overwrite-mood) the values
saved in MERTAG_PREVIOUS_MOOD are put back. The fields for other players go the same way
(field_policy): mertag's ENERGY goes (a user's ENERGY it replaced comes back), and COMMENT and
GROUPING get back exactly the user's text without mertag's appended word. Every other tag, the
pictures and the audio stay as they were (the removal goes through tags.remove_tags, which saves
through the crash-safe rewrite). An ID3v2.2 tag, which mutagen cannot write, is not converted to
take mertag's fields out unless asked (`convert_id3v22`, as scan and write): without it such a
file keeps its tag byte for byte and its outcome is a failure naming the reason.

The word mertag wrote is in the file's MERTAG_MOOD. A file tagged by an older mertag has none:
then, only where the file carries MERTAG_QUADRANT (proof mertag tagged it), it is the index row's
mood (none for an uncertain track: mertag wrote no word), or for a file the index does not know,
the MOOD when it is the configured or the default word for that quadrant; otherwise MOOD is kept.
A file mertag only analysed (`scan --no-write`) has no MERTAG_QUADRANT, so its MOOD is the user's
even when it is the word the index holds.

The index records the removal: the row keeps its analysis and gets tagged=0, and when only the
tags changed also the file's new size and mtime, so a later scan leaves the file untagged unless
it changes or --force is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mertag.tagger.index import Index, IndexRow, Migration
from mertag.tagger.library import walk
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS
from mertag.tagger.roots import split_roots
from mertag.tagger.safe_write import (
    SafeWriteError,
    finish_interrupted_writes,
    left_in_dry_run,
    settle_interrupted_write,
)
from mertag.tagger.tags import (
    ID3_VERSION,
    ID3v22Kept,
    TagChange,
    TagError,
    UnsupportedFormat,
    plan_removal,
    read_tags,
    remove_tags,
)


@dataclass
class UntagOutcome:
    """What happened (or, in a dry run, would happen) to one file."""

    path: Path
    removed: dict[str, str] = field(default_factory=dict)  # field -> the value taken out
    restored: dict[str, str] = field(default_factory=dict)  # field -> the user's value put back
    kept_mood: str | None = None  # a MOOD left in place because mertag did not write it
    converted: TagChange | None = None  # the ID3 version switch, asked for (convert_id3v22)
    error: str | None = None
    indexed: bool = False  # the index has a row for it (updated unless a dry run)


@dataclass
class UntagSummary:
    """Every file's outcome, plus what the walk passed over or could not reach."""

    outcomes: list[UntagOutcome] = field(default_factory=list)
    passed_over: int = 0
    problems: list[tuple[Path, str]] = field(default_factory=list)
    migration: Migration | None = None
    """The index was written by an older mertag and migrated on opening (after its backup)."""

    @property
    def ok(self) -> bool:
        return not self.problems and all(o.error is None for o in self.outcomes)


def mertag_mood(
    row: IndexRow | None, tags: Mapping[str, str], moods: Mapping[str, str] | None = None
) -> str | None:
    """The MOOD value mertag wrote into this file, or None when it cannot be told (module doc)."""
    quadrant = tags.get("MERTAG_QUADRANT")
    mood = tags.get("MOOD")
    if quadrant is None or mood is None:
        return None  # mertag never tagged this file (or MOOD is empty): MOOD is not mertag's
    if row is not None and row.status == "ok":
        return None if row.uncertain else row.mood
    if quadrant not in QUADRANTS:
        return None
    words = {(moods or {}).get(quadrant), DEFAULT_MOODS[quadrant]}
    return mood if mood in words else None


def planned_removal(
    path: Path,
    row: IndexRow | None,
    tags: Mapping[str, str],
    moods: Mapping[str, str] | None = None,
    *,
    convert_id3v22: bool = False,
) -> list[TagChange]:
    """What untagging the file at `path` would change, given its index row and its mertag
    `tags` as read_tags gives them (nothing is written; ID3v22Kept for an ID3v2.2 tag holding
    mertag's fields, unless `convert_id3v22`)."""
    return plan_removal(path, mertag_mood(row, tags, moods), convert_id3v22=convert_id3v22)


def untag_file(
    path: Path,
    index: Index | None,
    *,
    moods: Mapping[str, str] | None = None,
    dry_run: bool = False,
    convert_id3v22: bool = False,
) -> UntagOutcome:
    """Remove mertag's fields from one file and record it in `index` (never raises for a bad
    file: the reason is in the outcome; an ID3v2.2 tag is converted only with
    `convert_id3v22`)."""
    outcome = UntagOutcome(path=path)
    row = index.get(str(path)) if index is not None else None
    outcome.indexed = row is not None
    try:  # finished before its tags are read
        if not settle_interrupted_write(path, not dry_run):
            outcome.error = left_in_dry_run("mertag untag")
            return outcome
    except SafeWriteError as exc:
        outcome.error = str(exc)
        return outcome
    try:
        st = path.stat()
        tags = read_tags(path)
        mood_value = mertag_mood(row, tags, moods)
        planned = planned_removal(path, row, tags, moods, convert_id3v22=convert_id3v22)
        changed = {c.field for c in planned}
        if "MOOD" in tags and "MOOD" not in changed:
            outcome.kept_mood = tags["MOOD"]
        if not dry_run:
            expect = (st.st_size, st.st_mtime_ns)
            removed = remove_tags(path, mood_value, convert_id3v22=convert_id3v22, expect=expect)
            changed = set(removed) | ({ID3_VERSION} if removed else set())
        for change in planned:
            if change.field not in changed or change.old is None:
                continue
            if change.field == ID3_VERSION:
                outcome.converted = change
                continue
            if change.new is None:
                outcome.removed[change.field] = change.old
            else:
                outcome.restored[change.field] = change.new
        if dry_run:
            return outcome
    except ID3v22Kept as exc:  # mertag's fields are in it, but only a conversion takes them out
        outcome.error = str(exc)
        return outcome
    except UnsupportedFormat:
        return outcome  # mertag never tags such files: nothing of its own can be in them
    except TagError as exc:
        outcome.error = str(exc)
        return outcome
    except OSError as exc:
        outcome.error = exc.strerror or str(exc)
        return outcome
    if index is not None and row is not None:
        update = replace(row, tagged=0, tag_error=None)
        if (outcome.removed or outcome.restored) and (row.size, row.mtime_ns) == (
            st.st_size,
            st.st_mtime_ns,
        ):
            # Only the tags changed, so the analysis still holds for the file as it is now.
            try:
                after = path.stat()
                update = replace(update, size=after.st_size, mtime_ns=after.st_mtime_ns)
            except OSError:
                pass  # gone again already: the old identity makes a rescan look at it
        if update != row:
            index.upsert(update)
    return outcome


def untag(
    paths: Sequence[Path],
    index_path: Path | None,
    *,
    moods: Mapping[str, str] | None = None,
    dry_run: bool = False,
    convert_id3v22: bool = False,
) -> UntagSummary:
    """Untag every audio file under `paths` (files or folders, walked as a scan walks them;
    `convert_id3v22` as for untag_file).

    The index at `index_path` is opened only when it exists: untag never creates one.
    """
    present, missing = split_roots(paths)
    found = walk([Path(os.path.abspath(p)) for p in present])
    named = [(Path(os.path.abspath(p)), reason) for p, reason in missing]
    summary = UntagSummary(passed_over=found.passed_over, problems=named + found.problems)
    index = (
        Index(index_path, read_only=dry_run)
        if index_path is not None and index_path.is_file()
        else None
    )
    summary.migration = index.migration if index is not None else None
    try:
        if not dry_run:
            for folder in dict.fromkeys(path.parent for path in found.tracks):
                for journal, reason in finish_interrupted_writes(folder)[1]:
                    summary.problems.append((journal, reason))
        for path in found.tracks:
            summary.outcomes.append(
                untag_file(path, index, moods=moods, dry_run=dry_run, convert_id3v22=convert_id3v22)
            )
    finally:
        if index is not None:
            index.close()
    return summary
