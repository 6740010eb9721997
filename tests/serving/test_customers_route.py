"""Customers added or changed while serving: ``POST /v1/admin/customers`` and ``amlscore customers upsert``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from serving_fakes import FakeLoader
from serving_helpers import ADMIN, CHANNEL, COMPLIANCE, new_txn, start_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_bank: Path) -> Any:
    saved = dict(os.environ)
    work = tmp_path_factory.mktemp("customers")
    data = work / "data"
    shutil.copytree(tiny_bank, data)  # the route writes the data folder's customers file
    client = start_client(data, work / "state", FakeLoader())
    try:
        yield {"client": client, "data": data, "state": work / "state"}
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)


def _row(data: Path, customer_id: str | None = None, **changes: Any) -> tuple[str, dict[str, Any]]:
    from amlscore.contract import load_dataset
    from amlscore.features.registry import customer_records

    customers = load_dataset(data, require_reports=False).customers
    base = customer_records(customers.iloc[[3]])[0]
    base.update(changes)
    if customer_id is not None:
        base["customer_id"] = customer_id
    return base["customer_id"], base


def test_a_customer_added_while_serving_is_scored_and_written_to_the_data_folder(app):
    client, data = app["client"], app["data"]
    txn = new_txn("NEW-0001", "CUS-1", "2026-03-01T10:00:00Z")
    r = client.post("/v1/score", json={"transaction": txn}, headers=CHANNEL)
    assert r.status_code == 422 and "not in the customers table" in r.text
    _, row = _row(data, "NEW-0001", onboarded_at="2025-01-01")
    assert client.post("/v1/admin/customers", json={"customers": [row]}, headers=COMPLIANCE).status_code == 403
    r = client.post("/v1/admin/customers", json={"customers": [row]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["added"] == ["NEW-0001"] and r.json()["updated"] == []
    r = client.post("/v1/score", json={"transaction": txn}, headers=CHANNEL)
    assert r.status_code == 200, r.text
    # sent again unchanged: nothing to do
    assert client.post("/v1/admin/customers", json={"customers": [row]}, headers=ADMIN).json()["unchanged"] == 1
    from amlscore.contract import load_dataset

    assert "NEW-0001" in set(load_dataset(data, require_reports=False).customers["customer_id"].astype(str))


def test_a_kyc_change_rates_the_customer_again_and_keeps_the_previous_rating(app):
    client, data = app["client"], app["data"]
    cid, row = _row(data)
    before = client.post("/v1/customer_risk", json={"customer_id": cid}, headers=COMPLIANCE).json()
    assert before["history"] == []
    row["is_pep"] = not row["is_pep"]  # a KYC change the rating reads
    r = client.post("/v1/admin/customers", json={"customers": [row]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == [cid]
    ratings = r.json()["ratings"][cid]
    assert ratings["before"]["score"] == before["rating"]["score"] and ratings["after"] is not None
    after = client.post("/v1/customer_risk", json={"customer_id": cid}, headers=COMPLIANCE).json()
    assert [h["rating"] for h in after["history"]] == [ratings["before"]]
    assert after["history"][0]["replaced_by"] == "adm"  # the admin key's id
    assert after["rating"]["score"] == ratings["after"]["score"]


def test_the_rating_history_outlives_a_restart(tiny_bank, tmp_path):
    data, state = tmp_path / "data", tmp_path / "state"
    shutil.copytree(tiny_bank, data)
    saved = dict(os.environ)
    cid, row = _row(data)
    try:
        client = start_client(data, state, FakeLoader())
        first = client.post("/v1/customer_risk", json={"customer_id": cid}, headers=COMPLIANCE).json()["rating"]
        row["is_pep"] = not row["is_pep"]
        assert client.post("/v1/admin/customers", json={"customers": [row]}, headers=ADMIN).status_code == 200
        client.__exit__(None, None, None)
        client = start_client(data, state, FakeLoader())  # ratings computed again from the data folder
        after = client.post("/v1/customer_risk", json={"customer_id": cid}, headers=COMPLIANCE).json()
        client.__exit__(None, None, None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert [h["rating"]["score"] for h in after["history"]] == [first["score"]]
    assert after["rating"]["score"] != first["score"]  # the changed KYC is what the restart rated


def test_a_row_that_breaks_the_contract_is_refused_with_its_problem_named(app):
    _, row = _row(app["data"], "NEW-0002", onboarded_at="not a date")
    r = app["client"].post("/v1/admin/customers", json={"customers": [row]}, headers=ADMIN)
    assert r.status_code == 400 and "onboarded_at" in r.text


def test_the_command_line_upserts_the_data_folder(tiny_bank, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_bank, data)
    _, row = _row(data, "CLI-0001")
    cid, changed = _row(data, declared_annual_income=654321.0)
    rows = pd.DataFrame([row, changed])
    for c in rows.columns:  # the contract writes booleans in lower case
        if rows[c].map(lambda v: isinstance(v, bool)).all():
            rows[c] = rows[c].map({True: "true", False: "false"})
    rows.to_csv(tmp_path / "rows.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "amlscore.cli", "customers", "upsert", str(tmp_path / "rows.csv"),
                          "--data", str(data)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 added, 1 replaced" in out.stdout
    from amlscore.contract import load_dataset

    customers = load_dataset(data, require_reports=False).customers.set_index("customer_id")
    assert "CLI-0001" in customers.index and customers.loc[cid, "declared_annual_income"] == 654321.0
