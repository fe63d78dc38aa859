"""A picture of the library on Russell's valence-arousal plane: one point per track, coloured by
quadrant, the quadrants labelled with their mood words and track counts.

This is the picture (`mertag map --out FILE.png`); `htmlmap` writes the interactive page, which
needs no extra. Drawn with matplotlib (the `map` extra), imported only when a map is drawn and
used through its object API (no pyplot), so no GUI backend or global state is touched. The format
follows the file's suffix: .png, .svg or .pdf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from mertag.tagger.index import IndexRow
from mertag.tagger.mood import CORNERS, DEFAULT_MOODS, QUADRANTS

FORMATS = (".png", ".svg", ".pdf")

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
COLOURS = {"Q1": "#E69F00", "Q2": "#D55E00", "Q3": "#0072B2", "Q4": "#009E73"}
SHADES = {"Q1": "#FFF4DC", "Q2": "#FBE3D6", "Q3": "#DDEBF5", "Q4": "#DDF2EA"}

NAMED_UP_TO = 30
"""Small libraries get each point labelled with its file name."""


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
) -> int:
    """Draw the analysed rows into `out` and return how many points were drawn."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise MapError(
            f"{out.name}: the map is a page (.html) or a picture ({', '.join(FORMATS)}); pick one"
        )
    _matplotlib()
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    words = {**DEFAULT_MOODS, **(moods or {})}
    tracks = [
        r
        for r in rows
        if r.status == "ok" and r.valence is not None and r.arousal is not None and r.quadrant
    ]
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
    for q in QUADRANTS:
        members = [r for r in tracks if r.quadrant == q]
        cx, cy = CORNERS[q]
        ax.text(
            cx * (lim - 0.03),
            cy * (lim - 0.03),
            f"{q} {words[q]} \u00b7 {len(members)} track{'' if len(members) == 1 else 's'}",
            ha="right" if cx > 0 else "left",
            va="top" if cy > 0 else "bottom",
            fontsize=12,
            fontweight="bold",
            color=COLOURS[q],
            zorder=4,
        )
        if not members:
            continue
        sizes = [(8 if many else 26) + (0 if many else 40) * (r.confidence or 0) for r in members]
        ax.scatter(
            [r.valence or 0.0 for r in members],
            [r.arousal or 0.0 for r in members],
            s=sizes,
            c=COLOURS[q],
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
    ax.set_title(
        f"{heading}: {len(tracks)} track{'' if len(tracks) == 1 else 's'}",
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
    out.parent.mkdir(parents=True, exist_ok=True)
    # A fixed salt makes SVG element ids, and so the file, the same for the same library.
    with matplotlib.rc_context({"svg.hashsalt": "mertag"}):
        fig.savefig(out, format=suffix[1:], metadata=_metadata(suffix))
    return len(tracks)


def _metadata(suffix: str) -> dict[str, str | None]:
    # SVG and PDF otherwise carry a creation date, so the same library would give different bytes.
    if suffix == ".svg":
        return {"Date": None, "Creator": "mertag"}
    if suffix == ".pdf":
        return {"CreationDate": None, "Creator": "mertag"}
    return {"Software": "mertag"}
