"""Errors meant for people: the CLI prints them without a traceback and exits non-zero."""

from __future__ import annotations


class AmlError(Exception):
    """Base of every error caused by bad input, bad configuration or a bad request.

    Its message must name what is wrong and where (file, row, column, value, rule or parameter),
    because it is shown to the user as it is.
    """

    exit_code: int = 2
