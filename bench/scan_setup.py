"""What the scan benches share: the mertag command as a new process, and a scan's options.

Not a script: the benches import it (so each one's --help checks its imports too).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mertag.tagger.scan import ScanOptions

if TYPE_CHECKING:
    from mertag.tagger.model import MoodModel

MERTAG = [sys.executable, "-c", "from mertag.tagger.cli import main; main()"]
"""`mertag` as a new process, run from this checkout's sources (with cwd the repository)."""


def scan_options(
    roots: tuple[Path, ...], index: Path, model: MoodModel, **changes: Any
) -> ScanOptions:
    """A scan of `roots` into `index` with `model`, the other options as `changes` say."""
    return ScanOptions(
        roots=roots,
        index_path=index,
        model_path=model.path,
        model_id=model.model_id,
        feature_schema=model.info.feature_schema,
        **changes,
    )
