"""The `mertag` command line: thin option parsing over the core functions.

librosa and onnxruntime are imported only inside commands that need them, so `mertag --help`
answers at once. Other parts of mertag (the trainer's `train` and `evaluate`) join this app
through the entry-point group `mertag.commands` (see `command_line`), so the runtime never
imports them.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mertag.tagger.display import counted, display
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS

if TYPE_CHECKING:
    from rich.console import Console

    from mertag.tagger.config import Config
    from mertag.tagger.index import Index, IndexFileError, IndexRow
    from mertag.tagger.output_files import OutputExists
    from mertag.tagger.pipeline import PlayerFields
    from mertag.tagger.querylang import Query

app = typer.Typer(
    name="mertag",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
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
    from mertag.tagger.config import check_moods

    if not text:
        return dict(DEFAULT_MOODS)
    words = [w.strip() for w in text.split(",")]
    if len(words) != 4 or not all(words):
        raise usage_error(f"--moods needs four comma-separated words for Q1..Q4, got {text!r}")
    moods = dict(zip(QUADRANTS, words, strict=True))
    try:
        check_moods(moods)
    except ValueError as exc:
        raise usage_error(f"--moods: {exc}") from exc
    return moods


def _print_version(value: bool) -> None:
    if value:
        from mertag import __version__

        typer.echo(f"mertag {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print mertag's version and exit.",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Read this config file instead of the one in the user config folder "
            "(or set MERTAG_CONFIG).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Options before the command apply to every command."""


def settings(ctx: typer.Context) -> Config:
    """The effective config (file over defaults), read once per invocation; a bad file is a
    usage error naming the key."""
    from mertag.tagger.config import ConfigError, load_config

    root = ctx.find_root()
    cached = root.meta.get("mertag.tagger.config")
    if cached is None:
        try:
            cached = load_config(root.params.get("config"))
        except ConfigError as exc:
            raise usage_error(str(exc)) from exc
        root.meta["mertag.tagger.config"] = cached
    return cached  # type: ignore[no-any-return]


IndexOption = Annotated[
    Path | None,
    # No dir_okay=False: a folder is refused by mertag.tagger.index, in one line like any non-file.
    typer.Option("--index", help="Index file (default: in the user data folder)."),
]


def resolve_index(index: Path | None, config: Config | None = None) -> Path:
    """--index, else the config file's index, else the default."""
    from mertag.tagger.index import default_index_path

    if index is not None:
        return index
    return config.index if config is not None else default_index_path()


def index_failure(exc: IndexFileError) -> typer.Exit:
    """One line for trouble with the index: exit 1 when a write failed midway (what was done is
    kept), else 2 (the index was refused or could not be opened, and nothing was done)."""
    from mertag.tagger.index import IndexWriteError

    _err(f"mertag: error: {exc}")
    return typer.Exit(EXIT_FAILED if isinstance(exc, IndexWriteError) else EXIT_USAGE)


@contextmanager
def open_index(path: Path, *, write: bool = False) -> Iterator[Index]:
    """An existing index, read-only unless `write` (commands other than scan never create one);
    trouble with it, opening or while in use, is one line and an exit (see `index_failure`)."""
    from mertag.tagger.index import Index, IndexFileError, IndexMissing

    try:
        if write and not path.exists():  # a read-only open never creates one; this one would
            raise IndexMissing(path, "no index yet (run `mertag scan` first)")
        index = Index(path, read_only=not write)
    except IndexFileError as exc:
        raise index_failure(exc) from exc
    if index.migration is not None:
        _err(f"mertag: {index.migration}")
    with index:
        try:
            yield index
        except IndexFileError as exc:
            raise index_failure(exc) from exc


def migrate_index(path: Path) -> None:
    """Before a scan: migrate an older index (after its backup), saying so in one line."""
    from mertag.tagger.index import IndexFileError, upgrade_index

    try:
        migration = upgrade_index(path)
    except IndexFileError as exc:
        raise index_failure(exc) from exc
    if migration is not None:
        _err(f"mertag: {migration}")


def terminal(*, stderr: bool = False) -> Console:
    """A rich console for tables; no colour when NO_COLOR is set to anything (no-color.org)."""
    from rich.console import Console

    return Console(
        stderr=stderr, highlight=False, no_color=bool(os.environ.get("NO_COLOR")) or None
    )


def _warn(path: str | Path, reason: str) -> None:
    _err(f"warning: {display(path)}: {reason}")


