"""mertag: tag a music library with the mood of every track (Russell's four quadrants).

The installed package is built from the repository's folders (pyproject.toml): this folder is
`mertag` itself, `tagger/` the runtime `mertag.tagger`, `trainer/` `mertag.trainer` (which
depends on the runtime, never the reverse) and `models/` the shipped models `mertag.models`.
"""

from __future__ import annotations

__version__ = "0.1.0"
