"""The beets plugin `mertag` (`plugins: mertag`, installed by `pip install 'mertag[beets]'`):
`beet mertag [QUERY]` and, with `mertag: auto: yes`, every import fill each item's flexible
attributes `mood`, `valence`, `arousal`, `energy`, `mood_confidence`, `mood_quadrant`,
`mood_uncertain` and `mood_model` from mertag's analysis (`mertag.tagger.file_moods`: the index
where it still describes the file, else the scan's pipeline), so `beet ls mood:Relaxed`,
`beet ls energy:7..` and the smartplaylist plugin work.

Only beets' database changes: no file is written (mediafile knows none of these fields, so
`beet write` leaves them out too; `mertag scan` or `mertag write` puts mertag's tags into the
files) and mertag's index is only read. A value an item held before mertag filled that field
(the user's: `mertag_fields` lists the fields mertag set) is kept unless `overwrite: yes`. Only
this module and `beetsplug/mertag.py` import beets, which the runtime never needs.
"""

from __future__ import annotations

import optparse
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

from mertag.tagger.display import counted, display

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Item, Library

    from mertag.tagger.file_moods import FileMood, MoodSettings
    from mertag.tagger.mood import Prediction

# mertag's analysis (numpy, mutagen, the index) is imported when `beet mertag` runs, not when
# beets starts: every `beet` command loads its plugins.

MARK = "mood_model"
"""The field every item mertag filled carries: the id of the model of its analysis."""
SET_BY_MERTAG = "mertag_fields"
"""The item's fields mertag set, space-separated: any other value of MOOD_FIELDS is the user's."""

MOOD_FIELDS: dict[str, types.Type[Any, Any]] = {
    "mood": types.STRING,
    "valence": types.Float(3),
    "arousal": types.Float(3),
    "energy": types.INTEGER,
    "mood_confidence": types.Float(3),
    "mood_quadrant": types.STRING,
    "mood_uncertain": types.BOOLEAN,
    MARK: types.STRING,
    SET_BY_MERTAG: types.STRING,
}
"""The flexible attributes the plugin sets, with their beets types (numeric ones take range
queries such as `valence:0.2..`)."""
FILLED: tuple[str, ...] = tuple(name for name in MOOD_FIELDS if name != SET_BY_MERTAG)
"""The fields of an analysis."""

DEFAULTS: dict[str, Any] = {
    "auto": False,  # fill the items of every import
    "force": False,  # analyse again, even what mertag's index holds or the plugin filled
    "overwrite": False,  # replace values of these fields that mertag did not set
    "jobs": None,  # worker processes (None: mertag's config, else all cores)
    "config": None,  # mertag's config file (None: MERTAG_CONFIG, else mertag's default)
}
"""The plugin's keys in beets' config, under `mertag:`."""


def item_values(prediction: Prediction) -> dict[str, Any]:
    """The fields for a prediction; an uncertain one without an uncertain word has no `mood`."""
    from mertag.tagger.mood import energy_level

    values: dict[str, Any] = {
        "valence": prediction.valence,
        "arousal": prediction.arousal,
        "energy": energy_level(prediction.arousal),
        "mood_confidence": prediction.confidence,
        "mood_quadrant": prediction.quadrant,
        "mood_uncertain": prediction.uncertain,
        MARK: prediction.model_id,
    }
    if prediction.mood:
        values["mood"] = prediction.mood
    return values


def fill_item(item: Item, prediction: Prediction | None, *, overwrite: bool) -> list[str]:
    """Put a prediction's fields into `item` (None: take mertag's fields away, for a silent
    track), not stored yet; the names of the fields kept because mertag did not set them.
    SET_BY_MERTAG records which fields are mertag's, so a kept value stays kept next time."""
    ours = set(str(item.get(SET_BY_MERTAG) or "").split())
    values = {} if prediction is None else item_values(prediction)
    kept: list[str] = []
    for name in FILLED:
        if name in item and name not in ours and not overwrite:
            if name in values:
                kept.append(name)
            continue
        if name in values:
            item[name] = values[name]
            ours.add(name)
        elif name in item:
            del item[name]
            ours.discard(name)
    if ours:
        item[SET_BY_MERTAG] = " ".join(name for name in FILLED if name in ours)
    elif SET_BY_MERTAG in item:
        del item[SET_BY_MERTAG]
    return kept


def filled_before(item: Item, accepted: frozenset[str]) -> bool:
    """Whether mertag filled the item with one of the `accepted` models."""
    ours = str(item.get(SET_BY_MERTAG) or "").split()
    return MARK in ours and item.get(MARK) in accepted


@dataclass
class FillSummary:
    """What a run did, counted by outcome."""

    from_index: int = 0
    analysed: int = 0
    filled_before: int = 0  # already filled by mertag, not in its index: left (-f analyses)
    silent: int = 0
    failures: list[tuple[Path, str]] = field(default_factory=list)

    def line(self, total: int) -> str:
        parts = [
            f"{n} {what}"
            for n, what in (
                (self.from_index, "from mertag's index"),
                (self.analysed, "analysed"),
                (self.filled_before, "filled before (-f analyses them again)"),
                (self.silent, "silent"),
                (len(self.failures), "failed"),
            )
            if n
        ]
        return counted(total, "track") + (f": {', '.join(parts)}" if parts else "")


