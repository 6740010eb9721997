"""Errors of the adapters: a source file that is not in the format it was announced as."""

from __future__ import annotations

from pathlib import Path

from amlscore.contract.errors import AmlError


class SourceFormatError(AmlError):
    """A source file breaks its format: the message names the file, the line, the column, what was
    expected and what was found, so that the user can open the file at that place (exit 2)."""

    def __init__(self, file: str | Path, what: str, *, line: int | None = None, column: str | None = None,
                 expected: str | None = None, got: str | None = None) -> None:
        where = str(file)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        message = f"{where}: {what}"
        if expected is not None:
            message += f"; expected {expected}"
        if got is not None:
            message += f", got {got!r}"
        super().__init__(message + ".")
        self.file, self.line, self.column = str(file), line, column
