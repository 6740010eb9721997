"""amlscore: money-laundering suspicion scoring for banks (command-line entry point)."""

__version__ = "0.1.0"
