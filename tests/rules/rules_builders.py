"""Builders for the rule-score tests (tests/rules): tiny hand-made customers, reports, feature rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from amlscore.features.catalogue import FEATURE_NAMES, INTEGER_FEATURES
from amlscore.models.rules import load_rules_config
from amlscore.models.rules.config import default_config_data, parse_rules_config

AS_OF = "2025-06-30"

BASE_CUSTOMER = dict(
    customer_id="C1", customer_type="individual", birth_or_incorporation_date="1980-05-01", nationality="CN",
    residence_country="CN", home_region="CN-11", occupation_or_industry="salaried", id_document_type="resident_id",
    is_pep=False, on_watchlist=False, onboarding_channel="counter", agent_id=None, phone="p-C1",
    emergency_contact_phone=None, ownership_layers=None, refused_cdd=False, is_resident=True,
    declared_annual_income=120000.0, onboarded_at="2020-01-01",
)
BASE_CORPORATE = dict(
    BASE_CUSTOMER, customer_id="K1", customer_type="corporate", birth_or_incorporation_date="2005-03-01",
    occupation_or_industry="listed_company", id_document_type="business_license", ownership_layers=1, phone="p-K1",
)


def customer(**overrides) -> dict:
    row = dict(BASE_CUSTOMER, **overrides)
    if "phone" not in overrides:
        row["phone"] = f"p-{row['customer_id']}"
    return row


def corporate(**overrides) -> dict:
    row = dict(BASE_CORPORATE, **overrides)
    if "phone" not in overrides:
        row["phone"] = f"p-{row['customer_id']}"
    return row


def customers_frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def reports_frame(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """(customer_id, report_date, label) triples."""
    return pd.DataFrame(list(rows), columns=["customer_id", "report_date", "label"])


NO_REPORTS = reports_frame()


def behaviour_frame(**per_customer: dict) -> pd.DataFrame:
    """A behaviour frame (customer_behaviour's shape) with quiet defaults, overridden per customer."""
    quiet = dict(n_txn=20, cash_share=0.05, peer_cash_ratio=0.5, peer_txn_freq_ratio=1.0, non_face_to_face_share=0.3,
                 cross_border_share=0.0, high_risk_txn_count=0.0, operated_by_other_share=0.0, operator_customers=0.0,
                 unusual_txn_count=0.0, sanctioned_cp_count=0.0, fatf_black_cp_count=0.0, fatf_grey_cp_count=0.0,
                 offshore_cp_count=0.0)
    rows = {cid: dict(quiet, **values) for cid, values in per_customer.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "customer_id"
    return frame


def feature_frame(rows: list[dict]) -> pd.DataFrame:
    """Full feature rows (every catalogue feature 0 unless given) plus txn_id, customer_id, timestamp."""
    data = {"txn_id": [], "customer_id": [], "timestamp": []}
    for name in FEATURE_NAMES:
        data[name] = []
    for i, r in enumerate(rows):
        data["txn_id"].append(r.get("txn_id", f"T{i:05d}"))
        data["customer_id"].append(r.get("customer_id", "C1"))
        data["timestamp"].append(pd.Timestamp(r.get("timestamp", "2025-06-20T02:00:00Z")))
        for name in FEATURE_NAMES:
            data[name].append(r.get(name, 0))
    frame = pd.DataFrame(data)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    for name in FEATURE_NAMES:
        values = frame[name].astype(float)
        frame[name] = values.astype(np.int32) if name in INTEGER_FEATURES and values.notna().all() else values
    return frame


def config_with(overrides: dict):
    """The packaged configuration with a deep-merged change (validated)."""
    return load_rules_config(overrides=overrides)


def uniform_tables_config(score: int, m: int = 5):
    """Every case and every bin of every sub-item scores ``score`` (and ``missing`` the top)."""
    data = default_config_data()
    data["max_item_score"] = m
    for table in data["sub_items"].values():
        table["missing"] = m
        if "categories" in table:
            table["categories"] = {k: score for k in table["categories"]}
        else:
            for bins in table["inputs"].values():
                bins["scores"] = [score] * len(bins["scores"])
    return parse_rules_config(data)
