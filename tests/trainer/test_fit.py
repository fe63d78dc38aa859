"""The training loop: learns a separable toy problem, and is reproducible for a fixed seed."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mertag.tagger.features import FEATURE_DIM, FEATURE_SETS  # noqa: E402
from mertag.trainer.export import weights_digest  # noqa: E402
from mertag.trainer.fit import FitConfig, class_weights, column_stats, fit_net, predict_net  # noqa: E402


def toy(n_per_class: int = 12, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Sequences of varied length whose class shows in a few columns, on an odd scale."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for label in range(4):
        for _ in range(n_per_class):
            x = rng.normal(size=(int(rng.integers(1, 6)), FEATURE_DIM)) * 50 + 7
            x[:, label * 3 : label * 3 + 3] += 200
            seqs.append(x.astype(np.float32))
            labels.append(label)
    return seqs, np.array(labels)


def test_learns_a_separable_problem():
    seqs, labels = toy()
    net = fit_net(seqs, labels, FitConfig(arch="lstm", epochs=15, hidden=16, seed=0))
    probs = predict_net(net, seqs)
    assert probs.shape == (len(seqs), 4)
    assert (probs.argmax(axis=1) == labels).mean() >= 0.9


def test_same_seed_same_weights_other_seed_other_weights():
    seqs, labels = toy(4)
    config = FitConfig(arch="birnn", epochs=2, hidden=8, seed=3)
    a = weights_digest(fit_net(seqs, labels, config))
    b = weights_digest(fit_net(seqs, labels, config))
    c = weights_digest(fit_net(seqs, labels, FitConfig(arch="birnn", epochs=2, hidden=8, seed=4)))
    assert a == b != c


def test_normalisation_uses_training_patches_of_the_chosen_columns():
    seqs = [np.full((2, FEATURE_DIM), 1.0, np.float32), np.full((1, FEATURE_DIM), 4.0, np.float32)]
    for name, (lo, hi) in FEATURE_SETS.items():
        mean, std = column_stats(seqs, name)
        assert mean.shape == (hi - lo,), name
        assert np.allclose(mean, 2.0) and np.allclose(std, np.sqrt(2.0))
    assert FEATURE_SETS["musicnn"][1] - FEATURE_SETS["musicnn"][0] == 500  # two networks


def test_class_weights_balance_the_classes():
    w = class_weights(np.array([0, 0, 0, 1, 2, 3]))
    assert w[0] * 3 == pytest.approx(w[1])


def test_mood_words_are_a_second_target_and_leave_the_outputs_alone():
    """A word head learns the words beside the quadrant, changes the training (so the quadrant
    net differs), and is dropped: the net's parameters and outputs are the quadrant net's."""
    seqs, labels = toy(6)
    rng = np.random.default_rng(1)
    words = (rng.random((len(seqs), 5)) < 0.4).astype(np.float32)
    base = FitConfig(arch="lstm", epochs=3, hidden=8, seed=2, mood_words_weight=0.0)
    with_words = FitConfig(arch="lstm", epochs=3, hidden=8, seed=2, mood_words_weight=0.5)
    plain = fit_net(seqs, labels, base, words=words)  # weight 0: the words are ignored
    assert weights_digest(plain) == weights_digest(fit_net(seqs, labels, base))
    multi = fit_net(seqs, labels, with_words, words=words)
    assert weights_digest(multi) != weights_digest(plain)
    names = {name for name, _ in multi.named_parameters()}
    assert names == {name for name, _ in plain.named_parameters()}
    assert predict_net(multi, seqs).shape == (len(seqs), 4)
    # No word common enough: nothing to learn beside the quadrant, the plain net again.
    empty = np.zeros((len(seqs), 0), np.float32)
    assert weights_digest(fit_net(seqs, labels, with_words, words=empty)) == weights_digest(plain)
