"""beets' `mertag` plugin (`plugins: mertag`): `beet mertag [QUERY]` fills mood, valence, arousal
and energy from mertag's analysis. beets loads plugins from this namespace package by name; the
logic lives in `mertag.tagger.beets_plugin`."""

from __future__ import annotations

from mertag.tagger import beets_plugin


# The base class is reached through its module, not imported here: beets 2.0 instantiates every
# BeetsPlugin subclass in a plugin's module (2.14 only one defined in it), so it would run twice.
class MertagPlugin(beets_plugin.MertagPlugin):
    """The plugin beets instantiates (it takes a class defined in this module)."""