# Options of every command that writes tags (scan, write): one definition each.
OverwriteMoodOption = Annotated[
    bool | None,
    typer.Option(
        "--overwrite-mood/--keep-mood",
        help="Put mertag's word into a MOOD it did not write (your value is kept in "
        "MERTAG_PREVIOUS_MOOD, and untag restores it); by default your MOOD stays and "
        "mertag's word goes to MERTAG_MOOD only. Default: the config's overwrite_mood.",
        show_default=False,
    ),
]
Id3VersionOption = Annotated[
    bool | None,
    typer.Option(
        "--id3v23/--id3v24",
        help="Save ID3 tags as v2.3 (MOOD in TXXX:MOOD) or v2.4 (TMOO); by default the "
        "config's id3_version, else each file keeps its own version.",
        show_default=False,
    ),
]
ConvertId3v22Option = Annotated[
    bool,
    typer.Option(
        "--convert-id3v22",
        help="Tag ID3v2.2 files too, converting their tags to v2.4 (or the --id3v23/--id3v24 "
        "version): mutagen cannot write v2.2, and v2.2 frames with no later form are lost. By "
        "default such files are analysed and indexed, not tagged.",
    ),
]
UncertainBelowOption = Annotated[
    float | None,
    typer.Option(
        "--uncertain-below",
        min=0.0,
        max=1.0,
        help="A track whose confidence is below this is uncertain (default: the config's "
        "uncertain_below, else the model's calibrated threshold; 0: never).",
        show_default=False,
    ),
]
UncertainWordOption = Annotated[
    str | None,
    typer.Option(
        "--uncertain-word",
        help="The MOOD written for an uncertain track (default: the config's "
        "uncertain_word; '' writes none and takes back a word mertag wrote before).",
        show_default=False,
    ),
]
EnergyOption = Annotated[
    bool | None,
    typer.Option(
        "--energy/--no-energy",
        help="Also write ENERGY 1-10 from arousal (Mixed In Key's EnergyLevel field, for DJ "
        "software); --no-energy takes back an ENERGY mertag wrote. Default: the config's energy.",
        show_default=False,
    ),
]
OverwriteEnergyOption = Annotated[
    bool | None,
    typer.Option(
        "--overwrite-energy/--keep-energy",
        help="Put mertag's ENERGY into one it did not write (yours is kept in "
        "MERTAG_PREVIOUS_ENERGY for untag); by default your ENERGY stays. Default: the "
        "config's overwrite_energy.",
        show_default=False,
    ),
]
MoodFieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--mood-field",
        metavar="COMMENT|GROUPING",
        help="Also append the mood word to this field, after your own text (repeatable or a "
        "comma list; 'none' for none); a field no longer named is given back its own text. "
        "Default: the config's mood_fields.",
        show_default=False,
    ),
]
MoodsOption = Annotated[
    str | None,
    typer.Option(
        "--moods",
        help="Mood words for Q1..Q4, e.g. 'Happy,Angry,Sad,Relaxed' (default: the config's).",
    ),
]


def tag_policy(
    config: Config,
    moods: str | None,
    id3v23: bool | None,
    overwrite_mood: bool | None,
    uncertain_below: float | None,
    uncertain_word: str | None,
    convert_id3v22: bool = False,
) -> dict[str, Any]:
    """The mood words, ID3 version, MOOD policy and uncertain threshold and word a tag write
    uses: the options over the config, as keyword arguments of ScanOptions and WriteOptions."""
    from mertag.tagger.config import check_uncertain_word

    words = parse_moods(moods) if moods else config.moods
    word = (config.uncertain_word if uncertain_word is None else uncertain_word).strip()
    try:
        check_uncertain_word(word, words)
    except ValueError as exc:
        raise usage_error(f"--uncertain-word: {exc}") from exc
    return {
        "moods": words,
        "id3_version": config.id3_target if id3v23 is None else (3 if id3v23 else 4),
        "convert_id3v22": convert_id3v22,
        "overwrite_mood": config.overwrite_mood if overwrite_mood is None else overwrite_mood,
        "uncertain_below": config.uncertain_below if uncertain_below is None else uncertain_below,
        "uncertain_word": word,
    }


def player_fields(
    config: Config,
    energy: bool | None,
    overwrite_energy: bool | None,
    mood_fields: list[str] | None,
) -> PlayerFields:
    """The fields for other players a tag write fills (ENERGY, the mood word in COMMENT or
    GROUPING): the options over the config."""
    from mertag.tagger.config import parse_mood_fields
    from mertag.tagger.pipeline import PlayerFields

    try:
        fields = config.mood_fields if mood_fields is None else parse_mood_fields(mood_fields)
    except ValueError as exc:
        raise usage_error(f"--mood-field: {exc}") from exc
    return PlayerFields(
        energy=config.energy if energy is None else energy,
        overwrite_energy=config.overwrite_energy if overwrite_energy is None else overwrite_energy,
        mood_fields=fields,
    )


OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace a file there that mertag did not write (one it wrote is replaced anyway: "
        "each carries mertag's mark).",
    ),
]


def output_refused(exc: OutputExists) -> typer.Exit:
    """A file of the user's is where mertag would write: one line, exit 2."""
    return usage_error(f"{display(exc.path)}: {exc}")


