"""Helpers of the synthetic-bank tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from amlscore.synth.bank import SyntheticBank
from amlscore.synth.config import SynthConfig

SMALL = SynthConfig(customers=1000, days=180, seed=7)


def participants(bank: SyntheticBank) -> set[str]:
    """customer_ids of every customer in a laundering scenario."""
    return set(bank.ground_truth["customer_id"].astype(str))


def local_days(ts: pd.Series) -> np.ndarray:
    """Bank-local (UTC+8) dates of UTC timestamps, as datetime64[D]."""
    return (ts.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None).dt.floor("D")).to_numpy(dtype="datetime64[D]")
