"""Mood journeys: a playlist that starts where the listener is and moves, in even steps, to where
they want to be (the iso principle of music therapy: first meet the mood, then lead it).

The path runs straight across the valence-arousal plane from the FROM quadrant's centre (or the
track given with --from) to the TO quadrant's centre. A centre is the median (valence, arousal)
of the library's tracks in that quadrant: the typical sad (or happy...) track of *this* library,
so a journey starts on music that really is sad however confident the model tends to be. A
quadrant with no tracks at all stands for the middle of its square, with a warning.

The path is cut into `length` evenly spaced waypoints (both ends included), and the journey is
the `length` tracks, in order along the path, that lie nearest their waypoints: a dynamic
programme over the tracks sorted by their projection onto the path minimises the sum of squared
distances from each track to its waypoint (plus a small term preferring clearly classified
tracks). With squared distances, sorted order is the best matching of any chosen tracks to the
waypoints (the distance across the path is the same whichever waypoint a track gets, and along it
sorted matching is optimal), so the programme finds the best journey there is and it never steps
back towards where it started. A library thin along the path gives a journey with some steps far
from it, named in a warning; only a library with fewer than `length` analysed tracks fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mertag.tagger.index import IndexRow
from mertag.tagger.mood import CORNERS, DEFAULT_MOODS
from mertag.tagger.output_files import check_replaceable
from mertag.tagger.playlist import Entry, render_m3u8, track_entry, write_text_atomic

DEFAULT_LENGTH = 20
DEFAULT_MAX_DISTANCE = 0.3
"""How far (on the [-1, 1] valence-arousal plane) a track may lie from its waypoint before the
journey warns that the library is thin there."""

CONFIDENCE_WEIGHT = 0.005
"""Cost (in squared plane units) added per unit of missing confidence: enough to break near-ties
in favour of a clearly classified track, too small to pull the journey off its path."""

Point = tuple[float, float]


class JourneyError(ValueError):
    """No journey can be made from these tracks; the message says why and what to change."""


@dataclass(frozen=True)
class Step:
    """One track of a journey, the waypoint it stands for and how far along the path it is."""

    row: IndexRow
    waypoint: Point
    distance: float  # from the track to its waypoint
    progress: float  # projection onto the path: 0 at FROM's centre, 1 at TO's


@dataclass(frozen=True)
class Journey:
    """A planned journey: from which point to which, its steps in play order, and warnings
    (a quadrant with no tracks, steps far from the path) to show the user."""

    start_quadrant: str
    end_quadrant: str
    start: Point
    end: Point
    max_distance: float
    steps: list[Step]
    title: str
    warnings: tuple[str, ...] = ()


def _label(q: str, labels: Mapping[str, str]) -> str:
    return f"{labels.get(q, DEFAULT_MOODS.get(q, q))} ({q})"


def candidates(rows: Iterable[IndexRow]) -> list[IndexRow]:
    """The rows a journey can use: analysed, with a quadrant and a position on the plane."""
    return [
        r
        for r in rows
        if r.status == "ok" and r.quadrant and r.valence is not None and r.arousal is not None
    ]


def quadrant_centre(
    rows: Iterable[IndexRow], quadrant: str, labels: Mapping[str, str] | None = None
) -> Point:
    """The median (valence, arousal) of the tracks in `quadrant`; JourneyError when none."""
    points = [(r.valence, r.arousal) for r in rows if r.quadrant == quadrant]
    if not points:
        raise JourneyError(
            f"the library has no {_label(quadrant, labels or {})} tracks to start or end a "
            "journey on (after the filters given)"
        )
    arr = np.asarray(points, dtype=np.float64)
    median = np.median(arr, axis=0)
    return float(median[0]), float(median[1])


def _centre_or_middle(
    rows: list[IndexRow], quadrant: str, labels: Mapping[str, str], warnings: list[str]
) -> Point:
    """The quadrant's centre, or the middle of its square when the library has none there."""
    try:
        return quadrant_centre(rows, quadrant, labels)
    except JourneyError:
        cx, cy = CORNERS[quadrant]
        warnings.append(
            f"the library has no {_label(quadrant, labels)} tracks: the journey heads for the "
            f"middle of that quadrant (valence {cx / 2:+.2f}, arousal {cy / 2:+.2f})"
        )
        return cx / 2, cy / 2


