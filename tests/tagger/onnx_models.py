"""Small hand-built ONNX graphs for model-loading tests (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.features import FEATURE_DIM, FEATURE_SCHEMA, HOP


def linear_model(path: Path, *, seed: int = 0, **meta_overrides: str | None) -> Path:
    """A mean-over-time linear softmax classifier with mertag metadata (overridable/removable)."""
    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(
        (rng.standard_normal((FEATURE_DIM, 4)) * 0.01).astype(np.float32), "w"
    )
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["features", "axes"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "linear",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["b", "t", FEATURE_DIM])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["b", 4])],
        initializer=[weights, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    meta: dict[str, str | None] = {
        "mertag_model_format": "1",
        "model_id": f"test-linear-{seed}",
        "labels": "Q1,Q2,Q3,Q4",
        "feature_schema": FEATURE_SCHEMA,
        "feature_dim": str(FEATURE_DIM),
        "sample_rate": str(SAMPLE_RATE),
        "hop": str(HOP),
        "normalisation": json.dumps({"columns": "both", "applied": "none"}),
        "training_summary": json.dumps({"arch": "linear", "note": "test fixture"}),
    }
    meta.update(meta_overrides)
    onnx.helper.set_model_props(model, {k: v for k, v in meta.items() if v is not None})
    onnx.save(model, str(path))
    return path
