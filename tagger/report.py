"""Everything mertag prints for a person at the terminal: a scan's progress, one line per failure
and its summary; the tables of `list`, `stats`, `config` and journeys."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from mertag.tagger.config import Config
from mertag.tagger.display import counted, display
from mertag.tagger.index import IndexRow
from mertag.tagger.journey import Journey
from mertag.tagger.libmap import group_colour
from mertag.tagger.mood import QUADRANTS, mood_shown
from mertag.tagger.pipeline import TrackOutcome
from mertag.tagger.playlist import Entry
from mertag.tagger.query import LibraryStats
from mertag.tagger.querylang import common_folder
from mertag.tagger.retag_hint import RetagHint
from mertag.tagger.scan import ScanSummary


class RateColumn(ProgressColumn):
    """Tracks per minute since the scan started (results arrive in bursts from the workers,
    so rich's short-window speed would jump)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed
        if not task.completed or not elapsed:
            return Text("")
        return Text(f"{60 * task.completed / elapsed:.0f} tracks/min")


def outcome_record(outcome: TrackOutcome) -> dict[str, Any]:
    """A JSON-ready record of one outcome."""
    record: dict[str, Any] = {"path": display(outcome.path), "status": "ok"}
    if outcome.error is not None:
        record.update(status="error", error=outcome.error)
        return record
    if outcome.silent is not None:
        record.update(status="silent", reason=outcome.silent)
        return record
    p = outcome.prediction
    if p is not None:
        record.update(
            quadrant=p.quadrant,
            mood=p.mood,
            probabilities=dict(zip(QUADRANTS, p.probabilities, strict=True)),
            confidence=p.confidence,
            valence=p.valence,
            arousal=p.arousal,
            model_id=p.model_id,
            uncertain=p.uncertain,
        )
    record["tagged"] = outcome.tagged
    if outcome.tag_error is not None:
        record["tag_error"] = outcome.tag_error
    if outcome.not_tagged is not None:
        record["not_tagged"] = outcome.not_tagged
    return record


class ScanReporter:
    """Feeds a rich progress bar per finished track; prints failures as they happen."""

    def __init__(
        self,
        quiet: bool,
        verbose: bool,
        as_json: bool,
        dry_run: bool,
        stream: bool = False,
        no_write: bool = False,
    ) -> None:
        """`as_json`: one JSON document at the end; `stream` (with it): one JSON line per
        track as it finishes, then a line with the summary (`--format jsonl`)."""
        self.quiet, self.verbose, self.as_json, self.dry_run = quiet, verbose, as_json, dry_run
        self.no_write = no_write
        self.stream = stream and as_json
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.out = Console(highlight=False, soft_wrap=True)
        self.records: list[dict[str, Any]] = []
        self.not_tagged_said: set[str] = set()  # each "cannot be tagged" reason is said once
        show = not (quiet or as_json) and self.err.is_terminal
        self.progress = Progress(
            TextColumn("[bold]scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.err,
            disable=not show,
            transient=False,
        )
        self.task = self.progress.add_task("scan", total=None)

    def __enter__(self) -> ScanReporter:
        self.progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.__exit__(exc_type, exc, tb)

    def start(self, total: int, summary: ScanSummary) -> None:
        self.progress.update(self.task, total=total)
        if self.verbose and not self.as_json:
            self.err.print(
                f"{counted(summary.found, 'track')} found, {summary.unchanged} unchanged, "
                f"{total} to analyse"
            )

    def waiting(self, index_path: Path) -> None:
        """Another scan holds the index: say so once, then wait for it."""
        self.progress.console.print(
            Text(f"{display(index_path)} is in use by another scan; waiting (Ctrl-C to stop)")
        )

    def jobs_capped(self, asked: int, jobs: int, bound: str) -> None:
        """Fewer workers than asked for, and why."""
        self.err.print(
            Text(f"note: {counted(jobs, 'worker')}, not {asked}: this machine has {bound}")
        )

    def outcome(self, outcome: TrackOutcome) -> None:
        self.progress.advance(self.task)
        if self.stream:
            sys.stdout.write(json.dumps(outcome_record(outcome), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif self.as_json:
            self.records.append(outcome_record(outcome))
        if outcome.error is not None:
            self.progress.console.print(
                Text(f"error: {display(outcome.path)}: {outcome.error}"), style="red"
            )
            return
        if outcome.tag_error is not None:
            self.progress.console.print(
                Text(f"error: {display(outcome.path)}: {outcome.tag_error}"), style="red"
            )
        reason = outcome.not_tagged
        if reason is not None and outcome.not_tagged_per_file and not self.as_json:
            # About this file's tag, not its format: each file is named, as `mertag write` does.
            self.progress.console.print(Text(f"not tagged {display(outcome.path)}: {reason}"))
        elif reason is not None and reason not in self.not_tagged_said and not self.as_json:
            self.not_tagged_said.add(reason)
            self.progress.console.print(
                Text(
                    f"note: {reason}; such tracks are analysed and indexed, not tagged "
                    f"(first: {display(outcome.path)})"
                )
            )
        p = outcome.prediction
        if outcome.silent is not None and self.verbose and not self.as_json:
            self.progress.console.print(Text(f"{outcome.silent}  {display(outcome.path)}"))
        if p is None or self.as_json:
            return
        if self.dry_run and not self.quiet:
            changes = "; ".join(outcome.planned or []) or "nothing to change"
            self.progress.console.print(Text(f"would tag {display(outcome.path)}: {changes}"))
        elif self.verbose:
            mark = "?" if p.uncertain else ""  # 'Q3? uncertain 0.41  path'
            self.progress.console.print(
                Text(
                    f"{p.quadrant}{mark} {p.mood or 'uncertain':<8} {p.confidence:.2f}  "
                    f"{display(outcome.path)}"
                )
            )

    def finish(self, summary: ScanSummary, retag: RetagHint | None = None) -> None:
        """The summary; `retag`: unchanged tracks that did not get the tag settings given.
        Interrupted tag writes left alone are said in every mode, --quiet and JSON included
        (on stderr), as failures are."""
        if summary.pending_writes:
            flag = "--dry-run" if self.dry_run else "--no-write" if self.no_write else None
            self.err.print(Text(pending_writes_line(summary.pending_writes, flag)), style="red")
        if self.stream:
            line = {"summary": summary_record(summary, retag)}
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            return
        if self.as_json:
            doc = {"results": self.records, "summary": summary_record(summary, retag)}
            sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
            return
        if self.quiet:
            return
        table = Table(title="mertag scan" + (" (dry run)" if self.dry_run else ""), box=None)
        table.add_column("", style="bold")
        table.add_column("tracks", justify="right")
        for mood, n in sorted(summary.moods.items()):
            table.add_row(mood, str(n))
        if summary.uncertain:
            table.add_row("uncertain (below the confidence threshold)", str(summary.uncertain))
        if summary.silent:
            table.add_row("silent (no mood)", str(summary.silent))
        table.add_row("analysed", str(summary.analysed))
        table.add_row("unchanged (skipped)", str(summary.unchanged))
        if summary.moved:
            table.add_row("moved or renamed (analysis kept)", str(summary.moved))
        table.add_row("not audio (passed over)", str(summary.passed_over))
        if summary.excluded:
            table.add_row("excluded", str(summary.excluded))
        table.add_row("failed", str(len(summary.failures)))
        if summary.tags_retried:
            table.add_row("tagged now (an earlier tag write had failed)", str(summary.tags_retried))
        if summary.still_failing:
            table.add_row("failed before, unchanged", str(len(summary.still_failing)))
        if summary.untagged:
            table.add_row("analysed, not tagged", str(summary.untagged))
        self.err.print(table)
        for path, reason in summary.failures:
            self.err.print(Text(f"  failed: {display(path)}: {reason}"))
        for note in leftover_lines(summary):
            self.err.print(Text(note))
        for link in summary.outward_links:
            self.err.print(Text(f"  not followed: {display(link)}: {OUTWARD_LINK}"))
        if retag is not None:
            self.err.print(Text(retag.line()))
        if summary.interrupted:
            self.err.print("interrupted: finished tracks are kept in the index")


OUTWARD_LINK = "a folder link to a folder above the library"
"""Why the walk did not follow a folder symlink (mertag.tagger.library.Walk.outward_links)."""

STILL_FAILING_SHOWN = 10
"""How many earlier failures a scan's summary names one by one."""


def leftover_lines(summary: ScanSummary) -> list[str]:
    """The summary's lines about what earlier scans left: failures that remain, untagged tracks."""
    lines = [
        f"  still failing: {display(path)}: {reason}"
        for path, reason in summary.still_failing[:STILL_FAILING_SHOWN]
    ]
    more = len(summary.still_failing) - STILL_FAILING_SHOWN
    if more > 0:
        lines.append(f"  ... and {more} more (`mertag list status:error` lists them)")
    if summary.still_failing:
        lines.append(
            "  unchanged since they failed: --retry-failed analyses them again "
            "(a failed tag write is tried again by every scan that writes tags)"
        )
    if summary.untagged:
        one = summary.untagged == 1
        lines.append(
            f"  {counted(summary.untagged, 'analysed track')} {'carries' if one else 'carry'} "
            f"no mertag tags: `mertag write` writes {'it' if one else 'them'} from the index"
        )
    return lines


def pending_writes_line(paths: list[Path], flag: str | None) -> str:
    """One line for the tracks a scan run with `flag` (--dry-run or --no-write) left alone
    because an earlier tag write of theirs was interrupted, and what finishes them."""
    one = len(paths) == 1
    run = "this dry run" if flag == "--dry-run" else "this scan"
    without = f" without {flag}" if flag else ""
    them = "it" if one else "them"
    return (
        f"warning: {counted(len(paths), 'track')} {'has' if one else 'have'} an interrupted "
        f"mertag tag write (first: {display(paths[0])}); {run} left {them} as "
        f"{'it is' if one else 'they are'}, not analysed: `mertag scan`{without} finishes {them}"
    )


def summary_record(summary: ScanSummary, retag: RetagHint | None = None) -> dict[str, Any]:
    return {
        "found": summary.found,
        "analysed": summary.analysed,
        "unchanged": summary.unchanged,
        "moved": summary.moved,
        "passed_over": summary.passed_over,
        "excluded": summary.excluded,
        "outward_links": [display(p) for p in summary.outward_links],
        "moods": summary.moods,
        "uncertain": summary.uncertain,
        "silent": summary.silent,
        "failed": [{"path": display(p), "reason": r} for p, r in summary.failures],
        "still_failing": [{"path": display(p), "reason": r} for p, r in summary.still_failing],
        "untagged": summary.untagged,
        "tags_retried": summary.tags_retried,  # earlier failed tag writes, written now
        "pending_writes": [display(p) for p in summary.pending_writes],  # left as they are
        "ok": summary.ok,
        "interrupted": summary.interrupted,
        "index_error": summary.index_error,  # why the scan stopped early, if the index failed
        "retag": None if retag is None else retag.as_dict(),  # unchanged tracks: `mertag write`
    }


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def rows_table(rows: Iterable[IndexRow]) -> Table:
    """A rich table of rows for the terminal: paths relative to the folder they share (named in
    the caption), an error column only when some row failed.

    Every cell is a Text, never markup, so a '[' in a file name prints as it is.
    """
    rows = list(rows)
    failed = any(r.status != "ok" or r.tag_error for r in rows)
    root = common_folder([r.path for r in rows])
    caption = counted(len(rows), "track")
    if root is not None:
        caption += f" under {display(root)}"
    named = any(r.artist or r.title for r in rows)  # rows a scan indexed with their tags
    table = Table(show_edge=False, pad_edge=False, caption=Text(caption))
    if named:
        table.add_column("artist", overflow="fold")
        table.add_column("title", overflow="fold")
    table.add_column("path", overflow="fold")
    table.add_column("mood", no_wrap=True)  # names and paths fold first, never 'Sad (Q3)'
    table.add_column("conf.", justify="right")
    table.add_column("valence", justify="right")
    table.add_column("arousal", justify="right")
    if failed:
        table.add_column("error", overflow="fold")
    for r in rows:
        mood = "silent" if r.status == "silent" else mood_shown(r.mood, r.quadrant, r.uncertain)
        shown = r.path if root is None else os.path.relpath(r.path, root)
        names = [Text(r.artist or ""), Text(r.title or "")] if named else []
        cells = [
            *names,
            Text(display(shown)),
            Text(mood, style=group_colour(r)),
            Text(_num(r.confidence, ".2f")),
            Text(_num(r.valence, "+.2f")),
            Text(_num(r.arousal, "+.2f")),
        ]
        if failed:
            cells.append(Text(r.error or r.tag_error or ""))
        table.add_row(*cells)
    return table


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def stats_tables(stats: LibraryStats) -> list[Table]:
    """`mertag stats` for the terminal: moods, then the library's state, then models."""
    moods = Table(title="tracks per mood", title_justify="left", show_edge=False)
    moods.add_column("mood")
    moods.add_column("tracks", justify="right")
    moods.add_column("share", justify="right")
    moods.add_column("mean conf.", justify="right")
    for m in stats.moods:
        share = f"{100 * m.tracks / stats.analysed:.0f}%" if stats.analysed else ""
        moods.add_row(
            Text(f"{'/'.join(m.words)} ({m.quadrant})"),
            str(m.tracks),
            share,
            _num(m.mean_confidence, ".2f"),
        )
    if stats.uncertain:
        share = f"{100 * stats.uncertain / stats.analysed:.0f}%"
        moods.add_row("uncertain", str(stats.uncertain), share, "")
    moods.add_row("all", str(stats.analysed), "", _num(stats.mean_confidence, ".2f"))
    state = Table(title="library", title_justify="left", show_edge=False, show_header=False)
    state.add_column("what")
    state.add_column("count", justify="right")
    state.add_row("indexed tracks", str(stats.tracks))
    state.add_row("analysed", str(stats.analysed))
    if stats.silent:
        state.add_row("silent (no mood)", str(stats.silent))
    state.add_row("failed to analyse", str(stats.failed))
    for reason, n in stats.errors.items():
        state.add_row(Text(f"  {reason}"), str(n))
    state.add_row("mertag tags in the file", str(stats.tagged))
    state.add_row("not tagged", str(stats.not_tagged))
    state.add_row("  of which tag writes failed", str(stats.tag_failures))
    if stats.cannot_be_tagged:
        state.add_row("  of which formats mertag cannot tag", str(stats.cannot_be_tagged))
    state.add_row("files gone (mertag prune)", str(stats.gone))
    state.add_row(Text(f"index {display(stats.index_path)}"), _size(stats.index_bytes))
    models = Table(title="models in use", title_justify="left", show_edge=False)
    models.add_column("model id")
    models.add_column("tracks", justify="right")
    for model, n in stats.models.items():
        models.add_row(Text(model), str(n))
    if not stats.models:
        models.add_row("(none)", "")
    return [moods, state, models]


def journey_table(journey: Journey, entries: list[Entry]) -> Table:
    """The journey step by step, for the terminal."""
    table = Table(title=f"journey: {journey.title}", title_justify="left", show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("mood")
    table.add_column("valence", justify="right")
    table.add_column("arousal", justify="right")
    table.add_column("off path", justify="right")
    table.add_column("track")
    for n, (step, entry) in enumerate(zip(journey.steps, entries, strict=True), 1):
        r = step.row
        far = step.distance > journey.max_distance
        table.add_row(
            str(n),
            Text(mood_shown(r.mood, r.quadrant, r.uncertain), style=group_colour(r)),
            f"{r.valence:+.2f}",
            f"{r.arousal:+.2f}",
            Text(f"{step.distance:.2f}" + (" !" if far else "  ")),
            Text(entry.title),
        )
    return table


def config_table(config: Config) -> list[Text | Table]:
    """`mertag config`: where the file is, then every setting, its value and its source."""
    state = "" if config.exists else " (not found: built-in defaults)"
    heading = Text(f"config file: {display(config.path)} [{config.origin}]{state}")
    table = Table(show_edge=False)
    for name in ("key", "value", "from"):
        table.add_column(name, overflow="fold")
    for key, value, source in config.entries():
        table.add_row(key, Text(value), source)
    return [heading, table]
