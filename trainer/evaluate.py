"""`mertag evaluate` as one function: a model's scores on labelled data, through the scan path.

Every clip goes through `mertag.tagger.pipeline.analyse_track` with a
`mertag.tagger.model.MoodModel`, exactly as `mertag scan` tags a file (no feature cache, no
torch), so the numbers are those a user gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mertag.tagger.audio import AudioError
from mertag.tagger.model import shared_model
from mertag.tagger.mood import QUADRANTS, Prediction
from mertag.trainer.dataset import DatasetError, Problem, load_dataset
from mertag.trainer.metrics import (
    Scores,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    score,
)
from mertag.trainer.progress import track


@dataclass
class Evaluation:
    """Scores of one model on the clips that could be analysed, and the ones that could not."""

    model_id: str
    model_path: Path
    names: list[str]
    truth: np.ndarray
    predicted: np.ndarray
    scores: Scores
    problems: list[Problem] = field(default_factory=list)
    probabilities: np.ndarray | None = None  # per kept clip, as the scan reports them
    uncertain: np.ndarray | None = None  # per kept clip: marked uncertain by the model

    def calibration(self) -> dict[str, float]:
        """ECE (10 bins), NLL, Brier, mean confidence, and how the uncertain mark splits the
        clips (share uncertain, accuracy of the others)."""
        assert self.probabilities is not None and self.uncertain is not None
        p, y, sure = self.probabilities, self.truth, ~self.uncertain
        return {
            "ece": expected_calibration_error(p, y),
            "nll": negative_log_likelihood(p, y),
            "brier": brier_score(p, y),
            "mean_confidence": float(p.max(axis=1).mean()),
            "uncertain_share": float(self.uncertain.mean()),
            "certain_accuracy": float(np.mean(self.predicted[sure] == y[sure]))
            if sure.any()
            else 0.0,
        }


def _analyse(index: int, path: Path, model_path: Path | None) -> tuple[int, Prediction | None, str]:
    from mertag.tagger.model import ModelOutputError
    from mertag.tagger.pipeline import analyse_track

    try:
        return index, analyse_track(path, shared_model(model_path)), ""
    except (AudioError, ModelOutputError) as exc:
        return index, None, str(exc)


def evaluate(
    data: Path, model_path: Path | None = None, n_jobs: int = -1, progress: bool = False
) -> Evaluation:
    """Analyse every labelled clip with the model; raises ModelError / DatasetError if unusable."""
    from joblib import Parallel, delayed

    model = shared_model(model_path)  # fail on a bad model before touching any audio
    dataset = load_dataset(data)
    if not dataset.clips:
        raise DatasetError(f"{data}: no usable clips to evaluate on")
    jobs = (delayed(_analyse)(i, c.path, model_path) for i, c in enumerate(dataset.clips))
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs)
    got: dict[int, Prediction | None] = {}
    problems = list(dataset.problems)
    for i, prediction, reason in track(results, len(dataset.clips), "Evaluating", progress):
        got[i] = prediction
        if prediction is None:
            problems.append(Problem(dataset.clips[i].name, reason))
    kept = [i for i in range(len(dataset.clips)) if got.get(i) is not None]
    if not kept:
        raise DatasetError(f"{data}: none of the {len(dataset.clips)} clips could be analysed")
    truth = np.array([dataset.clips[i].label for i in kept])
    predictions = [got[i] for i in kept]
    predicted = np.array([QUADRANTS.index(p.quadrant) for p in predictions if p is not None])
    return Evaluation(
        model_id=model.model_id,
        model_path=model.path,
        names=[dataset.clips[i].name for i in kept],
        truth=truth,
        predicted=predicted,
        scores=score(truth, predicted),
        problems=problems,
        probabilities=np.array([p.probabilities for p in predictions if p is not None]),
        uncertain=np.array([p.uncertain for p in predictions if p is not None], dtype=bool),
    )
