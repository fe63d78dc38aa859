"""What a scan says when it was given tag settings that its unchanged tracks did not get.

A scan skips the tracks it has analysed before and that have not changed since, tags and all, so
`mertag scan LIB --energy` on a scanned library writes nothing. Rather than re-tag them (reading
every file's tags on every scan), the summary says so in one line and names the `mertag write`
command that applies the settings from the index, without analysis. Only options typed for this
scan count: a setting kept in the config file is standing (the tracks got it when they were
first tagged), and naming it after every scan would mostly be wrong; after changing one, run
`mertag write`, as the README says.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RetagHint:
    """Unchanged tracks that keep their tags although tag options were given: how many, which
    options (as typed), and the command that applies them."""

    tracks: int
    settings: tuple[str, ...]
    command: str

    def line(self) -> str:
        one = self.tracks == 1
        keep = "track keeps the tags it has" if one else "tracks keep the tags they have"
        return (
            f"  {self.tracks} unchanged {keep}: `{self.command}` applies these settings "
            f"({', '.join(self.settings)}) to {'it' if one else 'them'}"
        )

    def as_dict(self) -> dict[str, object]:
        return {"tracks": self.tracks, "settings": list(self.settings), "command": self.command}


def tag_options(
    *,
    overwrite_mood: bool | None = None,
    id3v23: bool | None = None,
    moods: str | None = None,
    uncertain_below: float | None = None,
    uncertain_word: str | None = None,
    energy: bool | None = None,
    overwrite_energy: bool | None = None,
    mood_field: Sequence[str] | None = None,
    convert_id3v22: bool = False,
) -> dict[str, list[str]]:
    """The tag options given on a command line (None: not given), as `mertag write` takes them,
    by the config key each one stands for."""
    out: dict[str, list[str]] = {}
    if moods is not None:
        out["moods"] = ["--moods", moods]
    if id3v23 is not None:
        out["id3_version"] = ["--id3v23" if id3v23 else "--id3v24"]
    if convert_id3v22:
        out["convert_id3v22"] = ["--convert-id3v22"]
    if overwrite_mood is not None:
        out["overwrite_mood"] = ["--overwrite-mood" if overwrite_mood else "--keep-mood"]
    if uncertain_below is not None:
        out["uncertain_below"] = ["--uncertain-below", f"{uncertain_below:g}"]
    if uncertain_word is not None:
        out["uncertain_word"] = ["--uncertain-word", uncertain_word]
    if energy is not None:
        out["energy"] = ["--energy" if energy else "--no-energy"]
    if overwrite_energy is not None:
        out["overwrite_energy"] = ["--overwrite-energy" if overwrite_energy else "--keep-energy"]
    if mood_field is not None:
        out["mood_fields"] = [w for f in mood_field for w in ("--mood-field", f)]
    return out


def retag_hint(
    unchanged: int,
    options: dict[str, list[str]],
    *,
    config_path: Path | None = None,
    index: Path | None = None,
) -> RetagHint | None:
    """The hint for a scan that wrote tags and skipped `unchanged` tracks, given the tag
    `options` typed (`tag_options`); None when there is nothing to say. `config_path` and
    `index` are the scan's --config and --index, which the write needs too."""
    if unchanged <= 0 or not options:
        return None
    typed = [w for words in options.values() for w in words]
    command = ["mertag"]
    if config_path is not None:
        command += ["--config", str(config_path)]
    command += ["write", *typed]
    if index is not None:
        command += ["--index", str(index)]
    settings = tuple(dict.fromkeys(words[0] for words in options.values()))
    return RetagHint(unchanged, settings, shlex.join(command))
