"""Same seed, same bank; another seed, another bank."""

from __future__ import annotations

import pandas as pd

from amlscore.synth.bank import generate_bank
from amlscore.synth.config import SynthConfig


def _frames(seed: int) -> dict[str, pd.DataFrame]:
    bank = generate_bank(SynthConfig(customers=300, days=60, seed=seed))
    return {"customers": bank.customers, "transactions": bank.transactions, "reports": bank.reports,
            "ground_truth": bank.ground_truth}


def test_same_seed_gives_identical_frames() -> None:
    a, b = _frames(11), _frames(11)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


def test_different_seed_gives_a_different_bank() -> None:
    a, b = _frames(11), _frames(12)
    assert not a["customers"].equals(b["customers"])
    assert not a["transactions"]["amount"].equals(b["transactions"]["amount"])
    assert set(a["ground_truth"]["txn_id"]) != set(b["ground_truth"]["txn_id"])


def test_no_global_random_state_is_used() -> None:
    import numpy as np

    np.random.seed(0)
    first = generate_bank(SynthConfig(customers=200, days=30, seed=5)).transactions
    np.random.seed(12345)
    second = generate_bank(SynthConfig(customers=200, days=30, seed=5)).transactions
    pd.testing.assert_frame_equal(first, second)