MinConfidenceOption = Annotated[
    float | None,
    typer.Option(
        "--min-confidence", min=0.0, max=1.0, help="Only tracks at least this confident (0-1)."
    ),
]
PathGlobOption = Annotated[
    str | None,
    typer.Option(
        "--path",
        help="Only tracks under this file or folder, as path: takes it in a query: relative to "
        "the library (Jazz/), absolute or ~/..., or a glob ('*/Jazz/*.flac').",
    ),
]
QueryArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="QUERY",
        help="Which tracks, beets style: mood:Relaxed arousal:..-0.3 valence:0.2.. "
        "confidence:0.7.. energy:8.. (1-10) duration:..180 path:Jazz/ status:error model:fast "
        "artist:Björk, free words "
        "(artist, album, title or path), ^TERM to negate, ',' for or, FIELD+/FIELD- to sort.",
        show_default=False,
    ),
]
SortOption = Annotated[
    list[str] | None,
    typer.Option(
        "--sort",
        metavar="FIELD[+|-]",
        help="Order by a field, - for descending, e.g. arousal- (repeatable).",
    ),
]


def query_rows(
    idx: Index,
    config: Config,
    terms: list[str] | None,
    sorts: list[str] | None = None,
    *,
    moods: list[str] | None = None,
    min_confidence: float | None = None,
    path_glob: str | None = None,
    status: str | None = None,
) -> tuple[Query, list[IndexRow]]:
    """The query (the older filter options joining it as terms) and the rows it selects; a bad
    query is a usage error of one line."""
    from mertag.tagger.querylang import QueryError, option_terms, run_query

    legacy = option_terms(
        moods=moods, min_confidence=min_confidence, path_glob=path_glob, status=status
    )
    try:
        return run_query(
            idx.rows(), [*legacy, *(terms or [])], sorts=sorts or (), moods=config.moods
        )
    except QueryError as exc:
        raise usage_error(f"query: {exc}") from exc


def path_argument(value: str) -> Path:
    """A file or folder named on the command line, as given: mertag itself says why one cannot be
    read, per file, so the batch goes on (Click's own check stopped every file for one). An empty
    one is refused: Path("") is the current folder, and `mertag scan "$MUSIC"` with the variable
    unset would tag whatever folder the shell stands in."""
    if not value:
        raise typer.BadParameter("an empty path (an unset shell variable?); '.' names this folder")
    return Path(value)


@app.command()
def scan(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="Music folders or files to scan.", parser=path_argument)
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="A mertag ONNX model file, or a shipped model by name: default, or fast "
            "(a third less CPU per track; as good on tracks over 45 s, a point lower on shorter "
            "ones: models/MODEL_CARD.md). Default: the config's model.",
        ),
    ] = None,
    index: IndexOption = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Worker processes (default: all cores)."),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="Where tracks are analysed: local (processes here) or dask (needs --scheduler).",
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Dask scheduler address for --backend dask, e.g. tcp://host:8786."
        ),
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
        bool,
        typer.Option(
            "--retry-failed",
            help="Analyse again the tracks whose last analysis failed, even if unchanged "
            "(otherwise they are skipped and reported as still failing).",
        ),
    ] = False,
    overwrite_mood: OverwriteMoodOption = None,
    id3v23: Id3VersionOption = None,
    convert_id3v22: ConvertId3v22Option = False,
    moods: MoodsOption = None,
    uncertain_below: UncertainBelowOption = None,
    uncertain_word: UncertainWordOption = None,
    energy: EnergyOption = None,
    overwrite_energy: OverwriteEnergyOption = None,
    mood_field: MoodFieldOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A line per track.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="text; json (one document at the end, as --json); or jsonl (one line per "
            "track as it finishes, then a summary line).",
        ),
    ] = "text",
) -> None:
    """Analyse every track under PATHS, write its mood into its tags, and index it.

    Exit status: 0 when every track found is analysed (and tagged, unless --no-write); 1 when a
    track failed, in this scan or in an earlier one and unchanged since (--retry-failed tries
    it again), or --dry-run or --no-write left a track alone because an earlier tag write of it
    was interrupted (a scan without them finishes it); 2 for a usage error; 130 when interrupted.
    """
    from mertag.tagger.backends import BACKENDS, BackendError
    from mertag.tagger.index import IndexFileError
    from mertag.tagger.model import ModelError, accepted_model_ids, shared_model
    from mertag.tagger.report import ScanReporter
    from mertag.tagger.roots import nothing_there, split_roots
    from mertag.tagger.scan import ScanOptions, ScanRefused, job_ceiling, run_scan

    config = settings(ctx)
    if backend not in BACKENDS:
        raise usage_error(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if (backend == "dask") != (scheduler is not None):
        raise usage_error("--backend dask and --scheduler ADDRESS go together")
    present, missing = split_roots(paths)
    if not present:  # some missing: each a failure line, the others scanned
        raise usage_error(nothing_there(missing))
    try:
        # This process's session: a scan of one track (or --jobs 1) analyses here and uses it.
        mood_model = shared_model(model if model is not None else config.model)
    except ModelError as exc:
        raise usage_error(str(exc)) from exc
    policy = tag_policy(
        config, moods, id3v23, overwrite_mood, uncertain_below, uncertain_word, convert_id3v22
    )
    policy["fields"] = player_fields(config, energy, overwrite_energy, mood_field)
    options = ScanOptions(
        roots=tuple(p.absolute() for p in paths),
        index_path=resolve_index(index, config),
        model_path=mood_model.path,
        model_id=mood_model.model_id,
        feature_schema=mood_model.info.feature_schema,
        accepted_ids=accepted_model_ids(mood_model),
        exclude=tuple(exclude) if exclude else config.exclude,
        write=not no_write,
        **policy,
        dry_run=dry_run,
        force=force,
        retry_failed=retry_failed,
        jobs=1,
        backend=backend,
        scheduler=scheduler,
    )
    del mood_model
    if not dry_run:
        migrate_index(options.index_path)
    if output_format not in ("text", "json", "jsonl"):
        raise usage_error(f"--format must be text, json or jsonl, not {output_format!r}")
    reporter = ScanReporter(
        quiet=quiet,
        verbose=verbose,
        as_json=as_json or output_format != "text",
        dry_run=dry_run,
        stream=output_format == "jsonl",
        no_write=no_write,
    )
    ceiling, bound = job_ceiling()
    asked = jobs or config.jobs
    if backend == "local":
        options = replace(options, jobs=min(asked or ceiling, ceiling))
        if asked is not None and asked > ceiling:
            reporter.jobs_capped(asked, ceiling, bound)
    try:
        with reporter:
            summary = run_scan(options, reporter.start, reporter.outcome, reporter.waiting)
    except (BackendError, ScanRefused) as exc:
        raise usage_error(str(exc)) from exc
    except IndexFileError as exc:
        raise index_failure(exc) from exc
    retag = None
    if options.write and not dry_run:
        from mertag.tagger.retag_hint import retag_hint, tag_options

        typed = tag_options(
            overwrite_mood=overwrite_mood,
            id3v23=id3v23,
            moods=moods,
            uncertain_below=uncertain_below,
            uncertain_word=uncertain_word,
            energy=energy,
            overwrite_energy=overwrite_energy,
            mood_field=mood_field,
            convert_id3v22=convert_id3v22,
        )
        config_path = ctx.find_root().params.get("config")
        unchanged = summary.unchanged - len(summary.still_failing)  # analysed, so writable
        retag = retag_hint(unchanged, typed, config_path=config_path, index=index)
    reporter.finish(summary, retag)
    if summary.index_error is not None:
        _err(f"mertag: error: {summary.index_error}")
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if summary.ok else EXIT_FAILED)


