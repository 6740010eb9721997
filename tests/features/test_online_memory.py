"""The online state's memory follows its windows, not the history: a long-running service is flat."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import amlscore.features.online as online
from amlscore.features.events import transaction_records
from amlscore.features.online import OnlineFeatureState
from synthetic_frames import make_customers, typed_transactions

DAY = 86_400


def _stream(customers: pd.DataFrame, days: int, per_day: int, seed: int) -> list[dict]:
    """Online-banking transactions of every customer, each from a new IP address and device."""
    rng = np.random.default_rng(seed)
    ids = customers["customer_id"].astype(str).to_numpy()
    n = days * per_day * len(ids)
    seconds = np.sort(rng.integers(0, days * DAY, n))
    df = pd.DataFrame({
        "txn_id": [f"L{i:08d}" for i in range(n)],
        "timestamp": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
        "customer_id": rng.choice(ids, n),
        "account_id": "A1",
        "direction": rng.choice(["in", "out"], n),
        "amount": rng.lognormal(6.0, 1.0, n).round(2) + 0.01,
        "channel": "online_banking",
        "txn_type": "transfer",
        "counterparty_id": rng.choice(ids, n),
        "counterparty_type": "individual",
        "counterparty_country": "CN",
        "ip_address": [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n)],
        "ip_country": "CN",
        "ip_region": "CN-11",
        "device_id": [f"D{i}" for i in range(n)],
    })
    return list(transaction_records(typed_transactions(df)))


def _footprint(state: OnlineFeatureState) -> dict[str, int]:
    return {
        "static cache": len(state._peers.static),
        "peer cache": len(state._peers.cache),
        "peer days": sum(len(d) for d in state._peers.days.values()),
        "event buffers": sum(len(c.ts) for c in state._customers.values()),
        **{f"{field} {w}": len(table) for (field, w), table in state._entities.tables.items()},
    }


def test_memory_is_flat_once_the_windows_are_full(monkeypatch):
    monkeypatch.setattr(online, "_SWEEP_EVERY", 1_000)
    customers = make_customers(10, seed=5)
    per_day = 4
    records = _stream(customers, days=400, per_day=per_day, seed=6)
    state = OnlineFeatureState(customers)
    half = len(records) // 2  # day 200: every window (at most 90 days) is full
    for r in records[:half]:
        state.update_vector(r)
    middle = _footprint(state)
    for r in records[half:]:
        state.update_vector(r)
    end = _footprint(state)

    per_window_day = per_day * len(customers)
    # cached counts: one entry per customer (or peer group), whatever the number of days
    assert end["static cache"] <= len(customers)
    assert end["peer cache"] <= state.registry.peer_group.max() + 1
    assert end["peer days"] <= (state.params.peer_lookback_days + 2) * (state.registry.peer_group.max() + 1)
    # a customer keeps at most about twice the events of its 90-day window (plus the doubling slack)
    assert end["event buffers"] <= 4 * 90 * per_window_day + 128 * len(customers)
    # identifier windows idle for longer than their window plus 90 days are swept
    for (field, w) in state._entities.tables:
        bound = (online.WINDOW_NS[w] // 10**9 // DAY + 91) * per_window_day + online._SWEEP_EVERY
        assert end[f"{field} {w}"] <= bound, (field, w, end)
    # flat: the second half of the stream left nothing bigger behind than the first
    for key, value in end.items():
        assert value <= middle[key] * 1.25 + 16, (key, middle[key], value)


def test_static_counts_follow_onboarding_days(small_bank):
    """The per-customer cache of peer-group size and shared agent/phone counts holds its values
    exactly for the days they are valid (the parity tests check the feature rows)."""
    customers, _ = small_bank
    state = OnlineFeatureState(customers)
    reg = state.registry
    days = np.arange(reg.onboard_day.min() - 2, reg.onboard_day.max() + 3)
    for cust in range(0, len(reg), 7):
        codes = np.full(len(days), cust)
        expected = np.stack([reg.peer_group_size(codes, days)]
                            + [reg.other_customers(kind, codes, days) for kind in ("agent", "phone", "emergency")], 1)
        got = np.array([state._peers.static_counts(reg, cust, int(d)) for d in days])
        np.testing.assert_array_equal(got, expected)
    assert len(state._peers.static) <= len(reg)


@pytest.mark.parametrize("events", [10, 3_000])
def test_a_customer_buffer_keeps_only_its_window(events):
    """One busy customer, one transaction an hour: the buffer follows the 90-day window."""
    customers = make_customers(3, seed=8)
    state = OnlineFeatureState(customers)
    start = pd.Timestamp("2025-06-01", tz="UTC")
    for i in range(events):
        state.update_vector({"txn_id": f"B{i}", "timestamp": (start + pd.Timedelta(hours=i)).isoformat(),
                             "customer_id": "C00000", "account_id": "A", "direction": "in" if i % 3 else "out",
                             "amount": 100.0 + i % 17, "channel": "counter", "txn_type": "transfer",
                             "counterparty_type": "unknown"})
    buf = state._customers[0]
    in_window = min(events, 90 * 24)
    assert buf.n - buf.head == in_window
    assert len(buf.ts) <= 4 * in_window + 128


def test_a_snapshot_of_compacted_buffers_restores_the_same_state():
    """Snapshots keep only the events inside the window; a state restored from one continues identically."""
    from amlscore.features.store import MemoryFeatureStore

    customers = make_customers(3, seed=8)
    start = pd.Timestamp("2025-06-01", tz="UTC")
    records = [{"txn_id": f"S{i}", "timestamp": (start + pd.Timedelta(hours=i)).isoformat(), "customer_id": "C00001",
                "account_id": "A", "direction": "in" if i % 4 else "out", "amount": 50.0 + (i * 7) % 23,
                "channel": "counter", "txn_type": "transfer", "counterparty_type": "unknown"} for i in range(3_000)]
    clean = np.array([r for r in map(OnlineFeatureState(customers).update_vector, records)])
    store = MemoryFeatureStore()
    state = OnlineFeatureState(customers, store=store, snapshot_every=2_500)  # after many compactions
    first = np.array([state.update_vector(r) for r in records[:2_700]])
    restarted = OnlineFeatureState(customers, store=store, snapshot_every=0)
    assert restarted.processed == 2_700
    rest = np.array([restarted.update_vector(r) for r in records[2_700:]])
    np.testing.assert_array_equal(np.nan_to_num(np.vstack([first, rest])), np.nan_to_num(clean))


def test_a_burst_s_buffer_room_comes_back_after_the_burst():
    """2,000 transactions in one day, then one a day: once the burst has left the 90-day window the
    customer's buffers shrink back to the size its quiet window needs (no ratchet), and a restart
    gives the same size (twice the events inside the window)."""
    customers = make_customers(3, seed=8)
    state = OnlineFeatureState(customers)
    start = pd.Timestamp("2025-06-01", tz="UTC")
    times = [start + pd.Timedelta(seconds=30 * i) for i in range(2_000)]
    times += [start + pd.Timedelta(days=1 + d) for d in range(200)]
    for i, t in enumerate(times):
        state.update_vector({"txn_id": f"U{i}", "timestamp": t.isoformat(), "customer_id": "C00002", "account_id": "A",
                             "direction": "out", "amount": 80.0 + i % 7, "channel": "counter", "txn_type": "transfer",
                             "counterparty_type": "unknown"})
        if i == 2_000:
            peak = len(state._customers[2].ts)
    buf = state._customers[2]
    assert buf.n - buf.head == 90  # the last 90 days, one a day
    assert peak >= 2_000 and len(buf.ts) <= 8 * 90
    buf.reseat()
    assert len(buf.ts) == 2 * 90 and buf.n - buf.head == 90
