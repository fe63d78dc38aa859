"""Cross-validation of sequence models and baselines under the same folds, and its report.

Every (model, feature set, fold) is one task with its own seed (the run's seed plus the fold), so
results are identical whatever the number of parallel jobs. Augmented copies of a clip join the
training set only when the clip itself is in the training part of the fold; test clips are always
the clean audio. A clip's prediction from a sequence model is the mean of its excerpts'
probabilities, as in `mertag scan`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mertag.tagger.mood import QUADRANTS
from mertag.tagger.output_files import REPORT_MARK, REPORT_TITLE
from mertag.trainer.baselines import make_baseline, pooled
from mertag.trainer.choices import ARCHS, BASELINES, COMPARED_FEATURE_SETS
from mertag.trainer.ensemble import ensemble_name, fit_model
from mertag.trainer.fit import FitConfig, head_targets, predict_net, predict_va
from mertag.trainer.metrics import score
from mertag.trainer.progress import track
from mertag.trainer.table import FeatureTable


@dataclass(frozen=True)
class Candidate:
    """One model to cross-validate: a sequence architecture (one net, or an ensemble of
    `ensemble` nets from different seeds, with a pooled linear head of weight `linear_weight`
    when that is not 0) or a baseline, on a feature set."""

    model: str
    features: str
    ensemble: int = 1
    linear_weight: float = 0.0

    @property
    def kind(self) -> str:
        return "net" if self.model in ARCHS else "baseline"

    @property
    def name(self) -> str:
        return ensemble_name(self.model, self.ensemble, self.linear_weight > 0)


def all_candidates(
    archs: Sequence[str] = tuple(ARCHS),
    baselines: Sequence[str] = BASELINES,
    feature_sets: Sequence[str] = COMPARED_FEATURE_SETS,
) -> list[Candidate]:
    return [Candidate(m, f) for m in (*archs, *baselines) for f in feature_sets]


@dataclass
class CVResult:
    """Per-fold scores of one candidate and its out-of-fold prediction for every clip."""

    candidate: Candidate
    accuracy: list[float] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    predictions: np.ndarray | None = None  # per clip, class index
    probabilities: np.ndarray | None = None  # per clip (n_clips, 4); one-hot for estimators
    # without probabilities (the SVMs)
    fold_models: list | None = None  # per fold, the trained net (when asked to keep them)
    valence_arousal: np.ndarray | None = None  # per clip (n_clips, 2), from nets trained with a
    # valence/arousal head (the clip's mean over its sequences, as the probabilities)

    def summary(self) -> dict:
        return {
            "model": self.candidate.name,
            "kind": self.candidate.kind,
            "features": self.candidate.features,
            "accuracy_mean": float(np.mean(self.accuracy)),
            "accuracy_std": float(np.std(self.accuracy)),
            "macro_f1_mean": float(np.mean(self.macro_f1)),
            "macro_f1_std": float(np.std(self.macro_f1)),
            "folds": {"accuracy": self.accuracy, "macro_f1": self.macro_f1},
        }


def fold_seed(seed: int, fold: int) -> int:
    return seed + 1000 * (fold + 1)


def _clip_mean(probs: np.ndarray, clip_of: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Mean probabilities per clip (in `clips` order) over that clip's sequences."""
    position = {int(c): i for i, c in enumerate(clips)}
    where = np.array([position[int(c)] for c in clip_of])
    sums = np.zeros((len(clips), probs.shape[1]))
    np.add.at(sums, where, probs)
    return sums / np.bincount(where, minlength=len(clips))[:, None]


