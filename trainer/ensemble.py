"""An in-graph ensemble: sequence nets trained alike from different seeds, averaged, optionally
beside a logistic regression on pooled features (mertag.trainer.linear).

Seeds change the initial weights, dropout masks and batch order; on 720 clips that alone moves a
single net's cross-validated macro-F1 by a few points, so averaging the members' probabilities
gives a steadier model than any one of them. The ensemble is one torch module, exported as one
ONNX graph with the same input and output as a single net.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import cast

import numpy as np
import torch
from torch import nn

from mertag.trainer.fit import FitConfig, fit_net
from mertag.trainer.linear import PooledLinear, fit_linear
from mertag.trainer.nets import MoodNet


class MoodEnsemble(nn.Module):
    """(1 - w) * the mean of the nets' probabilities + w * the pooled linear head's, where w is
    `linear_weight` (0 without a head); the nets share the feature set and statistics."""

    def __init__(
        self,
        members: Sequence[MoodNet],
        linear: PooledLinear | None = None,
        linear_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if len({(m.arch, m.features) for m in members}) != 1:
            raise ValueError("ensemble members must share architecture and feature set")
        if (linear is None) != (linear_weight == 0) or not 0 <= linear_weight < 1:
            raise ValueError("a pooled head needs a weight in (0, 1), and a weight a head")
        self.members = nn.ModuleList(members)
        self.linear = linear
        self.linear_weight = float(linear_weight)
        self.arch = ensemble_name(members[0].arch, len(members), linear is not None)
        self.features = members[0].features

    @property
    def mean(self) -> torch.Tensor:
        return cast(MoodNet, self.members[0]).mean

    @property
    def std(self) -> torch.Tensor:
        return cast(MoodNet, self.members[0]).std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nets = torch.stack([m(x) for m in self.members]).mean(dim=0)
        if self.linear is None:
            return nets
        w = self.linear_weight
        return (1 - w) * nets + w * self.linear(x)

    @property
    def has_valence_arousal(self) -> bool:
        return all(cast(MoodNet, m).has_valence_arousal for m in self.members)

    def valence_arousal(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the nets' (valence, arousal); the pooled linear head has none."""
        return self.outputs(x)[1]

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (as `forward`) and the nets' mean (valence, arousal), one pass each."""
        pairs = [cast(MoodNet, m).outputs(x) for m in self.members]
        nets = torch.stack([p for p, _ in pairs]).mean(dim=0)
        va = torch.stack([v for _, v in pairs]).mean(dim=0)
        if self.linear is None:
            return nets, va
        w = self.linear_weight
        return (1 - w) * nets + w * self.linear(x), va


def ensemble_name(arch: str, size: int, linear: bool = False) -> str:
    """How reports and model ids name a model: 'lstm', 'lstm-x5', 'lstm-x5-lin'."""
    return (arch if size == 1 else f"{arch}-x{size}") + ("-lin" if linear else "")


def member_seed(seed: int, member: int) -> int:
    """Member i's seed; folds are 1000 apart (mertag.trainer.compare.fold_seed), so these never
    meet."""
    return seed + member


def fit_model(
    sequences: Sequence[np.ndarray],
    labels: np.ndarray,
    config: FitConfig,
    on_epoch: Callable[[int, float], None] | None = None,
    words: np.ndarray | None = None,
    va: np.ndarray | None = None,
) -> MoodNet | MoodEnsemble:
    """A single net when `config.ensemble` is 1 and there is no pooled head
    (`config.linear_weight` 0), else an ensemble of `config.ensemble` seeds (and the head).
    `words`, `va`: the sequences' mood-word and valence/arousal targets, for nets trained with
    them (fit_net)."""
    if config.ensemble == 1 and config.linear_weight == 0:
        return fit_net(sequences, labels, config, on_epoch, words, va)
    members = [
        fit_net(
            sequences,
            labels,
            replace(config, seed=member_seed(config.seed, i)),
            on_epoch,
            words,
            va,
        )
        for i in range(config.ensemble)
    ]
    linear = None
    if config.linear_weight > 0:
        linear = fit_linear(sequences, labels, config.features, config.seed)
    return MoodEnsemble(members, linear, config.linear_weight).eval()
