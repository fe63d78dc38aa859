"""One track through the stages: decode -> features -> model -> (tags). Every backend (this
process, local worker processes, Dask workers) and `mertag evaluate` run a track through here.

Nothing here raises for bad input: `process_track` returns a TrackOutcome that says what
happened, so a worker never dies of a bad file and the scan records it and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from mertag.tagger.audio import AudioError
from mertag.tagger.features import TrackFeatures, extract_track
from mertag.tagger.field_policy import APPEND_FIELDS
from mertag.tagger.loudness import SilentAudio
from mertag.tagger.model import ModelOutputError, MoodModel, shared_model
from mertag.tagger.mood import Prediction, energy_level


@dataclass(frozen=True)
class PlayerFields:
    """Which fields for other players a tag write fills (docs/PLAYERS.md): a field not asked
    for is taken back out where mertag wrote it before."""

    energy: bool = False  # ENERGY 1-10 from arousal (mood.energy_level)
    overwrite_energy: bool = False  # replace an ENERGY mertag did not write (saved first)
    mood_fields: tuple[str, ...] = ()  # COMMENT, GROUPING: the mood word is appended there too


@dataclass(frozen=True, kw_only=True)
class TagPolicy:
    """How mertag words and writes its tags: the settings a scan, `mertag write` and every
    worker's tag write share, so that a new one is one field here."""

    moods: Mapping[str, str] | None = None
    id3_version: int | None = None  # 3 or 4 forces that ID3 version; None keeps each file's
    convert_id3v22: bool = False  # an ID3v2.2 tag is converted to be written (else left alone)
    overwrite_mood: bool = False  # replace a MOOD mertag did not write (its values saved first)
    uncertain_below: float | None = None
    """None: the model's own threshold (for `mertag write`, each index row's own verdict);
    0: never uncertain."""
    uncertain_word: str = ""  # the mood of an uncertain track ("": no MOOD is written)
    fields: PlayerFields = PlayerFields()  # ENERGY, COMMENT, GROUPING: added or taken back


@dataclass(frozen=True)
class TrackWork(TagPolicy):
    """What to do with every track of a scan, as plain values a worker can receive."""

    model_path: Path
    write: bool = True  # write the tags where the track was analysed
    plan: bool = False  # (without write) list the changes a write would make: a dry run

    def analysis_only(self) -> TrackWork:
        """The same work without the tag write (a Dask worker analyses, the client writes)."""
        return replace(self, write=False)


def policy_values(policy: TagPolicy) -> dict[str, Any]:
    """The TagPolicy fields of `policy` (a ScanOptions, a WriteOptions, ...) by name: what
    another TagPolicy class is built from to write tags the same way."""
    return {f.name: getattr(policy, f.name) for f in dataclass_fields(TagPolicy)}


def track_work(policy: TagPolicy, model_path: Path, *, write: bool, dry_run: bool) -> TrackWork:
    """The work that writes tags by `policy` (when `write`), or in a dry run plans the changes a
    write would make and writes nothing."""
    shared = policy_values(policy)
    return TrackWork(model_path=model_path, write=write and not dry_run, plan=dry_run, **shared)


@dataclass
class TrackOutcome:
    """What happened to one track: its mood, or why it failed."""

    path: Path
    size: int
    mtime_ns: int
    prediction: Prediction | None = None
    error: str | None = None
    silent: str | None = None  # why a (near) silent track has no mood; nothing is written
    tagged: bool | None = None  # True: mertag's tags are in the file now
    planned: list[str] | None = None  # a dry run: the changes a write would make
    tag_error: str | None = None
    not_tagged: str | None = None  # why a format mertag cannot tag was left as it was
    not_tagged_per_file: bool = False  # not_tagged is about this file's tag (UnsupportedFormat)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error is not None or self.tag_error is not None


def track_features(path: Path, model: MoodModel) -> tuple[TrackFeatures, MoodModel]:
    """A track's features and the model that classifies them: `model`, or its snippet model
    (`MoodModel.snippet_model`) when the excerpt policy hears the track as snippets."""
    for_snippets = model.snippet_model
    features = extract_track(path, columns=model.columns, snippet_columns=for_snippets.columns)
    return features, for_snippets if features.snippets else model


def analyse_track(
    path: Path, model: MoodModel, moods: Mapping[str, str] | None = None
) -> Prediction:
    """The mood of the track at `path`; raises AudioError for audio that cannot be analysed."""
    features, chosen = track_features(path, model)
    return chosen.predict(features.sequences, moods)


def tag_values(prediction: Prediction, fields: PlayerFields | None = None) -> dict[str, str]:
    """The fields mertag writes into a file for a prediction. An uncertain prediction given the
    uncertain word "" has an empty MOOD: a word mertag wrote there earlier is taken back, and
    so is a word it appended to COMMENT or GROUPING. The fields for other players not asked for
    in `fields` are empty too (taken back where mertag wrote them)."""
    fields = fields or PlayerFields()
    values = {
        "MOOD": prediction.mood,
        "MERTAG_QUADRANT": prediction.quadrant,
        "MERTAG_VALENCE": f"{prediction.valence:.3f}",
        "MERTAG_AROUSAL": f"{prediction.arousal:.3f}",
        "MERTAG_CONFIDENCE": f"{prediction.confidence:.3f}",
        "MERTAG_MODEL": prediction.model_id,
        "ENERGY": str(energy_level(prediction.arousal)) if fields.energy else "",
    }
    for name in APPEND_FIELDS:
        values[name] = prediction.mood if name in fields.mood_fields else ""
    return values


