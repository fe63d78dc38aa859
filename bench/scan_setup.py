"""What the scan benches share: the mertag command as a new process, and a scan's options.

Import it after the bench has put the repository on sys.path (as each bench does first).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mertag.tagger.model import MoodModel
    from mertag.tagger.scan import ScanOptions

MERTAG = [sys.executable, "-c", "from mertag.tagger.cli import main; main()"]
"""`mertag` as a new process, run from this checkout's sources (with cwd the repository)."""


def scan_options(
    roots: tuple[Path, ...], index: Path, model: MoodModel, **changes: Any
) -> ScanOptions:
    """A scan of `roots` into `index` with `model`, the other options as `changes` say."""
    from mertag.tagger.scan import ScanOptions

    return ScanOptions(
        roots=roots,
        index_path=index,
        model_path=model.path,
        model_id=model.model_id,
        feature_schema=model.info.feature_schema,
        **changes,
    )