@app.command()
def export(
    ctx: typer.Context,
    query: QueryArgument = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    sort: SortOption = None,
    overwrite: OverwriteOption = False,
    index: IndexOption = None,
) -> None:
    """Write the index rows a query selects (all by default; header first for CSV)."""
    from mertag.tagger.export import export_rows
    from mertag.tagger.output_files import OutputExists, check_replaceable
    from mertag.tagger.playlist import write_text_atomic

    if fmt not in ("csv", "json"):
        raise usage_error(f"--format must be csv or json, not {fmt!r}")
    config = settings(ctx)
    with open_index(resolve_index(index, config)) as idx:
        _, rows = query_rows(idx, config, query, sort)
    if output is None:
        export_rows(rows, fmt, sys.stdout)
    else:
        try:
            check_replaceable(output, overwrite)
        except OutputExists as exc:
            raise output_refused(exc) from exc
        # The whole export in memory, then written atomically: a kill or a full disk mid-write
        # leaves the file that was there (the user's own, under --overwrite) as it was.
        text = io.StringIO(newline="")
        n = export_rows(rows, fmt, text)
        try:
            if not output.parent.is_dir():  # a mistyped folder is not created (open("w") did not)
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(output))
            write_text_atomic(output, text.getvalue())
        except OSError as exc:
            raise usage_error(f"{display(output)}: {exc.strerror or exc}") from exc
        _err(f"wrote {counted(n, 'row')} to {display(output)}")


@app.command("list")
def list_tracks(
    ctx: typer.Context,
    query: QueryArgument = None,
    mood: Annotated[
        list[str] | None,
        typer.Option("--mood", "-m", help="Only this mood: a word or Q1-Q4 (repeatable)."),
    ] = None,
    min_confidence: MinConfidenceOption = None,
    path_glob: PathGlobOption = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only 'ok', 'error' or 'silent' rows.")
    ] = None,
    sort: SortOption = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv or json (csv/json: every column).")
    ] = "table",
    index: IndexOption = None,
) -> None:
    """List the indexed tracks a query selects, as a table or as CSV/JSON."""
    from mertag.tagger.export import export_rows
    from mertag.tagger.index import STATUSES
    from mertag.tagger.report import rows_table

    if fmt not in ("table", "csv", "json"):
        raise usage_error(f"--format must be table, csv or json, not {fmt!r}")
    if status not in (None, *STATUSES):
        raise usage_error(f"--status must be {', '.join(STATUSES)}, not {status!r}")
    config = settings(ctx)
    with open_index(resolve_index(index, config)) as idx:
        _, rows = query_rows(
            idx,
            config,
            query,
            sort,
            moods=mood,
            min_confidence=min_confidence,
            path_glob=path_glob,
            status=status,
        )
    if fmt == "table":
        terminal().print(rows_table(rows))
    else:
        export_rows(rows, fmt, sys.stdout)


