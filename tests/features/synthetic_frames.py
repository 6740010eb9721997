"""Small typed contract frames with the patterns features look for, built without the generator.

Used by feature tests that need exact control (shared IPs, near-threshold cash, dormancy, ties in
time); the bigger parity test uses the synthetic bank.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amlscore.contract.schema import CHANNELS, COUNTERPARTY_TYPES, CUSTOMER_TYPES, DIRECTIONS, OCCUPATIONS_OR_INDUSTRIES, TXN_TYPES

_CAT = {
    "customer_type": CUSTOMER_TYPES,
    "occupation_or_industry": OCCUPATIONS_OR_INDUSTRIES,
    "direction": DIRECTIONS,
    "channel": CHANNELS,
    "txn_type": TXN_TYPES,
    "counterparty_type": COUNTERPARTY_TYPES,
}


def make_customers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    corp = rng.random(n) < 0.15
    occ = np.where(corp, rng.choice(["private_company", "import_export", "cash_intensive_retail"], n),
                   rng.choice(["salaried", "self_employed", "student", "retired"], n))
    agents = np.where(rng.random(n) < 0.2, rng.choice(["AG1", "AG2", "AG3"], n), None)
    phones = np.array([f"P{rng.integers(0, n)}" for _ in range(n)], dtype=object)
    emerg = np.where(rng.random(n) < 0.7, np.array([f"P{rng.integers(0, n)}" for _ in range(n)], dtype=object), None)
    income = np.where(rng.random(n) < 0.85, rng.lognormal(11.5, 0.8, n).round(2), np.nan)
    onboard = pd.to_datetime("2023-01-01") + pd.to_timedelta(rng.integers(0, 800, n), unit="D")
    df = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "customer_type": np.where(corp, "corporate", "individual"),
        "birth_or_incorporation_date": pd.NaT,
        "nationality": "CN",
        "residence_country": "CN",
        "home_region": rng.choice(["CN-11", "CN-31", "CN-62"], n),
        "occupation_or_industry": occ,
        "id_document_type": np.where(corp, "business_license", "resident_id"),
        "is_pep": False,
        "on_watchlist": False,
        "onboarding_channel": "counter",
        "agent_id": agents,
        "phone": phones,
        "emergency_contact_phone": emerg,
        "ownership_layers": pd.array([1 if c else pd.NA for c in corp], dtype="Int64"),
        "refused_cdd": False,
        "is_resident": True,
        "declared_annual_income": income,
        "onboarded_at": onboard,
    })
    return typed_customers(df)


def typed_customers(df: pd.DataFrame) -> pd.DataFrame:
    """Give a hand-made customers frame the loader's dtypes."""
    df = df.copy()
    for c in ("customer_id", "home_region", "agent_id", "phone", "emergency_contact_phone", "nationality",
              "residence_country"):
        df[c] = df[c].astype("string")
    for c in ("customer_type", "occupation_or_industry"):
        df[c] = pd.Categorical(df[c], categories=_CAT[c])
    df["onboarded_at"] = pd.to_datetime(df["onboarded_at"])
    return df


def make_transactions(customers: pd.DataFrame, n: int, seed: int = 1, start: str = "2025-01-01",
                      days: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = customers["customer_id"].astype(str).to_numpy()
    # a few busy customers so windows hold many events, plenty of ties in time
    weights = rng.pareto(1.5, len(ids)) + 0.1
    cust = rng.choice(ids, n, p=weights / weights.sum())
    seconds = np.sort(rng.integers(0, days * 86_400, n)) // 60 * 60  # minute resolution: ties happen
    ts = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(seconds, unit="s")
    channel = rng.choice(CHANNELS[:6], n, p=[0.25, 0.3, 0.05, 0.2, 0.1, 0.1])  # the six named channels
    ttype = np.where(channel == "pos", "purchase",
             np.where(channel == "atm", rng.choice(["cash_withdrawal", "cash_deposit"], n),
             np.where(channel == "counter", rng.choice(["cash_deposit", "cash_withdrawal", "transfer"], n),
                      rng.choice(["transfer", "remittance", "bill_payment", "salary"], n))))
    direction = np.where(ttype == "cash_deposit", "in", np.where(ttype == "cash_withdrawal", "out",
                         rng.choice(["in", "out"], n)))
    near = rng.random(n) < 0.03
    amount = np.where(near, rng.uniform(45_000, 49_999, n), rng.lognormal(6.5, 1.6, n)).round(2)
    amount = np.where(rng.random(n) < 0.05, (amount // 1000 + 1) * 1000, amount)
    amount = np.maximum(amount, 0.01)
    online = np.isin(channel, ["online_banking", "mobile_banking"])
    terminal = np.isin(channel, ["pos", "atm"])
    ip_pool = np.array([f"10.0.0.{i}" for i in range(max(5, len(ids) // 3))], dtype=object)
    has_cp = np.isin(ttype, ["transfer", "remittance", "salary"]) & (rng.random(n) < 0.7)
    cp = np.where(has_cp, rng.choice(ids, n), None)
    country = np.where(ttype == "remittance", rng.choice(["CN", "US", "IR", "HK", "KP"], n), None)
    df = pd.DataFrame({
        "txn_id": [f"T{i:07d}" for i in rng.permutation(n)],
        "timestamp": ts,
        "customer_id": cust,
        "account_id": [f"A{c[1:]}" for c in cust],
        "direction": direction,
        "amount": amount,
        "channel": channel,
        "txn_type": ttype,
        "counterparty_id": cp,
        "counterparty_type": np.where(has_cp, rng.choice(["individual", "corporate"], n), "unknown"),
        "counterparty_country": country,
        "ip_address": np.where(online, rng.choice(ip_pool, n), None),
        "ip_country": np.where(online, rng.choice(["CN", "CN", "CN", "US"], n), None),
        "ip_region": np.where(online, rng.choice(["CN-11", "CN-31", "CN-62", "CN-44"], n), None),
        "device_id": np.where(online, rng.choice([f"D{i}" for i in range(len(ids) // 2 + 1)], n), None),
        "terminal_id": np.where(terminal, rng.choice(["TM1", "TM2", "TM3"], n), None),
        "terminal_region": np.where(terminal, "CN-11", None),
        "operator_id": np.where(rng.random(n) < 0.02, rng.choice(["OP1", "OP2"], n), None),
        # accounts outside the bank for non-cash rows without a customer counterparty (a pool, so some recur)
        "counterparty_account": np.where(~has_cp & ~np.isin(ttype, ["cash_deposit", "cash_withdrawal"])
                                         & (rng.random(n) < 0.8), rng.choice([f"EXT{i:04d}" for i in range(40)], n), None),
    })
    return typed_transactions(df)


def typed_transactions(df: pd.DataFrame) -> pd.DataFrame:
    """Give a hand-made transactions frame the loader's dtypes and time order."""
    df = df.copy()
    for c in ("txn_id", "customer_id", "account_id", "counterparty_id", "counterparty_country", "ip_address",
              "ip_country", "ip_region", "device_id", "terminal_id", "terminal_region", "operator_id",
              "counterparty_account"):
        if c not in df:
            df[c] = None
        df[c] = df[c].astype("string")
    for c in ("direction", "channel", "txn_type", "counterparty_type"):
        df[c] = pd.Categorical(df[c], categories=_CAT[c])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    df["amount"] = df["amount"].astype("float64")
    return df.sort_values(["timestamp", "txn_id"], kind="stable").reset_index(drop=True)
