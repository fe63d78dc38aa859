"""The mood model: one onnxruntime session over a self-describing mertag ONNX file.

A mertag model takes `features` (batch, patches, FEATURE_DIM) float32, raw as
`mertag.tagger.features`
computes them (normalisation is inside the graph), and gives `probabilities` (batch, 4) over
Q1..Q4. Its ONNX metadata says what it needs and how it was made; a file that lacks it, or whose
feature schema is not the tagger's, is refused before any track is touched. Optional metadata:
`calibration` (temperature scaling and the default confidence below which a prediction is
uncertain, `mertag.tagger.calibration`) and `companion` (the shipped model, by its
`PACKAGED_MODELS` name, that classifies the tracks this one hears as snippets) and
`valence_arousal` (the graph also gives `valence_arousal` (batch, 2) from a regression head,
which then replaces the corner expectations of `mertag.tagger.mood`). Outputs are
never trusted blindly: a model that gives no distribution on a probe input is refused when loaded,
and every later output is checked (ModelOutputError, that track's error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mertag.models import PACKAGED_MODELS
from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.calibration import Calibration, CalibrationError
from mertag.tagger.embeddings import onnx_runtime, session_options
from mertag.tagger.features import FEATURE_DIM, FEATURE_SCHEMA, FEATURE_SETS, HOP
from mertag.tagger.model_names import MODEL_FORMAT_KEY
from mertag.tagger.mood import QUADRANTS, Prediction, predict_mood

MODEL_FORMAT = "1"
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
VA_OUTPUT_NAME = "valence_arousal"
VALENCE_AROUSAL_HEAD = "regression head, mean over the nets"
"""The `valence_arousal` metadata of a model whose graph has the VA_OUTPUT_NAME output."""
DEFAULT_MODEL_NAME = PACKAGED_MODELS["default"]
# Metadata every mertag model carries (string values; JSON where structured).
REQUIRED_METADATA = (
    MODEL_FORMAT_KEY,
    "model_id",
    "labels",
    "feature_schema",
    "feature_dim",
    "sample_rate",
    "hop",
    "normalisation",
    "training_summary",
)
OPTIONAL_METADATA = ("calibration", "companion", "valence_arousal")


PROBE_SHAPE = (2, 4, FEATURE_DIM)
"""The probe input every model is run on when loaded: a batch of two 4-patch sequences."""
PROBE_SEED = 0
"""Seed of the probe's standard-normal values (fixed, so a model is judged the same each time)."""
PROBABILITY_TOLERANCE = 1e-3
"""How far an output may stray from a distribution (a probability below 0, a row's sum from 1):
float32 softmax rounding is ~1e-7, anything beyond this tolerance is a broken model."""


class ModelError(Exception):
    """A model file that mertag cannot use; the message says what is wrong."""


class ModelOutputError(Exception):
    """A model's output for one track is not a distribution over Q1..Q4 (NaN, negative, the wrong
    shape, not summing to 1) or the model failed on it; the message is one line. The scan
    records it as that track's error, as it does an AudioError."""

    def __init__(self, model: Path, problem: str) -> None:
        super().__init__(f"model {model.name} gave {problem}")
        self.problem = problem


def output_problem(probs: np.ndarray, rows: int) -> str | None:
    """What is wrong with a model's output for a batch of `rows` sequences, or None when it is
    `rows` distributions over Q1..Q4 (within PROBABILITY_TOLERANCE)."""
    want = (rows, len(QUADRANTS))
    if probs.shape != want:
        return f"an output of shape {probs.shape}, not {want}"
    if not np.issubdtype(probs.dtype, np.floating):
        return f"{probs.dtype} output, not probabilities"
    if not np.all(np.isfinite(probs)):
        return "NaN or infinite probabilities"
    low = float(probs.min())
    if low < -PROBABILITY_TOLERANCE:
        return f"a negative probability ({low:.3g})"
    sums = probs.sum(axis=1, dtype=np.float64)
    worst = float(sums[np.argmax(np.abs(sums - 1.0))])
    if abs(worst - 1.0) > PROBABILITY_TOLERANCE:
        return f"probabilities summing to {worst:.3g}, not 1"
    return None


