"""Parity on a generated history of at least 50,000 transactions: online replay == offline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlscore.contract import dataset_from_frames
from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.features.offline import build_features
from amlscore.features.online import OnlineFeatureState, replay
from amlscore.synth import SynthConfig, generate_bank
from test_point_in_time_and_parity import assert_same_features


@pytest.fixture(scope="module")
def bank_dataset():
    bank = generate_bank(SynthConfig(customers=400, days=200, seed=7))
    return dataset_from_frames(bank.customers, bank.transactions, bank.reports)


@pytest.fixture(scope="module")
def offline(bank_dataset):
    return build_features(bank_dataset)


@pytest.mark.slow
def test_online_replay_equals_offline_on_50k_generated_transactions(bank_dataset, offline):
    assert len(offline) >= 50_000
    online = replay(OnlineFeatureState(bank_dataset.customers, reports=bank_dataset.reports), bank_dataset.transactions)
    # build_features keeps the loader's (time) order, which replay follows too
    assert (offline["txn_id"].astype(str).to_numpy() == bank_dataset.transactions["txn_id"].astype(str).to_numpy()).all()
    assert_same_features(offline[list(FEATURE_NAMES)].to_numpy(dtype=np.float64), online)
    # the history exercises the stateful features, not just zeros
    for name in ("ip_customers_7d", "fan_out_30d", "is_reactivation", "near_threshold_cash_cnt_7d", "is_new_counterparty",
                 "cp_fan_in_7d", "scatter_gather_7d", "cycle_len_7d", "chain_len_24h", "payer_new_indiv_payees_30d",
                 "reported_cps_30d", "reported_2hop_30d", "cp_new_payers_30d", "cp_new_payees_30d",
                 "cp_pass_through_30d", "pair_new_30d", "out_to_collectors_share_30d",
                 "in_from_distributors_share_30d"):
        assert offline[name].max() > 0, name


def test_a_warm_up_of_the_last_days_gives_the_features_training_computed(bank_dataset, offline, tmp_path):
    """The service replays only the last 100 days of history into its state. The features of what
    comes after still equal the offline path's over the whole history, because the warm-up seeds what
    reaches back further (previous transaction times, counterparties ever seen); a restart that must
    rebuild the state from the stored events (no snapshot file) starts from that seed too."""
    from amlscore.features.events import transaction_records
    from amlscore.features.offline import ordered_transactions
    from amlscore.features.online import warm_up

    txns = ordered_transactions(bank_dataset.transactions)
    ts = pd.to_datetime(txns["timestamp"], utc=True)
    cut = ts.max() - pd.Timedelta(days=12)  # served after the warm-up: the last 12 days
    history, served = txns.loc[(ts <= cut).to_numpy()], txns.loc[(ts > cut).to_numpy()]
    expected = offline.set_index("txn_id").loc[served["txn_id"].astype(str), list(FEATURE_NAMES)].to_numpy(np.float64)

    store = tmp_path / "features.sqlite"
    state = OnlineFeatureState(bank_dataset.customers, store=store, reports=bank_dataset.reports)
    assert warm_up(state, history, days=100) < len(history)
    half = len(served) // 2
    records = list(transaction_records(served))
    first = np.array([state.update_vector(r) for r in records[:half]])
    state.store.close()
    (tmp_path / "features.sqlite.snapshot").unlink()  # the restart has only the events and the seed
    restarted = OnlineFeatureState(bank_dataset.customers, store=store, reports=bank_dataset.reports)
    rest = np.array([restarted.update_vector(r) for r in records[half:]])
    restarted.close()
    got = np.vstack([first, rest])
    # The standard deviations come from running sums of squares, which the offline path starts at the
    # history's first day and the warmed-up state at the warm-up's: the same values up to rounding
    # (a few tenths of a yuan where a window's amounts are alike); every other feature is exact.
    stds = [j for j, name in enumerate(FEATURE_NAMES) if "_std_" in name]
    np.testing.assert_allclose(got[:, stds], expected[:, stds], rtol=1e-9, atol=0.5)
    rest_cols = [j for j in range(len(FEATURE_NAMES)) if j not in stds]
    assert_same_features(expected[:, rest_cols], got[:, rest_cols], [FEATURE_NAMES[j] for j in rest_cols])

    # without the seed, the same warm-up takes counterparties and gaps from before it for new ones
    plain = OnlineFeatureState(bank_dataset.customers, reports=bank_dataset.reports)
    recent = history.loc[(pd.to_datetime(history["timestamp"], utc=True) > cut - pd.Timedelta(days=100)).to_numpy()]
    for r in transaction_records(recent):
        plain.update_vector(r)
    unseeded = np.array([plain.update_vector(r) for r in records])
    new_cp = FEATURE_NAMES.index("is_new_counterparty")
    assert unseeded[:, new_cp].sum() > expected[:, new_cp].sum()
