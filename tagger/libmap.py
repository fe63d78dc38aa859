"""A picture of the library on Russell's valence-arousal plane: one point per track, coloured by
quadrant, the quadrants labelled with their mood words and track counts.

A track is counted as lists, stats and playlists count it (`map_group`): an uncertain one (below
the model's confidence threshold: no mood word) is a grey point at its place, counted as
uncertain and in no quadrant's box; a silent one has no place on the plane, so it is counted in
the heading and not drawn.

This is the picture (`mertag map --out FILE.png`); `htmlmap` writes the interactive page, which
needs no extra. Drawn with matplotlib (the `map` extra), imported only when a map is drawn and
used through its object API (no pyplot), so no GUI backend or global state is touched. The format
follows the file's suffix: .png, .svg or .pdf.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mertag.tagger.display import counted
from mertag.tagger.index import IndexRow
from mertag.tagger.mood import CORNERS, DEFAULT_MOODS, QUADRANTS
from mertag.tagger.output_files import CREATOR, check_replaceable, write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
COLOURS = {"Q1": "#E69F00", "Q2": "#D55E00", "Q3": "#0072B2", "Q4": "#009E73"}
SHADES = {"Q1": "#FFF4DC", "Q2": "#FBE3D6", "Q3": "#DDEBF5", "Q4": "#DDF2EA"}

UNCERTAIN = "uncertain"
"""The group of an uncertain track, beside the four quadrants."""
UNCERTAIN_COLOUR = "#8C8C8C"  # grey: the mood of no quadrant

NAMED_UP_TO = 30
"""Small libraries get each point labelled with its file name."""


def map_group(row: IndexRow) -> str | None:
    """Where a map puts a track: its quadrant, UNCERTAIN, or None when it has no point on the
    plane (not analysed, failed, or silent)."""
    if row.status != "ok" or row.valence is None or row.arousal is None or not row.quadrant:
        return None
    return UNCERTAIN if row.uncertain else row.quadrant


def group_colour(row: IndexRow) -> str:
    """The colour of a track's point and mood ('' for a track with none)."""
    if row.status == "ok" and row.uncertain:
        return UNCERTAIN_COLOUR
    return COLOURS.get(row.quadrant or "", "")


def silent_note(silent: int) -> str:
    """What a map says of the silent tracks it cannot draw ('' for none)."""
    if not silent:
        return ""
    return f"{counted(silent, 'silent track')} (no mood) not drawn"


class MapError(RuntimeError):
    """The map cannot be drawn (matplotlib missing, unknown format)."""


def _matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MapError(
            "drawing a map needs matplotlib: pip install 'mertag[map]' (or pip install matplotlib)"
        ) from exc


