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
    uncertain_below = 0.7         # "model" (its calibrated threshold), or 0 for never uncertain
    uncertain_word = "Uncertain"  # the MOOD of an uncertain track ("": none is written)
    energy = true                 # also write ENERGY 1-10 from arousal, for DJ software
    mood_fields = ["COMMENT"]     # also append the mood word to COMMENT and/or GROUPING

Relative paths in the file are taken from the folder the file is in, and '~' is expanded.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir

from mertag.models import PACKAGED_MODELS
from mertag.tagger.field_policy import APPEND_FIELDS
from mertag.tagger.index import default_index_path
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

CONFIG_ENV = "MERTAG_CONFIG"
MODEL_THRESHOLD = "model"
"""The uncertain_below value that means the model's own (calibrated) threshold."""
CONFIG_NAME = "config.toml"

DEFAULT = "default"
FILE = "config file"


def _jobs(value: Any, base: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number of at least 1, not {value!r}")
    return value


def _exclude(value: Any, base: Path) -> tuple[str, ...]:
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise ValueError(f"must be a list of glob patterns (strings), not {value!r}")
    return tuple(patterns)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def _uncertain_below(value: Any) -> float | None:
    """None for "model" (the model's own threshold), else a confidence in [0, 1]."""
    if value == MODEL_THRESHOLD:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f'must be "{MODEL_THRESHOLD}" or a number from 0 to 1, not {value!r}')
    return float(value)