def process_track(path: Path, size: int, mtime_ns: int, work: TrackWork) -> TrackOutcome:
    """Analyse one track and (if `work.write`) tag it; never raises for bad input."""
    outcome = TrackOutcome(path=path, size=size, mtime_ns=mtime_ns)
    model = shared_model(work.model_path)
    try:
        features, chosen = track_features(path, model)
        t1 = time.perf_counter()
        outcome.prediction = chosen.predict(
            features.sequences, work.moods, work.uncertain_below, work.uncertain_word
        )
        t2 = time.perf_counter()
        outcome.timings = {
            "decode": features.decode_seconds,
            "features": features.features_seconds,
            "model": t2 - t1,
        }
    except SilentAudio as exc:
        outcome.silent = str(exc)
        outcome.tagged = False
        if work.plan:
            plan_withdrawal(outcome, work.convert_id3v22)
        if work.write:
            withdraw_outcome_tags(outcome, work.convert_id3v22)
        return outcome
    except (AudioError, ModelOutputError) as exc:
        outcome.error = str(exc)
        return outcome
    except MemoryError:
        outcome.error = "out of memory while analysing"
        return outcome
    if work.plan:
        plan_outcome_tags(outcome, work)
    if not work.write:
        outcome.tagged = False
        return outcome
    write_outcome_tags(outcome, work)
    return outcome


def plan_outcome_tags(outcome: TrackOutcome, work: TrackWork) -> None:
    """The changes a tag write would make, as 'FIELD: old -> new' lines (nothing written)."""
    from mertag.tagger.tags import TagError, plan_write

    assert outcome.prediction is not None
    try:
        changes = plan_write(
            outcome.path,
            tag_values(outcome.prediction, work.fields),
            id3_version=work.id3_version,
            overwrite_mood=work.overwrite_mood,
            overwrite_energy=work.fields.overwrite_energy,
            convert_id3v22=work.convert_id3v22,
        )
    except (TagError, OSError) as exc:
        outcome.planned = [f"cannot be tagged: {exc}"]
        return
    outcome.planned = [str(change) for change in changes]


def plan_withdrawal(outcome: TrackOutcome, convert_id3v22: bool = False) -> None:
    """The changes withdraw_outcome_tags would make (nothing written)."""
    from mertag.tagger.tags import TagError, plan_removal

    try:
        planned = plan_removal(outcome.path, None, convert_id3v22=convert_id3v22)
        outcome.planned = [str(c) for c in planned]
    except (TagError, OSError) as exc:
        outcome.planned = [f"cannot be tagged: {exc}"]


def withdraw_outcome_tags(outcome: TrackOutcome, convert_id3v22: bool = False) -> None:
    """Take back what mertag wrote into a track on an earlier scan, now that the track is (near)
    silent and has no mood: its MERTAG_* fields go and the user's values come back, as `untag`
    does (a file holding nothing of mertag's is not written). A failure is recorded in the
    outcome as a tag write's is; a format mertag cannot tag holds nothing of it; an ID3v2.2
    tag holding mertag's fields is converted only with `convert_id3v22` (else `not_tagged`
    says why it keeps them)."""
    from mertag.tagger.tags import ID3v22Kept, TagError, UnsupportedFormat, remove_tags

    t0 = time.perf_counter()
    expect = (outcome.size, outcome.mtime_ns)
    try:
        if remove_tags(outcome.path, None, convert_id3v22=convert_id3v22, expect=expect):
            st = outcome.path.stat()
            outcome.size, outcome.mtime_ns = st.st_size, st.st_mtime_ns
    except ID3v22Kept as exc:
        outcome.not_tagged, outcome.not_tagged_per_file = str(exc), exc.per_file
    except UnsupportedFormat:
        pass
    except TagError as exc:
        outcome.tag_error = f"taking back mertag's tags failed: {exc}"
    except OSError as exc:
        outcome.tag_error = f"taking back mertag's tags failed: {exc.strerror or exc}"
    outcome.timings["tags"] = time.perf_counter() - t0


def write_outcome_tags(outcome: TrackOutcome, work: TrackWork) -> None:
    """Write an analysed track's tags, unless the file changed since it was stat'ed for
    analysis; a failure is recorded in the outcome, never raised. A format mertag cannot tag is
    no failure: `not_tagged` says why it was left alone."""
    from mertag.tagger.tags import (
        FileChanged,
        TagError,
        UnsupportedFormat,
        tagged_through_another_link,
        write_tags,
    )

    assert outcome.prediction is not None
    t0 = time.perf_counter()
    values = tag_values(outcome.prediction, work.fields)
    overwrite_energy = work.fields.overwrite_energy
    try:
        write_tags(
            outcome.path,
            values,
            id3_version=work.id3_version,
            overwrite_mood=work.overwrite_mood,
            overwrite_energy=overwrite_energy,
            convert_id3v22=work.convert_id3v22,
            expect=(outcome.size, outcome.mtime_ns),
        )
        outcome.tagged = True
        st = outcome.path.stat()
        outcome.size, outcome.mtime_ns = st.st_size, st.st_mtime_ns
    except UnsupportedFormat as exc:
        outcome.tagged = False
        outcome.not_tagged, outcome.not_tagged_per_file = str(exc), exc.per_file
    except FileChanged as exc:
        if tagged_through_another_link(
            outcome.path, values, work.id3_version, work.overwrite_mood, overwrite_energy
        ):
            outcome.tagged = True
            st = outcome.path.stat()
            outcome.size, outcome.mtime_ns = st.st_size, st.st_mtime_ns
        else:
            outcome.tagged = False
            outcome.tag_error = f"tag write failed: {exc}"
    except TagError as exc:
        outcome.tagged = False
        outcome.tag_error = f"tag write failed: {exc}"
    except OSError as exc:
        outcome.tagged = False
        outcome.tag_error = f"tag write failed: {exc.strerror or exc}"
    outcome.timings["tags"] = time.perf_counter() - t0
