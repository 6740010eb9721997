"""Problems found in a data set and the report that lists them.

A problem is a :class:`Violation`: a file, a 1-based data row, a column, the offending value and
the rule it breaks. :class:`ProblemCollector` counts every one and keeps the first few of each
kind (errors and warnings apart); :class:`ValidationReport` is what the user reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.contract.schema import TABLES

__all__ = ["ContractViolationError", "ProblemCollector", "ProblemKind", "ValidationReport", "Violation", "display_value"]

VALUE_CHARS = 60  # an offending value is shown up to this many characters


@dataclass(frozen=True)
class Violation:
    """One broken rule at one place.

    Attributes
    ----------
    file : str
        The file, e.g. ``transactions.csv`` (the table name alone for in-memory frames).
    row : int or None
        1-based data row, in file order; ``None`` for a problem with the file or a whole column.
    column : str or None
        The column, or ``None`` for a problem with the file or a whole row.
    value : str or None
        The offending value as read (at most ~60 characters); ``None`` for an empty cell.
    rule : str
        The rule in words, as a predicate: ``must be one of in, out``.
    kind : str
        A stable code for the rule (``required``, ``invalid_value``, ``duplicate``...), for programs.
    note : str or None
        Context for this one problem, e.g. where the first copy of a duplicate is.
    severity : {"error", "warning"}
        An error breaks the contract; a warning is legal but suspect data.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str
    kind: str = "invalid_value"
    note: str | None = None
    severity: str = "error"

    @property
    def line(self) -> int | None:
        """The CSV line number (the header is line 1), or ``None`` when not a CSV row."""
        if self.row is None or not self.file.endswith(".csv"):
            return None
        return self.row + 1

    @property
    def location(self) -> str:
        """``row 7 (line 8)`` for CSV, ``row 7`` otherwise, ``''`` without a row."""
        if self.row is None:
            return ""
        return f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")

    @property
    def message(self) -> str:
        """The problem as one readable line."""
        if self.column is not None:
            text = f"The {self.column!r} column of {self.file} {self.rule}."
            if self.row is not None:
                got = "an empty cell" if self.value is None else repr(self.value)
                text += f" Got {got} instead at {self.location}."
        else:
            subject = self.location[0].upper() + self.location[1:] + " of " + self.file if self.row else self.file
            text = f"{subject} {self.rule}."
            if self.value is not None:
                text += f" Got {self.value!r} instead."
        return f"{text} {self.note}" if self.note else text

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ProblemKind:
    """How many times one rule was broken in one column of one file."""

    file: str
    column: str | None
    rule: str
    kind: str
    count: int
    severity: str = "error"

    @property
    def label(self) -> str:
        where = f"{self.file} {self.column!r}" if self.column else self.file
        return f"{where}: {self.rule}"


@dataclass
class ValidationReport:
    """The outcome of validating a data set.

    Attributes
    ----------
    violations : list of Violation
        The errors kept for display, at most ``max_errors``, at least one of each kind when
        there is room, in file and row order.
    total : int
        How many errors were found in all (every one is counted, shown or not).
    kinds : list of ProblemKind
        Every kind of error found, with its count, in the order the rules were checked.
    warnings : list of Violation
        The warnings kept for display (legal but suspect data), picked like ``violations``.
    warning_total : int
        How many warnings were found in all.
    warning_kinds : list of ProblemKind
        Every kind of warning found, with its count.
    notes : list of str
        Remarks that are neither, e.g. columns beyond the contract's (kept, ignored by scoring).
    max_errors : int
        The display cap the report was made with (for errors and warnings each).
    """

    violations: list[Violation] = field(default_factory=list)
    total: int = 0
    kinds: list[ProblemKind] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    warning_total: int = 0
    warning_kinds: list[ProblemKind] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_errors: int = 50

    @property
    def ok(self) -> bool:
        """True when the data set meets the contract (warnings do not count)."""
        return self.total == 0

    @property
    def summary(self) -> str:
        """One line: how many errors, and how many are shown."""
        return _count_line(self.total, self.violations, self.kinds, "problem")

    @property
    def warning_summary(self) -> str:
        """One line: how many warnings, and how many are shown."""
        return _count_line(self.warning_total, self.warnings, self.warning_kinds, "warning")

    def lines(self) -> list[str]:
        """The shown errors, one message per line."""
        return [v.message for v in self.violations]

    def warning_lines(self) -> list[str]:
        """The shown warnings, one message per line."""
        return [v.message for v in self.warnings]

    def strict(self) -> ValidationReport:
        """This report with every warning counted as an error (strict mode)."""
        promoted = [replace(v, severity="error") for v in self.warnings]
        promoted_kinds = [replace(k, severity="error") for k in self.warning_kinds]
        groups: dict[tuple[str, str | None, str], list[Violation]] = {}
        for v in [*self.violations, *promoted]:
            groups.setdefault((v.file, v.column, v.rule), []).append(v)
        return ValidationReport(
            violations=_round_robin(list(groups.values()), self.max_errors),
            total=self.total + self.warning_total,
            kinds=[*self.kinds, *promoted_kinds],
            notes=list(self.notes),
            max_errors=self.max_errors,
        )

    def __str__(self) -> str:
        return "\n".join([*self.lines(), self.summary])


