"""The runtime: walk -> decode -> features -> model -> tags -> index, and the command line."""

from __future__ import annotations
