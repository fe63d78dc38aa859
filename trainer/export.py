"""Export a trained MoodNet (or MoodEnsemble of them) to a self-describing mertag ONNX model.

The graph maps `features` (batch, seq, FEATURE_DIM), both axes dynamic, to `probabilities`
(batch, 4); the column selection and normalisation are inside it. A net trained with a
valence/arousal head also gives `valence_arousal` (batch, 2), and its metadata says so. The
metadata carries exactly what `mertag.tagger.model` requires, so the file loads in
`mertag.tagger.model.MoodModel`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.features import FEATURE_DIM, FEATURE_SCHEMA, HOP
from mertag.tagger.model import (
    INPUT_NAME,
    MODEL_FORMAT,
    OPTIONAL_METADATA,
    OUTPUT_NAME,
    REQUIRED_METADATA,
    VA_OUTPUT_NAME,
    VALENCE_AROUSAL_HEAD,
)
from mertag.tagger.model_names import MODEL_FORMAT_KEY
from mertag.tagger.mood import QUADRANTS
from mertag.tagger.output_files import write_bytes_atomic
from mertag.trainer.ensemble import MoodEnsemble
from mertag.trainer.nets import MoodNet

Net = MoodNet | MoodEnsemble

OPSET = 20


class _BothOutputs(torch.nn.Module):
    """A net with a valence/arousal head as a graph of two outputs (one recurrent pass)."""

    def __init__(self, net: Net) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.outputs(x)


class ExportError(Exception):
    """The exported graph is not what mertag needs (e.g. a fixed sequence length)."""


def weights_digest(net: Net) -> str:
    """SHA-256 over the state dict (names and float32 bytes, in name order)."""
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def model_id(net: Net) -> str:
    return f"mertag-{net.arch}-{weights_digest(net)[:8]}"


def model_metadata(
    net: Net, summary: dict, calibration: dict | None = None, companion: str | None = None
) -> dict[str, str]:
    """The metadata_props of a mertag model: mertag.tagger.model.REQUIRED_METADATA, and the
    optional `calibration` (JSON, mertag.tagger.calibration) and `companion` when given."""
    meta = {
        MODEL_FORMAT_KEY: MODEL_FORMAT,
        "model_id": model_id(net),
        "labels": ",".join(QUADRANTS),
        "feature_schema": FEATURE_SCHEMA,
        "feature_dim": str(FEATURE_DIM),
        "sample_rate": str(SAMPLE_RATE),
        "hop": str(HOP),
        "normalisation": json.dumps(
            {
                "mean": [float(x) for x in net.mean.tolist()],
                "std": [float(x) for x in net.std.tolist()],
                "columns": net.features,
            }
        ),
        "training_summary": json.dumps(summary, sort_keys=True),
    }
    assert tuple(meta) == REQUIRED_METADATA
    if calibration is not None:
        meta["calibration"] = json.dumps(calibration, sort_keys=True)
    if companion is not None:
        meta["companion"] = companion
    if net.has_valence_arousal:
        meta["valence_arousal"] = VALENCE_AROUSAL_HEAD
    assert set(meta) <= set(REQUIRED_METADATA) | set(OPTIONAL_METADATA)
    return meta


def export_onnx(
    net: Net,
    path: Path,
    summary: dict,
    calibration: dict | None = None,
    companion: str | None = None,
) -> str:
    """Write `net` as ONNX to `path` with the mertag metadata; returns the model id."""
    import onnx

    net.eval()
    both = net.has_valence_arousal
    graph: torch.nn.Module = _BothOutputs(net).eval() if both else net
    output_names = [OUTPUT_NAME, VA_OUTPUT_NAME] if both else [OUTPUT_NAME]
    example = torch.zeros(2, 3, FEATURE_DIM)
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    # The exporter's chatter (torchvision absent, deprecations inside torch) is not the user's.
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=output_names,
                dynamic_shapes={"x": {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq")}},
                opset_version=OPSET,
                verbose=False,
            )
    finally:
        onnx_logger.setLevel(level)
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    proto = program.model_proto
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 3 or not dims[0].dim_param or not dims[1].dim_param:
        raise ExportError(
            f"exported graph has a fixed input shape {[d.dim_value or d.dim_param for d in dims]}"
            "; batch and sequence length must be dynamic"
        )
    meta = model_metadata(net, summary, calibration, companion)
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    # Through a temp file of its own name: a fixed '<path>.tmp' replaced a file of the user's.
    write_bytes_atomic(Path(path), proto.SerializeToString())
    return meta["model_id"]