def best_path(costs: np.ndarray) -> list[int]:
    """Rows i_0 < i_1 < ... of `costs` (tracks x waypoints), one per waypoint in order, with the
    least total cost: the dynamic programme of the module doc, O(tracks x waypoints)."""
    n, k = costs.shape
    best = np.empty((k, n))
    best[0] = costs[:, 0]
    for j in range(1, k):
        running = np.minimum.accumulate(best[j - 1])
        before = np.concatenate(([np.inf], running[:-1]))  # the best for a strictly earlier track
        best[j] = costs[:, j] + before
    chosen = [int(np.argmin(best[k - 1]))]
    for j in range(k - 2, -1, -1):
        chosen.append(int(np.argmin(best[j][: chosen[-1]])))
    return chosen[::-1]


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    out: list[str] = []
    for n in numbers:
        if out and int(out[-1].split("-")[-1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def plan_journey(
    rows: Iterable[IndexRow],
    start_quadrant: str,
    end_quadrant: str,
    length: int = DEFAULT_LENGTH,
    *,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    labels: Mapping[str, str] | None = None,
    start_row: IndexRow | None = None,
) -> Journey:
    """Choose `length` tracks leading from `start_quadrant` (or from `start_row`, which is then
    the first track) to `end_quadrant` (see the module doc).

    `labels` (quadrant -> mood word) only words the messages. JourneyError only when fewer than
    `length` tracks can be used; steps farther than `max_distance` from their waypoint are named
    in the journey's warnings.
    """
    if length < 2:
        raise JourneyError(f"a journey needs at least 2 tracks, not {length}")
    if not max_distance > 0:
        raise JourneyError(f"the maximum distance must be above 0, not {max_distance}")
    labels = {**DEFAULT_MOODS, **(labels or {})}
    pool = candidates(rows)
    if start_row is not None:
        if not candidates([start_row]):
            raise JourneyError(
                f"{start_row.path}: not an analysed track, so no journey starts there"
            )
        pool = [r for r in pool if r.path != start_row.path]
    have = len(pool) + (start_row is not None)
    if have < length:
        raise JourneyError(
            f"a journey of {length} tracks needs {length} analysed tracks, and the library "
            f"holds {have} (after the query given): ask for --length {have} or fewer"
            if have >= 2
            else f"a journey needs at least 2 analysed tracks, and the library holds {have}"
        )
    warnings: list[str] = []
    if start_row is not None:
        start = (float(start_row.valence or 0.0), float(start_row.arousal or 0.0))
        start_quadrant = start_row.quadrant or start_quadrant
    else:
        start = _centre_or_middle(pool, start_quadrant, labels, warnings)
    end = _centre_or_middle(pool, end_quadrant, labels, warnings)
    a, b = np.asarray(start), np.asarray(end)
    points = np.asarray([(r.valence, r.arousal) for r in pool], dtype=np.float64).reshape(-1, 2)
    confidence = np.asarray([r.confidence or 0.0 for r in pool], dtype=np.float64)
    waypoints = np.asarray([a + (b - a) * i / (length - 1) for i in range(length)])
    ab = b - a
    denom = float(ab @ ab)
    if denom > 0:
        progress = (points - a) @ ab / denom
    else:  # FROM and TO are one place: closest first
        progress = np.hypot(*(points - a).T)
    order = np.argsort(progress, kind="stable")
    free_waypoints = waypoints[1:] if start_row is not None else waypoints
    diff = points[order][:, None, :] - free_waypoints[None, :, :]
    costs = np.sum(diff**2, axis=-1) + CONFIDENCE_WEIGHT * (1.0 - confidence[order])[:, None]
    picked = [int(order[i]) for i in best_path(costs)]
    steps: list[Step] = []
    if start_row is not None:
        steps.append(Step(start_row, (float(a[0]), float(a[1])), 0.0, 0.0))
    for n, j in enumerate(picked, len(steps)):
        w = waypoints[n]
        steps.append(
            Step(
                row=pool[j],
                waypoint=(float(w[0]), float(w[1])),
                distance=float(np.hypot(*(points[j] - w))),
                progress=float(progress[j]),
            )
        )
    far = [n for n, step in enumerate(steps, 1) if step.distance > max_distance]
    if far:
        worst = max(steps[n - 1].distance for n in far)
        warnings.append(
            f"step{'s' if len(far) > 1 else ''} {_ranges(far)} of {length} lie more than "
            f"{max_distance:g} from their place on the path (the farthest {worst:.2f}): the "
            "library has few tracks there; more music, or a shorter journey (--length), makes "
            "even steps"
        )
    start_word = (
        Path(start_row.path).stem
        if start_row is not None
        else labels.get(start_quadrant, start_quadrant)
    )
    title = f"{start_word} to {labels.get(end_quadrant, end_quadrant)}"
    return Journey(
        start_quadrant, end_quadrant, start, end, max_distance, steps, title, tuple(warnings)
    )


def write_journey(
    journey: Journey, out: Path, *, relative_to: Path | None = None, overwrite: bool = False
) -> list[Entry]:
    """Write the journey as an M3U8 playlist, in play order; returns its entries. A file at
    `out` that mertag did not write raises OutputExists, unless `overwrite`."""
    check_replaceable(out, overwrite)
    entries = [track_entry(step.row.path) for step in journey.steps]
    write_text_atomic(out, render_m3u8(entries, relative_to=relative_to))
    return entries
