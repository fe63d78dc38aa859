"""The mood of each file another program asks about (the beets plugin): taken from mertag's index
when the file is still the one analysed there, else analysed by the scan's own pipeline.

The index is only read (`Index(path, read_only=True)`: no write, no side file), so a library
manager asking about its files never changes what `mertag scan` keeps. A row counts when it is
an analysis by the configured model (or its snippet companion, `model.accepted_model_ids`) of the
file as it is now (`analysed_file.check_analysed_file`: same size and mtime, or the same audio
after a tag edit); its mood word follows the words configured now, as `mertag write` has it
(`writeback.row_prediction`). Every other file goes through `backends.outcomes` without a tag
write, as a `mertag scan --no-write` would analyse it, and is not recorded in the index.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mertag.tagger.analysed_file import check_analysed_file
from mertag.tagger.config import Config
from mertag.tagger.index import Index, IndexMissing, IndexRow
from mertag.tagger.mood import Prediction
from mertag.tagger.pipeline import TrackOutcome, TrackWork
from mertag.tagger.writeback import WriteOptions, row_prediction

FROM_INDEX = "index"
ANALYSED = "analysed"


@dataclass(frozen=True)
class MoodSettings:
    """Where moods come from and how they are worded, as plain values."""

    index_path: Path
    model_path: Path
    accepted_ids: frozenset[str]
    moods: Mapping[str, str] | None = None
    uncertain_below: float | None = None  # None: the model's own threshold; 0: never uncertain
    uncertain_word: str = ""  # the mood of an uncertain track ("": none)

    @classmethod
    def from_config(cls, config: Config) -> MoodSettings:
        """The settings of mertag's config (its index, model, words and doubt threshold);
        raises mertag.tagger.model.ModelError for a model that cannot be loaded."""
        from mertag.tagger.model import MoodModel, accepted_model_ids

        model = MoodModel(config.model)
        return cls(
            index_path=config.index,
            model_path=model.path,
            accepted_ids=accepted_model_ids(model),
            moods=config.moods,
            uncertain_below=config.uncertain_below,
            uncertain_word=config.uncertain_word,
        )

    def work(self) -> TrackWork:
        """The pipeline's work for a file to analyse: no tag write."""
        return TrackWork(
            model_path=self.model_path,
            moods=self.moods,
            write=False,
            uncertain_below=self.uncertain_below,
            uncertain_word=self.uncertain_word,
        )


@dataclass(frozen=True)
class FileMood:
    """One file's mood (`prediction`), or why it has none (`error`, or `silent`)."""

    path: Path
    prediction: Prediction | None = None
    source: str = ANALYSED  # FROM_INDEX or ANALYSED
    error: str | None = None
    silent: str | None = None


def indexed_mood(row: IndexRow | None, settings: MoodSettings) -> FileMood | None:
    """The file's mood as its index row has it, or None when the row does not describe the file
    as it is now with the configured model (then it is analysed)."""
    if row is None or row.status not in ("ok", "silent"):
        return None
    if row.status == "ok" and row.model_id not in settings.accepted_ids:
        return None
    if not check_analysed_file(row).same:
        return None
    path = Path(row.path)
    if row.status == "silent":
        return FileMood(path, source=FROM_INDEX, silent=row.error or "silent")
    words = WriteOptions(
        moods=settings.moods,
        uncertain_below=settings.uncertain_below,
        uncertain_word=settings.uncertain_word,
    )
    prediction = row_prediction(row, words)
    return None if prediction is None else FileMood(path, prediction, FROM_INDEX)


def _from_index(paths: Sequence[Path], settings: MoodSettings) -> dict[Path, FileMood]:
    """The files whose index rows stand (see `indexed_mood`); none when there is no index yet.
    Raises mertag.tagger.index.IndexFileError for an index that cannot be read."""
    found: dict[Path, FileMood] = {}
    try:
        index = Index(settings.index_path, read_only=True)
    except IndexMissing:
        return found
    with index:
        for path in paths:
            mood = indexed_mood(index.get(str(path)), settings)
            if mood is not None:
                found[path] = mood
    return found


def _stat_all(paths: Sequence[Path]) -> tuple[list[tuple[Path, int, int]], list[FileMood]]:
    todo: list[tuple[Path, int, int]] = []
    failed: list[FileMood] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            failed.append(FileMood(path, error=exc.strerror or str(exc)))
            continue
        todo.append((path, st.st_size, st.st_mtime_ns))
    return todo, failed


def _mood(outcome: TrackOutcome) -> FileMood:
    return FileMood(
        outcome.path, outcome.prediction, ANALYSED, error=outcome.error, silent=outcome.silent
    )


def file_moods(
    paths: Sequence[Path],
    settings: MoodSettings,
    *,
    force: bool = False,
    jobs: int = 1,
    index_only: Collection[Path] = (),
) -> Iterator[FileMood]:
    """Each file's mood: first those the index holds (unless `force`), then the others as their
    analysis finishes (in any order, `jobs` worker processes), but for those in `index_only`
    (nothing when the index does not hold them: files the caller has moods for already). A bad
    file is a FileMood with an `error`; nothing is raised for one. Raises
    mertag.tagger.index.IndexFileError when the index cannot be read.
    """
    from mertag.tagger import backends

    paths = list(dict.fromkeys(paths))
    known = {} if force else _from_index(paths, settings)
    yield from known.values()
    todo, failed = _stat_all([p for p in paths if p not in known and p not in index_only])
    yield from failed
    jobs = jobs if len(todo) > 1 else 1
    for outcome in backends.outcomes(todo, settings.work(), jobs=jobs):
        yield _mood(outcome)