def va_output_problem(va: np.ndarray, rows: int) -> str | None:
    """What is wrong with a valence/arousal output for `rows` sequences, or None when it is
    `rows` pairs in [-1, 1] (within PROBABILITY_TOLERANCE)."""
    if va.shape != (rows, 2):
        return f"a valence/arousal output of shape {va.shape}, not {(rows, 2)}"
    if not np.issubdtype(va.dtype, np.floating) or not np.all(np.isfinite(va)):
        return "NaN, infinite or non-float valence/arousal"
    if float(np.abs(va).max(initial=0.0)) > 1.0 + PROBABILITY_TOLERANCE:
        return "valence/arousal outside [-1, 1]"
    return None


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself."""

    path: Path
    model_id: str
    labels: tuple[str, ...]
    feature_schema: str
    feature_dim: int
    sample_rate: int
    hop: int
    columns: tuple[int, int]
    """The [start, stop) feature columns the model reads (its feature set, `FEATURE_SETS`)."""
    metadata: dict[str, str] = field(repr=False)
    calibration: Calibration = Calibration()
    companion: str | None = None
    """The `PACKAGED_MODELS` name of the model for tracks heard as snippets, if not this one."""
    valence_arousal: bool = False
    """The graph gives valence and arousal from a regression head (VA_OUTPUT_NAME)."""

    @property
    def training_summary(self) -> dict[str, Any]:
        return json.loads(self.metadata.get("training_summary", "{}"))


def default_model_path() -> Path:
    """The model shipped inside the package."""
    return model_path(None)


def model_path(path: Path | str | None) -> Path:
    """A model file: `path` itself, or for None or a `PACKAGED_MODELS` name that is not a file
    here, the shipped model of that name."""
    from mertag.models import MODELS_DIR

    if path is None:
        return MODELS_DIR / DEFAULT_MODEL_NAME
    if str(path) in PACKAGED_MODELS and not Path(path).exists():
        return MODELS_DIR / PACKAGED_MODELS[str(path)]
    return Path(path)


def _columns(path: Path, normalisation: str) -> tuple[int, int]:
    try:
        name = json.loads(normalisation)["columns"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"{path}: malformed metadata (normalisation: {exc})") from exc
    if name not in FEATURE_SETS:
        raise ModelError(
            f"{path}: model reads feature set {name!r}; this mertag knows {', '.join(FEATURE_SETS)}"
        )
    return FEATURE_SETS[name]


def _check(path: Path, meta: dict[str, str]) -> ModelInfo:
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ModelError(f"{path}: not a mertag model (metadata lacks {', '.join(missing)})")
    if meta[MODEL_FORMAT_KEY] != MODEL_FORMAT:
        raise ModelError(
            f"{path}: model format {meta['mertag_model_format']} is not supported "
            f"(this mertag reads format {MODEL_FORMAT})"
        )
    if meta["feature_schema"] != FEATURE_SCHEMA:
        raise ModelError(
            f"{path}: model wants feature schema {meta['feature_schema']!r}, but this mertag "
            f"computes {FEATURE_SCHEMA!r}; retrain it with `mertag train`"
        )
    labels = tuple(meta["labels"].split(","))
    if labels != QUADRANTS:
        raise ModelError(f"{path}: labels {labels} are not {QUADRANTS}")
    companion = meta.get("companion") or None
    if companion is not None and companion not in PACKAGED_MODELS:
        raise ModelError(
            f"{path}: companion {companion!r} is not a shipped model ({', '.join(PACKAGED_MODELS)})"
        )
    head = meta.get("valence_arousal")
    if head is not None and head != VALENCE_AROUSAL_HEAD:
        raise ModelError(f"{path}: unknown valence_arousal entry {head!r}")
    try:
        calibration = Calibration.from_metadata(meta.get("calibration"))
    except CalibrationError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    try:
        info = ModelInfo(
            path=path,
            model_id=meta["model_id"],
            labels=labels,
            feature_schema=meta["feature_schema"],
            feature_dim=int(meta["feature_dim"]),
            sample_rate=int(meta["sample_rate"]),
            hop=int(meta["hop"]),
            columns=_columns(path, meta["normalisation"]),
            metadata=dict(meta),
            calibration=calibration,
            companion=companion,
            valence_arousal=head is not None,
        )
    except ValueError as exc:
        raise ModelError(f"{path}: malformed metadata ({exc})") from exc
    if (info.feature_dim, info.sample_rate, info.hop) != (FEATURE_DIM, SAMPLE_RATE, HOP):
        raise ModelError(
            f"{path}: model expects dim {info.feature_dim} at {info.sample_rate} Hz hop "
            f"{info.hop}; the tagger gives dim {FEATURE_DIM} at {SAMPLE_RATE} Hz hop {HOP}"
        )
    return info


class MoodModel:
    """One onnxruntime session over a mertag model; create once per worker process."""

    def __init__(self, path: Path | str | None = None, threads: int = 1) -> None:
        ort = onnx_runtime()
        self.path = model_path(path)
        if self.path.is_dir():
            raise ModelError(f"{self.path}: is a folder, not a model file")
        if not self.path.is_file():
            shipped = " or ".join(PACKAGED_MODELS)
            raise ModelError(f"{self.path}: model file not found (the shipped models: {shipped})")
        options = session_options(threads)
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            reason = " ".join(str(exc).split())[:200]
            raise ModelError(f"{self.path}: not a valid ONNX model ({reason})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = _check(self.path, meta)
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise ModelError(
                f"{self.path}: graph must map {INPUT_NAME!r} to {OUTPUT_NAME!r} "
                f"(has inputs {inputs}, outputs {outputs})"
            )
        if self.info.valence_arousal and VA_OUTPUT_NAME not in outputs:
            raise ModelError(f"{self.path}: metadata promises a {VA_OUTPUT_NAME!r} output")
        self._probe()

    def _probe(self) -> None:
        """ModelError unless the model gives distributions over Q1..Q4 on the probe input."""
        probe = np.random.default_rng(PROBE_SEED).standard_normal(PROBE_SHAPE).astype(np.float32)
        try:
            self.probabilities(list(probe))
        except ModelOutputError as exc:
            raise ModelError(
                f"{self.path}: gives {exc.problem} on a probe input; not a usable mood model"
            ) from exc

    @property
    def model_id(self) -> str:
        return self.info.model_id

    @property
    def snippet_model(self) -> MoodModel:
        """The model for tracks heard as snippets: the shipped model the file names as its
        `companion` (this process's shared session), else this model itself."""
        name = self.info.companion
        return self if name is None else shared_model(name)

    @property
    def uncertain_below(self) -> float | None:
        """The model's default confidence below which a prediction is uncertain (None: never)."""
        return self.info.calibration.uncertain_below

    @property
    def columns(self) -> tuple[int, int]:
        """The feature columns this model reads: pass them to `extract_track`."""
        return self.info.columns

    def probabilities(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities over Q1..Q4 for each sequence: (len(sequences), 4)."""
        return self.info.calibration.apply(self.raw_probabilities(sequences))

    def raw_probabilities(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """The graph's probabilities over Q1..Q4 for each sequence, before calibration."""
        return self._outputs(sequences)[0]

    def _outputs(self, sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw probabilities (len(sequences), 4) and, from a model with the head, valence and
        arousal (len(sequences), 2), batching sequences of equal length."""
        out = np.empty((len(sequences), len(QUADRANTS)), dtype=np.float32)
        va = np.empty((len(sequences), 2), dtype=np.float32) if self.info.valence_arousal else None
        by_length: dict[int, list[int]] = {}
        for i, seq in enumerate(sequences):
            by_length.setdefault(seq.shape[0], []).append(i)
        for idx in by_length.values():
            batch = np.stack([sequences[i] for i in idx]).astype(np.float32, copy=False)
            out[idx], batch_va = self._run(batch)
            if va is not None and batch_va is not None:
                va[idx] = batch_va
        return out, va

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's checked outputs for one batch (probabilities, and valence/arousal from a
        model with the head); ModelOutputError if they are not what they should be."""
        from onnxruntime.capi.onnxruntime_pybind11_state import (
            Fail,
            InvalidArgument,
            RuntimeException,
        )

        names = [OUTPUT_NAME, VA_OUTPUT_NAME] if self.info.valence_arousal else [OUTPUT_NAME]
        try:
            probs, *rest = self.session.run(names, {INPUT_NAME: batch})
        except (Fail, InvalidArgument, RuntimeException) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ModelOutputError(self.path, f"an error ({reason})") from exc
        probs = np.asarray(probs)
        problem = output_problem(probs, len(batch))
        va = np.asarray(rest[0]) if rest else None
        if problem is None and va is not None:
            problem = va_output_problem(va, len(batch))
        if problem is not None:
            raise ModelOutputError(self.path, problem)
        return np.clip(probs, 0.0, None), None if va is None else np.clip(va, -1.0, 1.0)

    def track_probabilities(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """One track's probabilities: the mean over its excerpts' predictions, calibrated (as
        the trainer calibrated each clip's mean out of fold)."""
        return self.info.calibration.apply(self.raw_probabilities(sequences).mean(axis=0))

    def track_valence_arousal(self, sequences: Sequence[np.ndarray]) -> tuple[float, float] | None:
        """One track's (valence, arousal) from the model's regression head, the mean over its
        excerpts as for the probabilities; None for a model without the head."""
        return _track_point(self._outputs(sequences)[1])

    def predict(
        self,
        sequences: Sequence[np.ndarray],
        moods: Mapping[str, str] | None = None,
        uncertain_below: float | None = None,
        uncertain_word: str | None = None,
    ) -> Prediction:
        """One track's Prediction; below `uncertain_below` (default: the model's own,
        `self.uncertain_below`; 0 never) it is marked uncertain, and its mood is
        `uncertain_word` when given ("" means no mood word is written)."""
        below = self.uncertain_below if uncertain_below is None else uncertain_below
        raw, va = self._outputs(sequences)
        return predict_mood(
            self.info.calibration.apply(raw.mean(axis=0)),
            self.model_id,
            moods,
            below,
            uncertain_word,
            _track_point(va),
        )


def _track_point(va: np.ndarray | None) -> tuple[float, float] | None:
    """The mean (valence, arousal) over a track's sequences, or None without a head."""
    if va is None:
        return None
    mean = va.astype(np.float64).mean(axis=0)
    return float(mean[0]), float(mean[1])


_SHARED: dict[tuple[str, int, int], MoodModel] = {}


def shared_model(path: Path | str | None = None) -> MoodModel:
    """This process's session for the model at `path` (default: the shipped one), made on first
    use and kept, so a worker loads each model once; a file rewritten in place is loaded anew."""
    resolved = model_path(path)
    try:
        st = resolved.stat()
        key = (str(resolved), st.st_size, st.st_mtime_ns)
    except OSError:
        key = (str(resolved), -1, -1)  # MoodModel raises the clear error
    if key not in _SHARED:
        _SHARED[key] = MoodModel(resolved, threads=1)
    return _SHARED[key]


def accepted_model_ids(model: MoodModel | str) -> frozenset[str]:
    """The model ids a scan with this model (or the shipped model of this id) accepts as
    finished: its own, and its snippet model's (`MoodModel.snippet_model`). The shipped models'
    ids and companions are read from their files' metadata (`model_names`): no session is
    started for them."""
    from mertag.models import MODELS_DIR
    from mertag.tagger.model_names import onnx_metadata, packaged_model_id

    if isinstance(model, str):
        shipped = [name for name in PACKAGED_MODELS if packaged_model_id(name) == model]
        if not shipped:
            return frozenset({model})
        own = model
        companion = onnx_metadata(MODELS_DIR / PACKAGED_MODELS[shipped[0]]).get("companion")
    else:
        own, companion = model.model_id, model.info.companion
    if not companion:
        return frozenset({own})
    companion_id = packaged_model_id(companion)
    if companion_id is None:  # the shipped file cannot be read: its session says why
        companion_id = shared_model(companion).model_id
    return frozenset({own, companion_id})


def read_model_info(path: Path) -> ModelInfo:
    """Validate a model file and return what it says about itself (loads the session once)."""
    return MoodModel(path).info
