"""Cross-validation on synthetic feature tables: no audio, so it runs in seconds."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

import mertag.trainer.compare as compare  # noqa: E402
from mertag.tagger.features import FEATURE_DIM  # noqa: E402
from mertag.trainer.compare import Candidate, cross_validate, report_markdown, run_fold  # noqa: E402
from mertag.trainer.fit import FitConfig  # noqa: E402
from mertag.trainer.folds import make_folds  # noqa: E402
from mertag.trainer.table import FeatureTable  # noqa: E402

CONFIG = FitConfig(epochs=3, hidden=8)


def table(n_per_class: int = 6, copies: int = 1, seed: int = 0) -> FeatureTable:
    """Clips with one clean sequence and `copies` augmented ones; class shows in a few columns."""
    rng = np.random.default_rng(seed)
    rows, start, length, clip, variant = [], [], [], [], []
    labels = np.repeat(np.arange(4), n_per_class)
    offset = 0
    for c, label in enumerate(labels):
        for v in range(1 + copies):
            n = 3
            x = rng.normal(size=(n, FEATURE_DIM)).astype(np.float32)
            x[:, label] += 3
            x[:, 300 + label] += 3
            rows.append(x)
            start.append(offset)
            length.append(n)
            clip.append(c)
            variant.append(v)
            offset += n
    return FeatureTable(
        patches=np.concatenate(rows),
        start=np.array(start),
        length=np.array(length),
        clip=np.array(clip),
        variant=np.array(variant),
        labels=labels,
        groups=np.arange(len(labels)) // 2,
        names=tuple(str(i) for i in range(len(labels))),
        variants=("clean",) + tuple(f"aug{i}" for i in range(copies)),
    )


def test_augmented_copies_of_test_clips_never_reach_training(monkeypatch):
    t = table()
    train, test = make_folds(t.labels, t.groups, 2, seed=0)[0]
    # Poison every augmented copy of the test clips: NaN would break any model trained on them.
    poisoned = np.isin(t.clip, test) & (t.variant > 0)
    for r in np.flatnonzero(poisoned):
        t.patches[t.start[r] : t.start[r] + t.length[r]] = np.nan
    seen = []
    real_fit = compare.fit_model

    def spy(sequences, labels, config, on_epoch=None, words=None, va=None):
        seen.extend(sequences)
        return real_fit(sequences, labels, config, on_epoch, words, va)

    monkeypatch.setattr(compare, "fit_model", spy)
    for model in ("lstm", "logreg"):
        predicted = run_fold(t, Candidate(model, "both"), train, test, CONFIG, True, seed=1)
        assert predicted.shape == (len(test), 4)
    assert seen and all(np.isfinite(s).all() for s in seen)
    assert len(seen) == 2 * len(train)  # clean + one copy of each training clip


def test_same_seed_same_numbers_and_report():
    t = table()
    folds = make_folds(t.labels, t.groups, 2, seed=0)
    cands = [Candidate("rnn", "musicnn"), Candidate("knn", "librosa")]
    a = cross_validate(t, folds, cands, CONFIG, augment=True)
    b = cross_validate(t, folds, cands, CONFIG, augment=True)
    assert [r.summary() for r in a] == [r.summary() for r in b]
    assert all(len(r.accuracy) == 2 and (r.predictions >= 0).all() for r in a)
    text = report_markdown(a, {"n_clips": t.n_clips, "folds": 2, "seed": 0})
    assert "| rnn | net | musicnn |" in text and "| knn | baseline | librosa |" in text


def test_every_candidate_gives_out_of_fold_distributions():
    t = table()
    folds = make_folds(t.labels, t.groups, 2, seed=0)
    cands = [Candidate(m, "librosa") for m in ("linsvm", "rbfsvm", "knn")]  # SVMs: one-hot
    for r in cross_validate(t, folds, cands, CONFIG, augment=True):
        assert r.probabilities is not None and r.probabilities.shape == (t.n_clips, 4)
        np.testing.assert_allclose(r.probabilities.sum(axis=1), 1.0, atol=1e-9)
        assert (r.probabilities.argmax(axis=1) == r.predictions).all()
