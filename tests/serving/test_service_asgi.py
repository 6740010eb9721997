"""The service in process (BentoML app via ``to_asgi()``, Starlette TestClient), with a stand-in model set.

Covers roles, every bad-input class, replay, batch = one by one, frozen explanations after a
promotion, ratings, feedback, metadata, the audit log and a restart.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from serving_helpers import ADMIN, CHANNEL, COMPLIANCE, new_txn, start_client
from amlscore.features.catalogue import FEATURE_NAMES
from serving_fakes import FakeLoader, FakeModelSet

_minutes = itertools.count()


def when() -> str:
    """Strictly increasing timestamps after the data set, so no test's transaction is late."""
    t = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(minutes=next(_minutes))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def customers(tiny_dataset: Any) -> list[str]:
    active = tiny_dataset.transactions["customer_id"].astype(str).value_counts().index.tolist()
    return active[:20]


def counts(client: Any) -> tuple[int, int]:
    h = client.post("/v1/health", headers=CHANNEL).json()
    return h["state_transactions"], h["audit_decisions"]


# -- roles ------------------------------------------------------------------------------------------
def test_channel_sees_score_alert_and_request_id_only(client: Any, customers: list[str]) -> None:
    r = client.post("/v1/score", json={"transaction": new_txn(customers[0], "R-CH-1", when())}, headers=CHANNEL)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"request_id", "txn_id", "suspicion_score", "alert", "decided_at", "replayed"}
    assert 0 <= body["suspicion_score"] <= 100 and isinstance(body["alert"], bool) and len(body["request_id"]) == 26


def test_compliance_sees_components_risk_explanation_and_versions(client: Any, customers: list[str]) -> None:
    r = client.post("/v1/score", json={"transaction": new_txn(customers[1], "R-CO-1", when(), amount=49_500.0)},
                    headers=COMPLIANCE)
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d["components"]) == {"rule_score", "lgbm_probability", "anomaly_score"}
    assert d["customer_risk"]["level"] is not None and d["customer_risk"]["level_name"]
    assert d["attributions"] and {"feature", "value", "contribution"} <= set(d["attributions"][0])
    assert d["anomaly_attribution"]
    assert d["versions"]["model_version"] == "1" and d["versions"]["rules_config_hash"]
    assert any("times the average of" in s for s in d["peer_comparisons"])
    assert d["explanation_lang"] == "en"
    zh = client.post("/v1/score", json={"transaction": new_txn(customers[1], "R-CO-2", when()), "lang": "zh"},
                     headers=COMPLIANCE).json()
    assert any("倍" in s for s in zh["peer_comparisons"]) and zh["customer_risk"]["level_name"] != d["customer_risk"]["level_name"]


def test_the_openapi_document_describes_attributions_with_the_decision_schema(client: Any) -> None:
    """The response model names the model set's own records (amlscore.models.decision), not free-form objects."""
    spec = client.get("/docs.json").json()
    text = json.dumps(spec)
    for name, fields in (("FeatureContribution", {"feature", "label", "value", "contribution", "direction"}),
                         ("AnomalyAttribution", {"feature", "label", "value", "share"})):
        assert f"#/components/schemas/{name}" in text, name
        assert set(spec["components"]["schemas"][name]["properties"]) == fields, name


def test_compliance_can_skip_explanations(client: Any, customers: list[str]) -> None:
    d = client.post("/v1/score", json={"transaction": new_txn(customers[2], "R-CO-3", when()), "explain": False},
                    headers=COMPLIANCE).json()
    assert d["explanation"] is None and d["components"] is not None and d["rules_fired"] is not None


