"""Customers added or changed while serving: the state is keyed by customer_id, not by a row number.

A customer added (and another's KYC data changed) in the middle of the stream gets, from then on,
the features a state built with the final customers table from the start gives; across a restart
from a snapshot or from the events alone, and across workers sharing one log in Redis.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amlscore.features.events import transaction_records  # noqa: E402
from amlscore.features.offline import ordered_transactions  # noqa: E402
from amlscore.features.online import OnlineFeatureState, replay  # noqa: E402
from amlscore.features.registry import UnknownCustomerError, customer_records, typed_customers  # noqa: E402
from test_point_in_time_and_parity import assert_same_features  # noqa: E402


@pytest.fixture(scope="module")
def scenario(small_bank):
    customers, transactions = small_bank
    customers = typed_customers(customer_records(customers))  # the loader's types
    txns = ordered_transactions(transactions)
    # X: a customer whose first transaction comes late, added when it arrives. (Not one named as a
    # counterparty before: a counterparty is keyed by its customer_id only once it is a customer.)
    first = txns.groupby(txns["customer_id"].astype(str))["timestamp"].min().sort_values()
    ids, cps = txns["customer_id"].astype(str).to_numpy(), txns["counterparty_id"].astype(str).to_numpy()
    for x in reversed(first.index.tolist()):
        cut = int(np.flatnonzero(ids == x)[0])
        if len(txns) - cut > 50 and x not in set(cps[:cut]):
            break
    before, after = txns.iloc[:cut], txns.iloc[cut:]
    # Y: a customer with transactions after the cut, whose declared income changes (a KYC update)
    y = after["customer_id"].astype(str).value_counts().index[0]
    final = customers.copy()
    final.loc[final["customer_id"].astype(str) == y, "declared_annual_income"] = 123_456.0
    start = customers[customers["customer_id"].astype(str) != x].reset_index(drop=True)
    change = final[final["customer_id"].astype(str).isin([x, y])]
    expected = replay(OnlineFeatureState(final), txns)[cut:]
    return start, change, before, after, expected, x


def test_an_added_customer_and_a_kyc_change_give_the_features_of_the_final_table(scenario, tmp_path):
    start, change, before, after, expected, x = scenario
    state = OnlineFeatureState(start, store=tmp_path / "features.sqlite", snapshot_every=0)
    replay(state, before)
    with pytest.raises(UnknownCustomerError):
        state.update_vector(next(transaction_records(after.head(1))))
    changed = state.upsert_customers(change)
    assert sorted(changed["customer_id"].astype(str)) == sorted(change["customer_id"].astype(str))
    assert len(state.upsert_customers(change)) == 0  # sent again: nothing changes, nothing logged
    half = len(after) // 2
    got = replay(state, after.iloc[:half])
    state.close()
    # a restart from the snapshot, with the data folder's customers table as the change left it
    # (the admin route and `amlscore customers upsert` write it)
    again = OnlineFeatureState(_final(start, change), store=tmp_path / "features.sqlite", snapshot_every=0)
    assert x in again.registry.code_of
    rest = replay(again, after.iloc[half:])
    # a data folder that lacks a customer added while serving does not lose it: the snapshot keeps it
    stale = OnlineFeatureState(start, store=tmp_path / "features.sqlite", snapshot_every=0)
    assert x in stale.registry.code_of
    stale.store.close()
    assert_same_features(expected, np.vstack([got, rest]))
    again.close()
    # a restart from the events alone (no snapshot): the logged change is applied where it was
    (tmp_path / "features.sqlite.snapshot").unlink()
    third = OnlineFeatureState(_final(start, change), store=tmp_path / "features.sqlite", snapshot_every=0)
    assert third.processed == again.processed and x in third.registry.code_of
    later = dict(next(transaction_records(after.tail(1))), txn_id="later",
                 timestamp=(pd.Timestamp(after["timestamp"].iloc[-1]) + pd.Timedelta(minutes=1)).isoformat())
    ref = OnlineFeatureState(_final(start, change))
    replay(ref, pd.concat([before, after]))
    assert_same_features(ref.update_vector(later)[None, :], third.update_vector(later)[None, :])


def _final(start: pd.DataFrame, change: pd.DataFrame) -> pd.DataFrame:
    from amlscore.features.registry import upsert_customer_table

    return upsert_customer_table(start, customer_records(change))


def test_a_change_made_on_one_worker_reaches_the_others_through_the_shared_log(scenario):
    from servers import redis_server

    from amlscore.features.redis_store import RedisFeatureStore

    start, change, before, after, expected, x = scenario
    with redis_server() as url:
        a = OnlineFeatureState(start, store=RedisFeatureStore(url), snapshot_every=0)
        b = OnlineFeatureState(start, store=RedisFeatureStore(url), snapshot_every=0)
        replay(a, before)
        a.upsert_customers(change)
        got = np.empty_like(expected)
        for i, record in enumerate(transaction_records(after)):
            got[i] = (b if i % 3 else a).update_vector(record)  # b learns of X from the log
        assert_same_features(expected, got)
        c = OnlineFeatureState(start, store=RedisFeatureStore(url))  # a new worker replays the change too
        assert x in c.registry.code_of and c.processed == a.store.seq_now()
