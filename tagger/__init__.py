"""mertag: tag a music library with the mood of every track (Russell quadrants)."""

from __future__ import annotations

__version__ = "0.1.0"