class MertagPlugin(BeetsPlugin):
    """`beet mertag` and the import stage; `beetsplug.mertag` is this class under beets' name."""

    item_types = MOOD_FIELDS

    def __init__(self) -> None:
        super().__init__("mertag")
        self.config.add(DEFAULTS)
        self._settings: tuple[MoodSettings, int | None] | None = None
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand(
            "mertag", help="fill mood, valence, arousal and energy from mertag's analysis"
        )
        cmd.parser.add_option(
            "-f",
            "--force",
            action="store_true",
            default=False,
            help="analyse again, even tracks in mertag's index or filled before",
        )
        cmd.parser.add_option(
            "-j",
            "--jobs",
            type="int",
            default=None,
            help="worker processes for the analysis (default: mertag's config, else all cores)",
        )
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Library, opts: optparse.Values, args: list[str]) -> None:
        items = list(lib.items(args))
        if opts.jobs is not None and opts.jobs < 1:
            raise ui.UserError("--jobs must be at least 1")
        force = opts.force or self.config["force"].get(bool)
        summary = self.fill(items, force=force, jobs=opts.jobs)
        if summary.failures:
            failed = len(summary.failures)
            raise ui.UserError(f"mertag: {failed} of {counted(len(items), 'track')} failed")

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        self.fill(task.imported_items(), force=self.config["force"].get(bool))

    def settings(self) -> tuple[MoodSettings, int | None]:
        """mertag's settings and its config's jobs, read once per beets run (an import calls
        the stage once per album); a bad config or model is a UserError of one line."""
        from mertag.tagger.config import ConfigError, load_config
        from mertag.tagger.file_moods import MoodSettings
        from mertag.tagger.model import ModelError

        if self._settings is None:
            given = self.config["config"]
            try:
                config = load_config(None if given.get() is None else Path(given.as_filename()))
                self._settings = MoodSettings.from_config(config), config.jobs
            except (ConfigError, ModelError) as exc:
                raise ui.UserError(f"mertag: {exc}") from exc
        return self._settings

    def _jobs(self, asked: int | None, configured: int | None) -> int:
        """-j, else the plugin's `jobs`, else mertag's, else every core; at most what the
        machine can run (`scan.job_ceiling`, as for a scan)."""
        from mertag.tagger.config import SETTINGS
        from mertag.tagger.scan import job_ceiling

        plugin = self.config["jobs"].get()
        if plugin is not None:
            try:  # checked as mertag's own `jobs` key is
                plugin = next(s for s in SETTINGS if s.name == "jobs").parse(plugin, Path())
            except ValueError as exc:
                raise ui.UserError(f"mertag: jobs: {exc}") from exc
        ceiling, _ = job_ceiling()
        return min(asked or plugin or configured or ceiling, ceiling)

    def fill(
        self, items: Iterable[Item], *, force: bool = False, jobs: int | None = None
    ) -> FillSummary:
        """Fill and store every item's fields (see the module doc); a bad file is one error
        line and the run goes on."""
        from mertag.tagger.file_moods import file_moods
        from mertag.tagger.index import IndexFileError

        items = list(items)
        summary = FillSummary()
        if not items:
            return summary
        settings, configured_jobs = self.settings()
        by_path: dict[Path, list[Item]] = {}
        for item in items:
            by_path.setdefault(Path(os.fsdecode(item.path)), []).append(item)
        skip = set() if force else {
            path for path, group in by_path.items()
            if all(filled_before(i, settings.accepted_ids) for i in group)
        }  # fmt: skip
        overwrite = self.config["overwrite"].get(bool)
        done: set[Path] = set()
        try:
            for mood in file_moods(
                list(by_path),
                settings,
                force=force,
                jobs=self._jobs(jobs, configured_jobs),
                index_only=skip,
            ):
                done.add(mood.path)
                self._record(mood, by_path.get(mood.path, []), summary, overwrite)
        except IndexFileError as exc:
            raise ui.UserError(f"mertag: {exc}") from exc
        summary.filled_before = len(skip - done)
        self._log.info("{}", summary.line(len(items)))
        return summary

    def _record(
        self, mood: FileMood, items: Sequence[Item], summary: FillSummary, overwrite: bool
    ) -> None:
        from mertag.tagger.file_moods import FROM_INDEX

        if mood.error is not None:
            self._log.error("{}: {}", display(mood.path), mood.error)
            summary.failures.append((mood.path, mood.error))
            return
        if mood.silent is not None:
            summary.silent += 1
            self._log.info("{}: no mood: {}", display(mood.path), mood.silent)
        elif mood.source == FROM_INDEX:
            summary.from_index += 1
        else:
            summary.analysed += 1
        for item in items:
            kept = fill_item(item, mood.prediction, overwrite=overwrite)
            if kept:
                self._log.warning(
                    "{}: kept the {} mertag did not set (`overwrite: yes` replaces it)",
                    display(mood.path),
                    ", ".join(kept),
                )
            item.store()
        if mood.prediction is not None:
            p = mood.prediction
            indexed = mood.source == FROM_INDEX
            (self._log.debug if indexed else self._log.info)(
                "{}: {} (valence {:.3f}, arousal {:.3f}, {})",
                display(mood.path),
                p.mood or "uncertain",
                p.valence,
                p.arousal,
                "from mertag's index" if indexed else "analysed",
            )
