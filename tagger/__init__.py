"""The runtime: walk -> decode -> features -> model -> tags -> index, and the command line."""

from __future__ import annotations

from mertag.tagger.kernels import use_kernel_cache

use_kernel_cache()  # before anything imports librosa (and numba): see mertag.tagger.kernels
