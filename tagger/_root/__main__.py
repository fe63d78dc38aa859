"""`python -m mertag`: the same command line as the `mertag` script."""

from mertag.tagger.cli import main

main()
