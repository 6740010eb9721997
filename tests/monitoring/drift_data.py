"""Test data for drift: a copy of a data folder whose cash transactions are twice as frequent."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

CASH_TYPES = ("cash_deposit", "cash_withdrawal")


def double_cash_share(source: Path, target: Path, seed: int = 0) -> float:
    """Copy ``source`` to ``target`` with cash rows duplicated until the cash share is twice the original.

    With C cash rows among N, adding k = C*N/(N-2C) copies of cash rows (every one once, then a random
    choice of the rest again) gives (C+k)/(N+k) = 2C/N. Each copy keeps its row's timestamp and fields
    under a new txn_id, so the folder stays in the contract. Returns the new cash share.
    """
    shutil.copytree(source, target)
    txns = pd.read_parquet(source / "transactions.parquet")
    cash = np.flatnonzero(txns["txn_type"].astype(str).isin(CASH_TYPES).to_numpy())
    n, c = len(txns), len(cash)
    k = round(c * n / (n - 2 * c))
    rng = np.random.default_rng(seed)
    picks = np.concatenate([cash, rng.choice(cash, size=k - c, replace=False)])
    copies = txns.iloc[np.sort(picks)].copy()
    copies["txn_id"] = [f"{t}D{i}" for i, t in enumerate(copies["txn_id"].astype(str))]
    doubled = pd.concat([txns, copies]).sort_values(["timestamp", "txn_id"], kind="stable").reset_index(drop=True)
    doubled.to_parquet(target / "transactions.parquet", index=False)
    return float(doubled["txn_type"].astype(str).isin(CASH_TYPES).mean())
