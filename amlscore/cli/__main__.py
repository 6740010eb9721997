"""``python -m amlscore.cli``: the same command as the installed ``amlscore`` script."""

from amlscore.cli import main

main()
