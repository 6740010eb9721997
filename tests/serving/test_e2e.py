"""End to end: the real ``bentoml serve`` process, a real model set from an MLflow registry, over HTTP.

Setup (once for the module): a synthetic bank, two model sets trained by the training code on it
and registered in a temporary MLflow registry (version 1 = champion, version 2 = challenger), API
keys, then ``bentoml serve amlscore.cli.service_app:AmlScoring`` (what ``amlscore serve`` runs: the API
and the casework pages on ``/cases``) on 127.0.0.1 with a free port.

Checks, in order: open paths and the OpenAPI page, roles, every class of bad input, replay, batch,
ratings and feedback, the frozen explanation after a promotion and a reload, and a hard kill
(SIGKILL) plus restart that keeps the audit log and the online feature state.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from amlscore.features.catalogue import FEATURE_NAMES

from servers import free_port
from serving_helpers import ADMIN, CHANNEL, COMPLIANCE, KEYS, new_txn

httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Server:
    """``bentoml serve`` in a subprocess: start, wait until ready, stop (gracefully or by SIGKILL)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240) -> None:
        cmd = [sys.executable, "-m", "bentoml", "serve", "amlscore.cli.service_app:AmlScoring", "--host", "127.0.0.1",
               "--port", str(self.port), "--working-dir", str(ROOT)]
        self._logf = open(self.log, "a")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"bentoml serve exited ({self.proc.returncode}); log:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise AssertionError(f"not ready after {timeout} s; log:\n{self.log.read_text()[-4000:]}")

    def _tree(self) -> list[Any]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root] + root.children(recursive=True)
        except psutil.Error:
            return []

    def stop(self, hard: bool = False) -> None:
        if self.proc is None:
            return
        procs = self._tree()
        if hard:
            for p in procs:
                try:
                    p.send_signal(signal.SIGKILL)
                except psutil.Error:
                    pass
        else:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        gone, alive = psutil.wait_procs(procs, timeout=60)
        for p in alive:  # pragma: no cover - only if a graceful stop hangs
            p.kill()
        self.proc.wait(timeout=10)
        self._logf.close()
        self.proc = None

    def post(self, route: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        if body is not None and not isinstance(body, (bytes, str)):
            kw["json"] = body
        elif body is not None:
            kw["content"] = body
        return httpx.post(f"{self.url}{route}", headers={"Content-Type": "application/json", **(headers or {})},
                          timeout=60, **kw)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A synthetic bank and two registered model sets (v1 champion, v2 challenger) in a private registry."""
    from amlscore.synth import SynthConfig, generate_bank, write_bank

    work = tmp_path_factory.mktemp("e2e")
    data = work / "data"
    write_bank(generate_bank(SynthConfig(customers=250, days=60, seed=3)), data)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    from amlscore.core.registry import process_wide_mlflow_uri
    from amlscore.training.pipeline import train_and_register
    from amlscore.training.tracking import set_alias
    from amlscore.training.train import TrainConfig

    # MLflow's tracking and registry URIs (process-wide and in the environment) are put back afterwards:
    # a leftover MLFLOW_REGISTRY_URI sent other modules' models:/ URIs to this store
    with process_wide_mlflow_uri(uri):
        small = dict(max_train_negatives=5000, max_valid_negatives=5000, anomaly_fit_rows=5000)
        v1 = train_and_register(TrainConfig(data=data, seed=1, **small)).model_version
        v2 = train_and_register(TrainConfig(data=data, seed=2, lgbm={"n_estimators": 60}, **small)).model_version
        set_alias("champion", v1)
    return {"work": work, "data": data, "uri": uri, "v1": v1, "v2": v2}


@pytest.fixture(scope="module")
def server(registry: dict[str, Any]) -> Any:
    from amlscore.serving.auth import write_keys_file

    state = registry["work"] / "state"
    write_keys_file(state / "api_keys.yaml", KEYS)
    env = {**os.environ, "AML_DATA_DIR": str(registry["data"]), "AML_STATE_DIR": str(state),
           "MLFLOW_TRACKING_URI": registry["uri"], "AML_WARM_UP_DAYS": "20", "AML_MAX_FUTURE_SECONDS": "0",
           "BENTOML_DO_NOT_TRACK": "true",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    srv = Server(env, registry["work"] / "server.log")
    srv.start()
    srv.state = state
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def customers(registry: dict[str, Any]) -> list[str]:
    from amlscore.contract import load_dataset

    ds = load_dataset(registry["data"])
    return ds.transactions["customer_id"].astype(str).value_counts().index[:14].tolist()


def _set_champion(server: Server, registry: dict[str, Any], version: str) -> None:
    """Point @champion at ``version`` and have the running service serve it."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=registry["uri"], registry_uri=registry["uri"]).set_registered_model_alias(
        "aml-model-set", "champion", version)
    if server.post("/v1/health", {}, CHANNEL).json()["model_version"] != version:
        r = server.post("/v1/admin/reload", {}, ADMIN)
        assert r.status_code == 200 and r.json()["current"]["model_version"] == version, r.text


