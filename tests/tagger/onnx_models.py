"""Small hand-built ONNX graphs for model-loading tests (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.features import FEATURE_DIM, FEATURE_SCHEMA, FRAME_FEATURES, HOP
from mertag.tagger.scan import ScanOptions


def _metadata(model_id: str, columns: str, arch: str) -> dict[str, str | None]:
    """Valid mertag metadata for a test model reading feature set `columns`."""
    return {
        "mertag_model_format": "1",
        "model_id": model_id,
        "labels": "Q1,Q2,Q3,Q4",
        "feature_schema": FEATURE_SCHEMA,
        "feature_dim": str(FEATURE_DIM),
        "sample_rate": str(SAMPLE_RATE),
        "hop": str(HOP),
        "normalisation": json.dumps({"columns": columns, "applied": "none"}),
        "training_summary": json.dumps({"arch": arch, "note": "test fixture"}),
    }


def _save(
    path: Path,
    nodes: list[onnx.NodeProto],
    consts: dict[str, np.ndarray],
    classes: int | str,
    meta: dict[str, str | None],
) -> Path:
    """A graph from `features` (batch, time, FEATURE_DIM) to `probabilities` (batch, classes),
    with `meta` (entries set to None left out) as its ONNX metadata."""
    graph = helper.make_graph(
        nodes,
        meta["model_id"] or "test",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["b", "t", FEATURE_DIM])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["b", classes])],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.helper.set_model_props(model, {k: v for k, v in meta.items() if v is not None})
    onnx.save(model, str(path))
    return path


def linear_model(path: Path, *, seed: int = 0, **meta_overrides: str | None) -> Path:
    """A mean-over-time linear softmax classifier with mertag metadata (overridable/removable)."""
    rng = np.random.default_rng(seed)
    consts: dict[str, np.ndarray] = {
        "w": (rng.standard_normal((FEATURE_DIM, 4)) * 0.01).astype(np.float32),
        "axes": np.array([1], dtype=np.int64),
    }
    nodes = [
        helper.make_node("ReduceMean", ["features", "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    meta = _metadata(f"test-linear-{seed}", "both", "linear")
    meta.update(meta_overrides)
    return _save(path, nodes, consts, 4, meta)


def linear_scan(lib: Path, index: Path, model: Path, **changes: Any) -> ScanOptions:
    """A scan of `lib` into `index` with the `linear_model` at `model` (seed 0), the other
    options as `changes` say."""
    return ScanOptions(
        roots=(lib,),
        index_path=index,
        model_path=model,
        model_id="test-linear-0",
        feature_schema=FEATURE_SCHEMA,
        **changes,
    )


FAULTS = ("nan", "negative", "not-a-distribution", "wrong-shape")
"""What `broken_model` gets wrong: NaN probabilities, a negative one (the row still sums to 1, so
a naive tagger would write confidence 1.5), rows summing to 2, a (batch, 5) output."""
TRACK_GATE_DB = 100.0
"""`broken_model(when="tracks")` goes wrong only when the mean absolute log-mel value of a
sequence, summed over the 40 bands, exceeds this: real music gives 230-650 (the corpus), the
standard-normal probe input about 15."""


def _mel_columns() -> tuple[int, int]:
    start = 0
    for name, rows in FRAME_FEATURES.items():
        if name == "melspectrogram":
            return start, start + rows
        start += rows
    raise AssertionError("no melspectrogram rows")


def broken_model(path: Path, fault: str, when: str = "always") -> Path:
    """A mertag model with valid metadata whose output is broken as `fault` (one of FAULTS)
    says: on every input (`when="always"`), or only on real music (`when="tracks"`, see
    TRACK_GATE_DB), so that it passes the probe a model gets when loaded."""
    rng = np.random.default_rng(1)
    lo, hi = _mel_columns()
    consts: dict[str, np.ndarray] = {
        "w": (rng.standard_normal((FEATURE_DIM, 4)) * 0.01).astype(np.float32),
        "axes": np.array([1], dtype=np.int64),
        "lo": np.array([lo], dtype=np.int64),
        "hi": np.array([hi], dtype=np.int64),
        "gate_db": np.array(TRACK_GATE_DB, dtype=np.float32),
        "one": np.array(1.0, dtype=np.float32),
        "ones": np.ones((1, 1), dtype=np.float32),
        "shift": np.array([[1.0, -1.0, 0.0, 0.0]], dtype=np.float32),
    }
    node = helper.make_node
    nodes = [
        node("ReduceMean", ["features", "axes"], ["pooled"], keepdims=0),
        node("MatMul", ["pooled", "w"], ["logits"]),
        node("Softmax", ["logits"], ["soft"], axis=-1),
    ]
    if when == "tracks":
        nodes += [
            node("Slice", ["pooled", "lo", "hi", "axes"], ["mel"]),
            node("ReduceL1", ["mel", "axes"], ["loud"], keepdims=1),
            node("Sub", ["loud", "gate_db"], ["over"]),
            node("Relu", ["over"], ["open"]),
            node("Min", ["open", "one"], ["gate"]),
        ]
    else:
        nodes.append(node("Identity", ["ones"], ["gate"]))
    if fault == "nan":
        nodes += [node("Neg", ["gate"], ["minus"]), node("Sqrt", ["minus"], ["bad"])]
        nodes.append(node("Add", ["soft", "bad"], ["probabilities"]))
    elif fault == "negative":
        nodes.append(node("Mul", ["gate", "shift"], ["moved"]))
        nodes.append(node("Add", ["soft", "moved"], ["probabilities"]))
    elif fault == "not-a-distribution":
        nodes.append(node("Add", ["gate", "one"], ["factor"]))
        nodes.append(node("Mul", ["soft", "factor"], ["probabilities"]))
    elif fault == "wrong-shape":  # a fifth column: `gate` repeated for each row
        consts["first"] = np.array([0], dtype=np.int64)
        consts["col"] = np.array([1], dtype=np.int64)
        nodes += [
            node("Shape", ["soft"], ["soft_shape"]),
            node("Gather", ["soft_shape", "first"], ["rows"], axis=0),
            node("Concat", ["rows", "col"], ["rows_by_one"], axis=0),
            node("Expand", ["gate", "rows_by_one"], ["column"]),
            node("Concat", ["soft", "column"], ["probabilities"], axis=1),
        ]
    else:
        raise ValueError(fault)
    meta = _metadata(f"test-broken-{fault}-{when}", "librosa", "broken")
    return _save(path, nodes, consts, "k", meta)