def _uncertain_word(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(f'must be a word, or "" for none, not {value!r}')
    return value.strip()


def parse_mood_fields(value: Any) -> tuple[str, ...]:
    """The fields the mood word is also appended to, from a list or a comma list of COMMENT and
    GROUPING (any case); "none" or "" for none. ValueError names a field that is not one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"must be a list of field names, not {value!r}")
    parts = [p.strip() for item in items for p in item.split(",")]
    names = [p.upper() for p in parts if p and p.lower() != "none"]
    for name in names:
        if name not in APPEND_FIELDS:
            raise ValueError(f"{name!r} is not one of {', '.join(APPEND_FIELDS)}")
    return tuple(dict.fromkeys(names))


def _model(value: Any, base: Path) -> str:
    named = isinstance(value, str) and value in PACKAGED_MODELS
    return value if named else str(_path(value, base))


@dataclass(frozen=True)
class Setting:
    """One key of the config file: its default, how the file's value is checked and read
    (`parse` raises ValueError with the reason), how it shows, and what it sets."""

    name: str
    default: Callable[[], Any]
    parse: Callable[[Any, Path], Any]
    help: str
    unset: str = ""  # how `mertag config` shows a None value
    example: str = ""  # a commented-out line for `--format toml` when the value is None


SETTINGS: tuple[Setting, ...] = (
    Setting("moods", lambda: dict(DEFAULT_MOODS), lambda v, base: _moods(v),
            "mood words for Q1..Q4, written into MOOD tags and used for playlists"),
    Setting("id3_version", lambda: "keep", lambda v, base: _id3_version(v),
            'ID3 version for MP3/WAV/AIFF tags: "keep" (each file\'s), "2.4" or "2.3"'),
    Setting("index", default_index_path, lambda v, base: _path(v, base), "the index file"),
    Setting("jobs", lambda: None, _jobs, "worker processes for a scan (default: all cores)",
            unset="all cores", example="jobs = 2"),
    Setting("exclude", tuple, _exclude, "glob patterns a scan skips", unset="(none)"),
    Setting("playlist_dir", lambda: None, lambda v, base: _path(v, base),
            "where `mertag playlist` writes when --out is not given",
            unset="(none: --out is needed)", example='playlist_dir = "~/Music/Playlists"'),
    Setting("model", lambda: "default", _model,
            'the mood model a scan uses: "default", "fast" (shipped) or a mertag ONNX file'),
    Setting("overwrite_mood", lambda: False, lambda v, base: _flag(v),
            "put mertag's word into a MOOD it did not write (the old value is kept for untag)"),
    Setting("uncertain_below", lambda: None, lambda v, base: _uncertain_below(v),
            'confidence below which a track is uncertain: "model" (its calibrated threshold) '
            "or 0..1 (0: never)", unset=MODEL_THRESHOLD, example='uncertain_below = "model"'),
    Setting("uncertain_word", lambda: "", lambda v, base: _uncertain_word(v),
            'the MOOD written for an uncertain track ("": none, and a word mertag wrote earlier '
            "is taken back)", unset='"" (no MOOD)'),
    Setting("energy", lambda: False, lambda v, base: _flag(v),
            "also write ENERGY 1-10 from arousal (Mixed In Key's EnergyLevel field), for DJs"),
    Setting("overwrite_energy", lambda: False, lambda v, base: _flag(v),
            "put mertag's ENERGY into one it did not write (the old value is kept for untag)"),
    Setting("mood_fields", tuple, lambda v, base: parse_mood_fields(v),
            f"also append the mood word to these fields ({', '.join(APPEND_FIELDS)}); "
            "the field's own text is kept", unset="(none)"),
)  # fmt: skip
"""Every key the file may hold: a new key is one line here."""

KEYS: dict[str, str] = {s.name: s.help for s in SETTINGS}
"""Every key the file may hold, with what it sets."""

SOURCE_NAMES: tuple[str, ...] = tuple(
    name for s in SETTINGS for name in ([f"moods.{q}" for q in QUADRANTS] if s.name == "moods"
                                        else [s.name])
)  # fmt: skip
"""Every value a Config reports a source for: each mood word on its own, then the other keys."""


class ConfigError(ValueError):
    """The config file is missing, not TOML, or holds a bad value; the message names the key."""


@dataclass(frozen=True)
class Config:
    """The effective configuration: the file's values over the defaults, and where each came from.

    Every key of SETTINGS is an attribute (`config.jobs`); `sources` maps every name in
    SOURCE_NAMES to DEFAULT or FILE. `jobs` None means all cores; `playlist_dir` None means
    `mertag playlist` needs --out.
    """

    path: Path
    origin: str
    exists: bool
    values: dict[str, Any] = field(default_factory=lambda: {s.name: s.default() for s in SETTINGS})
    sources: dict[str, str] = field(default_factory=lambda: dict.fromkeys(SOURCE_NAMES, DEFAULT))

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def id3v23(self) -> bool:
        return bool(self.values["id3_version"] == "2.3")

    @property
    def id3_target(self) -> int | None:
        """The ID3 major version to force (3 or 4), or None to keep each file's."""
        return {"2.3": 3, "2.4": 4}.get(self.values["id3_version"])

    def entries(self) -> list[tuple[str, str, str]]:
        """(key, value as text, source) for every setting, moods one line per quadrant."""
        out: list[tuple[str, str, str]] = []
        for s in SETTINGS:
            value = self.values[s.name]
            if s.name == "moods":
                out += [(f"moods.{q}", value[q], self.sources[f"moods.{q}"]) for q in QUADRANTS]
                continue
            if value is None or value in ((), ""):
                text = s.unset
            elif isinstance(value, tuple):
                text = ", ".join(value)
            else:
                text = str(value)
            out.append((s.name, text, self.sources[s.name]))
        return out

    def as_dict(self) -> dict[str, Any]:
        """The values as plain JSON-ready data."""
        return {name: _plain(value) for name, value in self.values.items()}

    def to_toml(self) -> str:
        """The effective values as a config file (unset optional keys commented out)."""
        lines = [f"# mertag config ({self.path})"]
        for s in SETTINGS:
            value = _plain(self.values[s.name])
            if value is None:
                lines.append(f"# {s.example}")
            else:
                lines.append(f"{s.name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"config file {path}: {unknown[0]}: unknown key (known keys: {', '.join(KEYS)})"
        )
    values = {s.name: s.default() for s in SETTINGS}
    sources = dict.fromkeys(SOURCE_NAMES, DEFAULT)
    for s in SETTINGS:
        if s.name not in data:
            continue
        try:
            values[s.name] = s.parse(data[s.name], path.parent)
        except _KeyError as exc:
            raise ConfigError(f"config file {path}: {exc.key}: {exc.reason}") from None
        except ValueError as exc:
            raise ConfigError(f"config file {path}: {s.name}: {exc}") from None
        if s.name == "moods":
            sources.update({f"moods.{q.upper()}": FILE for q in _given(data["moods"])})
        else:
            sources[s.name] = FILE
    return Config(path=path, origin=origin, exists=True, values=values, sources=sources)


class _KeyError(ValueError):
    """A bad value under a sub-key (moods.Q5): names that key."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key, self.reason = key, reason


def _given(value: Any) -> list[str]:
    """The quadrants a file's moods value names."""
    return list(QUADRANTS) if isinstance(value, list) else list(value)


def _moods(value: Any) -> dict[str, str]:
    """The mood words, defaults filled in."""
    if isinstance(value, list):
        if len(value) != 4:
            raise ValueError(f"a list needs four words for Q1..Q4, got {len(value)}")
        value = dict(zip(QUADRANTS, value, strict=True))
    if not isinstance(value, dict):
        raise ValueError('must be a table such as { Q1 = "Happy", Q3 = "Sad" }')
    moods = dict(DEFAULT_MOODS)
    for q, word in value.items():
        if q.upper() not in QUADRANTS:
            raise _KeyError(f"moods.{q}", f"not a quadrant (use {', '.join(QUADRANTS)})")
        if not isinstance(word, str) or not word.strip() or "\x00" in word:
            raise _KeyError(f"moods.{q}", f"must be a non-empty word, not {word!r}")
        moods[q.upper()] = word.strip()
    check_moods(moods)
    return moods


def check_uncertain_word(word: str, moods: Mapping[str, str]) -> None:
    """ValueError when the uncertain word is one of the mood words (an unsure track would join
    that mood's playlists and filters)."""
    for q in QUADRANTS:
        if word and word.casefold() == moods[q].casefold():
            raise ValueError(f"the uncertain word {word!r} is {q}'s mood word")


def check_moods(moods: Mapping[str, str]) -> None:
    """ValueError when two quadrants share a word (their playlists and filters would merge)."""
    seen: dict[str, str] = {}
    for q in QUADRANTS:
        folded = moods[q].casefold()
        if folded in seen:
            raise ValueError(f"{seen[folded]} and {q} both have the word {moods[q]!r}")
        seen[folded] = q


def _id3_version(value: Any) -> str:
    text = str(value).strip().lower().removeprefix("v") if not isinstance(value, bool) else ""
    known = {"2.3": "2.3", "2.4": "2.4", "3": "2.3", "4": "2.4", "keep": "keep"}
    if text not in known:
        raise ValueError(f'must be "keep", "2.3" or "2.4", not {value!r}')
    return known[text]


def _path(value: Any, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError(f"must be a path (a string), not {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
