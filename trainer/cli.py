"""`mertag train` and `mertag evaluate`, added to the runtime's command line by `register`.

`register` is the `mertag.commands` entry point (pyproject.toml), so the runtime loads it without
importing the trainer. Thin: each command parses options and calls one core function. torch is
imported only inside `train`, which first checks that the `train` extra is installed;
`evaluate` needs neither torch nor scikit-learn.
"""

from __future__ import annotations

import importlib.util
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mertag.tagger.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OverwriteOption
from mertag.tagger.display import display
from mertag.tagger.output_files import REPORT_MARK, OutputExists, check_replaceable
from mertag.trainer.choices import ARCHS, FEATURE_SETS
from mertag.trainer.mood_words import WEIGHT as MOOD_WORDS_WEIGHT
from mertag.trainer.valence_arousal import WEIGHT as VA_WEIGHT

__all__ = ["register"]

TRAIN_EXTRA = ("torch", "sklearn", "onnx")
"""Import names `train` needs beyond the runtime (the `train` extra)."""
TRAIN_INSTALL = "pip install torch==2.13.0 'mertag[train]'"

# Typer offers an Enum's values as the choices of an option.
Arch = Enum("Arch", {name: name for name in ARCHS}, type=str)  # type: ignore[misc]
FeatureSet = Enum("FeatureSet", {name: name for name in FEATURE_SETS}, type=str)  # type: ignore[misc]

JobsOption = Annotated[
    int,
    typer.Option("--jobs", "-j", help="Worker processes for extraction/analysis (-1: all cores)."),
]
ProgressOption = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show progress bars on stderr.")
]


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _fail(message: str) -> typer.Exit:
    _err(f"mertag: error: {message}")
    return typer.Exit(EXIT_USAGE)


def _refuse_foreign_outputs(paths: list[Path], overwrite: bool) -> None:
    """Before any work: a file of the user's at an output path is one line and exit 2 (a file
    mertag wrote there, a model or report of its own, is replaced as before)."""
    try:
        for path in paths:
            check_replaceable(path, overwrite)
    except OutputExists as exc:
        raise _fail(f"{display(exc.path)}: {exc}") from exc


def _report_problems(problems: list) -> None:
    for problem in problems:
        _err(f"skipped {display(problem.name)}: {problem.reason}")
    if problems:
        _err(f"{len(problems)} row(s) skipped")


def missing_train_modules() -> list[str]:
    """The modules of the `train` extra that are not installed."""
    return [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]


