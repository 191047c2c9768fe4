"""``python -m openlfr.cli``: the same as the ``openlfr`` command."""

from openlfr.cli import main

main()