@app.command()
def show(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Indexed files (or folders: every indexed track in them).", parser=path_argument
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    index: IndexOption = None,
) -> None:
    """Everything mertag knows about tracks: the index's analysis and what the file's tags hold
    (MOOD, MERTAG_*), and what untag would change."""
    import json

    from mertag.tagger.show import report_table, show_tracks

    if fmt not in ("table", "json"):
        raise usage_error(f"--format must be table or json, not {fmt!r}")
    config = settings(ctx)
    with open_index(resolve_index(index, config)) as idx:
        reports, missing = show_tracks(idx, paths, config.moods)
    if fmt == "json":
        if reports:
            typer.echo(json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False))
    else:
        console = terminal()
        for report in reports:
            console.print(report_table(report))
    for line in missing:
        _err(f"mertag: error: {line}")
    if missing:
        raise typer.Exit(EXIT_USAGE)


@app.command()
def stats(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    index: IndexOption = None,
) -> None:
    """Tracks per mood, mean confidence, failures, gone files, index size and models in use."""
    import json

    from mertag.tagger.query import library_stats
    from mertag.tagger.report import stats_tables

    if fmt not in ("table", "json"):
        raise usage_error(f"--format must be table or json, not {fmt!r}")
    config = settings(ctx)
    with open_index(resolve_index(index, config)) as idx:
        result = library_stats(idx, config.moods)
    if fmt == "json":
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    console = terminal()
    for table in stats_tables(result):
        console.print(table)
        console.print()


PLAYLIST_SUFFIXES = {".m3u8": "m3u8", ".m3u": "m3u8", ".nsp": "nsp"}


@app.command()
def playlist(
    ctx: typer.Context,
    query: QueryArgument = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="A folder: one playlist per mood; a .m3u8 or .nsp file: one playlist of every "
            "track the query selects; with --journey, the playlist file or a folder for it "
            "(default: playlist_dir from the config).",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="m3u8 (track lists) or nsp (Navidrome smart playlists: rules Navidrome keeps "
            "up to date). Default: from --out's suffix, else m3u8.",
        ),
    ] = None,
    journey: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--journey",
            metavar="FROM TO",
            help="One playlist moving from mood FROM to mood TO (words or Q1-Q4), e.g. sad happy.",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="FILE|MOOD",
            help="Start a journey on this track (or mood); goes with --to.",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="MOOD", help="Where a journey started with --from ends."),
    ] = None,
    length: Annotated[int, typer.Option("--length", "-n", min=2, help="Tracks in a journey.")] = 20,
    max_distance: Annotated[
        float,
        typer.Option(
            "--max-distance",
            min=0.01,
            max=2.0,
            help="Journey: warn about steps farther than this from the path on the "
            "valence-arousal plane.",
        ),
    ] = 0.3,
    min_confidence: MinConfidenceOption = None,
    relative_to: Annotated[
        Path | None,
        typer.Option(
            "--relative-to",
            file_okay=False,
            help="Write paths relative to this folder (where the playlist will live) "
            "instead of absolute.",
        ),
    ] = None,
    path_glob: PathGlobOption = None,
    sort: SortOption = None,
    overwrite: OverwriteOption = False,
    index: IndexOption = None,
) -> None:
    """Write one playlist per mood (best match first), one playlist of a query's tracks, or a
    mood journey (--journey, or --from and --to)."""
    from mertag.tagger.nsp import NspError
    from mertag.tagger.output_files import OutputExists
    from mertag.tagger.playlist import FORMATS, mood_playlists, one_playlist

    config = settings(ctx)
    if out is None and config.playlist_dir is None:
        raise usage_error("--out is needed (or set playlist_dir in the config file)")
    if fmt is not None and fmt not in FORMATS:
        raise usage_error(f"--format must be m3u8 or nsp, not {fmt!r}")
    if journey is not None and (start is not None or to is not None):
        raise usage_error("give --journey FROM TO, or --from and --to, not both")
    if (start is None) != (to is None):
        raise usage_error("--from and --to go together (or use --journey FROM TO)")
    ends = journey
    if start is not None and to is not None:
        ends = (start, to)
    target = out if out is not None else config.playlist_dir
    assert target is not None
    named = PLAYLIST_SUFFIXES.get(target.suffix.lower())
    if fmt is not None and named is not None and named != fmt:
        raise usage_error(f"--format {fmt} does not go with {display(target)}")
    fmt = fmt or named or "m3u8"
    if ends is not None and fmt == "nsp":
        raise usage_error("a journey is an ordered list: it is written as m3u8, not nsp")
    rel = relative_to.absolute() if relative_to is not None else None
    with open_index(resolve_index(index, config)) as idx:
        parsed, rows = query_rows(
            idx, config, query, sort, min_confidence=min_confidence, path_glob=path_glob
        )
        if ends is not None:
            _journey(config, idx, rows, ends, target, length, max_distance, rel, overwrite)
            return
    if named is None and target.exists() and not target.is_dir():
        raise usage_error(
            f"{display(target)}: not a folder (--out takes a folder, or a .m3u8 or .nsp file)"
        )
    write = mood_playlists if named is None else one_playlist
    try:
        result = write(
            rows,
            target,
            moods=config.moods,
            relative_to=rel,
            fmt=fmt,
            query=parsed,
            overwrite=overwrite,
        )
    except NspError as exc:
        raise usage_error(str(exc)) from exc
    except OutputExists as exc:
        raise output_refused(exc) from exc
    for path, reason in result.skipped:
        _warn(path, f"left out: {reason}")
    for word, quadrant, stale in result.empty:
        what = f"{word} ({quadrant})" if quadrant else display(target)
        note = (
            f"; {display(stale)} from an earlier run is left as it was" if stale is not None else ""
        )
        _err(f"no tracks for {what}: no playlist written{note}")
    for written, n in result.written.items():
        _err(f"wrote {display(written)} ({n} track{'' if n == 1 else 's'})")
    if result.uncertain:
        n = result.uncertain
        _err(
            f"{n} track{'' if n == 1 else 's'} with an uncertain mood left out "
            "('mertag list uncertain:yes' shows them)"
        )


