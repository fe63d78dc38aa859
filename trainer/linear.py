"""A logistic regression on pooled features, as a torch module that exports with the nets.

It is the 'logreg' baseline (mertag.trainer.baselines) moved inside the graph: a sequence's pooled
vector
is the mean and standard deviation over time of the feature set's columns, standardised with the
training statistics, then one linear layer and a softmax. Fitted by scikit-learn (exact, convex),
then copied into buffers. Pooling discards order, which the recurrent nets keep, so the two make
different mistakes and their average beats either (see models/MODEL_CARD.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mertag.trainer.baselines import make_baseline, pooled
from mertag.trainer.choices import FEATURE_SETS
from mertag.trainer.nets import MIN_STD


class PooledLinear(nn.Module):
    """Raw features -> per-sequence mean and std of the columns -> standardise -> linear."""

    pooled_mean: torch.Tensor
    pooled_scale: torch.Tensor
    coef: torch.Tensor
    intercept: torch.Tensor

    def __init__(
        self,
        features: str,
        mean: np.ndarray,
        scale: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> None:
        super().__init__()
        self.features = features
        self.lo, self.hi = FEATURE_SETS[features]
        if coef.shape != (4, 2 * (self.hi - self.lo)):
            raise ValueError(f"coefficients must be (4, {2 * (self.hi - self.lo)})")

        def buffer(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float32).clone()

        self.register_buffer("pooled_mean", buffer(mean))
        self.register_buffer("pooled_scale", buffer(np.maximum(scale, MIN_STD)))
        self.register_buffer("coef", buffer(coef))
        self.register_buffer("intercept", buffer(intercept))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        z = x[:, :, self.lo : self.hi]
        mu = z.mean(dim=1)
        sd = torch.sqrt(((z - mu.unsqueeze(1)) ** 2).mean(dim=1))
        v = (torch.cat([mu, sd], dim=1) - self.pooled_mean) / self.pooled_scale
        return v @ self.coef.T + self.intercept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)


def fit_linear(
    sequences: Sequence[np.ndarray], labels: np.ndarray, features: str, seed: int = 0
) -> PooledLinear:
    """The 'logreg' baseline's pipeline fitted on one pooled vector per sequence."""
    x = np.stack([pooled([s], features) for s in sequences]).astype(np.float64)
    model = make_baseline("logreg", seed)
    model.fit(x, labels)
    scaler, logreg = model[0], model[-1]
    if list(logreg.classes_) != list(range(4)):
        raise ValueError("the pooled head needs training sequences of all four quadrants")
    return PooledLinear(features, scaler.mean_, scaler.scale_, logreg.coef_, logreg.intercept_)
