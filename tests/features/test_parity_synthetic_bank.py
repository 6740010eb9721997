"""Parity on a generated history of at least 50,000 transactions: online replay == offline."""

from __future__ import annotations

import numpy as np
import pytest

from contract import dataset_from_frames
from features.catalogue import FEATURE_NAMES
from features.offline import build_features
from features.online import OnlineFeatureState, replay
from synth import SynthConfig, generate_bank
from test_point_in_time_and_parity import assert_same_features


@pytest.fixture(scope="module")
def bank_dataset():
    bank = generate_bank(SynthConfig(customers=400, days=200, seed=7))
    return dataset_from_frames(bank.customers, bank.transactions, bank.reports)


@pytest.mark.slow
def test_online_replay_equals_offline_on_50k_generated_transactions(bank_dataset):
    offline = build_features(bank_dataset)
    assert len(offline) >= 50_000
    online = replay(OnlineFeatureState(bank_dataset.customers), bank_dataset.transactions)
    # build_features keeps the loader's (time) order, which replay follows too
    assert (offline["txn_id"].astype(str).to_numpy() == bank_dataset.transactions["txn_id"].astype(str).to_numpy()).all()
    assert_same_features(offline[list(FEATURE_NAMES)].to_numpy(dtype=np.float64), online)
    # the history exercises the stateful features, not just zeros
    for name in ("ip_customers_7d", "fan_out_30d", "is_reactivation", "near_threshold_cash_cnt_7d", "is_new_counterparty"):
        assert offline[name].max() > 0, name