def _journey_start(
    idx: Index, text: str, config: Config, known: dict[str, str]
) -> tuple[str, IndexRow | None]:
    """--from: an indexed file (the journey starts on it) or a mood word."""
    from mertag.tagger.querylang import resolve_quadrant

    candidate = Path(text).expanduser()
    if candidate.is_file():
        for path in dict.fromkeys([str(candidate.absolute()), os.path.realpath(candidate)]):
            row = idx.get(path)
            if row is not None:
                if row.status != "ok" or row.valence is None or row.arousal is None:
                    raise usage_error(f"{display(path)}: not analysed ({row.error or 'no mood'})")
                return row.quadrant or "", row
        raise usage_error(f"{display(candidate)}: not in the index (run `mertag scan` on it)")
    try:
        return resolve_quadrant(text, config.moods, known), None
    except ValueError as exc:
        raise usage_error(f"--from: {exc}; or name an indexed file") from exc


def _journey(
    config: Config,
    idx: Index,
    rows: list[IndexRow],
    ends: tuple[str, str],
    target: Path,
    length: int,
    max_distance: float,
    relative_to: Path | None,
    overwrite: bool = False,
) -> None:
    from mertag.tagger.journey import JourneyError, plan_journey, write_journey
    from mertag.tagger.output_files import OutputExists
    from mertag.tagger.playlist import playable, safe_file_name
    from mertag.tagger.querylang import index_words, resolve_quadrant
    from mertag.tagger.report import journey_table

    known = index_words(idx.rows(status="ok"))
    start, start_row = _journey_start(idx, ends[0], config, known)
    try:
        end = resolve_quadrant(ends[1], config.moods, known)
    except ValueError as exc:
        raise usage_error(f"--journey: {exc}") from exc
    skipped: list[tuple[str, str]] = []
    usable = playable(rows, skipped)
    for path, reason in skipped:
        _warn(path, f"left out: {reason}")
    try:
        plan = plan_journey(
            usable,
            start,
            end,
            length,
            max_distance=max_distance,
            labels=config.moods,
            start_row=start_row,
        )
    except JourneyError as exc:
        _err(f"mertag: error: {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    if target.is_dir() or target.suffix == "":
        target = target / f"{safe_file_name(plan.title)}.m3u8"
    try:
        entries = write_journey(plan, target, relative_to=relative_to, overwrite=overwrite)
    except OutputExists as exc:
        raise output_refused(exc) from exc
    terminal(stderr=True).print(journey_table(plan, entries))
    for warning in plan.warnings:
        _err(f"warning: {warning}")
    _err(f"wrote {display(target)} ({counted(len(entries), 'track')})")


@app.command("map")
def map_library(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The map to write: .html (an interactive page, no extra needed), or a "
            "picture: .png, .svg or .pdf (the map extra: matplotlib).",
        ),
    ],
    query: QueryArgument = None,
    min_confidence: MinConfidenceOption = None,
    path_glob: PathGlobOption = None,
    title: Annotated[str | None, typer.Option("--title", help="Heading of the map.")] = None,
    overwrite: OverwriteOption = False,
    index: IndexOption = None,
) -> None:
    """Draw every analysed track (or those a query selects) on the valence-arousal plane."""
    from mertag.tagger.libmap import MapError, draw_map
    from mertag.tagger.output_files import OutputExists

    config = settings(ctx)
    with open_index(resolve_index(index, config)) as idx:
        _, rows = query_rows(idx, config, query, min_confidence=min_confidence, path_glob=path_glob)
    try:
        if out.suffix.lower() in (".html", ".htm"):
            from mertag.tagger.htmlmap import write_html_map

            n = write_html_map(rows, out, moods=config.moods, title=title, overwrite=overwrite)
        else:
            n = draw_map(rows, out, moods=config.moods, title=title, overwrite=overwrite)
    except MapError as exc:
        raise usage_error(str(exc)) from exc
    except OutputExists as exc:
        raise output_refused(exc) from exc
    except OSError as exc:
        raise usage_error(f"{display(out)}: {exc.strerror or exc}") from exc
    _err(f"wrote {display(out)} ({n} track{'' if n == 1 else 's'})")


