"""The user's config file: TOML defaults for the options people set once, not on every command.

The file is `config.toml` in the user config folder (platformdirs), or the file named by
`--config` or the MERTAG_CONFIG environment variable. Every key is optional; a command-line option
always wins over the file, and the file over the built-in default. An unknown key or a bad value
is a ConfigError naming the key, so a typo never passes silently.

    moods = { Q1 = "Happy", Q2 = "Angry", Q3 = "Sad", Q4 = "Relaxed" }
    id3_version = "keep"          # each file's own; or "2.3" (TXXX:MOOD) / "2.4" (TMOO) for all
    index = "~/Music/mertag.sqlite3"
    jobs = 2
    exclude = ["Podcasts", "*.wav"]
    playlist_dir = "~/Music/Playlists"
    model = "fast"                # a shipped model ("default", "fast") or a mertag ONNX file

Relative paths in the file are taken from the folder the file is in, and '~' is expanded.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir

from mertag.models import PACKAGED_MODELS
from mertag.tagger.index import default_index_path
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

CONFIG_ENV = "MERTAG_CONFIG"
CONFIG_NAME = "config.toml"

DEFAULT = "default"
FILE = "config file"

KEYS: dict[str, str] = {
    "moods": "mood words for Q1..Q4, written into MOOD tags and used for playlists",
    "id3_version": 'ID3 version for MP3/WAV/AIFF tags: "keep" (each file\'s), "2.4" or "2.3"',
    "index": "the index file",
    "jobs": "worker processes for a scan (default: all cores)",
    "exclude": "glob patterns a scan skips",
    "playlist_dir": "where `mertag playlist` writes when --out is not given",
    "model": 'the mood model a scan uses: "default", "fast" (shipped) or a mertag ONNX file',
}
"""Every key the file may hold, with what it sets."""

SETTINGS: tuple[str, ...] = (*(f"moods.{q}" for q in QUADRANTS), *list(KEYS)[1:])
"""Every value a Config reports a source for: each mood word on its own, then the other keys."""


class ConfigError(ValueError):
    """The config file is missing, not TOML, or holds a bad value; the message names the key."""


@dataclass(frozen=True)
class Config:
    """The effective configuration: the file's values over the defaults, and where each came from.

    `sources` maps every name in SETTINGS to DEFAULT or FILE. `jobs` None means all cores;
    `playlist_dir` None means `mertag playlist` needs --out.
    """

    path: Path
    origin: str
    exists: bool
    moods: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MOODS))
    id3_version: str = "keep"
    index: Path = field(default_factory=default_index_path)
    jobs: int | None = None
    exclude: tuple[str, ...] = ()
    playlist_dir: Path | None = None
    model: str = "default"
    sources: dict[str, str] = field(default_factory=lambda: dict.fromkeys(SETTINGS, DEFAULT))

    @property
    def id3v23(self) -> bool:
        return self.id3_version == "2.3"

    @property
    def id3_target(self) -> int | None:
        """The ID3 major version to force (3 or 4), or None to keep each file's."""
        return {"2.3": 3, "2.4": 4}.get(self.id3_version)

    def entries(self) -> list[tuple[str, str, str]]:
        """(key, value as text, source) for every setting, moods one line per quadrant."""
        out: list[tuple[str, str, str]] = []
        for q in QUADRANTS:
            out.append((f"moods.{q}", self.moods[q], self.sources[f"moods.{q}"]))
        out.append(("id3_version", self.id3_version, self.sources["id3_version"]))
        out.append(("index", str(self.index), self.sources["index"]))
        jobs = "all cores" if self.jobs is None else str(self.jobs)
        out.append(("jobs", jobs, self.sources["jobs"]))
        out.append(("exclude", ", ".join(self.exclude) or "(none)", self.sources["exclude"]))
        folder = "(none: --out is needed)" if self.playlist_dir is None else str(self.playlist_dir)
        out.append(("playlist_dir", folder, self.sources["playlist_dir"]))
        out.append(("model", self.model, self.sources["model"]))
        return out

    def as_dict(self) -> dict[str, Any]:
        """The values as plain JSON-ready data."""
        return {
            "moods": dict(self.moods),
            "id3_version": self.id3_version,
            "index": str(self.index),
            "jobs": self.jobs,
            "exclude": list(self.exclude),
            "playlist_dir": None if self.playlist_dir is None else str(self.playlist_dir),
            "model": self.model,
        }

    def to_toml(self) -> str:
        """The effective values as a config file (unset optional keys commented out)."""
        values = self.as_dict()
        moods = ", ".join(f"{q} = {_toml_str(w)}" for q, w in self.moods.items())
        lines = [f"# mertag config ({self.path})", f"moods = {{ {moods} }}"]
        lines.append(f"id3_version = {_toml_str(values['id3_version'])}")
        lines.append(f"index = {_toml_str(values['index'])}")
        lines.append("# jobs = 2" if self.jobs is None else f"jobs = {self.jobs}")
        lines.append(f"exclude = [{', '.join(_toml_str(p) for p in self.exclude)}]")
        folder = values["playlist_dir"]
        lines.append(
            '# playlist_dir = "~/Music/Playlists"'
            if folder is None
            else f"playlist_dir = {_toml_str(folder)}"
        )
        lines.append(f"model = {_toml_str(self.model)}")
        return "\n".join(lines) + "\n"


