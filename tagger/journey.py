"""Mood journeys: a playlist that starts where the listener is and moves, in even steps, to where
they want to be (the iso principle of music therapy: first meet the mood, then lead it).

The path runs straight across the valence-arousal plane from the FROM quadrant's centre to the TO
quadrant's centre. A centre is the median (valence, arousal) of the library's tracks in that
quadrant: the typical sad (or happy...) track of *this* library, so a journey starts on music
that really is sad however confident the model tends to be; fixed points such as (-0.5, -0.5)
may sit where a library has no tracks at all.

The path is cut into `length` evenly spaced waypoints (both ends included). Each waypoint in turn
takes the nearest unused track (Euclidean distance on the plane) within `max_distance`; among
tracks about equally near, a small confidence term prefers the clearly classified one. The chosen
tracks are then played in order of their projection onto the path. With squared distances that
order is the best matching of the chosen tracks to the waypoints (the distance across the path is
the same whichever waypoint a track gets, and along it sorted matching is optimal), and it
guarantees the journey never steps back towards where it started.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table
from rich.text import Text

from mertag.tagger.index import IndexRow
from mertag.tagger.mood import DEFAULT_MOODS
from mertag.tagger.playlist import Entry, render_m3u8, track_entry, write_text_atomic

DEFAULT_LENGTH = 20
DEFAULT_MAX_DISTANCE = 0.3
"""How far (on the [-1, 1] valence-arousal plane) a track may lie from its waypoint."""

CONFIDENCE_WEIGHT = 0.05
"""Cost added per unit of missing confidence: enough to break near-ties in favour of a clearly
classified track, too small to pull the journey off its path."""

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
    """A planned journey: from which centre to which, and its steps in play order."""

    start_quadrant: str
    end_quadrant: str
    start: Point
    end: Point
    max_distance: float
    steps: list[Step]
    title: str


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


def _segment_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each point to the segment a-b."""
    ab = b - a
    denom = float(ab @ ab)
    t = np.zeros(len(points)) if denom == 0 else np.clip((points - a) @ ab / denom, 0.0, 1.0)
    nearest = a + t[:, None] * ab
    return np.asarray(np.hypot(*(points - nearest).T))


def plan_journey(
    rows: Iterable[IndexRow],
    start_quadrant: str,
    end_quadrant: str,
    length: int = DEFAULT_LENGTH,
    *,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    labels: Mapping[str, str] | None = None,
) -> Journey:
    """Choose `length` tracks leading from `start_quadrant` to `end_quadrant` (see module doc).

    `labels` (quadrant -> mood word) only words the messages. JourneyError when the library holds
    too few tracks near the path, saying how many lie within `max_distance` of it.
    """
    if length < 2:
        raise JourneyError(f"a journey needs at least 2 tracks, not {length}")
    if not max_distance > 0:
        raise JourneyError(f"the maximum distance must be above 0, not {max_distance}")
    labels = {**DEFAULT_MOODS, **(labels or {})}
    pool = candidates(rows)
    start = quadrant_centre(pool, start_quadrant, labels)
    end = quadrant_centre(pool, end_quadrant, labels)
    a, b = np.asarray(start), np.asarray(end)
    points = np.asarray([(r.valence, r.arousal) for r in pool], dtype=np.float64).reshape(-1, 2)
    confidence = np.asarray([r.confidence or 0.0 for r in pool], dtype=np.float64)
    route = f"from {_label(start_quadrant, labels)} to {_label(end_quadrant, labels)}"
    near = int(np.sum(_segment_distances(points, a, b) <= max_distance))
    advice = "ask for fewer tracks (--length), allow a larger --max-distance, or scan more music"
    if near < length:
        raise JourneyError(
            f"too few tracks near the path {route}: {near} of the library's {len(pool)} lie "
            f"within {max_distance:g} of it and {length} are needed; {advice}"
        )
    waypoints = [a + (b - a) * i / (length - 1) for i in range(length)]
    used = np.zeros(len(pool), dtype=bool)
    chosen: list[int] = []
    for i, w in enumerate(waypoints):
        d = np.hypot(*(points - w).T)
        cost = d + CONFIDENCE_WEIGHT * (1.0 - confidence)
        cost[used | (d > max_distance)] = np.inf
        j = int(np.argmin(cost))
        if not np.isfinite(cost[j]):
            free = d[~used]
            nearest = f"; the nearest unused one is {free.min():.2f} away" if free.size else ""
            raise JourneyError(
                f"too few tracks near the path {route}: {near} lie within {max_distance:g} of "
                f"it, but step {i + 1} of {length} (valence {w[0]:+.2f}, arousal {w[1]:+.2f}) "
                f"has no unused track within {max_distance:g}{nearest}; {advice}"
            )
        used[j] = True
        chosen.append(j)
    ab = b - a
    denom = float(ab @ ab)
    if denom > 0:
        progress = (points[chosen] - a) @ ab / denom
    else:  # FROM and TO are one place: closest first
        progress = np.hypot(*(points[chosen] - a).T)
    order = np.argsort(progress, kind="stable")
    steps = [
        Step(
            row=pool[chosen[k]],
            waypoint=(float(waypoints[n][0]), float(waypoints[n][1])),
            distance=float(np.hypot(*(points[chosen[k]] - waypoints[n]))),
            progress=float(progress[k]),
        )
        for n, k in enumerate(order)
    ]
    title = (
        f"{labels.get(start_quadrant, start_quadrant)} to {labels.get(end_quadrant, end_quadrant)}"
    )
    return Journey(start_quadrant, end_quadrant, start, end, max_distance, steps, title)


def write_journey(journey: Journey, out: Path, *, relative_to: Path | None = None) -> list[Entry]:
    """Write the journey as an M3U8 playlist, in play order; returns its entries."""
    entries = [track_entry(step.row.path) for step in journey.steps]
    write_text_atomic(out, render_m3u8(entries, relative_to=relative_to))
    return entries


def journey_table(journey: Journey, entries: list[Entry]) -> Table:
    """The journey step by step, for the terminal."""
    table = Table(title=f"journey: {journey.title}", title_justify="left", show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("mood")
    table.add_column("valence", justify="right")
    table.add_column("arousal", justify="right")
    table.add_column("track")
    for n, (step, entry) in enumerate(zip(journey.steps, entries, strict=True), 1):
        r = step.row
        table.add_row(
            str(n),
            Text(f"{r.mood} ({r.quadrant})"),
            f"{r.valence:+.2f}",
            f"{r.arousal:+.2f}",
            Text(entry.title),
        )
    return table