def _count_line(total: int, shown_items: list[Violation], kinds: list[ProblemKind], noun: str) -> str:
    if total == 0:
        return f"No {noun}s found."
    nouns = noun if total == 1 else f"{noun}s"
    shown = len(shown_items)
    if shown == total:
        return f"{total:,} {nouns} found."
    every_kind = len({(v.file, v.column, v.rule) for v in shown_items}) == len(kinds)
    kind_text = f"{len(kinds):,} kind" + ("s" if len(kinds) > 1 else "")
    tail = ", at least one of each kind" if every_kind and shown and len(kinds) > 1 else ""
    return f"{total:,} {nouns} of {kind_text} found; the first {shown:,} are shown{tail}."


class ContractViolationError(AmlError):
    """The data breaks the input data contract; ``report`` says where and how.

    Its message lists the shown problems and the count, so a command that loads data and does not
    catch it still tells the user everything. Exit code 1, like ``amlscore validate`` on bad data.
    """

    exit_code = 1

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__("The data set breaks the data contract:\n" + str(report))


class _Grade:
    """Problems of one grade (errors or warnings): counted in full, the first of each kind kept."""

    def __init__(self) -> None:
        self.total = 0
        self.groups: list[list[Violation]] = []
        self.kinds: list[ProblemKind] = []

    def add_group(self, kept: list[Violation], count: int, max_errors: int) -> None:
        first = kept[0]
        self.total += count
        self.groups.append(kept[:max_errors])
        self.kinds.append(ProblemKind(first.file, first.column, first.rule, first.kind, count, first.severity))

    def pick(self, max_errors: int) -> list[Violation]:
        return _round_robin(self.groups, max_errors)


def _round_robin(groups: list[list[Violation]], max_errors: int) -> list[Violation]:
    """A round-robin pick over kinds (so each kind shows when there is room), then sorted by place."""
    picked: list[tuple[tuple[int, int, int], Violation]] = []
    depth = 0
    while len(picked) < max_errors and any(depth < len(g) for g in groups):
        for index, group in enumerate(groups):
            if depth < len(group) and len(picked) < max_errors:
                v = group[depth]
                picked.append(((_file_rank(v.file), v.row or 0, index), v))
        depth += 1
    picked.sort(key=lambda item: item[0])
    return [v for _, v in picked]


class ProblemCollector:
    """Counts every problem, keeps the first ``max_errors`` of each kind (rule x column x file),
    errors and warnings apart.

    Internal to :mod:`contract`: :mod:`amlscore.contract.load` feeds it file-level problems before the
    column rules run.
    """

    def __init__(self, max_errors: int) -> None:
        if not isinstance(max_errors, int) or isinstance(max_errors, bool) or max_errors < 0:
            raise ValueError(f"The 'max_errors' parameter must be an int >= 0. Got {max_errors!r} instead.")
        self.max_errors = max_errors
        self._errors = _Grade()
        self._warnings = _Grade()
        self.notes: list[str] = []

    @property
    def total(self) -> int:
        """Errors found so far."""
        return self._errors.total

    def add(
        self,
        file: str,
        column: str | None,
        where: np.ndarray,
        values: pd.Series,
        rule: str,
        kind: str,
        note: Callable[[int], str | None] | None = None,
        severity: str = "error",
    ) -> None:
        """Record one problem per True in ``where`` (positions in file order)."""
        positions = np.flatnonzero(where)
        if positions.size == 0:
            return
        kept = [
            Violation(file, int(p) + 1, column, display_value(values.iat[p]), rule, kind,
                      note(int(p)) if note else None, severity)
            for p in positions[: max(self.max_errors, 1)]  # one is always built: it names the kind
        ]
        self.add_group(kept, int(positions.size))

    def warn(
        self,
        file: str,
        column: str | None,
        where: np.ndarray,
        values: pd.Series,
        rule: str,
        kind: str,
        note: Callable[[int], str | None] | None = None,
    ) -> None:
        """Record one warning per True in ``where``."""
        self.add(file, column, where, values, rule, kind, note, severity="warning")

    def add_group(self, kept: list[Violation], count: int) -> None:
        """Record ``count`` problems of one kind; ``kept`` (at least one) are the first of them."""
        if count <= 0:
            return
        grade = self._warnings if kept[0].severity == "warning" else self._errors
        grade.add_group(kept, count, self.max_errors)

    def report(self) -> ValidationReport:
        """The report: errors and warnings each picked round-robin over kinds, sorted by place."""
        return ValidationReport(
            violations=self._errors.pick(self.max_errors),
            total=self._errors.total,
            kinds=list(self._errors.kinds),
            warnings=self._warnings.pick(self.max_errors),
            warning_total=self._warnings.total,
            warning_kinds=list(self._warnings.kinds),
            notes=list(self.notes),
            max_errors=self.max_errors,
        )


def _file_rank(file: str) -> int:
    stem = file.split(".", 1)[0]
    names = [t.name for t in TABLES]
    return names.index(stem) if stem in names else len(names)


def display_value(value: object) -> str | None:
    """A cell as shown in a message: text, cut to ~60 characters; None when empty."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    text = (value if isinstance(value, str) else str(value)).strip()  # as the rules saw it
    if not text:
        return None
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."