@app.command()
def write(
    ctx: typer.Context,
    query: QueryArgument = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would change (old -> new); write nothing.")
    ] = False,
    overwrite_mood: OverwriteMoodOption = None,
    id3v23: Id3VersionOption = None,
    convert_id3v22: ConvertId3v22Option = False,
    moods: MoodsOption = None,
    uncertain_below: UncertainBelowOption = None,
    uncertain_word: UncertainWordOption = None,
    energy: EnergyOption = None,
    overwrite_energy: OverwriteEnergyOption = None,
    mood_field: MoodFieldOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only problems.")] = False,
    index: IndexOption = None,
) -> None:
    """Write the tags of analysed tracks (those a query selects; all by default) from the index,
    without analysing: after scan --no-write, or a change of moods, id3_version,
    overwrite_mood, energy or mood_fields. A file whose audio changed since it was analysed is
    skipped (only its tags changed is fine: the index keeps a hash of the audio).

    Exit status: 0 when every selected track is tagged or up to date (rows that were never
    analysed, and formats mertag cannot tag, are counted, not failures); 1 when a write failed
    or a file was skipped as changed or gone; 2 for a usage error.
    """
    from mertag.tagger.scan import scan_lock
    from mertag.tagger.writeback import WriteOptions, WriteResult, write_rows

    config = settings(ctx)
    policy = tag_policy(
        config, moods, id3v23, overwrite_mood, uncertain_below, uncertain_word, convert_id3v22
    )
    policy["fields"] = player_fields(config, energy, overwrite_energy, mood_field)
    options = WriteOptions(**policy, dry_run=dry_run)
    index_path = resolve_index(index, config)

    def said(r: WriteResult) -> None:
        changes = "; ".join(r.changes)
        if r.error is not None:
            _err(f"error: {display(r.path)}: {r.error}")
        elif r.skipped is not None and not r.skipped.startswith("not analysed"):
            _err(f"skipped {display(r.path)}: {r.skipped}")
        elif quiet or r.skipped is not None:
            return
        elif r.not_tagged is not None:
            _err(f"not tagged {display(r.path)}: {r.not_tagged}")
        elif r.changes:
            _err(f"{'would write' if dry_run else 'wrote'} {display(r.path)}: {changes}")

    with open_index(index_path, write=not dry_run) as idx:
        _, rows = query_rows(idx, config, query)
        if dry_run:
            summary = write_rows(None, rows, options, said)
        else:  # one writer at a time: a scan and a write never tag one file at once
            with scan_lock(index_path, lambda p: _err(f"waiting for the scan using {display(p)}")):
                summary = write_rows(idx, rows, options, said)
    if not quiet:
        _err(summary.line())
    raise typer.Exit(EXIT_OK if summary.ok else EXIT_FAILED)


@app.command()
def untag(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders to untag.", parser=path_argument)
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    convert_id3v22: Annotated[
        bool,
        typer.Option(
            "--convert-id3v22",
            help="Untag ID3v2.2 files too, converting their tags to v2.4: mutagen cannot write "
            "v2.2, and v2.2 frames with no later form are lost. By default such a file keeps "
            "its tag as it is, and is named as a failure.",
        ),
    ] = False,
    index: IndexOption = None,
) -> None:
    """Remove the tags mertag wrote (MOOD only if it is still mertag's word, every MERTAG_*)."""
    from mertag.tagger.index import IndexFileError
    from mertag.tagger.roots import nothing_there, split_roots
    from mertag.tagger.untag import untag as untag_paths

    config = settings(ctx)
    present, missing = split_roots(paths)
    if not present:  # some missing: each an error line, the others untagged
        raise usage_error(nothing_there(missing))
    try:
        summary = untag_paths(
            paths,
            resolve_index(index, config),
            moods=config.moods,
            dry_run=dry_run,
            convert_id3v22=convert_id3v22,
        )
    except IndexFileError as exc:
        raise index_failure(exc) from exc
    if summary.migration is not None:
        _err(f"mertag: {summary.migration}")
    for path, reason in summary.problems:
        _err(f"error: {display(path)}: {reason}")
    changed = 0
    for o in summary.outcomes:
        if o.error is not None:
            _err(f"error: {display(o.path)}: {o.error}")
            continue
        if o.removed or o.restored:
            changed += 1
        if quiet or not (o.removed or o.restored or o.kept_mood):
            continue
        fields = ", ".join(f"{k}={v}" for k, v in o.removed.items()) or "nothing"
        verb = "would remove" if dry_run else "removed"
        note = f" (kept MOOD={o.kept_mood}: not the word mertag wrote)" if o.kept_mood else ""
        if o.restored:
            back = ", ".join(f"{k}={v}" for k, v in o.restored.items())
            note += f"; {'would restore' if dry_run else 'restored'} {back}"
        if o.converted is not None:
            c = o.converted
            note += f"; {'would convert' if dry_run else 'converted'} ID3v{c.old} to v{c.new}"
        _err(f"{display(o.path)}: {verb} {fields}{note}")
    if not quiet:
        failed = sum(o.error is not None for o in summary.outcomes) + len(summary.problems)
        verb = "would untag" if dry_run else "untagged"
        _err(
            f"{verb} {changed} of {counted(len(summary.outcomes), 'audio file')}"
            + (f"; {failed} failed" if failed else "")
        )
    raise typer.Exit(EXIT_OK if summary.ok else EXIT_FAILED)