@pytest.mark.parametrize("route,body", [
    ("/v1/explain", {"request_id": "X"}),
    ("/v1/customer_risk", {"customer_id": "X"}),
    ("/v1/feedback", {"request_id": "X", "label": "suspicious"}),
    ("/v1/admin/reload", {}),
])
def test_channel_is_forbidden_compliance_routes(client: Any, route: str, body: dict[str, Any]) -> None:
    r = client.post(route, json=body, headers=CHANNEL)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_compliance_may_not_reload(client: Any) -> None:
    assert client.post("/v1/admin/reload", json={}, headers=COMPLIANCE).status_code == 403


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": ""}, {"Authorization": "Basic abc"}])
def test_missing_or_unknown_key_is_401(client: Any, customers: list[str], headers: dict[str, str]) -> None:
    before = counts(client)
    r = client.post("/v1/score", json={"transaction": new_txn(customers[0], "R-401", when())}, headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert counts(client) == before


def test_open_paths_need_no_key(client: Any) -> None:
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200
    spec = client.get("/docs.json").json()
    assert {"/v1/score", "/v1/score_batch", "/v1/explain", "/v1/customer_risk", "/v1/feedback", "/v1/metadata"} <= set(spec["paths"])
    assert client.get("/").status_code == 200


# -- bad input ------------------------------------------------------------------------------------
def _bad(customer: str) -> list[tuple[str, Any]]:
    good = new_txn(customer, "R-BAD", "2026-03-01T00:00:00Z")
    drop = {k: v for k, v in good.items() if k != "amount"}
    return [
        ("malformed json", b'{"transaction": {"txn_id": '),
        ("not an object", b'[1, 2]'),
        ("empty body", b''),
        ("missing field", {"transaction": drop}),
        ("wrong type: amount as text", {"transaction": {**good, "amount": "12000"}}),
        ("wrong type: txn_id as number", {"transaction": {**good, "txn_id": 17}}),
        ("unknown channel", {"transaction": {**good, "channel": "carrier_pigeon"}}),
        ("negative amount", {"transaction": {**good, "amount": -5}}),
        ("zero amount", {"transaction": {**good, "amount": 0}}),
        ("NaN amount", b'{"transaction": ' + json.dumps(good).replace('12000.0', 'NaN').encode() + b'}'),
        ("infinite amount", b'{"transaction": ' + json.dumps(good).replace('12000.0', 'Infinity').encode() + b'}'),
        ("huge amount", {"transaction": {**good, "amount": 1e15}}),
        ("unknown field", {"transaction": {**good, "amout": 3}}),
        ("bad timestamp", {"transaction": {**good, "timestamp": "yesterday"}}),
        ("bad country", {"transaction": {**good, "counterparty_country": "XX"}}),
        ("ip on counter", {"transaction": {**good, "ip_address": "1.2.3.4"}}),
        ("atm without terminal", {"transaction": {**good, "channel": "atm"}}),
        ("bad lang", {"transaction": good, "lang": "fr"}),
        ("explain as text", {"transaction": good, "explain": "yes"}),
    ]


def test_bad_inputs_get_400_with_a_clear_message_and_change_nothing(client: Any, customers: list[str]) -> None:
    before = counts(client)
    for name, body in _bad(customers[3]):
        kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
        r = client.post("/v1/score", headers={**CHANNEL, "Content-Type": "application/json"}, **kwargs)
        assert r.status_code == 400, (name, r.status_code, r.text)
        err = r.json()
        assert err["code"] == "invalid_request" and err["error"].startswith("invalid request"), (name, err)
        assert err["details"] and err["details"][0]["msg"], name
    assert counts(client) == before
    assert client.post("/v1/explain", json={"request_id": "R-BAD"}, headers=COMPLIANCE).status_code == 404


def test_messages_name_the_field(client: Any, customers: list[str]) -> None:
    good = new_txn(customers[3], "R-MSG", when())
    err = client.post("/v1/score", json={"transaction": {**good, "amount": -1}}, headers=CHANNEL).json()
    assert "transaction.amount" in err["error"] and "greater than 0" in err["error"]
    err = client.post("/v1/score", json={"transaction": {**good, "channel": "fax"}}, headers=CHANNEL).json()
    assert "transaction.channel" in err["error"] and "online_banking" in err["error"]


def test_unknown_customer_is_422_and_changes_nothing(client: Any) -> None:
    before = counts(client)
    r = client.post("/v1/score", json={"transaction": new_txn("NOBODY", "R-UNK", when())}, headers=CHANNEL)
    assert r.status_code == 422 and r.json()["code"] == "unknown_customer" and "NOBODY" in r.json()["error"]
    assert counts(client) == before


def test_late_transaction_is_409_and_changes_nothing(client: Any, customers: list[str]) -> None:
    c = customers[4]
    assert client.post("/v1/score", json={"transaction": new_txn(c, "R-LATE-1", when())}, headers=CHANNEL).status_code == 200
    before = counts(client)
    r = client.post("/v1/score", json={"transaction": new_txn(c, "R-LATE-2", "2026-02-01T00:00:00Z")}, headers=CHANNEL)
    assert r.status_code == 409 and r.json()["code"] == "late_transaction"
    assert counts(client) == before


def test_oversized_payload_is_413(client: Any, customers: list[str]) -> None:
    before = counts(client)
    big = new_txn(customers[0], "R-BIG", when(), counterparty_id="x" * 100)
    body = json.dumps({"transaction": big, "padding": "y" * 70_000}).encode()
    r = client.post("/v1/score", content=body, headers={**CHANNEL, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(20):
            yield b" " * 8192

    r = client.post("/v1/score", content=chunks(), headers={**CHANNEL, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert counts(client) == before


def test_json_only(client: Any, customers: list[str]) -> None:
    body = json.dumps({"transaction": new_txn(customers[0], "R-CT-1", when())})
    # curl -d sends a form content type: the body is read as JSON anyway
    r = client.post("/v1/score", content=body, headers={**CHANNEL, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    r = client.post("/v1/score", content=body, headers={**CHANNEL, "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"


def test_unknown_route_and_method(client: Any) -> None:
    assert client.post("/v1/nothing", json={}, headers=ADMIN).json()["code"] == "not_found"
    assert client.get("/v1/score", headers=ADMIN).status_code == 405


# -- replay ---------------------------------------------------------------------------------------
def test_replay_returns_the_original_decision_without_counting(client: Any, customers: list[str]) -> None:
    txn = new_txn(customers[5], "R-REPLAY", when(), amount=30_000.0)
    first = client.post("/v1/score", json={"transaction": txn}, headers=CHANNEL).json()
    before = counts(client)
    again = client.post("/v1/score", json={"transaction": txn}, headers=COMPLIANCE).json()
    assert again["request_id"] == first["request_id"] and again["replayed"] is True
    assert again["suspicion_score"] == first["suspicion_score"] and again["decided_at"] == first["decided_at"]
    assert counts(client) == before
    r = client.post("/v1/score", json={"transaction": {**txn, "amount": 31_000.0}}, headers=CHANNEL)
    assert r.status_code == 409 and r.json()["code"] == "txn_id_reused"
    assert counts(client) == before


# -- batch --------------------------------------------------------------------------------------------
def test_batch_reports_each_item(client: Any, customers: list[str]) -> None:
    c = customers[6]
    txns = [new_txn(c, "R-B-1", when()), new_txn("NOBODY", "R-B-2", when()), new_txn(c, "R-B-3", when()),
            new_txn(c, "R-B-1", "2026-03-01T00:00:00Z")]
    txns[3] = txns[0]  # the same transaction twice: the second is a replay of the first
    before = counts(client)
    r = client.post("/v1/score_batch", json={"transactions": txns}, headers=COMPLIANCE)
    assert r.status_code == 200, r.text
    b = r.json()
    assert (b["n"], b["n_scored"], b["n_errors"], b["n_replayed"]) == (4, 2, 1, 1)
    assert b["results"][1]["code"] == "unknown_customer" and b["results"][1]["status"] == 422
    assert b["results"][3]["request_id"] == b["results"][0]["request_id"] and b["results"][3]["replayed"]
    assert counts(client) == (before[0] + 2, before[1] + 2)
    assert client.post("/v1/score_batch", json={"transactions": []}, headers=CHANNEL).status_code == 400


def test_batch_gives_the_same_results_as_one_by_one(tmp_path: Path, tiny_bank: Path, customers: list[str]) -> None:
    saved = dict(os.environ)
    txns = []
    for k in range(12):
        txns.append(new_txn(customers[k % 4], f"R-EQ-{k}", f"2026-04-01T10:{k:02d}:00Z", amount=1000.0 * (k + 1),
                            direction="out" if k % 3 else "in"))
    try:
        one = start_client(tiny_bank, tmp_path / "one", FakeLoader())
        singles = [one.post("/v1/score", json={"transaction": t, "explain": False}, headers=COMPLIANCE).json() for t in txns]
        one.__exit__(None, None, None)
        many = start_client(tiny_bank, tmp_path / "many", FakeLoader())
        batch = many.post("/v1/score_batch", json={"transactions": txns}, headers=COMPLIANCE).json()["results"]
        many.__exit__(None, None, None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    drop = {"request_id", "decided_at"}
    for s, b in zip(singles, batch):
        assert {k: v for k, v in s.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


def test_direct_and_bentoml_dispatch_give_the_same_answers(tmp_path: Path, tiny_bank: Path, customers: list[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /v1/score answered by the gate (AML_SCORE_DISPATCH=direct) and through BentoML's router (bentoml): the
    same statuses and bodies for good, bad, refused, replayed and reused requests, and the same audit log."""
    import amlscore.serving.service as service

    taken: list[str] = []
    direct = service.AmlScoring.inner.score_direct

    async def spy(self: Any, body: bytes, caller: Any) -> tuple[int, bytes]:
        taken.append(caller.role)
        return await direct(self, body, caller)

    monkeypatch.setattr(service.AmlScoring.inner, "score_direct", spy)
    c0, c1, c2 = customers[:3]
    requests: list[tuple[dict[str, str], Any]] = [
        (CHANNEL, {"transaction": new_txn(c0, "R-DP-1", "2026-06-01T10:00:00Z")}),
        (COMPLIANCE, {"transaction": new_txn(c1, "R-DP-2", "2026-06-01T10:01:00Z", amount=49_500.0), "lang": "zh"}),
        (COMPLIANCE, {"transaction": new_txn(c2, "R-DP-3", "2026-06-01T10:02:00Z"), "explain": False}),
        (CHANNEL, {"transaction": new_txn(c0, "R-DP-1", "2026-06-01T10:00:00Z")}),  # replay
        (CHANNEL, {"transaction": new_txn(c0, "R-DP-1", "2026-06-01T10:00:00Z", amount=1.0)}),  # reused txn_id
        (CHANNEL, {"transaction": new_txn(c0, "R-DP-4", "2026-05-01T10:00:00Z")}),  # late
        (CHANNEL, {"transaction": new_txn("NOBODY", "R-DP-5", "2026-06-01T10:03:00Z")}),  # unknown customer
        *((CHANNEL, body) for _, body in _bad(c1)),
    ]

    def run(dispatch: str) -> tuple[list[tuple[int, Any]], list[tuple[Any, ...]]]:
        state = tmp_path / dispatch
        client = start_client(tiny_bank, state, FakeLoader(), AML_SCORE_DISPATCH=dispatch)
        try:
            out = []
            for headers, body in requests:
                kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
                r = client.post("/v1/score", headers={**headers, "Content-Type": "application/json"}, **kwargs)
                got = {k: v for k, v in r.json().items() if k not in ("request_id", "decided_at")}
                if "error" in got:  # a reused txn_id's message names the first request id
                    got["error"] = re.sub(r"\b[0-9A-HJKMNP-TV-Z]{26}\b", "<request id>", got["error"])
                out.append((r.status_code, got))
        finally:
            client.__exit__(None, None, None)
        db = sqlite3.connect(state / "audit.sqlite")
        rows = db.execute("SELECT txn_id, caller_role, input_json, features, suspicion_score FROM decisions ORDER BY seq")
        audit = rows.fetchall()
        db.close()
        return out, audit

    saved = dict(os.environ)
    try:
        direct_answers, direct_audit = run("direct")
        assert len(taken) == len(requests)  # every request went through the gate's direct handler
        taken.clear()
        bentoml_answers, bentoml_audit = run("bentoml")
        assert taken == []  # and none did with BentoML's dispatch
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert [s for s, _ in direct_answers][:7] == [200, 200, 200, 200, 409, 409, 422]
    assert all(s == 400 for s, _ in direct_answers[7:])
    for k, (a, b) in enumerate(zip(direct_answers, bentoml_answers)):
        assert a == b, (k, a, b)
    assert direct_audit == bentoml_audit and len(direct_audit) == 3


def test_explained_decisions_use_the_one_pass_call(tmp_path: Path, tiny_bank: Path, customers: list[str]) -> None:
    """With a model set that scores and explains in one pass, the service calls it once per explained decision and
    answers what score_vector and explain_vector give; replays, batches and channel calls keep their answers."""

    saved = dict(os.environ)
    ms = FakeModelSet("1")
    try:
        client = start_client(tiny_bank, tmp_path / "state", FakeLoader({"1": ms}))
        ms.one_pass_calls = ms.explain_calls = 0
        txns = [new_txn(customers[k % 3], f"R-OP-{k}", f"2026-05-01T10:{k:02d}:00Z", amount=900.0 * (k + 1))
                for k in range(6)]
        first = client.post("/v1/score", json={"transaction": txns[0], "lang": "zh"}, headers=COMPLIANCE).json()
        chan = client.post("/v1/score", json={"transaction": txns[1]}, headers=CHANNEL).json()
        batch = client.post("/v1/score_batch", json={"transactions": txns[2:4]}, headers=COMPLIANCE).json()
        again = client.post("/v1/score", json={"transaction": txns[0], "lang": "zh"}, headers=COMPLIANCE).json()
        last = client.post("/v1/score", json={"transaction": txns[4]}, headers=COMPLIANCE).json()
        assert ms.one_pass_calls == 2  # the two explained decisions; not the channel call, the batch or the replay
        assert ms.explain_calls == 0  # no second pass
        assert again["replayed"] and again["request_id"] == first["request_id"] and again["explanation"] == first["explanation"]
        assert "explanation" not in chan and batch["n_scored"] == 2
        db = sqlite3.connect(tmp_path / "state" / "audit.sqlite")
        rows = db.execute("SELECT txn_id, features FROM decisions ORDER BY seq").fetchall()
        db.close()
        assert [r[0] for r in rows] == ["R-OP-0", "R-OP-1", "R-OP-2", "R-OP-3", "R-OP-4"]  # counted order = audit order
        import numpy as np

        for got, (_, feats) in ((first, rows[0]), (last, rows[4])):
            x = np.frombuffer(feats, dtype=np.float64)[None, :]
            assert got["explanation"] == json.loads(json.dumps(ms.explain_vector(x, top_k=8, lang=got["explanation_lang"]).to_dict()))
            assert got["suspicion_score"] == float(ms.score_vector(x).suspicion_score[0])
        client.__exit__(None, None, None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- explanations, frozen -----------------------------------------------------------------------
def test_explain_returns_the_frozen_decision_after_a_promotion(service_env: dict[str, Any], customers: list[str]) -> None:
    client, loader = service_env["client"], service_env["loader"]
    old = client.post("/v1/score", json={"transaction": new_txn(customers[7], "R-FRZ-1", when())}, headers=CHANNEL).json()
    old_explained = client.post("/v1/score", json={"transaction": new_txn(customers[7], "R-FRZ-2", when())},
                                headers=COMPLIANCE).json()
    loader.versions["2"] = FakeModelSet("2", weight=3.0)
    loader.promote("champion", "2")
    # a running service keeps its model until reloaded
    assert client.post("/v1/metadata", headers=CHANNEL).json()["versions"]["model_version"] == "1"
    r = client.post("/v1/admin/reload", json={}, headers=ADMIN).json()
    assert r["changed"] and r["previous"]["model_version"] == "1" and r["current"]["model_version"] == "2"
    new = client.post("/v1/score", json={"transaction": new_txn(customers[7], "R-FRZ-3", when())}, headers=COMPLIANCE).json()
    assert new["versions"]["model_version"] == "2"

    e_old = client.post("/v1/explain", json={"request_id": old["request_id"]}, headers=COMPLIANCE).json()
    assert e_old["decision"]["versions"]["model_version"] == "1"
    assert e_old["decision"]["suspicion_score"] == old["suspicion_score"]
    assert e_old["explanation"]["model"]["model_version"] == "1" and e_old["explanation_source"] == "deferred"
    assert e_old["caller"]["role"] == "channel"
    again = client.post("/v1/explain", json={"request_id": old["request_id"]}, headers=COMPLIANCE).json()
    assert again["explanation"] == e_old["explanation"]  # frozen in the audit log

    e2 = client.post("/v1/explain", json={"request_id": old_explained["request_id"]}, headers=COMPLIANCE).json()
    assert e2["explanation_source"] == "decision" and e2["explanation"] == old_explained["explanation"]
    assert e2["explanation"]["model"]["model_version"] == "1"
    assert client.post("/v1/explain", json={"request_id": "nope"}, headers=COMPLIANCE).json()["code"] == "unknown_request_id"
    loader.promote("champion", "1")
    assert client.post("/v1/admin/reload", json={"version": "1"}, headers=ADMIN).json()["current"]["model_version"] == "1"


# -- ratings and feedback -------------------------------------------------------------------------
def test_customer_risk_has_the_full_breakdown(client: Any, customers: list[str]) -> None:
    r = client.post("/v1/customer_risk", json={"customer_id": customers[0], "lang": "zh"}, headers=COMPLIANCE)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["rating"]["level"] and len(d["breakdown"]) >= 10
    total = sum(b["contribution"] for b in d["breakdown"])
    assert abs(total - d["rating"]["score"]) < 0.05
    assert all(b["text"] for b in d["breakdown"]) and any("分" in line for line in d["explanation"])
    fresh = client.post("/v1/customer_risk", json={"customer_id": customers[0], "refresh": True}, headers=COMPLIANCE).json()
    assert fresh["refreshed"] is True and fresh["rating"]["level"]
    assert client.post("/v1/customer_risk", json={"customer_id": "NOBODY"}, headers=COMPLIANCE).status_code == 404


def test_feedback_is_stored_in_the_reports_format(service_env: dict[str, Any], customers: list[str]) -> None:
    client, state = service_env["client"], service_env["state"]
    d = client.post("/v1/score", json={"transaction": new_txn(customers[8], "R-FB-1", when(), amount=49_900.0)},
                    headers=CHANNEL).json()
    r = client.post("/v1/feedback", json={"request_id": d["request_id"], "label": "suspicious", "typology": "structuring",
                                          "analyst": "Wang Fang"}, headers=COMPLIANCE)
    assert r.status_code == 200, r.text
    receipt = r.json()
    path = Path(receipt["export_file"])
    assert path == state / "feedback" / "feedback_reports.csv"
    reports = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(reports.columns) == ["report_id", "customer_id", "txn_id", "period_start", "period_end", "report_date",
                                     "label", "typology"]
    row = reports[reports["txn_id"] == "R-FB-1"].iloc[0]
    assert (row["customer_id"], row["label"], row["typology"]) == (customers[8], "suspicious", "structuring")
    assert row["period_start"] == row["period_end"] == "2026-03-01" and row["report_date"] >= "2026-03-01"
    # a revision replaces the export row; the history stays in the database
    client.post("/v1/feedback", json={"txn_id": "R-FB-1", "label": "not_suspicious"}, headers=COMPLIANCE)
    reports = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert (reports["txn_id"] == "R-FB-1").sum() == 1
    assert reports.loc[reports["txn_id"] == "R-FB-1", "label"].item() == "not_suspicious"
    txns = pd.read_csv(state / "feedback" / "feedback_transactions.csv", dtype=str, keep_default_na=False)
    assert "R-FB-1" in set(txns["txn_id"])
    bad = client.post("/v1/feedback", json={"request_id": "x", "txn_id": "y", "label": "suspicious"}, headers=COMPLIANCE)
    assert bad.status_code == 400
    assert client.post("/v1/feedback", json={"request_id": "nope", "label": "suspicious"},
                       headers=COMPLIANCE).status_code == 404


def test_metadata(client: Any) -> None:
    m = client.post("/v1/metadata", headers=CHANNEL).json()
    assert m["feature_names"] == list(FEATURE_NAMES)
    assert m["versions"]["model_name"] == "aml-model-set" and m["versions"]["feature_params_hash"]
    assert m["alert_threshold"] == 50.0 and m["customers"] == 200


# -- audit log ---------------------------------------------------------------------------------------
def test_audit_log_is_complete_append_only_and_chained(service_env: dict[str, Any], customers: list[str]) -> None:
    client, state = service_env["client"], service_env["state"]
    d = client.post("/v1/score", json={"transaction": new_txn(customers[9], "R-AUD-1", when())}, headers=CHANNEL).json()
    db = sqlite3.connect(state / "audit.sqlite")
    row = db.execute("SELECT txn_id, caller_key_id, caller_role, endpoint, input_json, decision_json, model_version, "
                     "rules_config_hash FROM decisions WHERE request_id = ?", (d["request_id"],)).fetchone()
    assert row[:4] == ("R-AUD-1", "chan", "channel", "score")
    assert json.loads(row[4])["amount"] == 12_000.0
    decision = json.loads(row[5])
    assert decision["components"] and decision["rules_text"]["zh"] and row[6] == "1" and row[7]
    for stmt in ("UPDATE decisions SET alert = 1", "DELETE FROM decisions"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(stmt)
    db.close()
    from amlscore.core.audit import AuditLog

    log = AuditLog(state / "audit.sqlite", sync="normal")
    ok, n, bad = log.verify()
    log.close()
    assert ok and n >= 1 and bad is None


def test_restart_keeps_the_audit_log_and_the_online_state(tmp_path: Path, tiny_bank: Path, customers: list[str]) -> None:
    saved = dict(os.environ)
    try:
        loader = FakeLoader()
        c1 = start_client(tiny_bank, tmp_path / "state", loader)
        first = c1.post("/v1/score", json={"transaction": new_txn(customers[10], "R-RS-1", "2026-05-01T00:00:00Z")},
                        headers=CHANNEL).json()
        second = c1.post("/v1/score", json={"transaction": new_txn(customers[10], "R-RS-2", "2026-05-01T00:10:00Z")},
                         headers=COMPLIANCE).json()
        before = counts(c1)
        c1.__exit__(None, None, None)

        c2 = start_client(tiny_bank, tmp_path / "state", loader)
        assert counts(c2) == before
        again = c2.post("/v1/score", json={"transaction": new_txn(customers[10], "R-RS-1", "2026-05-01T00:00:00Z")},
                        headers=CHANNEL).json()
        assert again["request_id"] == first["request_id"] and again["replayed"]
        late = c2.post("/v1/score", json={"transaction": new_txn(customers[10], "R-RS-3", "2026-05-01T00:05:00Z")},
                       headers=CHANNEL)
        assert late.status_code == 409  # the state remembers the customer's latest transaction
        nxt = c2.post("/v1/score", json={"transaction": new_txn(customers[10], "R-RS-4", "2026-05-01T00:20:00Z")},
                      headers=COMPLIANCE).json()
        # windows continue across the restart: the 24h incoming count includes the two earlier ones
        feats = {a["feature"]: a["value"] for a in nxt["attributions"]}
        assert feats["in_cnt_24h"] == {a["feature"]: a["value"] for a in second["attributions"]}["in_cnt_24h"] + 1
        e = c2.post("/v1/explain", json={"request_id": second["request_id"]}, headers=COMPLIANCE).json()
        assert e["explanation"] == second["explanation"]
        c2.__exit__(None, None, None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
