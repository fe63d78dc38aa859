"""The seed paper's non-sequential baselines (scikit-learn) on pooled features.

A clip's pooled vector is the mean and standard deviation over all patches of its excerpts, for
the chosen feature set's columns; every model standardises it first and weighs classes evenly
where the estimator allows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mertag.trainer.choices import BASELINES, feature_columns


def pooled(sequences: Sequence[np.ndarray], features: str) -> np.ndarray:
    """One vector per group of sequences: mean then std over their concatenated patches."""
    cols = feature_columns(features)
    patches = np.concatenate([s[:, cols] for s in sequences]).astype(np.float64)
    return np.concatenate([patches.mean(axis=0), patches.std(axis=0)]).astype(np.float32)


def make_baseline(name: str, seed: int):  # type: ignore[no-untyped-def]
    """A fresh unfitted sklearn pipeline: StandardScaler then the named estimator."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    estimators = {
        "logreg": lambda: LogisticRegression(C=0.1, max_iter=5000, class_weight="balanced"),
        "linsvm": lambda: LinearSVC(
            C=0.01, max_iter=20000, class_weight="balanced", random_state=seed
        ),
        "rbfsvm": lambda: SVC(C=1.0, kernel="rbf", gamma="scale", class_weight="balanced"),
        "forest": lambda: RandomForestClassifier(
            n_estimators=300, class_weight="balanced", random_state=seed, n_jobs=1
        ),
        "knn": lambda: KNeighborsClassifier(n_neighbors=15),
    }
    if name not in estimators:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return make_pipeline(StandardScaler(), estimators[name]())