@pytest.fixture()
def champion_v1(server: Server, registry: dict[str, Any]) -> None:
    """Version 1 is the champion and is served, whichever tests ran before (the order is random)."""
    _set_champion(server, registry, registry["v1"])


def _counts(server: Server) -> tuple[int, int]:
    h = server.post("/v1/health", {}, CHANNEL).json()
    return h["state_transactions"], h["audit_decisions"]


def test_open_paths_and_openapi(server: Server) -> None:
    assert httpx.get(f"{server.url}/livez").status_code == 200
    spec = httpx.get(f"{server.url}/docs.json").json()
    assert {"/v1/score", "/v1/score_batch", "/v1/explain", "/v1/customer_risk", "/v1/feedback", "/v1/metadata",
            "/v1/health", "/v1/admin/reload"} <= set(spec["paths"])
    assert "text/html" in httpx.get(f"{server.url}/").headers["content-type"]
    # the casework pages, mounted by the command layer: a sign-in page, and no shared key opens them
    signin = httpx.get(f"{server.url}/cases/signin")
    assert signin.status_code == 200 and 'name="password"' in signin.text
    assert httpx.get(f"{server.url}/cases/", headers=CHANNEL).status_code == 403
    assert httpx.get(f"{server.url}/cases/", headers=COMPLIANCE).status_code == 403


def _metric(text: str, name: str) -> float:
    """The value of an unlabelled sample in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_count_the_audit_commits(server: Server, customers: list[str]) -> None:
    """/metrics (no key) exports the audit log's commit durations: every scored decision was committed."""
    before = _metric(httpx.get(f"{server.url}/metrics").text, "amlscore_audit_commit_writes_sum")
    for k in range(3):
        r = server.post("/v1/score", {"transaction": new_txn(customers[1], f"E-MET-{k}", f"2026-06-01T00:3{k}:00Z")},
                        CHANNEL)
        assert r.status_code == 200, r.text
    text = httpx.get(f"{server.url}/metrics").text
    assert _metric(text, "amlscore_audit_commit_writes_sum") - before >= 3
    commits = _metric(text, "amlscore_audit_commit_seconds_count")
    assert commits >= 1 and _metric(text, "amlscore_audit_commit_seconds_sum") > 0
    assert _metric(text, 'amlscore_audit_commit_seconds_bucket{le="+Inf"}') == commits


def test_metadata_names_the_champion(server: Server, registry: dict[str, Any], champion_v1: None) -> None:
    m = server.post("/v1/metadata", {}, CHANNEL).json()
    assert m["versions"]["model_version"] == registry["v1"] and m["versions"]["model_alias"] == "champion"
    assert m["feature_names"] == list(FEATURE_NAMES) and m["versions"]["rules_config_hash"] and m["versions"]["data_fingerprint"]


