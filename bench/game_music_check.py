"""Out of genre: the moods mertag gives real full-length game music, against what its titles say.

    python bench/game_music_check.py MUSIC_DIR [--model FILE ...]

The issue's own finding was on game music: orchestral battle themes came out Sad or Relaxed.
This checks the same on 79 real tracks from two Debian packages (unlabelled, never committed;
their licences are the packages' own), fetched and unpacked once:

    apt-get download wesnoth-1.16-music supertuxkart-data
    dpkg-deb -x wesnoth-1.16-music_*.deb MUSIC_DIR
    dpkg-deb --fsys-tarfile supertuxkart-data_*.deb | tar -x -C MUSIC_DIR --wildcards '*/music/*'

Wesnoth's 41 orchestral tracks (median 214 s) and SuperTuxKart's 38 (electronic, pop and rock
game music, median 73 s) are copied to a temp folder and scanned by `mertag scan --no-write`, a
new process per model (the shipped pair when no --model is given; `--model FILE` classifies
every track with FILE alone). It prints the quadrant counts per package (and how many tracks
are uncertain) and, on the Wesnoth tracks whose titles name a mood (`HIGH_AROUSAL` ...
`NEGATIVE`, fixed before the first run and not tuned), the arousal AUC (the chance that a track
titled for battle gets a higher arousal than one titled for sadness or calm) and the valence AUC
alike. Weak labels from titles are
crude and few (7-8 tracks a side): read large differences only.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

PACKAGES = {
    "wesnoth": "usr/share/games/wesnoth/1.16/data/core/music",
    "stk": "usr/share/games/supertuxkart/data/music",
}
HIGH_AROUSAL = (
    "battle battle-epic frantic frantic-old siege_of_laurelmor vengeful casualties_of_war".split()
)
LOW_AROUSAL = (
    "sad defeat defeat2 love_theme silence silvan_sanctuary nunc_dimittis the_king_is_dead".split()
)
POSITIVE = "victory victory2 love_theme return_to_wesnoth".split()
NEGATIVE = "sad defeat defeat2 the_king_is_dead the_city_falls casualties_of_war vengeful".split()
MOODS = {"Q1": "Happy", "Q2": "Angry", "Q3": "Sad", "Q4": "Relaxed"}


def auc(higher: list[float], lower: list[float]) -> float:
    """P(a random `higher` value exceeds a random `lower` one), ties counting half."""
    a, b = np.asarray(higher)[:, None], np.asarray(lower)[None, :]
    return float(np.mean((a > b) + 0.5 * (a == b)))


Mood = tuple[str | None, float, float, bool]
"""A track's (quadrant, valence, arousal, uncertain) as the index holds them."""


def scan(folder: Path, model: Path | None) -> dict[str, Mood]:
    """Each track's `Mood` by a `mertag scan --no-write` of `folder`."""
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index.db"
        command = [sys.executable, "-m", "mertag", "scan", str(folder), "--no-write", "-q"]
        command += ["--index", str(index)] + (["--model", str(model)] if model else [])
        subprocess.run(command, check=True)
        with sqlite3.connect(index) as db:
            query = "SELECT path, quadrant, valence, arousal, uncertain FROM tracks"
            rows = db.execute(query).fetchall()
    return {Path(p).stem: (q, v, a, bool(u)) for p, q, v, a, u in rows}


def report(name: str, moods: dict[str, Mood]) -> None:
    print(f"\n{name}")
    for package in PACKAGES:
        mine = [m for stem, m in moods.items() if stem.startswith(package + "_")]
        got = Counter(m[0] for m in mine)
        n, unsure = len(mine), sum(m[3] for m in mine)
        counts = ", ".join(
            f"{MOODS.get(q or '', 'no mood')} {got[q]}" for q in sorted(got, key=str)
        )
        print(
            f"  {package:<8} {n} tracks: {counts}; Sad+Relaxed {(got['Q3'] + got['Q4']) / n:.2f}; "
            f"uncertain {unsure}"
        )

    def values(titles: list[str], column: int) -> list[float]:
        found = [moods.get("wesnoth_" + t) for t in titles]
        return [m[column] for m in found if m is not None and m[0] is not None]

    high, low = values(HIGH_AROUSAL, 2), values(LOW_AROUSAL, 2)
    pos, neg = values(POSITIVE, 1), values(NEGATIVE, 1)
    print(
        f"  arousal AUC {auc(high, low):.3f} (battle titles mean {np.mean(high):+.2f}, "
        f"sad/calm {np.mean(low):+.2f}; {len(high)} v {len(low)} tracks with a mood)"
    )
    print(
        f"  valence AUC {auc(pos, neg):.3f} (victory/love mean {np.mean(pos):+.2f}, "
        f"defeat/sad {np.mean(neg):+.2f}; {len(pos)} v {len(neg)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("music_dir", type=Path)
    parser.add_argument("--model", type=Path, action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for package, sub in PACKAGES.items():
            tracks = sorted((args.music_dir / sub).glob("*.ogg"))
            if not tracks:
                sys.exit(f"{args.music_dir / sub}: no .ogg tracks (see this script's docstring)")
            for track in tracks:
                shutil.copyfile(track, folder / f"{package}_{track.name}")
        for model in args.model or [None]:
            report(str(model or "shipped pair"), scan(folder, model))


if __name__ == "__main__":
    main()
