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


def test_genre_folds_hold_out_whole_families_and_whole_artists():
    from mertag.trainer.folds import genre_family_groups

    rng = np.random.default_rng(2)
    artists = rng.integers(0, 60, 300)
    genres = [f"g{(a + (i % 7 == 0)) % 8}" for i, a in enumerate(artists)]  # a few strays
    families = genre_family_groups(genres, artists)
    for a in set(artists.tolist()):
        assert len(set(families[artists == a].tolist())) == 1
    labels = np.arange(300) % 4
    for train, test in make_folds(labels, families, 4, seed=0):
        assert not set(families[train]) & set(families[test])
        assert not set(artists[train]) & set(artists[test])
