"""Folds: stratified, never splitting a group, the same for the same seed."""

from __future__ import annotations

import numpy as np

from mertag.trainer.folds import make_folds


def test_groups_stay_whole_and_every_clip_is_tested_once():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 30, 200)
    labels = groups % 4  # one quadrant per artist, as on 4Q
    folds = make_folds(labels, groups, 5, seed=0)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(200))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert set(labels[test]) == {0, 1, 2, 3}


def test_same_seed_same_folds():
    labels = np.arange(40) % 4
    groups = np.arange(40) // 2
    a, b = make_folds(labels, groups, 4, 7), make_folds(labels, groups, 4, 7)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