def test_roles(server: Server, customers: list[str], champion_v1: None) -> None:
    ch = server.post("/v1/score", {"transaction": new_txn(customers[0], "E-ROLE-1", "2026-06-01T01:00:00Z")}, CHANNEL)
    assert ch.status_code == 200, ch.text
    assert set(ch.json()) == {"request_id", "txn_id", "suspicion_score", "alert", "decided_at", "replayed"}
    co = server.post("/v1/score", {"transaction": new_txn(customers[0], "E-ROLE-2", "2026-06-01T01:05:00Z",
                                                          amount=49_000.0)}, COMPLIANCE).json()
    assert set(co["components"]) == {"rule_score", "lgbm_probability", "anomaly_score"}
    assert co["attributions"] and {"feature", "value", "contribution"} <= set(co["attributions"][0])
    assert co["anomaly_attribution"] and co["customer_risk"]["level"] and co["peer_comparisons"]
    assert co["explanation"]["lgbm_expected_value"] is not None and co["versions"]["model_version"] == "1"
    assert server.post("/v1/explain", {"request_id": co["request_id"]}, CHANNEL).status_code == 403
    assert server.post("/v1/customer_risk", {"customer_id": customers[0]}, CHANNEL).status_code == 403
    assert server.post("/v1/admin/reload", {}, COMPLIANCE).status_code == 403
    assert server.post("/v1/score", {"transaction": new_txn(customers[0], "E-ROLE-3", "2026-06-01T01:06:00Z")}).status_code == 401
    assert server.post("/v1/score", {"transaction": new_txn(customers[0], "E-ROLE-3", "2026-06-01T01:06:00Z")},
                       {"Authorization": "Bearer wrong"}).status_code == 401


def test_decision_and_explanation_equal_the_model_sets_two_calls(server: Server, registry: dict[str, Any],
                                                                 customers: list[str], champion_v1: None) -> None:
    """The service scores and explains in one pass; what it answers equals score_vector and explain_vector of the
    recorded feature row with the served model set."""
    import numpy as np

    from amlscore.core.registry import RegistryLoader

    # the model set as the service loaded it (its download in the state folder, with the registry's version number)
    ms = RegistryLoader(registry["uri"], "aml-model-set", server.state / "models").load(version=registry["v1"]).model_set
    for k, (amount, lang) in enumerate([(49_500.0, "en"), (120.0, "zh"), (9_000.0, "en")]):
        txn = new_txn(customers[9], f"E-1P-{k}", f"2026-06-01T02:0{k}:00Z", amount=amount)
        got = server.post("/v1/score", {"transaction": txn, "lang": lang}, COMPLIANCE).json()
        db = sqlite3.connect(server.state / "audit.sqlite")
        (feats,) = db.execute("SELECT features FROM decisions WHERE request_id = ?", (got["request_id"],)).fetchone()
        db.close()
        x = np.frombuffer(feats, dtype=np.float64)[None, :]
        two = ms.score_vector(x)
        assert got["suspicion_score"] == float(two.suspicion_score[0]) and got["alert"] == bool(two.alert[0])
        assert got["components"] == {"rule_score": float(two.rule_score[0]),
                                     "lgbm_probability": float(two.lgbm_probability[0]),
                                     "anomaly_score": float(two.anomaly_score[0])}
        expected = json.loads(json.dumps(ms.explain_vector(x, top_k=8, lang=lang).to_dict()))
        assert got["explanation"] == expected and got["explanation_lang"] == lang


def test_bad_inputs_change_nothing(server: Server, customers: list[str]) -> None:
    before = _counts(server)
    good = new_txn(customers[1], "E-BAD", "2026-06-01T02:00:00Z")
    cases = [
        (b'{"transaction": ', 400), ({"transaction": {k: v for k, v in good.items() if k != "amount"}}, 400),
        ({"transaction": {**good, "amount": "5"}}, 400), ({"transaction": {**good, "channel": "telegraph"}}, 400),
        ({"transaction": {**good, "amount": -1}}, 400), ({"transaction": {**good, "amount": 0}}, 400),
        (json.dumps({"transaction": good}).replace("12000.0", "NaN"), 400),
        (json.dumps({"transaction": good, "pad": "x" * 80_000}), 413),
        ({"transaction": {**good, "customer_id": "NOBODY"}}, 422),
    ]
    for body, status in cases:
        r = server.post("/v1/score", body, CHANNEL)
        assert r.status_code == status, (body if not isinstance(body, str) else body[:80], r.status_code, r.text)
        assert r.json()["error"] and r.json()["code"]
    assert _counts(server) == before