def _toml_str(text: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
    return json.dumps(text, ensure_ascii=False)


def default_config_path() -> Path:
    """Where the config file lives unless --config or MERTAG_CONFIG says otherwise."""
    return Path(user_config_dir("mertag")) / CONFIG_NAME


def config_location(
    explicit: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[Path, str]:
    """The config file to read and why: ('--config' | CONFIG_ENV | 'default location')."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return Path(explicit), "--config"
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]), CONFIG_ENV
    return default_config_path(), "default location"


def load_config(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the effective configuration.

    A file named by --config or MERTAG_CONFIG must exist; the default one may be absent (then
    every value is the default).
    """
    path, origin = config_location(explicit, environ)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if origin != "default location":
            raise ConfigError(f"config file {path} (from {origin}) does not exist") from None
        return Config(path=path, origin=origin, exists=False)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"config file {path}: cannot read it: {reason}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from exc
    return parse_config(data, path, origin)


def parse_config(data: Mapping[str, Any], path: Path, origin: str = "--config") -> Config:
    """Check a parsed TOML document and turn it into a Config; ConfigError names a bad key."""

    def bad(key: str, reason: str) -> ConfigError:
        return ConfigError(f"config file {path}: {key}: {reason}")

    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise bad(unknown[0], f"unknown key (known keys: {', '.join(KEYS)})")
    values: dict[str, Any] = {}
    sources = dict.fromkeys(SETTINGS, DEFAULT)
    base = path.parent
    for key, value in data.items():
        if key != "moods":
            sources[key] = FILE
        if key == "moods":
            values[key], given = _moods(value, bad)
            sources.update({f"moods.{q}": FILE for q in given})
        elif key == "id3_version":
            values[key] = _id3_version(value, bad)
        elif key in ("index", "playlist_dir"):
            values[key] = _path(key, value, base, bad)
        elif key == "model":
            named = isinstance(value, str) and value in PACKAGED_MODELS
            values[key] = value if named else str(_path(key, value, base, bad))
        elif key == "jobs":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(key, f"must be a whole number of at least 1, not {value!r}")
            values[key] = value
        elif key == "exclude":
            patterns = [value] if isinstance(value, str) else value
            if not isinstance(patterns, list) or not all(
                isinstance(p, str) and p for p in patterns
            ):
                raise bad(key, f"must be a list of glob patterns (strings), not {value!r}")
            values[key] = tuple(patterns)
    return Config(path=path, origin=origin, exists=True, sources=sources, **values)


def _moods(value: Any, bad: Any) -> tuple[dict[str, str], list[str]]:
    """The mood words, defaults filled in, and the quadrants the file gave."""
    if isinstance(value, list):
        if len(value) != 4:
            raise bad("moods", f"a list needs four words for Q1..Q4, got {len(value)}")
        value = dict(zip(QUADRANTS, value, strict=True))
    if not isinstance(value, dict):
        raise bad("moods", 'must be a table such as { Q1 = "Happy", Q3 = "Sad" }')
    moods = dict(DEFAULT_MOODS)
    given: list[str] = []
    for q, word in value.items():
        key = f"moods.{q}"
        if q.upper() not in QUADRANTS:
            raise bad(key, f"not a quadrant (use {', '.join(QUADRANTS)})")
        if not isinstance(word, str) or not word.strip() or "\x00" in word:
            raise bad(key, f"must be a non-empty word, not {word!r}")
        moods[q.upper()] = word.strip()
        given.append(q.upper())
    try:
        check_moods(moods)
    except ValueError as exc:
        raise bad("moods", str(exc)) from None
    return moods, given


def check_moods(moods: Mapping[str, str]) -> None:
    """ValueError when two quadrants share a word (their playlists and filters would merge)."""
    seen: dict[str, str] = {}
    for q in QUADRANTS:
        folded = moods[q].casefold()
        if folded in seen:
            raise ValueError(f"{seen[folded]} and {q} both have the word {moods[q]!r}")
        seen[folded] = q


def _id3_version(value: Any, bad: Any) -> str:
    text = str(value).strip().lower().removeprefix("v") if not isinstance(value, bool) else ""
    known = {"2.3": "2.3", "2.4": "2.4", "3": "2.3", "4": "2.4", "keep": "keep"}
    if text not in known:
        raise bad("id3_version", f'must be "keep", "2.3" or "2.4", not {value!r}')
    return known[text]


def _path(key: str, value: Any, base: Path, bad: Any) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise bad(key, f"must be a path (a string), not {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
