"""Hardening of the HTTP service (issue #14): timestamps out of range, unexpected failures, batches.

The app runs in process with a stand-in model set (``serving_fakes``); :class:`PoisonedModelSet` fails on
one amount, as a model bug would, so the tests can see what a failure half-way through a request leaves.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.core.decision import ScoreBatch
from serving_fakes import FakeLoader, FakeModelSet
from serving_helpers import CHANNEL, COMPLIANCE, new_txn, start_client

POISON = 13_131.0  # the amount the poisoned model set fails on
_AMOUNT = FEATURE_NAMES.index("amount")
_minutes = itertools.count()


def when() -> str:
    """Strictly increasing timestamps after the data set, so no transaction here is late."""
    t = datetime(2026, 4, 1, tzinfo=timezone.utc) + timedelta(minutes=next(_minutes))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class PoisonedModelSet(FakeModelSet):
    """The stand-in model set, failing (as a bug would) on rows whose amount is :data:`POISON` while ``armed``."""

    armed = True

    def score_vector(self, x: np.ndarray) -> ScoreBatch:
        if self.armed and np.any(np.asarray(x)[:, _AMOUNT] == POISON):
            raise RuntimeError("model bug on a poisoned row")
        return super().score_vector(x)


@pytest.fixture(scope="module")
def customers(tiny_dataset: Any) -> list[str]:
    return tiny_dataset.transactions["customer_id"].astype(str).value_counts().index.tolist()[:10]


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory, tiny_bank: Path) -> Iterator[dict[str, Any]]:
    saved = dict(os.environ)
    state = tmp_path_factory.mktemp("state-poisoned")
    model = PoisonedModelSet("1")
    client = start_client(tiny_bank, state, FakeLoader({"1": model}))
    try:
        yield {"client": client, "model": model, "state": state}
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)


def counts(client: Any) -> tuple[int, int]:
    h = client.post("/v1/health", headers=CHANNEL).json()
    return h["state_transactions"], h["audit_decisions"]


# -- 2. timestamps ------------------------------------------------------------------------------------
OUT_OF_RANGE = ["0430-12-11T13:52:51Z", "0001-01-01T00:30:00+08:00", "9999-12-31T23:00:00-05:00",
                "1677-09-21T23:59:59Z", "2262-04-12T00:00:00Z"]


@pytest.mark.parametrize("stamp", OUT_OF_RANGE)
def test_timestamps_out_of_range_are_400_naming_the_field_and_the_range(client: Any, customers: list[str],
                                                                       stamp: str) -> None:
    before = counts(client)
    txn = new_txn(customers[0], f"H-TS-{stamp}", stamp)
    for route, body in (("/v1/score", {"transaction": txn}), ("/v1/score_batch", {"transactions": [txn]})):
        r = client.post(route, json=body, headers=COMPLIANCE)
        assert r.status_code == 400, (route, r.status_code, r.text)
        err = r.json()
        assert err["code"] == "invalid_request"
        assert "timestamp" in err["error"] and "1677-09-22" in err["error"] and "2262-04-11" in err["error"], err
    assert counts(client) == before


def test_timestamps_at_the_edges_of_the_range_are_accepted(client: Any, customers: list[str]) -> None:
    """In range after conversion to UTC: the schema checks the instant, not the written year."""
    from amlscore.serving.schemas import Transaction

    early = Transaction.model_validate_json(json.dumps(new_txn(customers[0], "H-EDGE-1", "1677-09-22T08:00:00+08:00")))
    assert early.to_record()["timestamp"] == "1677-09-22T00:00:00.000000Z"
    late = Transaction.model_validate_json(json.dumps(new_txn(customers[0], "H-EDGE-2", "2262-04-10T23:00:00-01:00")))
    assert late.to_record()["timestamp"] == "2262-04-11T00:00:00.000000Z"


# -- 2. the general guard, 3. batches -------------------------------------------------------------------
def test_an_unexpected_failure_is_a_logged_500_and_a_resend_decides_it(poisoned: dict[str, Any], customers: list[str],
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    client, model = poisoned["client"], poisoned["model"]
    txn = new_txn(customers[1], "H-500", when(), amount=POISON)
    model.armed = True
    r = client.post("/v1/score", json={"transaction": txn}, headers=CHANNEL)
    assert r.status_code == 500, r.text
    assert r.json()["code"] == "internal_error" and "model bug" not in r.text  # nothing internal shown
    assert "model bug on a poisoned row" in caplog.text  # the trace is in the log
    model.armed = False
    before = counts(client)
    r = client.post("/v1/score", json={"transaction": txn}, headers=CHANNEL)
    assert r.status_code == 200 and r.json()["replayed"] is False
    after = counts(client)
    assert after == (before[0], before[1] + 1)  # counted once (by the failed call), decided now


def test_a_batch_failing_part_way_decides_every_item_it_counted(poisoned: dict[str, Any], customers: list[str]) -> None:
    client, model = poisoned["client"], poisoned["model"]
    c = customers[2]
    txns = [new_txn(c, "H-B-1", when()), new_txn(c, "H-B-2", when(), amount=POISON), new_txn(c, "H-B-3", when()),
            new_txn(customers[3], "H-B-4", when())]
    model.armed = True
    before = counts(client)
    r = client.post("/v1/score_batch", json={"transactions": txns}, headers=COMPLIANCE)
    assert r.status_code == 200, r.text
    b = r.json()
    assert (b["n"], b["n_scored"], b["n_errors"]) == (4, 3, 1)
    assert b["results"][1]["status"] == 500 and b["results"][1]["code"] == "internal_error"
    assert all("request_id" in b["results"][i] for i in (0, 2, 3))
    state, audit = counts(client)
    assert audit == before[1] + 3  # every item but the failed one is decided and in the audit log
    assert state == before[0] + 4  # the failed one was counted: sending it again decides it
    model.armed = False
    again = client.post("/v1/score_batch", json={"transactions": txns}, headers=COMPLIANCE).json()
    assert (again["n_scored"], again["n_replayed"], again["n_errors"]) == (1, 3, 0)
    assert counts(client) == (before[0] + 4, before[1] + 4)


# -- 4. state files -----------------------------------------------------------------------------------
def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)) or ".": p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}


def test_state_folder_is_0700_and_every_file_0600_under_umask_022(tmp_path: Path, tiny_bank: Path,
                                                                  customers: list[str]) -> None:
    saved_env, saved_umask = dict(os.environ), os.umask(0o022)
    state = tmp_path / "state"
    try:
        client = start_client(tiny_bank, state, FakeLoader())
        try:
            txn = new_txn(customers[4], "H-PERM-1", when())
            r = client.post("/v1/score", json={"transaction": txn}, headers=COMPLIANCE)
            assert r.status_code == 200, r.text
            r = client.post("/v1/feedback", json={"txn_id": "H-PERM-1", "label": "suspicious"}, headers=COMPLIANCE)
            assert r.status_code == 200, r.text
            live = _modes(state)  # while running: the databases' -wal and -shm files exist
        finally:
            client.__exit__(None, None, None)  # shutdown writes the snapshot
    finally:
        os.umask(saved_umask)
        os.environ.clear()
        os.environ.update(saved_env)
    final = _modes(state)
    for name in ("audit.sqlite", "audit.sqlite-wal", "features.sqlite", "features.sqlite-wal", "feedback.sqlite",
                 "api_keys.yaml", "state_binding.json"):
        assert name in live, sorted(live)
    assert any(name.startswith("features.sqlite.snapshot") or "snapshot" in name for name in final), sorted(final)
    for modes in (live, final):
        wrong = {name: oct(mode) for name, mode in modes.items()
                 if mode != (0o700 if (state / name).is_dir() else 0o600)}
        assert not wrong, wrong


def test_a_second_engine_on_a_state_folder_in_use_is_refused(tmp_path: Path, tiny_bank: Path) -> None:
    """Two engines writing one state folder would each count transactions and chain the audit log from their
    own view of it (as a restarted service beside the worker a kill of the server's process group left
    running did): the second is refused, naming the process; once the first closes, a new one starts."""
    from amlscore.contract.errors import AmlError
    from amlscore.serving.config import Settings, SettingsError
    from amlscore.serving.scoring import ScoringEngine

    settings = Settings(data_dir=tiny_bank, state_dir=tmp_path / "state", warm_up_days=5, audit_sync="normal",
                        max_future_seconds=0)
    first = ScoringEngine(settings, loader=FakeLoader())
    try:
        with pytest.raises(SettingsError, match=rf"in use by process {os.getpid()}.*another --state"):
            ScoringEngine(settings, loader=FakeLoader())
        assert first.health()["ready"]  # the refusal changed nothing of the first
    finally:
        first.close()
    again = ScoringEngine(settings, loader=FakeLoader())
    again.close()
    # an engine that fails to start lets the folder go too
    with pytest.raises(AmlError, match="not-a-folder"):
        ScoringEngine(Settings(data_dir=tiny_bank / "not-a-folder", state_dir=tmp_path / "state", audit_sync="normal"),
                      loader=FakeLoader())
    ScoringEngine(settings, loader=FakeLoader()).close()


# -- 6. what the channel role learns from errors ------------------------------------------------------------
def test_channel_errors_say_what_to_fix_without_revealing_other_transactions(client: Any, customers: list[str],
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="serving")
    c = customers[5]
    first_time = when()
    first = client.post("/v1/score", json={"transaction": new_txn(c, "H-LEAK-1", first_time)}, headers=COMPLIANCE).json()
    late = new_txn(c, "H-LEAK-2", "2026-03-01T00:00:00Z")
    reused = new_txn(c, "H-LEAK-1", first_time, amount=99.0)
    shown_time = first_time[:16]  # how the late message writes the latest processed time: '2026-04-01T00:05'
    for body, code, secret in ((late, "late_transaction", shown_time), (reused, "txn_id_reused", first["request_id"])):
        channel = client.post("/v1/score", json={"transaction": body}, headers=CHANNEL).json()
        batch = client.post("/v1/score_batch", json={"transactions": [body]}, headers=CHANNEL).json()["results"][0]
        compliance = client.post("/v1/score", json={"transaction": body}, headers=COMPLIANCE).json()
        assert channel["code"] == batch["code"] == compliance["code"] == code
        assert secret not in channel["error"] and secret not in batch["error"], channel
        assert body["txn_id"] in channel["error"]  # which transaction, and what to do
        assert secret in compliance["error"], compliance  # compliance keeps the detail
        assert any(secret in rec.getMessage() for rec in caplog.records), code  # and so does the server log


# -- 7. input hygiene -------------------------------------------------------------------------------------
HIDDEN = ["\u202e", "\u2066", "\u200f", "\u200b", "\x00", "\x1b", "\n", "\x7f"]


@pytest.mark.parametrize("char", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
@pytest.mark.parametrize("field", ["txn_id", "customer_id", "account_id", "counterparty_id"])
def test_identifiers_refuse_control_and_bidi_characters(client: Any, customers: list[str], field: str,
                                                        char: str) -> None:
    before = counts(client)
    txn = new_txn(customers[6], "H-ID-1", when())
    txn[field] = f"{txn.get(field, 'CP')}{char}x"
    r = client.post("/v1/score", json={"transaction": txn}, headers=CHANNEL)
    assert r.status_code == 400, r.text
    assert f"transaction.{field}" in r.json()["error"] and f"U+{ord(char):04X}" in r.json()["error"]
    assert counts(client) == before


@pytest.mark.parametrize("route, body", [("/v1/explain", {"request_id": "01J\u202eX"}),
                                         ("/v1/customer_risk", {"customer_id": "C\u200b1"}),
                                         ("/v1/feedback", {"txn_id": "T\x001", "label": "suspicious"})])
def test_identifiers_of_the_other_routes_refuse_them_too(client: Any, route: str, body: dict[str, Any]) -> None:
    r = client.post(route, json=body, headers=COMPLIANCE)
    assert r.status_code == 400 and "invisible formatting" in r.json()["error"], r.text


_IPS = [("10.1.2.3", True), ("2001:db8::1", True), ("", True), ("300.1.2.3", False), ("10.1.2", False),
        ("not-an-ip", False), ("10.1.2.3; DROP", False), ("fe80::1\u202e", False)]


@pytest.mark.parametrize("k", range(len(_IPS)), ids=[repr(ip) for ip, _ in _IPS])
def test_ip_address_must_be_an_address(client: Any, customers: list[str], k: int) -> None:
    ip, ok = _IPS[k]
    txn = new_txn(customers[7], f"H-IP-{k}", when(), channel="online_banking", txn_type="transfer",
                  direction="out", device_id="D-1", ip_address=ip)
    if ip == "":  # empty is unknown, allowed by the schema; the channel rule asks for it on an out row (contract 1.1)
        r = client.post("/v1/score", json={"transaction": txn}, headers=CHANNEL)
        assert r.status_code == 400 and "ip_address must not be empty" in r.json()["error"], r.text
        counter = new_txn(customers[7], "H-IP-counter", when(), ip_address="")
        assert client.post("/v1/score", json={"transaction": counter}, headers=CHANNEL).status_code == 200
        return
    r = client.post("/v1/score", json={"transaction": txn}, headers=CHANNEL)
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400 and "transaction.ip_address" in r.json()["error"], r.text
        assert "IPv4 or IPv6" in r.json()["error"]


def test_reload_of_a_version_that_does_not_exist_is_404_for_people(client: Any) -> None:
    from serving_helpers import ADMIN

    for body in ({"version": "99"}, {"alias": "nobody"}):
        r = client.post("/v1/admin/reload", json=body, headers=ADMIN)
        assert r.status_code == 404, r.text
        err = r.json()
        assert err["code"] == "unknown_model" and "has no" in err["error"], err
    r = client.post("/v1/admin/reload", json={"version": "1.5"}, headers=ADMIN)
    assert r.status_code == 400 and "version" in r.json()["error"]
    assert client.post("/v1/health", headers=CHANNEL).json()["model_version"] == "1"  # still serving


def test_the_registry_loader_answers_404_without_internal_details(tmp_path: Path) -> None:
    """The real loader on an MLflow registry: an unknown version or alias is a 404 that names neither the
    registry's location nor MLflow's exception; an unreachable registry stays a 503."""
    import mlflow

    from amlscore.serving.errors import NotFound, NotReady
    from amlscore.serving.registry import RegistryLoader

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model("aml-model-set")
    loader = RegistryLoader(uri, "aml-model-set", tmp_path / "cache")
    for kwargs in ({"version": "7"}, {"alias": "champion"}):
        with pytest.raises(NotFound) as err:
            loader.resolve(**kwargs)
        assert err.value.code == "unknown_model" and str(tmp_path) not in err.value.message
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(NotReady):
        RegistryLoader(f"sqlite:///{tmp_path / 'a-file' / 'x.db'}", "aml-model-set", tmp_path / "c").resolve(version="1")


# -- 5. OpenAPI -----------------------------------------------------------------------------------------
def test_docs_json_is_a_valid_openapi_3_1_document_with_every_status(client: Any, customers: list[str]) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/docs.json").json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                                              "description": "The API key."}
    score = doc["paths"]["/v1/score"]["post"]
    assert score["requestBody"]["required"] is True
    assert {"200", "400", "401", "409", "413", "415", "422", "500", "503"} <= set(score["responses"])
    assert "403" not in score["responses"] and "403" in doc["paths"]["/v1/explain"]["post"]["responses"]
    assert doc["paths"]["/v1/health"]["post"]["requestBody"]["required"] is False
    # a compliance answer without explanation: what comes back null is declared nullable
    answer = client.post("/v1/score", json={"transaction": new_txn(customers[8], "H-OAS-1", when()), "explain": False},
                         headers=COMPLIANCE).json()
    props = doc["components"]["schemas"]["Decision"]["properties"]
    nulls = [k for k, v in answer.items() if v is None]
    assert {"attributions", "anomaly_attribution", "explanation", "explanation_lang"} <= set(nulls)
    for name in nulls:
        assert {"type": "null"} in props[name].get("anyOf", []), name
    from jsonschema import Draft202012Validator

    schema = {**doc["components"]["schemas"]["Decision"], "$defs": doc["components"]["schemas"]}
    text = json.dumps(schema).replace("#/components/schemas/", "#/$defs/")
    Draft202012Validator(json.loads(text)).validate(answer)