def test_replay(server: Server, customers: list[str]) -> None:
    txn = new_txn(customers[2], "E-REPLAY", "2026-06-01T03:00:00Z", amount=20_000.0)
    first = server.post("/v1/score", {"transaction": txn}, CHANNEL).json()
    before = _counts(server)
    again = server.post("/v1/score", {"transaction": txn}, CHANNEL).json()
    assert again["request_id"] == first["request_id"] and again["replayed"] is True
    assert again["suspicion_score"] == first["suspicion_score"]
    assert _counts(server) == before
    assert server.post("/v1/score", {"transaction": {**txn, "amount": 1.0}}, CHANNEL).status_code == 409


def test_batch(server: Server, customers: list[str]) -> None:
    txns = [new_txn(customers[10 + k % 3], f"E-B-{k}", f"2026-06-01T04:{k:02d}:00Z", amount=500.0 * (k + 1)) for k in range(30)]
    txns.append(new_txn("NOBODY", "E-B-X", "2026-06-01T05:00:00Z"))
    r = server.post("/v1/score_batch", {"transactions": txns}, COMPLIANCE)
    assert r.status_code == 200, r.text
    b = r.json()
    assert (b["n"], b["n_scored"], b["n_errors"]) == (31, 30, 1)
    assert all(0 <= x["suspicion_score"] <= 100 for x in b["results"][:30])
    replay = server.post("/v1/score", {"transaction": txns[5]}, CHANNEL).json()
    assert replay["request_id"] == b["results"][5]["request_id"]


def test_customer_risk_and_feedback(server: Server, customers: list[str]) -> None:
    risk = server.post("/v1/customer_risk", {"customer_id": customers[0], "lang": "zh"}, COMPLIANCE).json()
    assert risk["rating"]["level"] and len(risk["breakdown"]) >= 10 and risk["explanation"]
    d = server.post("/v1/score", {"transaction": new_txn(customers[4], "E-FB", "2026-06-01T06:00:00Z")}, CHANNEL).json()
    fb = server.post("/v1/feedback", {"request_id": d["request_id"], "label": "suspicious", "typology": "structuring"},
                     COMPLIANCE)
    assert fb.status_code == 200, fb.text
    text = (server.state / "feedback" / "feedback_reports.csv").read_text()
    assert text.splitlines()[0] == "report_id,customer_id,txn_id,period_start,period_end,report_date,label,typology"
    assert "E-FB" in text and "suspicious" in text


def test_frozen_explanation_after_promotion(server: Server, registry: dict[str, Any], customers: list[str],
                                            champion_v1: None) -> None:
    c = customers[5]
    old = server.post("/v1/score", {"transaction": new_txn(c, "E-FRZ-1", "2026-06-01T07:00:00Z")}, CHANNEL).json()
    old_full = server.post("/v1/score", {"transaction": new_txn(c, "E-FRZ-2", "2026-06-01T07:01:00Z")}, COMPLIANCE).json()
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=registry["uri"], registry_uri=registry["uri"]).set_registered_model_alias(
        "aml-model-set", "champion", registry["v2"])
    # promoted in the registry, but a running service keeps its model until reloaded
    assert server.post("/v1/metadata", {}, CHANNEL).json()["versions"]["model_version"] == registry["v1"]
    r = server.post("/v1/admin/reload", {}, ADMIN).json()
    assert (r["previous"]["model_version"], r["current"]["model_version"], r["changed"]) == (registry["v1"], registry["v2"], True)
    new = server.post("/v1/score", {"transaction": new_txn(c, "E-FRZ-3", "2026-06-01T07:02:00Z")}, COMPLIANCE).json()
    assert new["versions"]["model_version"] == registry["v2"]

    e = server.post("/v1/explain", {"request_id": old["request_id"]}, COMPLIANCE).json()
    assert e["decision"]["versions"]["model_version"] == registry["v1"]
    assert e["decision"]["suspicion_score"] == old["suspicion_score"] and e["decision"]["alert"] == old["alert"]
    assert e["explanation_source"] == "deferred" and e["explanation"]["model"]["model_version"] == registry["v1"]
    assert abs(e["explanation"]["suspicion_score"] - old["suspicion_score"]) < 1e-6  # v1 recomputed, not v2
    e_full = server.post("/v1/explain", {"request_id": old_full["request_id"]}, COMPLIANCE).json()
    assert e_full["explanation_source"] == "decision" and e_full["explanation"] == old_full["explanation"]


