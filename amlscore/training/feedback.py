"""Analysts' dispositions of alerts, kept as reports for the next training.

An analyst who closes an alert writes a row in the contract's **reports format** (``report_id``,
``customer_id``, ``txn_id`` or ``period_start``/``period_end``, ``report_date``, ``label`` =
``suspicious`` or ``not_suspicious``, ``typology``). :func:`append_feedback` checks such rows
against the contract and the data folder (the customer and transaction exist, the transaction is
the customer's, the report is dated after the activity), and appends them to
``<data>/feedback/feedback.csv``, deduplicated by ``report_id`` (a later row with the same
``report_id`` replaces the earlier one: a corrected disposition).

``amlscore train`` merges ``<data>/feedback/*.csv`` (and any ``--feedback`` file) with the data's
own reports (:func:`merge_feedback`); a feedback row whose ``report_id`` is already in the data's
reports replaces it. The label rules are then the usual ones (:mod:`amlscore.training.labels`): a
``not_suspicious`` disposition is a confirmed negative and overrides suspicious reports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.contract.load import Dataset
from amlscore.contract.schema import REPORTS
from amlscore.contract.problems import ContractViolationError
from amlscore.contract.validate import check_frames, empty_table, typed_tables

__all__ = ["FEEDBACK_DIR", "FEEDBACK_FILE", "SERVED_TRANSACTIONS_FILE", "append_feedback", "feedback_files",
           "merge_feedback", "merge_served_transactions", "read_feedback", "validate_reports"]

FEEDBACK_DIR = "feedback"
FEEDBACK_FILE = "feedback.csv"
# written by the scoring service beside its reports export (amlscore/serving/feedback.py); a data interface,
# so training reads the file and never imports serving
SERVED_TRANSACTIONS_FILE = "feedback_transactions.csv"
REPORT_COLUMNS = list(REPORTS.column_names)


def validate_reports(rows: pd.DataFrame, dataset: Dataset, *, source: str = "feedback") -> pd.DataFrame:
    """Check report rows against the contract and the data set; return them typed.

    Only the transactions the rows name are re-checked, so this is quick on a large data set.

    Raises
    ------
    AmlError
        Listing every broken rule (column, row, rule, value).
    """
    missing = [c for c in REPORT_COLUMNS if c not in rows.columns]
    if missing:
        raise AmlError(f"{source} must have the reports columns {', '.join(REPORT_COLUMNS)}; missing: {', '.join(missing)}.")
    rows = rows[REPORT_COLUMNS].reset_index(drop=True)
    named = rows["txn_id"].dropna().astype(str)
    named = set(named[named.str.len() > 0])
    tx = dataset.transactions
    sub = tx[tx["txn_id"].astype(str).isin(named)]
    if len(sub) == 0:
        sub = tx.iloc[:1] if len(tx) else empty_table("transactions")
    report, tables = check_frames(dataset.customers, sub.reset_index(drop=True), rows, max_errors=50)
    try:
        _, _, typed = typed_tables(report, tables)
    except ContractViolationError as exc:
        lines = [v.message for v in exc.report.violations]
        raise AmlError(f"{source} breaks the reports contract:\n" + "\n".join(lines) + f"\n{exc.report.summary}") from None
    return typed


def _read_any(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def feedback_files(data_dir: str | Path, extra: Iterable[str | Path] = ()) -> list[Path]:
    """``<data>/feedback/*.csv`` (sorted by name, served-transaction sidecars aside) followed by the extra files."""
    folder = Path(data_dir) / FEEDBACK_DIR
    files = sorted(p for p in folder.glob("*.csv") if p.name != SERVED_TRANSACTIONS_FILE) if folder.is_dir() else []
    for p in extra:
        p = Path(p)
        if not p.is_file():
            raise AmlError(f"The feedback file {p} does not exist.")
        files.append(p)
    return files


def read_feedback(files: list[Path]) -> pd.DataFrame:
    """The rows of the feedback files, later files and rows winning on a repeated ``report_id``."""
    frames = [_read_any(p) for p in files]
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype=str) for c in REPORT_COLUMNS})
    rows = pd.concat(frames, ignore_index=True)
    return rows.drop_duplicates("report_id", keep="last").reset_index(drop=True)


def _served_sidecars(files: list[Path]) -> list[Path]:
    found: list[Path] = []
    for p in files:
        side = p.parent / SERVED_TRANSACTIONS_FILE
        if p.name != SERVED_TRANSACTIONS_FILE and side.is_file() and side not in found:
            found.append(side)
    return found


def merge_served_transactions(dataset: Dataset, sidecars: list[Path]) -> tuple[Dataset, int]:
    """The data set plus the served transactions of ``sidecars`` that it lacks (validated, time-ordered).

    Raises
    ------
    AmlError
        When a served transaction breaks the contract (e.g. its customer is not in the data set).
    """
    frames = [_read_any(p) for p in sidecars]
    if not frames:
        return dataset, 0
    rows = pd.concat(frames, ignore_index=True).drop_duplicates("txn_id", keep="last")
    rows = rows[~rows["txn_id"].astype(str).isin(set(dataset.transactions["txn_id"].astype(str)))]
    if len(rows) == 0:
        return dataset, 0
    report, tables = check_frames(dataset.customers, rows.reset_index(drop=True), None, max_errors=50)
    try:
        _, typed, _ = typed_tables(report, tables)
    except ContractViolationError as exc:
        lines = [v.message for v in exc.report.violations]
        raise AmlError(f"The served transactions in {', '.join(map(str, sidecars))} break the transactions contract:\n"
                       + "\n".join(lines) + f"\n{exc.report.summary}") from None
    own = dataset.transactions
    merged = pd.concat([own, typed], ignore_index=True)
    for c in own.columns:  # keep the contract dtypes (concat of categoricals may widen them)
        if merged[c].dtype != own[c].dtype:
            merged[c] = merged[c].astype(own[c].dtype) if len(own) else merged[c]
    merged = merged.sort_values(["timestamp", "txn_id"], kind="stable").reset_index(drop=True)
    # positional: (customers, transactions, reports, source, fingerprint, warnings)
    return Dataset(dataset.customers, merged, dataset.reports, dataset.source, dataset.fingerprint,
                   dataset.warnings), len(typed)


def merge_feedback(dataset: Dataset, files: list[Path]) -> tuple[Dataset, int]:
    """The data set with its reports merged with the feedback files' rows (validated).

    Returns
    -------
    (Dataset, int)
        A data set whose ``reports`` include the feedback (feedback wins on a repeated
        ``report_id``) and whose ``fingerprint`` also covers the feedback files; and the number of
        feedback rows merged.
    """
    if not files:
        return dataset, 0
    rows = read_feedback(files)
    if len(rows) == 0:
        return dataset, 0
    sidecars = _served_sidecars(files)
    dataset, _ = merge_served_transactions(dataset, sidecars)
    typed = validate_reports(rows, dataset, source=", ".join(str(p) for p in files))
    own = dataset.reports[~dataset.reports["report_id"].astype(str).isin(set(typed["report_id"].astype(str)))]
    merged = pd.concat([own, typed], ignore_index=True)
    for c in REPORT_COLUMNS:  # keep the contract dtypes (concat of categoricals may widen them)
        merged[c] = merged[c].astype(dataset.reports[c].dtype) if len(dataset.reports) else merged[c]
    digest = hashlib.sha256(dataset.fingerprint.encode())
    for p in [*files, *sidecars]:
        digest.update(p.name.encode())
        digest.update(hashlib.sha256(p.read_bytes()).hexdigest().encode())
    # positional: (customers, transactions, reports, source, fingerprint, warnings)
    return Dataset(dataset.customers, dataset.transactions, merged, dataset.source, digest.hexdigest(),
                   dataset.warnings), len(typed)


def append_feedback(dispositions: pd.DataFrame | str | Path, dataset: Dataset, data_dir: str | Path | None = None,
                    *, feedback_file: str | Path | None = None) -> tuple[Path, int, int]:
    """Validate analysts' dispositions and append them to the feedback file.

    Parameters
    ----------
    dispositions : DataFrame or path
        Rows in the reports format.
    dataset : Dataset
        The data folder they are about (customers and transactions must exist there).
    data_dir : path, optional
        Default location: ``<data_dir>/feedback/feedback.csv``.
    feedback_file : path, optional
        Another file to append to.

    Returns
    -------
    (Path, int, int)
        The file written, rows added, rows that replaced an earlier row with the same ``report_id``.
    """
    rows = _read_any(Path(dispositions)) if isinstance(dispositions, (str, Path)) else dispositions.copy()
    if rows["report_id"].astype(str).duplicated().any():
        dupes = sorted(set(rows.loc[rows["report_id"].astype(str).duplicated(), "report_id"].astype(str)))
        raise AmlError(f"The dispositions repeat report_id {', '.join(dupes[:10])}; each report_id must be unique.")
    validate_reports(rows, dataset, source="the dispositions")
    if feedback_file is None:
        if data_dir is None and dataset.source is None:
            raise AmlError("Give data_dir or feedback_file: the data set has no folder.")
        feedback_file = Path(data_dir or dataset.source) / FEEDBACK_DIR / FEEDBACK_FILE
    target = Path(feedback_file)
    existing = _read_any(target) if target.is_file() else pd.DataFrame(columns=REPORT_COLUMNS)
    new = rows[REPORT_COLUMNS].astype(object).where(rows[REPORT_COLUMNS].notna(), "")
    for c in ("period_start", "period_end", "report_date"):
        new[c] = new[c].map(lambda v: pd.Timestamp(v).strftime("%Y-%m-%d") if v not in ("", None) and v == v else "")
    new = new.astype(str)
    replaced = int(np.isin(existing["report_id"].astype(str), new["report_id"].astype(str)).sum())
    kept = existing[~existing["report_id"].astype(str).isin(set(new["report_id"].astype(str)))]
    out = pd.concat([kept.astype(str), new], ignore_index=True)[REPORT_COLUMNS]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    out.to_csv(tmp, index=False)
    tmp.replace(target)
    return target, len(new) - replaced, replaced
