"""Training loop for the sequence models: Adam with weight decay, dropout, class-balanced loss,
a fixed number of epochs (no early stopping, so the final model trained on all clips sees exactly
what each cross-validation model saw), batches of equal-length sequences (no padding, which would
leak into the backward direction of a bidirectional layer). Deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import torch
from torch import nn

from mertag.trainer.choices import feature_columns
from mertag.trainer.mood_words import MIN_CLIPS
from mertag.trainer.mood_words import WEIGHT as MOOD_WORDS_WEIGHT
from mertag.trainer.nets import MoodNet
from mertag.trainer.valence_arousal import MIN_CLIPS as VA_MIN_CLIPS
from mertag.trainer.valence_arousal import WEIGHT as VA_WEIGHT

if TYPE_CHECKING:
    from mertag.trainer.table import FeatureTable


@dataclass(frozen=True)
class FitConfig:
    """How to train a model. The defaults are the shipped model's (models/MODEL_CARD.md);
    input dropout, label smoothing and mixup are off because they did not help on 4Q."""

    arch: str = "lstm"
    features: str = "both"
    epochs: int = 30
    hidden: int = 64
    dropout: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    seed: int = 0
    input_dropout: float = 0.0
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(mixup, mixup) mixing weight between clips of a batch; 0: off
    ensemble: int = 5  # nets trained from different seeds, averaged (mertag.trainer.ensemble)
    linear_weight: float = 0.3  # weight of a pooled logistic-regression head beside them
    mood_words_weight: float = MOOD_WORDS_WEIGHT  # the mood-word loss beside the quadrant; 0: off
    mood_words_min: int = MIN_CLIPS  # training clips a mood word needs to be a target
    va_weight: float = VA_WEIGHT  # the valence/arousal regression loss beside them; 0: no head
    va_min: int = VA_MIN_CLIPS  # training clips a mood word needs for a valence/arousal position


def make_deterministic(seed: int, threads: int = 1) -> None:
    """Seed torch and pin it to deterministic kernels and a fixed thread count."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


