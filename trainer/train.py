"""`mertag train` as one function: load data, extract (cached), cross-validate, fit, export, report.

Cross-validation measures the chosen architecture (or, with `compare_all`, every architecture and
baseline on every feature set under the same folds); the exported model is then trained on all
usable clips with the same settings, so the numbers in its training summary describe it. The
chosen model's out-of-fold probabilities give its calibration (temperature and uncertain
threshold, `mertag.trainer.calibrate`), stored in the exported file; with `genre_cv` it is also
cross-validated under folds grouped by genre family, to measure the genre shortcut.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mertag import __version__
from mertag.tagger.model_names import onnx_metadata
from mertag.tagger.output_files import REPORT_MARK, written_by_mertag
from mertag.tagger.playlist import write_text_atomic
from mertag.trainer.augment import AUGMENTATIONS, Augmentation
from mertag.trainer.cache import default_cache_dir
from mertag.trainer.calibrate import calibration_report
from mertag.trainer.compare import (
    Candidate,
    CVResult,
    all_candidates,
    cross_validate,
    report_json,
    report_markdown,
)
from mertag.trainer.dataset import Problem, check_usable, load_dataset
from mertag.trainer.ensemble import fit_model
from mertag.trainer.export import export_onnx
from mertag.trainer.extract import extract_clips
from mertag.trainer.fit import FitConfig, head_targets
from mertag.trainer.folds import make_folds
from mertag.trainer.progress import counter
from mertag.trainer.table import FeatureTable, build_table
from mertag.trainer.valence_arousal import MIN_CLIPS as VA_MIN_CLIPS


@dataclass
class TrainResult:
    """What a training run produced; `problems` are the clips and rows it skipped."""

    n_clips: int
    problems: list[Problem] = field(default_factory=list)
    results: list[CVResult] = field(default_factory=list)
    chosen: CVResult | None = None
    model_path: Path | None = None
    model_id: str | None = None
    report_paths: list[Path] = field(default_factory=list)
    cache_hits: int = 0
    computed: int = 0
    calibration: dict | None = None
    genre: CVResult | None = None
    """The chosen candidate under folds grouped by genre family (`genre_cv`)."""
    stale_fold_models: list[Path] = field(default_factory=list)
    """The fold models of an earlier run with more folds, removed from the `fold_models`
    folder (`stale_fold_models`)."""


def report_paths(path: Path) -> list[Path]:
    """The files a report at `path` is: the markdown and the JSON beside it, or the JSON alone
    when `path` ends in .json (JSON last)."""
    json_path = path.with_suffix(".json")
    return [json_path] if path.suffix.lower() == ".json" else [path, json_path]


def _fold_model_name(k: int) -> str:
    return f"fold{k}.onnx"


def fold_model_paths(folder: Path, folds: int) -> list[Path]:
    """The files save_fold_models writes into `folder` for `folds` folds: each fold's model
    `fold<k>.onnx`, then `folds.json` (last)."""
    return [folder / _fold_model_name(k) for k in range(folds)] + [folder / "folds.json"]


def stale_fold_models(folder: Path, folds: int) -> list[Path]:
    """The fold models of an earlier run with more folds in `folder`: `fold<k>.onnx` for k of
    `folds` or more that mertag exported as that fold's model (`_is_fold_model`; a file of the
    user's of that name is not one), in fold order."""
    found: dict[int, Path] = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        number = path.name.removeprefix("fold").removesuffix(".onnx")
        if number.isascii() and number.isdigit() and path.name == _fold_model_name(int(number)):
            found[int(number)] = path
    return [found[k] for k in sorted(found) if k >= folds and _is_fold_model(found[k], k)]