def draw_map(
    rows: Iterable[IndexRow],
    out: Path,
    *,
    moods: Mapping[str, str] | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> int:
    """Draw the analysed rows into `out` and return how many points were drawn. A file at `out`
    that mertag did not write raises OutputExists, unless `overwrite`."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise MapError(
            f"{out.name}: the map is a page (.html) or a picture ({', '.join(FORMATS)}); pick one"
        )
    check_replaceable(out, overwrite)
    fig, drawn = map_figure(rows, moods=moods, title=title)
    import matplotlib

    # Rendered whole in memory, then written atomically: a kill or a full disk mid-write
    # leaves the file that was there (the user's own, under --overwrite) as it was.
    picture = io.BytesIO()
    # A fixed salt makes SVG element ids, and so the file, the same for the same library.
    with matplotlib.rc_context({"svg.hashsalt": "mertag"}):
        fig.savefig(picture, format=suffix[1:], metadata=_metadata(suffix))
    write_bytes_atomic(out, picture.getvalue())
    return drawn


def map_figure(
    rows: Iterable[IndexRow],
    *,
    moods: Mapping[str, str] | None = None,
    title: str | None = None,
) -> tuple[Figure, int]:
    """The map as a matplotlib Figure (not saved), and how many points it draws."""
    _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    words = {**DEFAULT_MOODS, **(moods or {})}
    rows = list(rows)
    tracks = [r for r in rows if map_group(r) is not None]
    silent = sum(r.status == "silent" for r in rows)
    fig = Figure(figsize=(8, 8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    # Points never leave [-1, 1]^2; the band beyond it holds the quadrant labels, so a confident
    # track in a corner is never hidden under its label.
    lim = 1.24
    for q in QUADRANTS:
        cx, cy = CORNERS[q]
        ax.add_patch(
            Rectangle(
                (min(0, cx * lim), min(0, cy * lim)), lim, lim, color=SHADES[q], zorder=0, lw=0
            )
        )
    ax.add_patch(Rectangle((-1, -1), 2, 2, fill=False, ec="#999999", lw=0.7, ls=(0, (4, 3))))
    ax.axhline(0, color="#777777", lw=0.8, zorder=1)
    ax.axvline(0, color="#777777", lw=0.8, zorder=1)
    many = len(tracks) > 2000
    uncertain = [r for r in tracks if map_group(r) == UNCERTAIN]
    for group in (*QUADRANTS, UNCERTAIN):
        members = [r for r in tracks if map_group(r) == group]
        n_tracks = counted(len(members), "track")
        if group == UNCERTAIN:
            if not members:
                continue
            # Below the plane, between Q3's and Q4's labels: a box of its own.
            colour, x, y, ha, va = UNCERTAIN_COLOUR, 0.0, -(lim - 0.03), "center", "bottom"
            label = f"uncertain \u00b7 {n_tracks}"
        else:
            cx, cy = CORNERS[group]
            colour, x, y = COLOURS[group], cx * (lim - 0.03), cy * (lim - 0.03)
            ha, va = "right" if cx > 0 else "left", "top" if cy > 0 else "bottom"
            label = f"{group} {words[group]} \u00b7 {n_tracks}"
        ax.text(x, y, label, ha=ha, va=va, fontsize=12, fontweight="bold", color=colour, zorder=4)
        if not members:
            continue
        sizes = [(8 if many else 26) + (0 if many else 40) * (r.confidence or 0) for r in members]
        ax.scatter(
            [r.valence or 0.0 for r in members],
            [r.arousal or 0.0 for r in members],
            s=sizes,
            c=colour,
            alpha=0.35 if many else 0.8,
            edgecolors="none" if many else "white",
            linewidths=0.6,
            zorder=3,
        )
    if len(tracks) <= NAMED_UP_TO:
        for r in tracks:
            ax.annotate(
                Path(r.path).stem,
                (r.valence or 0.0, r.arousal or 0.0),
                xytext=(5, 4),
                textcoords="offset points",
                fontsize=8,
                color="#333333",
                zorder=5,
            )
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("valence  (negative \u2192 positive)")
    ax.set_ylabel("arousal  (calm \u2192 energetic)")
    ax.set_xticks([-1, -0.5, 0, 0.5, 1])
    ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    heading = title or "mertag library map"
    apart = [f"{len(uncertain)} uncertain"] if uncertain else []
    apart += [silent_note(silent)] if silent else []
    ax.set_title(  # what is apart on a line of its own, clear of the note on the right
        f"{heading}: {counted(len(tracks), 'track')}" + (f"\n{'; '.join(apart)}" if apart else ""),
        fontsize=13,
        loc="left",
    )
    if not many and tracks:
        ax.text(
            1.0,
            1.01,
            "larger point = more confident",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="#666666",
        )
    return fig, len(tracks)


def _metadata(suffix: str) -> dict[str, str | None]:
    # SVG and PDF otherwise carry a creation date, so the same library would give different bytes.
    if suffix == ".svg":
        return {"Date": None, "Creator": CREATOR}
    if suffix == ".pdf":
        return {"CreationDate": None, "Creator": CREATOR}
    return {"Software": CREATOR}