def column_stats(sequences: Sequence[np.ndarray], features: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over all patches of the training sequences, for the feature set's columns."""
    stacked = np.concatenate([s[:, feature_columns(features)] for s in sequences]).astype(
        np.float64
    )
    return stacked.mean(axis=0).astype(np.float32), stacked.std(axis=0).astype(np.float32)


def class_weights(labels: np.ndarray, n_classes: int = 4) -> np.ndarray:
    """Inverse-frequency weights, 1 on average over the samples (sklearn's 'balanced')."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)


def _length_index(sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The indices of the sequences of each distinct length, in length order."""
    lengths = np.array([len(s) for s in sequences])
    return [np.flatnonzero(lengths == length) for length in np.unique(lengths)]


def _stacked(sequences: Sequence[np.ndarray], idx: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([sequences[int(i)] for i in idx]).astype(np.float32))


def _by_length(
    sequences: Sequence[np.ndarray], labels: np.ndarray
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One (x, y) pair of stacked tensors per distinct sequence length, in length order."""
    return [
        (_stacked(sequences, idx), torch.from_numpy(labels[idx].astype(np.int64)))
        for idx in _length_index(sequences)
    ]


def fit_net(
    sequences: Sequence[np.ndarray],
    labels: np.ndarray,
    config: FitConfig,
    on_epoch: Callable[[int, float], None] | None = None,
    words: np.ndarray | None = None,
    va: np.ndarray | None = None,
) -> MoodNet:
    """Train a MoodNet on sequences (raw feature rows) and their labels (0..3). With mood-word
    targets `words` (one multi-hot row per sequence) and a `mood_words_weight`, a second head on
    the pooled representation learns them too (binary cross-entropy times the weight, added to
    the quadrant loss; not combined with mixup); it is dropped afterwards, so the net's outputs
    stay the quadrants'. With valence/arousal targets `va` (one row per sequence, NaN: none) and
    a `va_weight`, a regression head (tanh of a linear layer on the same pooled representation)
    learns them with mean squared error times the weight; it is kept as the net's `va_head`."""
    make_deterministic(config.seed)
    rng = np.random.default_rng(config.seed)
    mean, std = column_stats(sequences, config.features)
    net = MoodNet(
        config.arch,
        config.features,
        mean,
        std,
        config.hidden,
        config.dropout,
        config.input_dropout,
    )
    groups = _by_length(sequences, labels)
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.as_tensor(class_weights(labels), dtype=torch.float32),
        label_smoothing=config.label_smoothing,
    )
    word_head, word_groups = None, None
    if (
        words is not None
        and words.shape[1] > 0
        and config.mood_words_weight > 0
        and not config.mixup
    ):
        word_head = nn.Linear(net.pooled_width, words.shape[1])
        word_groups = [
            torch.from_numpy(words[idx].astype(np.float32)) for idx in _length_index(sequences)
        ]
    word_loss = nn.BCEWithLogitsLoss()
    va_head, va_groups = None, None
    if va is not None and config.va_weight > 0 and not config.mixup and np.isfinite(va).any():
        va_head = nn.Linear(net.pooled_width, 2)
        va_groups = [
            torch.from_numpy(va[idx].astype(np.float32)) for idx in _length_index(sequences)
        ]
    va_loss = nn.MSELoss()
    params = list(net.parameters())
    for extra in (word_head, va_head):
        params += list(extra.parameters()) if extra is not None else []
    optimiser = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    net.train()
    for epoch in range(config.epochs):
        batches = []
        for g, (x, _) in enumerate(groups):
            order = rng.permutation(len(x))
            batches += [
                (g, order[i : i + config.batch_size])
                for i in range(0, len(order), config.batch_size)
            ]
        total = 0.0
        for b in rng.permutation(len(batches)):
            g, idx = batches[b]
            x, y = groups[g]
            index = torch.from_numpy(idx)
            optimiser.zero_grad()
            xb, yb = x[index], y[index]
            if config.mixup > 0 and len(idx) > 1:
                lam = float(rng.beta(config.mixup, config.mixup))
                perm = torch.from_numpy(rng.permutation(len(idx)))
                logits = net.logits(lam * xb + (1 - lam) * xb[perm])
                loss = lam * loss_fn(logits, yb) + (1 - lam) * loss_fn(logits, yb[perm])
            elif word_head is not None or va_head is not None:
                pooled = net.pooled(xb)
                loss = loss_fn(net.head(pooled), yb)
                if word_head is not None and word_groups is not None:
                    loss = loss + config.mood_words_weight * word_loss(
                        word_head(pooled), word_groups[g][index]
                    )
                if va_head is not None and va_groups is not None:
                    target = va_groups[g][index]
                    known = torch.isfinite(target[:, 0])
                    if bool(known.any()):
                        predicted = torch.tanh(va_head(pooled))
                        loss = loss + config.va_weight * va_loss(predicted[known], target[known])
            else:
                loss = loss_fn(net.logits(xb), yb)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        if on_epoch is not None:
            on_epoch(epoch, total / len(labels))
    net.va_head = va_head
    net.eval()
    return net


@torch.no_grad()
def _predict(
    output: Callable[[torch.Tensor], torch.Tensor], sequences: Sequence[np.ndarray], width: int
) -> np.ndarray:
    """`output` of every sequence, (len(sequences), width), batching sequences of equal length."""
    out = np.empty((len(sequences), width), dtype=np.float32)
    for idx in _length_index(sequences):
        out[idx] = output(_stacked(sequences, idx)).numpy()
    return out


def predict_net(net: nn.Module, sequences: Sequence[np.ndarray]) -> np.ndarray:
    """Probabilities (len(sequences), 4)."""
    net.eval()
    return _predict(net, sequences, 4)


def predict_va(net: nn.Module, sequences: Sequence[np.ndarray]) -> np.ndarray:
    """(len(sequences), 2) valence and arousal from a net's (or ensemble's) regression head."""
    net.eval()
    return _predict(net.valence_arousal, sequences, 2)  # type: ignore[arg-type]


class HeadTargets(TypedDict):
    """fit_model's targets beside the quadrant: mood words and valence/arousal (None: no head)."""

    words: np.ndarray | None
    va: np.ndarray | None


def head_targets(
    table: FeatureTable, train: np.ndarray, rows: np.ndarray, config: FitConfig
) -> HeadTargets:
    """The second heads' targets of the training sequences `rows` (fit_model's `words` and
    `va`), learnt from the `train` clips only, for the heads `config` asks for."""
    words = va = None
    if config.mood_words_weight > 0:
        words = table.word_targets(train, rows, config.mood_words_min)
    if config.va_weight > 0:
        targets = table.va_targets(train, config.va_min)
        va = None if targets is None else targets[table.clip[rows]]
    return {"words": words, "va": va}