def _is_fold_model(path: Path, k: int) -> bool:
    """Whether `path` is fold `k`'s model as save_fold_models exports it: a mertag model whose
    training summary is its fold number (not a model of the user's saved under that name)."""
    if not path.is_file() or not written_by_mertag(path):
        return False
    try:
        summary = json.loads(onnx_metadata(path).get("training_summary", "{}"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("fold") == k


def write_report(results: list[CVResult], meta: dict, path: Path) -> list[Path]:
    """Markdown to `path` and JSON beside it (or JSON only when `path` ends in .json), each
    written atomically: a kill mid-write leaves the report that was there whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    *markdown, json_path = paths = report_paths(path)
    write_text_atomic(json_path, report_json(results, meta) + "\n")
    for md in markdown:
        write_text_atomic(md, report_markdown(results, meta))
    return paths


def train(
    data: Path,
    output: Path | None = None,
    config: FitConfig | None = None,
    folds: int = 5,
    augment: bool = True,
    compare_all: bool = False,
    report: Path | None = None,
    cache_dir: Path | None = None,
    n_jobs: int = -1,
    progress: bool = False,
    genre_cv: bool = False,
    companion: str | None = None,
    fold_models: Path | None = None,
    augmentations: tuple[Augmentation, ...] = AUGMENTATIONS,
) -> TrainResult:
    """Train (and cross-validate) a mood model on DATA; raises DatasetError if data is unusable.

    `companion` names the shipped model (`mertag.models.PACKAGED_MODELS`) that the exported one
    hands its snippet tracks to; `fold_models` is a folder for each fold's model and the
    out-of-fold probabilities (bench/robustness.py reads them)."""
    config = config or FitConfig()
    dataset = load_dataset(data)
    check_usable(dataset.clips, folds)
    augmentations = augmentations if augment else ()
    augment = bool(augmentations)
    extraction = extract_clips(
        dataset.clips, cache_dir or default_cache_dir(), augmentations, n_jobs, progress
    )
    problems = dataset.problems + extraction.problems
    check_usable([c.clip for c in extraction.clips], folds)
    table = build_table(extraction)
    result = TrainResult(
        n_clips=table.n_clips,
        problems=problems,
        cache_hits=extraction.cache_hits,
        computed=extraction.computed,
    )

    meta = {
        "data": str(dataset.source),
        "n_clips": table.n_clips,
        "folds": folds,
        "grouping": dataset.grouping,
        "seed": config.seed,
        "epochs": config.epochs,
        "augment": [a.spec for a in augmentations],
        "config": asdict(config),
    }
    chosen = Candidate(config.arch, config.features, config.ensemble, config.linear_weight)
    if folds >= 2:
        splits = make_folds(table.labels, table.groups, folds, config.seed)
        candidates = all_candidates() if compare_all else []
        if chosen not in candidates:
            candidates.append(chosen)
        keep = chosen if fold_models is not None else None
        result.results = cross_validate(
            table, splits, candidates, config, augment, n_jobs, progress, keep
        )
        result.chosen = next(r for r in result.results if r.candidate == chosen)
        assert result.chosen.probabilities is not None
        result.calibration = calibration_report(result.chosen.probabilities, table.labels, splits)
        genre_splits = None
        if genre_cv and table.genre_groups is not None:
            if len(set(table.genre_groups.tolist())) >= folds:
                genre_splits = make_folds(table.labels, table.genre_groups, folds, config.seed)
                (result.genre,) = cross_validate(
                    table, genre_splits, [chosen], config, augment, n_jobs, progress
                )
        if report is not None:
            result.report_paths = write_report(result.results, meta, report)
        if fold_models is not None:
            save_fold_models(fold_models, result, table, splits, genre_splits, config.va_min)

    if output is not None:
        rows = table.rows(table.clip_indices(), augmented=augment)
        steps = config.epochs * config.ensemble
        with counter(steps, "Training final model", progress) as advance:
            net = fit_model(
                table.sequences(rows),
                table.labels[table.clip[rows]],
                config,
                on_epoch=lambda _epoch, _loss: advance(),
                **head_targets(table, table.clip_indices(), rows, config),
            )
        summary = training_summary(
            config,
            augmentations,
            table.n_clips,
            folds,
            result.chosen,
            dataset.grouping,
            result.genre,
        )
        summary["data"] = dataset.source.name
        result.model_id = export_onnx(net, output, summary, result.calibration, companion)
        result.model_path = output
    return result


def save_fold_models(
    folder: Path,
    result: TrainResult,
    table: FeatureTable,
    splits: list[tuple[np.ndarray, np.ndarray]],
    genre_splits: list[tuple[np.ndarray, np.ndarray]] | None,
    va_min: int = VA_MIN_CLIPS,
) -> None:
    """Each fold's model as `fold<k>.onnx` (uncalibrated), and `folds.json`: the held-out clip
    names per fold, the calibration, and every clip's out-of-fold probabilities (and, for nets
    with a valence/arousal head, its out-of-fold values and word targets). Then mertag's own
    fold models of an earlier run with more folds are removed, so the folder holds one set."""
    assert result.chosen is not None and result.chosen.fold_models is not None
    assert result.chosen.probabilities is not None  # CV ran: every clip has them
    folder.mkdir(parents=True, exist_ok=True)
    *models, folds_json = fold_model_paths(folder, len(result.chosen.fold_models))
    for k, (net, path) in enumerate(zip(result.chosen.fold_models, models, strict=True)):
        export_onnx(net, path, {"fold": k})
    payload = {
        **REPORT_MARK,  # first, so a later run knows the file for its own (output_files)
        "clips": list(table.names),
        "labels": table.labels.tolist(),
        "test_folds": [[int(i) for i in test] for _, test in splits],
        "genre_test_folds": None
        if genre_splits is None
        else [[int(i) for i in test] for _, test in genre_splits],
        "calibration": result.calibration,
        "oof_probabilities": result.chosen.probabilities.tolist(),
        "genre_oof_probabilities": None
        if result.genre is None or result.genre.probabilities is None
        else result.genre.probabilities.tolist(),
    }
    if result.chosen.valence_arousal is not None:
        # The head's out-of-fold (valence, arousal), and each clip's word target from the word
        # positions of its training folds (what the head is scored against; NaN: none).
        targets = np.full((table.n_clips, 2), np.nan)
        for train_clips, test in splits:
            fold_targets = table.va_targets(train_clips, va_min)
            if fold_targets is not None:
                targets[test] = fold_targets[test]
        payload["oof_valence_arousal"] = _nan_to_none(result.chosen.valence_arousal)
        payload["oof_va_targets"] = _nan_to_none(targets)
    write_text_atomic(folds_json, json.dumps(payload) + "\n")
    # Last, once folds.json names the new set: a fold model beyond it is an earlier run's.
    result.stale_fold_models = stale_fold_models(folder, len(models))
    for stale in result.stale_fold_models:
        stale.unlink(missing_ok=True)


def _nan_to_none(values: np.ndarray) -> list:
    """Rows of floats for JSON, with None for NaN (JSON has no NaN)."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]


def training_summary(
    config: FitConfig,
    augmentations: tuple[Augmentation, ...],
    n_clips: int,
    folds: int,
    cv: CVResult | None,
    grouping: str,
    genre: CVResult | None = None,
) -> dict:
    """The model's `training_summary` metadata (JSON-able)."""
    scores = cv.summary() if cv is not None else None
    genre_scores = genre.summary() if genre is not None else None
    return {
        "arch": config.arch,
        "ensemble": config.ensemble,
        "linear_weight": config.linear_weight,
        "features": config.features,
        "epochs": config.epochs,
        "seed": config.seed,
        "augment": [a.spec for a in augmentations],
        "n_clips": n_clips,
        "hyperparameters": {
            "hidden": config.hidden,
            "dropout": config.dropout,
            "lr": config.lr,
            "weight_decay": config.weight_decay,
            "batch_size": config.batch_size,
            "input_dropout": config.input_dropout,
            "label_smoothing": config.label_smoothing,
            "mixup": config.mixup,
            "mood_words_weight": config.mood_words_weight,
            "va_weight": config.va_weight,
            "pooling": "mean of recurrent outputs over time",
        },
        "cv": None
        if scores is None
        else {
            "folds": folds,
            "grouping": grouping,
            "macro_f1_mean": scores["macro_f1_mean"],
            "macro_f1_std": scores["macro_f1_std"],
            "accuracy_mean": scores["accuracy_mean"],
            "accuracy_std": scores["accuracy_std"],
            "genre_grouped": None
            if genre_scores is None
            else {
                "macro_f1_mean": genre_scores["macro_f1_mean"],
                "macro_f1_std": genre_scores["macro_f1_std"],
                "accuracy_mean": genre_scores["accuracy_mean"],
            },
        },
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "trainer_version": __version__,
    }
