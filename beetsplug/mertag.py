"""beets' `mertag` plugin (`plugins: mertag`): `beet mertag [QUERY]` fills mood, valence, arousal
and energy from mertag's analysis. beets loads plugins from this namespace package by name; the
logic lives in `mertag.tagger.beets_plugin`."""

from __future__ import annotations

from mertag.tagger.beets_plugin import MertagPlugin as _MertagPlugin


class MertagPlugin(_MertagPlugin):
    """The plugin beets instantiates (it takes a class defined in this module)."""
