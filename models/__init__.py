"""The shipped mertag models (ONNX) and their model card."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent

PACKAGED_MODELS = {"default": "mertag_4q.onnx", "fast": "mertag_4q_fast.onnx"}
"""The shipped mood models by the name `--model` and the config's `model` accept (MODEL_CARD.md)."""

SNIPPET_MODELS = {"mertag-lstm-x5-lin-86a32bf1": "fast"}
"""Shipped model id -> the shipped model that analyses the tracks it hears as snippets (those
longer than mertag.tagger.features.WHOLE_TRACK_MAX): out of fold the fast model scored slightly
better
on six snippets than the default one, for a third less CPU (MODEL_CARD.md)."""
