"""``python -m amlscore.cli``: the same command line as the ``amlscore`` script."""

from amlscore.cli import main

main()