def train(
    data: Annotated[Path, typer.Argument(help="Folder with Q1..Q4 subfolders, or a labels CSV.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the trained model here (.onnx).")
    ] = None,
    arch: Annotated[
        Arch, typer.Option("--arch", help="Sequence architecture of the exported model.")
    ] = Arch["lstm"],
    features: Annotated[
        FeatureSet, typer.Option("--features", help="Feature columns the model uses.")
    ] = FeatureSet["both"],
    folds: Annotated[
        int, typer.Option("--folds", min=0, help="Cross-validation folds (0: no CV).")
    ] = 5,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = 30,
    ensemble: Annotated[
        int,
        typer.Option("--ensemble", min=1, help="Nets trained from different seeds, averaged."),
    ] = 5,
    linear_weight: Annotated[
        float,
        typer.Option(
            "--linear-weight",
            min=0.0,
            max=0.99,
            help="Weight of a logistic regression on pooled features beside the nets (0: none).",
        ),
    ] = 0.3,
    mood_words_weight: Annotated[
        float,
        typer.Option(
            "--mood-words-weight",
            min=0.0,
            help="Also learn the clips' mood words (a CSV 'moods' column), with this weight "
            "beside the quadrant loss (0: off; ignored without mood words).",
        ),
    ] = MOOD_WORDS_WEIGHT,
    va_weight: Annotated[
        float,
        typer.Option(
            "--va-weight",
            min=0.0,
            help="Also learn graded valence/arousal from the clips' mood words with this weight "
            "(a regression head the exported model keeps as a second output; 0: off).",
        ),
    ] = VA_WEIGHT,
    seed: Annotated[int, typer.Option("--seed", help="Seed for folds and training.")] = 0,
    augment: Annotated[
        bool,
        typer.Option(
            "--augment/--no-augment",
            help="Add augmented copies of training clips (training folds only).",
        ),
    ] = True,
    augmentations: Annotated[
        str | None,
        typer.Option(
            "--augmentations",
            help="Which copies to make, comma-separated (noise, shift, pitch, offset, degrade; "
            "default: offset,noise,pitch,shift, the shipped recipe).",
        ),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare/--no-compare",
            help="Cross-validate every architecture and baseline on every feature set.",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write the CV table here (markdown, plus .json beside it)."),
    ] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Feature cache folder (default: user cache).")
    ] = None,
    genre_cv: Annotated[
        bool,
        typer.Option(
            "--genre-cv/--no-genre-cv",
            help="Also cross-validate under folds grouped by genre family (the CSV's genres).",
        ),
    ] = False,
    companion: Annotated[
        str | None,
        typer.Option(
            "--companion",
            help="Shipped model (default, fast) the exported one hands snippet tracks to.",
        ),
    ] = None,
    fold_models: Annotated[
        Path | None,
        typer.Option(
            "--fold-models",
            help="Folder for each CV fold's model and the out-of-fold probabilities "
            "(fold<k>.onnx, folds.json; files of yours there are refused unless --overwrite; "
            "mertag's fold models of an earlier run with more folds are removed).",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    jobs: JobsOption = -1,
    progress: ProgressOption = True,
) -> None:
    """Cross-validate a mood model on labelled clips, then train it on all of them and export it."""
    missing = missing_train_modules()
    if missing:
        raise _fail(
            f"mertag train needs the train extra ({', '.join(missing)} missing): {TRAIN_INSTALL}"
        )
    if folds == 1:
        raise _fail("--folds must be 0 (no cross-validation) or at least 2")
    if output is None and report is None and not compare and folds == 0:
        raise _fail("nothing to do: give --output, --report, --compare or --folds")
    from mertag.models import PACKAGED_MODELS

    if companion is not None and companion not in PACKAGED_MODELS:
        raise _fail(f"--companion must be one of {', '.join(PACKAGED_MODELS)}, not {companion!r}")
    if fold_models is not None and folds < 2:
        raise _fail("--fold-models needs cross-validation (--folds 2 or more)")
    from mertag.trainer.augment import augmentations as pick_augmentations
    from mertag.trainer.dataset import DatasetError
    from mertag.trainer.fit import FitConfig
    from mertag.trainer.train import fold_model_paths, report_paths
    from mertag.trainer.train import train as run_training

    outputs = [] if output is None else [output]
    outputs += [] if report is None else report_paths(report)
    if fold_models is not None:
        if fold_models.exists() and not fold_models.is_dir():
            raise _fail(f"{display(fold_models)}: --fold-models must be a folder, not a file")
        outputs += fold_model_paths(fold_models, folds)
    _refuse_foreign_outputs(outputs, overwrite)

    try:
        copies = pick_augmentations(augmentations)
    except ValueError as exc:
        raise _fail(str(exc)) from exc

    config = FitConfig(
        arch=arch.value,
        features=features.value,
        epochs=epochs,
        seed=seed,
        ensemble=ensemble,
        linear_weight=linear_weight,
        mood_words_weight=mood_words_weight,
        va_weight=va_weight,
    )
    try:
        result = run_training(
            data,
            output,
            config,
            folds=folds,
            augment=augment,
            compare_all=compare,
            report=report,
            cache_dir=cache,
            n_jobs=jobs,
            progress=progress,
            genre_cv=genre_cv,
            companion=companion,
            fold_models=fold_models,
            augmentations=copies,
        )
    except DatasetError as exc:
        raise _fail(str(exc)) from exc
    _report_problems(result.problems)
    _err(
        f"{result.n_clips} clips; features: {result.cache_hits} from cache, "
        f"{result.computed} computed"
    )
    for r in result.results:
        s = r.summary()
        typer.echo(
            f"{s['model']:<13}{s['features']:<9}macro-F1 {s['macro_f1_mean']:.3f} ± "
            f"{s['macro_f1_std']:.3f}  accuracy {s['accuracy_mean']:.3f} ± {s['accuracy_std']:.3f}"
        )
    if result.genre is not None:
        g = result.genre.summary()
        typer.echo(
            f"genre-family folds: macro-F1 {g['macro_f1_mean']:.3f} ± {g['macro_f1_std']:.3f}"
            f"  accuracy {g['accuracy_mean']:.3f} ± {g['accuracy_std']:.3f}"
        )
    if result.calibration is not None:
        c = result.calibration
        raw = c["out_of_fold"]["raw"]
        cal = c["out_of_fold"]["calibrated_cross_fitted"]
        typer.echo(
            f"calibration: temperature {c['temperature']:.3f}; out of fold ECE "
            f"{raw['ece']:.3f} -> {cal['ece']:.3f}, NLL {raw['nll']:.3f} -> {cal['nll']:.3f}, "
            f"Brier {raw['brier']:.3f} -> {cal['brier']:.3f}; uncertain below "
            f"{c['uncertain_below']:.2f} ({1 - c['out_of_fold']['certain_share']:.0%} of clips)"
        )
    for path in result.report_paths:
        _err(f"wrote {display(path)}")
    for path in result.stale_fold_models:
        _err(f"removed {display(path)}: a fold model of an earlier run with more folds")
    if result.model_path is not None:
        typer.echo(f"model {result.model_id} written to {display(result.model_path)}")
    raise typer.Exit(EXIT_FAILED if result.problems else EXIT_OK)


def evaluate(
    data: Annotated[Path, typer.Argument(help="Folder with Q1..Q4 subfolders, or a labels CSV.")],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="The mertag ONNX model to test, or a shipped one by name (default, fast).",
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the scores here as JSON.")
    ] = None,
    overwrite: OverwriteOption = False,
    jobs: JobsOption = -1,
    progress: ProgressOption = True,
) -> None:
    """Score a model on labelled clips through the same path `mertag scan` uses."""
    _refuse_foreign_outputs([] if report is None else [report], overwrite)
    import json

    from mertag.tagger.model import ModelError
    from mertag.tagger.playlist import write_text_atomic
    from mertag.trainer.dataset import DatasetError
    from mertag.trainer.evaluate import evaluate as run_evaluation
    from mertag.trainer.metrics import format_scores

    try:
        result = run_evaluation(data, model, n_jobs=jobs, progress=progress)
    except (DatasetError, ModelError) as exc:
        raise _fail(str(exc)) from exc
    _report_problems(result.problems)
    typer.echo(f"model {result.model_id} on {len(result.names)} clips")
    typer.echo(format_scores(result.scores))
    c = result.calibration()
    typer.echo(
        f"\ncalibration: ECE {c['ece']:.3f}, NLL {c['nll']:.3f}, Brier {c['brier']:.3f}, "
        f"mean confidence {c['mean_confidence']:.3f}; uncertain {c['uncertain_share']:.1%}, "
        f"accuracy of the others {c['certain_accuracy']:.3f}"
    )
    if report is not None:
        payload = {
            **REPORT_MARK,
            "model_id": result.model_id,
            "n_clips": len(result.names),
            "skipped": [str(p) for p in result.problems],
            **result.scores.as_dict(),
            "calibration": c,
        }
        write_text_atomic(report, json.dumps(payload, indent=2) + "\n")
        _err(f"wrote {display(report)}")
    raise typer.Exit(EXIT_FAILED if result.problems else EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add `train` and `evaluate` to `app` (the `mertag.commands` entry point)."""
    app.command()(train)
    app.command()(evaluate)