def test_hard_kill_and_restart_keep_audit_log_and_state(server: Server, registry: dict[str, Any], customers: list[str],
                                                       champion_v1: None) -> None:
    c = customers[6]
    a = server.post("/v1/score", {"transaction": new_txn(c, "E-RS-1", "2026-06-02T00:00:00Z")}, COMPLIANCE).json()
    # a decision of version 1 without an explanation (a channel caller)
    first = server.post("/v1/score", {"transaction": new_txn(customers[13], "E-RS-V1", "2026-06-02T00:00:00Z")},
                        CHANNEL).json()
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=registry["uri"], registry_uri=registry["uri"]).set_registered_model_alias(
        "aml-model-set", "champion", registry["v2"])  # promoted while running: served after the restart
    before = _counts(server)
    server.stop(hard=True)  # SIGKILL: no shutdown hook, no snapshot
    server.start()
    assert _counts(server) == before
    again = server.post("/v1/score", {"transaction": new_txn(c, "E-RS-1", "2026-06-02T00:00:00Z")}, CHANNEL).json()
    assert again["request_id"] == a["request_id"] and again["replayed"]
    late = server.post("/v1/score", {"transaction": new_txn(c, "E-RS-2", "2026-06-01T23:00:00Z")}, CHANNEL)
    assert late.status_code == 409 and late.json()["code"] == "late_transaction"
    b = server.post("/v1/score", {"transaction": new_txn(c, "E-RS-3", "2026-06-02T00:10:00Z")}, COMPLIANCE).json()
    assert b["versions"]["model_version"] == registry["v2"]  # the alias moved before the restart
    e_a = server.post("/v1/explain", {"request_id": a["request_id"]}, COMPLIANCE).json()
    assert e_a["explanation"] == a["explanation"] and e_a["decision"] == {**a, "replayed": False}
    # the decision of version 1, never explained: after the restart only version 2 is loaded, so version 1
    # comes back from the registry to explain it
    assert server.post("/v1/score", {"transaction": new_txn(customers[13], "E-RS-V1", "2026-06-02T00:00:00Z")},
                       CHANNEL).json()["replayed"]
    e_v1 = server.post("/v1/explain", {"request_id": first["request_id"]}, COMPLIANCE).json()
    assert e_v1["decision"]["versions"]["model_version"] == registry["v1"]
    assert e_v1["explanation"]["model"]["model_version"] == registry["v1"]
    db = sqlite3.connect(server.state / "audit.sqlite")
    (n,) = db.execute("SELECT COUNT(*) FROM decisions").fetchone()
    feats = db.execute("SELECT features FROM decisions WHERE txn_id IN ('E-RS-1', 'E-RS-3') ORDER BY seq").fetchall()
    db.close()
    assert n == before[1] + 1
    import numpy as np

    from amlscore.features.catalogue import FEATURE_NAMES

    i = FEATURE_NAMES.index("in_cnt_24h")
    x1, x3 = (np.frombuffer(f[0], dtype=np.float64) for f in feats)
    assert x3[i] == x1[i] + 1  # windows continue across the kill: the 24h incoming count grew by one
    from amlscore.core.audit import AuditLog

    log = AuditLog(server.state / "audit.sqlite", sync="normal")
    assert log.verify()[0]
    log.close()
