"""`mertag write`: put the index's analysis into the files' tags again, without analysing.

For a library scanned with --no-write, after a change of the mood words, the ID3 version, the
MOOD policy or the fields for other players (`--energy`, `--mood-field`: the index keeps the
arousal ENERGY comes from), or when another tool stripped mertag's fields. Each track goes
through the scan's own tag write (`pipeline.write_outcome_tags`: the same fields, the same MOOD
policy, the crash-safe rewrite and its journal); the mood word comes from the index's
probabilities and the words configured now (`mood.predict_mood`), so a new word list needs no
re-analysis; valence and arousal are the index's, as analysed (a model with a regression head
gave its own, not the probabilities' corner expectations).

A file is written only when it is still the one analysed (`analysed_file.check_analysed_file`:
same size and mtime, or the same audio with other tags); any other file is skipped with its
reason, since its analysis may not describe it any more. The index row then records the write
(tagged, tag_error, the mood word written, the file's new size and mtime).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mertag.tagger.analysed_file import check_analysed_file
from mertag.tagger.display import counted
from mertag.tagger.index import Index, IndexRow
from mertag.tagger.mood import Prediction, predict_mood
from mertag.tagger.pipeline import (
    TagPolicy,
    TrackOutcome,
    TrackWork,
    tag_values,
    track_work,
    write_outcome_tags,
)
from mertag.tagger.safe_write import (
    SafeWriteError,
    left_in_dry_run,
    remove_stale_temps,
    settle_interrupted_write,
)
from mertag.tagger.tags import TagError, UnsupportedFormat, plan_write


@dataclass(frozen=True)
class WriteOptions(TagPolicy):
    """How to write, as the scan's tag write takes it."""

    dry_run: bool = False

    def work(self) -> TrackWork:
        # No analysis happens here: the model path is never opened.
        return track_work(self, Path(), write=True, dry_run=self.dry_run)


@dataclass
class WriteResult:
    """What happened (or in a dry run would happen) to one track."""

    path: str
    changes: list[str] = field(default_factory=list)  # 'FIELD: old -> new'
    written: bool = False
    skipped: str | None = None  # why the track was left alone (changed, gone, not analysed)
    not_tagged: str | None = None  # a format mertag cannot tag
    error: str | None = None  # the write failed


@dataclass
class WriteSummary:
    """Every selected track's result."""

    results: list[WriteResult] = field(default_factory=list)
    dry_run: bool = False

    def count(self, what: str) -> int:
        return sum(1 for r in self.results if _kind(r) == what)

    @property
    def ok(self) -> bool:
        """No write failed and no file was skipped as changed or gone (rows that were never
        analysed, and formats mertag cannot tag, are no failure)."""
        return all(_kind(r) not in ("failed", "skipped") for r in self.results)

    def line(self) -> str:
        """'wrote 3 of 10 tracks (5 up to date, 2 not analysed)'."""
        done = "would change" if self.dry_run else "written"
        rest = ", ".join(
            f"{n} {kind}"
            for kind in ("up to date", "skipped", "failed", "not taggable", "not analysed")
            if (n := self.count(kind))
        )
        verb = "would write" if self.dry_run else "wrote"
        return f"{verb} {self.count(done)} of {counted(len(self.results), 'track')}" + (
            f" ({rest})" if rest else ""
        )


def _kind(r: WriteResult) -> str:
    if r.error is not None:
        return "failed"
    if r.skipped is not None:
        return "not analysed" if r.skipped.startswith("not analysed") else "skipped"
    if r.not_tagged is not None:
        return "not taggable"
    if not r.changes:
        return "up to date"
    return "written" if r.written else "would change"


def row_prediction(row: IndexRow, options: WriteOptions) -> Prediction | None:
    """The prediction an analysed row records, with the mood words and uncertain word given
    now; None when the row holds no probabilities. Whether it is uncertain is the row's own
    verdict (the model's threshold at analysis), unless a threshold is given."""
    probabilities = (row.p_q1, row.p_q2, row.p_q3, row.p_q4)
    if row.status != "ok" or row.model_id is None or any(p is None for p in probabilities):
        return None
    below = options.uncertain_below
    if below is None:
        below = math.inf if row.uncertain else 0.0  # always / never uncertain
    try:
        return predict_mood(
            probabilities,  # type: ignore[arg-type]
            row.model_id,
            options.moods,
            below,
            options.uncertain_word,
            # As analysed: a model with a regression head gave its own valence and arousal.
            None if row.valence is None or row.arousal is None else (row.valence, row.arousal),
        )
    except ValueError:
        return None


def write_row(index: Index | None, row: IndexRow, options: WriteOptions) -> WriteResult:
    """Write (or plan) one row's tags and record the write in `index` (None: a dry run);
    never raises for a bad file."""
    result = WriteResult(path=row.path)
    if row.status != "ok":
        result.skipped = f"not analysed ({row.error or row.status})"
        return result
    prediction = row_prediction(row, options)
    if prediction is None:
        result.skipped = "not analysed (no probabilities in the index: run `mertag scan --force`)"
        return result
    try:  # finished before the file is checked: its half-written audio is not the analysed one
        if not settle_interrupted_write(Path(row.path), not options.dry_run):
            result.skipped = left_in_dry_run("mertag write")
            return result
    except SafeWriteError as exc:
        result.error = str(exc)
        return result
    check = check_analysed_file(row)
    if not check.same or check.state is None:
        result.skipped = check.reason
        return result
    outcome = TrackOutcome(Path(row.path), *check.state, prediction=prediction)
    try:
        planned = plan_write(
            outcome.path,
            tag_values(prediction, options.fields),
            id3_version=options.id3_version,
            overwrite_mood=options.overwrite_mood,
            overwrite_energy=options.fields.overwrite_energy,
            convert_id3v22=options.convert_id3v22,
        )
    except UnsupportedFormat as exc:
        result.not_tagged = str(exc)
        if index is not None and row.not_tagged != result.not_tagged:
            index.upsert(replace(row, tagged=0, not_tagged=result.not_tagged))
        return result
    except (TagError, OSError) as exc:
        result.error = f"cannot read its tags: {getattr(exc, 'strerror', None) or exc}"
        return result
    result.changes = [str(change) for change in planned]
    if options.dry_run:
        return result
    if planned:
        write_outcome_tags(outcome, options.work())
        result.written = bool(outcome.tagged)
        result.error = outcome.tag_error
        result.not_tagged = outcome.not_tagged
    update = replace(
        row,
        mood=prediction.mood or None,  # an uncertain track without a word: none, as a scan has it
        uncertain=int(prediction.uncertain),
        tagged=int(result.error is None and result.not_tagged is None),
        tag_error=result.error,
        not_tagged=result.not_tagged,
        size=outcome.size,
        mtime_ns=outcome.mtime_ns,
    )
    if index is not None and update != row:
        index.upsert(update)
    return result


def write_rows(
    index: Index | None,
    rows: Iterable[IndexRow],
    options: WriteOptions,
    on_result: Callable[[WriteResult], None] | None = None,
) -> WriteSummary:
    """Write every row's tags (see the module doc); `index` None for a dry run. Temp copies a
    killed writer left beside the files go first, as before a scan."""
    rows = list(rows)
    if not options.dry_run:
        for folder in dict.fromkeys(Path(r.path).parent for r in rows if r.status == "ok"):
            remove_stale_temps(folder)
    summary = WriteSummary(dry_run=options.dry_run)
    for row in rows:
        result = write_row(index, row, options)
        summary.results.append(result)
        if on_result is not None:
            on_result(result)
    return summary