PRUNE_FOLDERS_SHOWN = 5
"""How many folders gone as a whole `prune` names, the ones with most rows first."""


@app.command()
def prune(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the rows that would go; change nothing.")
    ] = False,
    gone_folders: Annotated[
        bool,
        typer.Option(
            "--gone-folders",
            help="Also drop the rows under a folder that is gone as a whole (kept by default: "
            "it may be a drive that is not mounted).",
        ),
    ] = False,
    path_glob: PathGlobOption = None,
    index: IndexOption = None,
) -> None:
    """Drop the index rows of files that no longer exist (a file that cannot be checked stays,
    and so do the rows under a folder gone as a whole, unless --gone-folders)."""
    from mertag.tagger.query import prune as prune_index
    from mertag.tagger.querylang import QueryError

    with open_index(resolve_index(index, settings(ctx)), write=not dry_run) as idx:
        try:
            result = prune_index(idx, path=path_glob, dry_run=dry_run, gone_folders=gone_folders)
        except QueryError as exc:
            raise usage_error(f"--path: {exc}") from exc
    for path in result.gone:
        _err(f"{'would drop' if dry_run else 'dropped'} {display(path)}")
    n = len(result.gone) if dry_run else result.dropped
    done = "would drop" if dry_run else "dropped"
    kept = result.kept_under_gone_folders
    _err(
        f"{done} {n} of {counted(result.checked, 'row')} (files gone)"
        + (f"; kept {kept} under folders gone as a whole" if kept else "")
    )
    folders = sorted(result.gone_folders.items(), key=lambda fc: -fc[1])
    for folder, count in folders[:PRUNE_FOLDERS_SHOWN]:
        if not gone_folders:
            rows = f"{counted(count, 'row')} kept under it"
            advice = "is it a drive that is not mounted? `--gone-folders` drops them if it is gone"
        else:
            rows = f"{counted(count, 'row')} {'to drop' if dry_run else 'dropped'} under it"
            advice = (
                "if it is a drive that is not mounted, mount it before pruning"
                if dry_run
                else "if it was a drive that was not mounted, `mertag scan` analyses its "
                "tracks again"
            )
        _err(f"note: {display(folder)} is gone as a whole ({rows}): {advice}")
    if len(folders) > PRUNE_FOLDERS_SHOWN:
        _err(f"note: and {len(folders) - PRUNE_FOLDERS_SHOWN} more folders gone as a whole")


@app.command("config")
def show_config(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, json, or toml (a config file).")
    ] = "table",
) -> None:
    """Print the effective configuration and where each value came from."""
    import json

    from mertag.tagger.report import config_table

    if fmt not in ("table", "json", "toml"):
        raise usage_error(f"--format must be table, json or toml, not {fmt!r}")
    config = settings(ctx)
    if fmt == "toml":
        typer.echo(config.to_toml(), nl=False)
        return
    if fmt == "json":
        doc = {
            "file": str(config.path),
            "file_from": config.origin,
            "file_exists": config.exists,
            "values": config.as_dict(),
            "sources": config.sources,
        }
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    for part in config_table(config):
        terminal().print(part)


COMMAND_GROUP = "mertag.commands"
"""Entry points in this group are `register(app)` functions that add commands to `app`."""

_plugins_loaded = False


def command_line() -> typer.Typer:
    """The whole `mertag` command line: this app plus every installed `mertag.commands` entry
    point's commands (loaded once)."""
    global _plugins_loaded
    if not _plugins_loaded:
        from importlib.metadata import entry_points

        # By name: a distribution seen twice on sys.path registers its commands once.
        for entry in {e.name: e for e in entry_points(group=COMMAND_GROUP)}.values():
            entry.load()(app)
        _plugins_loaded = True
    return app


def main() -> None:
    """The console script. An OSError naming a file that escaped a command (a folder that
    vanished, a full disk) is the user's environment, not a bug: one line, exit 2."""
    try:
        command_line()()
    except OSError as exc:
        if exc.filename is None:
            raise
        _err(f"mertag: error: {display(exc.filename)}: {exc.strerror or exc}")
        sys.exit(EXIT_USAGE)
