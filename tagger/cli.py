"""The `mertag` command line: thin option parsing over the core functions.

librosa and onnxruntime are imported only inside commands that need them, so `mertag --help`
answers at once. The trainer adds `train` and `evaluate` to this app (trainer/cli.py); the
tagger never imports the trainer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tagger.display import display
from tagger.mood import DEFAULT_MOODS, QUADRANTS

app = typer.Typer(
    name="mertag",
    no_args_is_help=True,
    add_completion=False,
    help="Tag a music library with the mood of every track (Russell's four quadrants).",
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(message: str) -> None:
    typer.echo(message, err=True)


def usage_error(message: str) -> typer.Exit:
    _err(f"mertag: error: {message}")
    return typer.Exit(EXIT_USAGE)


def parse_moods(text: str | None) -> dict[str, str]:
    """'Happy,Angry,Sad,Relaxed' -> {Q1: Happy, ...}."""
    if not text:
        return dict(DEFAULT_MOODS)
    words = [w.strip() for w in text.split(",")]
    if len(words) != 4 or not all(words):
        raise usage_error(f"--moods needs four comma-separated words for Q1..Q4, got {text!r}")
    return dict(zip(QUADRANTS, words, strict=True))


IndexOption = Annotated[
    Path | None,
    typer.Option("--index", help="Index file (default: in the user data folder).", dir_okay=False),
]


def resolve_index(index: Path | None) -> Path:
    from tagger.index import default_index_path

    return index if index is not None else default_index_path()


@app.command()
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Music folders or files to scan.")],
    model: Annotated[
        Path | None, typer.Option("--model", help="Use this mertag ONNX model instead.")
    ] = None,
    index: IndexOption = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Worker processes (default: all cores)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Skip paths matching this glob (repeatable)."),
    ] = None,
    no_write: Annotated[
        bool, typer.Option("--no-write", help="Analyse and index, but leave files alone.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Analyse and print what would be written; change nothing."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-analyse unchanged files.")] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Try files that failed before again.")
    ] = False,
    id3v23: Annotated[
        bool, typer.Option("--id3v23", help="Save ID3 tags as v2.3 (MOOD in TXXX:MOOD).")
    ] = False,
    moods: Annotated[
        str | None,
        typer.Option("--moods", help="Mood words for Q1..Q4, e.g. 'Happy,Angry,Sad,Relaxed'."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A line per track.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Analyse every track under PATHS, write its mood into its tags, and index it."""
    from tagger.model import ModelError, MoodModel
    from tagger.report import ScanReporter
    from tagger.scan import ScanOptions, default_jobs, run_scan

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise usage_error(f"{display(missing[0])}: no such file or folder")
    try:
        mood_model = MoodModel(model)
    except ModelError as exc:
        raise usage_error(str(exc)) from exc
    options = ScanOptions(
        roots=tuple(p.absolute() for p in paths),
        index_path=resolve_index(index),
        model_path=mood_model.path,
        model_id=mood_model.model_id,
        feature_schema=mood_model.info.feature_schema,
        exclude=tuple(exclude or ()),
        moods=parse_moods(moods),
        write=not no_write,
        id3v23=id3v23,
        dry_run=dry_run,
        force=force,
        retry_failed=retry_failed,
        jobs=jobs or default_jobs(),
    )
    del mood_model
    reporter = ScanReporter(quiet=quiet, verbose=verbose, as_json=as_json, dry_run=dry_run)
    with reporter:
        summary = run_scan(options, reporter.start, reporter.outcome)
    reporter.finish(summary)
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if summary.ok else EXIT_FAILED)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    index: IndexOption = None,
) -> None:
    """Write every index row (header first for CSV) to stdout or a file."""
    from tagger.export import export_rows
    from tagger.index import Index

    if fmt not in ("csv", "json"):
        raise usage_error(f"--format must be csv or json, not {fmt!r}")
    path = resolve_index(index)
    if not path.is_file():
        raise usage_error(f"{display(path)}: no index yet (run `mertag scan` first)")
    with Index(path) as idx:
        if output is None:
            export_rows(idx.rows(), fmt, sys.stdout)
        else:
            with open(output, "w", encoding="utf-8", newline="") as out:
                n = export_rows(idx.rows(), fmt, out)
            _err(f"wrote {n} rows to {display(output)}")


def main() -> None:
    app()
