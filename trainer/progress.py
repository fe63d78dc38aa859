"""Progress bars on stderr (rich), so stdout carries only results."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def track(items: Iterable[T], total: int, description: str, enabled: bool = True) -> Iterable[T]:
    """`items`, with a progress bar while they are consumed when `enabled`."""
    if not enabled:
        return items
    from rich.console import Console
    from rich.progress import track as rich_track

    return rich_track(items, total=total, description=description, console=Console(stderr=True))


def counter(total: int, description: str, enabled: bool = True):  # type: ignore[no-untyped-def]
    """A context manager yielding `advance()`; a no-op when not `enabled`."""
    from contextlib import contextmanager

    @contextmanager
    def bar() -> Iterator:
        if not enabled:
            yield lambda: None
            return
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True)) as progress:
            task = progress.add_task(description, total=total)
            yield lambda: progress.advance(task)

    return bar()
