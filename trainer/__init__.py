"""mertag trainer: train and evaluate mood models; depends on tagger, never the reverse."""

from __future__ import annotations