def _pooled_by(
    table: FeatureTable, rows: np.ndarray, features: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled vectors per (clip, variant) among `rows`, and each one's clip index."""
    keys = sorted({(int(table.clip[r]), int(table.variant[r])) for r in rows})
    members: dict[tuple[int, int], list[int]] = {k: [] for k in keys}
    for r in rows:
        members[(int(table.clip[r]), int(table.variant[r]))].append(int(r))
    x = np.stack([pooled(table.sequences(members[k]), features) for k in keys])
    return x, np.array([k[0] for k in keys])


def run_fold(
    table: FeatureTable,
    candidate: Candidate,
    train: np.ndarray,
    test: np.ndarray,
    config: FitConfig,
    augment: bool,
    seed: int,
    keep: list | None = None,
) -> np.ndarray:
    """Train on the `train` clips (a sequence model is appended to `keep` when given), return
    probabilities (len(test), 4) for the `test` clips:
    a clip's mean over its sequences for a sequence model (as `mertag scan`); one-hot for a
    baseline that has no probabilities."""
    train_rows = table.rows(train, augmented=augment)
    test_rows = table.rows(test, augmented=False)
    if candidate.kind == "net":
        cfg = replace(
            config,
            arch=candidate.model,
            features=candidate.features,
            seed=seed,
            ensemble=candidate.ensemble,
            linear_weight=candidate.linear_weight,
        )
        net = fit_model(
            table.sequences(train_rows),
            table.labels[table.clip[train_rows]],
            cfg,
            **head_targets(table, train, train_rows, cfg),
        )
        if keep is not None:
            keep.append(net)
        probs = predict_net(net, table.sequences(test_rows))
        return _clip_mean(probs, table.clip[test_rows], test)
    x_train, clip_train = _pooled_by(table, train_rows, candidate.features)
    x_test, clip_test = _pooled_by(table, test_rows, candidate.features)
    model = make_baseline(candidate.model, seed)
    model.fit(x_train, table.labels[clip_train])
    if hasattr(model, "predict_proba"):
        proba = np.zeros((len(x_test), 4))
        proba[:, model.classes_] = model.predict_proba(x_test)
    else:
        proba = np.eye(4)[model.predict(x_test)]
    order = {int(c): i for i, c in enumerate(clip_test)}
    return np.stack([proba[order[int(c)]] for c in test])


def _task(
    table: FeatureTable,
    candidate: Candidate,
    fold: int,
    train: np.ndarray,
    test: np.ndarray,
    config: FitConfig,
    augment: bool,
    keep: bool = False,
) -> tuple[Candidate, int, np.ndarray, np.ndarray, np.ndarray | None, object]:
    kept: list = []
    probs = run_fold(
        table, candidate, train, test, config, augment, fold_seed(config.seed, fold), kept
    )
    va = None
    if kept and getattr(kept[0], "has_valence_arousal", False):
        test_rows = table.rows(test, augmented=False)
        va = _clip_mean(
            predict_va(kept[0], table.sequences(test_rows)), table.clip[test_rows], test
        )
    return candidate, fold, test, probs, va, (kept[0] if keep and kept else None)


def cross_validate(
    table: FeatureTable,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    candidates: Sequence[Candidate],
    config: FitConfig,
    augment: bool,
    n_jobs: int = 1,
    progress: bool = False,
    keep_models: Candidate | None = None,
) -> list[CVResult]:
    """Scores of every candidate on every fold, in candidate order; the fold models of
    `keep_models` (a sequence model) are kept in its result's `fold_models`."""
    from joblib import Parallel, delayed

    jobs = [
        delayed(_task)(table, cand, k, train, test, config, augment, cand == keep_models)
        for cand in candidates
        for k, (train, test) in enumerate(folds)
    ]
    results: Iterable = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs)
    results = track(results, len(jobs), "Cross-validating", progress)
    by_fold: dict[tuple[Candidate, int], tuple[np.ndarray, np.ndarray]] = {}
    va_by_fold: dict[tuple[Candidate, int], np.ndarray | None] = {}
    nets: dict[tuple[Candidate, int], object] = {}
    for cand, k, test, probs, va, net in results:
        by_fold[(cand, k)] = (test, probs)
        va_by_fold[(cand, k)] = va
        nets[(cand, k)] = net
    out = []
    for cand in candidates:
        predictions = np.full(table.n_clips, -1, dtype=np.int64)
        probabilities = np.full((table.n_clips, 4), np.nan)
        result = CVResult(cand, predictions=predictions, probabilities=probabilities)
        for k in range(len(folds)):
            test, probs = by_fold[(cand, k)]
            predicted = probs.argmax(axis=1)
            s = score(table.labels[test], predicted)
            result.accuracy.append(s.accuracy)
            result.macro_f1.append(s.macro_f1)
            predictions[test] = predicted
            probabilities[test] = probs
            va = va_by_fold[(cand, k)]
            if va is not None:
                if result.valence_arousal is None:
                    result.valence_arousal = np.full((table.n_clips, 2), np.nan)
                result.valence_arousal[test] = va
        if cand == keep_models:
            result.fold_models = [nets[(cand, k)] for k in range(len(folds))]
        out.append(result)
    return out


def report_json(results: Sequence[CVResult], meta: dict) -> str:
    return json.dumps(
        {
            **REPORT_MARK,
            **meta,
            "labels": list(QUADRANTS),
            "results": [r.summary() for r in results],
        },
        indent=2,
    )


def report_markdown(results: Sequence[CVResult], meta: dict) -> str:
    """A markdown table, best macro-F1 first; std is over folds."""
    lines = [
        REPORT_TITLE,
        "",
        f"{meta.get('n_clips')} clips from `{meta.get('data')}`, {meta.get('folds')}-fold "
        f"StratifiedGroupKFold ({meta.get('grouping')}), seed {meta.get('seed')}, "
        f"{meta.get('epochs')} epochs for sequence models, augmentation "
        f"{'on' if meta.get('augment') else 'off'}. Mean ± std over folds.",
        "",
        "| model | kind | features | macro-F1 | accuracy |",
        "|---|---|---|---|---|",
    ]
    rows = sorted((r.summary() for r in results), key=lambda s: -s["macro_f1_mean"])
    for s in rows:
        lines.append(
            f"| {s['model']} | {s['kind']} | {s['features']} | "
            f"{s['macro_f1_mean']:.3f} ± {s['macro_f1_std']:.3f} | "
            f"{s['accuracy_mean']:.3f} ± {s['accuracy_std']:.3f} |"
        )
    return "\n".join(lines) + "\n"
