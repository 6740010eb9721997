"""Shared small banks for the synthetic-bank tests (generated once per session: they take ~1 s)."""

from __future__ import annotations

import pandas as pd
import pytest

from amlscore.contract.load import Dataset, dataset_from_frames
from amlscore.synth.bank import SyntheticBank, generate_bank

from synthbank_helpers import SMALL


@pytest.fixture(scope="session")
def bank() -> SyntheticBank:
    """1,000 customers over 180 days: every typology at least 3 times."""
    return generate_bank(SMALL)


@pytest.fixture(scope="session")
def dataset(bank: SyntheticBank) -> Dataset:
    """The same bank, checked and typed by the contract validator."""
    return dataset_from_frames(bank.customers, bank.transactions, bank.reports)


@pytest.fixture(scope="session")
def labelled(dataset: Dataset, bank: SyntheticBank) -> pd.DataFrame:
    """Typed transactions with the ground truth joined on (typology NaN = legitimate)."""
    gt = bank.ground_truth.astype({"txn_id": "string[pyarrow]"})
    out = dataset.transactions.merge(gt[["txn_id", "typology", "scenario_id", "reported"]], on="txn_id", how="left")
    out["laundering"] = out["typology"].notna().to_numpy(dtype=bool)
    return out
