"""What a scan shows the person at the terminal: progress, one line per failure, a summary."""

from __future__ import annotations

import json
import sys
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

from mertag.tagger.display import display
from mertag.tagger.mood import QUADRANTS
from mertag.tagger.pipeline import TrackOutcome
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
        self, quiet: bool, verbose: bool, as_json: bool, dry_run: bool, stream: bool = False
    ) -> None:
        """`as_json`: one JSON document at the end; `stream` (with it): one JSON line per
        track as it finishes, then a line with the summary (`--format jsonl`)."""
        self.quiet, self.verbose, self.as_json, self.dry_run = quiet, verbose, as_json, dry_run
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
                f"{summary.found} tracks found, {summary.unchanged} unchanged, {total} to analyse"
            )

    def waiting(self, index_path: Path) -> None:
        """Another scan holds the index: say so once, then wait for it."""
        self.progress.console.print(
            Text(f"{display(index_path)} is in use by another scan; waiting (Ctrl-C to stop)")
        )

    def preparing(self) -> None:
        """librosa's kernels are compiled before the first track: say why nothing moves."""
        if not self.quiet:
            self.progress.console.print(
                Text("preparing audio kernels, once after install (about a minute)")
            )

    def jobs_capped(self, asked: int, jobs: int, bound: str) -> None:
        """Fewer workers than asked for, and why."""
        self.err.print(Text(f"note: {jobs} worker(s), not {asked}: this machine has {bound}"))

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
        if reason is not None and reason not in self.not_tagged_said and not self.as_json:
            self.not_tagged_said.add(reason)
            self.progress.console.print(
                Text(
                    f"note: {reason}; such tracks are analysed and indexed, not tagged "
                    f"(first: {display(outcome.path)})"
                )
            )
        p = outcome.prediction
        if p is None or self.as_json:
            return
        if self.dry_run and not self.quiet:
            changes = "; ".join(outcome.planned or []) or "nothing to change"
            self.progress.console.print(Text(f"would tag {display(outcome.path)}: {changes}"))
        elif self.verbose:
            self.progress.console.print(
                Text(f"{p.quadrant} {p.mood:<8} {p.confidence:.2f}  {display(outcome.path)}")
            )

    def finish(self, summary: ScanSummary) -> None:
        if self.stream:
            line = {"summary": summary_record(summary)}
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            return
        if self.as_json:
            doc = {"results": self.records, "summary": summary_record(summary)}
            sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
            return
        if self.quiet:
            return
        table = Table(title="mertag scan" + (" (dry run)" if self.dry_run else ""), box=None)
        table.add_column("", style="bold")
        table.add_column("tracks", justify="right")
        for mood, n in sorted(summary.moods.items()):
            table.add_row(mood, str(n))
        table.add_row("analysed", str(summary.analysed))
        table.add_row("unchanged (skipped)", str(summary.unchanged))
        table.add_row("not audio (passed over)", str(summary.passed_over))
        if summary.excluded:
            table.add_row("excluded", str(summary.excluded))
        table.add_row("failed", str(len(summary.failures)))
        self.err.print(table)
        for path, reason in summary.failures:
            self.err.print(Text(f"  failed: {display(path)}: {reason}"))
        if summary.interrupted:
            self.err.print("interrupted: finished tracks are kept in the index")


def summary_record(summary: ScanSummary) -> dict[str, Any]:
    return {
        "found": summary.found,
        "analysed": summary.analysed,
        "unchanged": summary.unchanged,
        "passed_over": summary.passed_over,
        "excluded": summary.excluded,
        "moods": summary.moods,
        "failed": [{"path": display(p), "reason": r} for p, r in summary.failures],
        "interrupted": summary.interrupted,
    }
