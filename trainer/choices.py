"""What can be trained, by name: sequence architectures, baselines and feature sets.

Kept free of torch and scikit-learn so the command line can offer the choices cheaply.
"""

from __future__ import annotations

from mertag.tagger.features import FEATURE_SETS

ARCHS: dict[str, tuple[str, bool]] = {
    "rnn": ("rnn", False),
    "birnn": ("rnn", True),
    "lstm": ("lstm", False),
    "bilstm": ("lstm", True),
}
"""Sequence architecture name -> (recurrent cell, bidirectional)."""

BASELINES = ("logreg", "linsvm", "rbfsvm", "forest", "knn")
"""scikit-learn baselines on pooled features (see mertag.trainer.baselines)."""

COMPARED_FEATURE_SETS = ("librosa", "musicnn", "both")
"""The feature sets of the seed paper's comparison (`mertag train --compare`)."""


def feature_columns(features: str) -> slice:
    """The columns of a feature row that a feature set uses."""
    lo, hi = FEATURE_SETS[features]
    return slice(lo, hi)
