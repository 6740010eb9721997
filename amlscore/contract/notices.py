"""How every command that loads data reports the data set's warnings: one summary on stderr.

A warning is legal but suspect data (docs/data-contract.md); the data set is accepted, so a
command goes on, but it says so, the same way everywhere, and points to ``amlscore validate``
for the full list.
"""

from __future__ import annotations

import sys
from typing import TextIO

from amlscore.contract.load import Dataset
from amlscore.contract.problems import ValidationReport

__all__ = ["report_data_warnings", "warning_summary_lines"]


def warning_summary_lines(report: ValidationReport, source: object = None) -> list[str]:
    """The summary: one line with the count, one per kind of warning, one per note; empty when none."""
    lines: list[str] = []
    where = f" in {source}" if source is not None else ""
    if report.warning_total:
        noun = "warning" if report.warning_total == 1 else "warnings"
        lines.append(f"warning: the data{where} has {report.warning_total:,} {noun} (legal but suspect data):")
        lines.extend(f"  {kind.label}: {kind.count:,}" for kind in report.warning_kinds)
        lines.append("  `amlscore validate` lists them; `amlscore validate --strict` counts them as errors.")
    lines.extend(f"note: {note}" for note in report.notes)
    return lines


def report_data_warnings(dataset: Dataset, stream: TextIO | None = None) -> None:
    """Print the summary of ``dataset``'s warnings and notes to ``stream`` (stderr by default)."""
    if dataset.report is None:
        return
    lines = warning_summary_lines(dataset.report, dataset.source)
    if lines:
        print("\n".join(lines), file=stream if stream is not None else sys.stderr, flush=True)
