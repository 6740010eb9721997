"""Shadow challengers (``AML_SHADOW``, issue #20 part 2): scored off the response path from the champion's
feature row, recorded in the audit log's chained ``shadow_scores`` table, never returned by any route
to any role; a full queue drops and counts; ``amlscore compare`` reads the two side by side.

The worker thread is made deterministic by draining it (:meth:`ShadowScorer.drain`) before reading,
and by filling the queue of a scorer whose thread has not started.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving_fakes import FakeLoader, FakeModelSet
from serving_helpers import ADMIN, CHANNEL, COMPLIANCE, new_txn, start_client

from amlscore.core.audit import AuditLog, AuditRecord, ShadowScore, input_hash, verify_chain
from amlscore.core.registry import LoadedModel

ROOT = Path(__file__).resolve().parents[2]
SHADOW_VERSION = "907"
_minutes = itertools.count()


def when() -> str:
    t = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(minutes=next(_minutes))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _loader() -> FakeLoader:
    """Champion v1; the challenger scores otherwise (steeper "probability", lower threshold)."""
    return FakeLoader({"1": FakeModelSet("1"), SHADOW_VERSION: FakeModelSet(SHADOW_VERSION, weight=3.0, threshold=35.0)},
                      {"champion": "1", "challenger": SHADOW_VERSION})


@pytest.fixture(scope="module")
def shadow_env(tmp_path_factory: pytest.TempPathFactory, tiny_bank: Path) -> Iterator[dict[str, Any]]:
    """A running app with AML_SHADOW=challenger, and its engine (to drain the shadow's queue)."""
    import amlscore.serving.scoring as scoring

    saved_env, saved_cls = dict(os.environ), scoring.ScoringEngine
    engines: list[Any] = []

    class Recorded(saved_cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            engines.append(self)

    state = tmp_path_factory.mktemp("state-ab")
    loader = _loader()
    scoring.ScoringEngine = Recorded  # type: ignore[misc]
    try:
        client = start_client(tiny_bank, state, loader, AML_SHADOW="challenger")
    finally:
        scoring.ScoringEngine = saved_cls  # type: ignore[misc]
    try:
        yield {"client": client, "engine": engines[-1], "state": state, "loader": loader}
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved_env)


@pytest.fixture(scope="module")
def customers(tiny_dataset: Any) -> list[str]:
    return tiny_dataset.transactions["customer_id"].astype(str).value_counts().index.tolist()[:10]


def _shadow_rows(state: Path) -> dict[str, tuple[str, float, int, dict[str, Any]]]:
    db = sqlite3.connect(state / "audit.sqlite")
    try:
        rows = db.execute("SELECT request_id, model_version, suspicion_score, alert, components_json "
                          "FROM shadow_scores").fetchall()
    finally:
        db.close()
    return {r[0]: (r[1], r[2], r[3], json.loads(r[4])) for r in rows}


def _decision_rows(state: Path) -> dict[str, tuple[np.ndarray, float]]:
    db = sqlite3.connect(state / "audit.sqlite")
    try:
        rows = db.execute("SELECT request_id, features, suspicion_score FROM decisions").fetchall()
    finally:
        db.close()
    return {r[0]: (np.frombuffer(r[1], dtype=np.float64), r[2]) for r in rows}


def _leaves(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, key)
    else:
        yield key, value


# -- recorded from the champion's row, off the response path ----------------------------------------
def test_every_decision_gets_the_shadow_score_of_its_own_feature_row(shadow_env: dict[str, Any],
                                                                    customers: list[str]) -> None:
    client, engine, state = shadow_env["client"], shadow_env["engine"], shadow_env["state"]
    before = client.post("/v1/health", headers=CHANNEL).json()["state_transactions"]
    ids = []
    for i, headers in enumerate((CHANNEL, COMPLIANCE, ADMIN)):
        r = client.post("/v1/score", json={"transaction": new_txn(customers[i], f"SH-{i}", when(),
                                                                  amount=8_000.0 + 9_000 * i)}, headers=headers)
        assert r.status_code == 200, r.text
        ids.append(r.json()["request_id"])
    batch = client.post("/v1/score_batch", json={"transactions": [new_txn(customers[3 + k], f"SH-B{k}", when(),
                                                                          amount=20_000.0 * (k + 1)) for k in range(3)]},
                        headers=COMPLIANCE).json()["results"]
    ids += [item["request_id"] for item in batch]
    # a replay is not decided again, so it is not scored by the shadow again
    client.post("/v1/score", json={"transaction": new_txn(customers[0], "SH-0", "2026-03-01T00:00:00Z",
                                                          amount=8_000.0)}, headers=CHANNEL)
    engine.shadow.drain()
    after = client.post("/v1/health", headers=CHANNEL).json()["state_transactions"]
    assert after - before == 6  # the online state counted each transaction once

    shadow, decisions = _shadow_rows(state), _decision_rows(state)
    assert set(ids) <= set(shadow)
    expected = FakeModelSet(SHADOW_VERSION, weight=3.0, threshold=35.0)
    differs = 0
    for rid in ids:
        version, score, alert, components = shadow[rid]
        features, champion_score = decisions[rid]
        want = expected.score_vector(features[None, :])
        assert version == SHADOW_VERSION
        assert score == pytest.approx(float(want.suspicion_score[0]))
        assert bool(alert) == bool(want.alert[0])
        assert components["lgbm_probability"] == pytest.approx(float(want.lgbm_probability[0]))
        differs += score != pytest.approx(champion_score)
    assert differs >= 3  # the two models really disagree, so the checks above tell them apart
    assert engine.shadow.dropped == 0 and engine.shadow.failed == 0


_ROUTES: list[tuple[str, Any]] = [
    ("/v1/score", lambda c, n: {"transaction": new_txn(c, f"SH-R{n}", when(), amount=30_000.0 + n)}),
    ("/v1/score_batch", lambda c, n: {"transactions": [new_txn(c, f"SH-RB{n}", when(), amount=40_000.0 + n)]}),
    ("/v1/explain", None), ("/v1/customer_risk", lambda c, n: {"customer_id": c}),
    ("/v1/feedback", None), ("/v1/metadata", lambda c, n: {}), ("/v1/health", lambda c, n: {}),
    ("/v1/admin/drift", lambda c, n: {}), ("/v1/admin/reload", lambda c, n: {}),
]


def test_no_route_returns_the_shadow_to_any_role(shadow_env: dict[str, Any], customers: list[str]) -> None:
    client, engine, state = shadow_env["client"], shadow_env["engine"], shadow_env["state"]
    seed = client.post("/v1/score", json={"transaction": new_txn(customers[5], "SH-SEED", when(), amount=25_000.0)},
                       headers=ADMIN).json()
    engine.shadow.drain()
    n = itertools.count()
    bodies = []
    for headers in (CHANNEL, COMPLIANCE, ADMIN):
        for route, make in _ROUTES:
            k = next(n)
            if route == "/v1/explain":
                body = {"request_id": seed["request_id"]}
            elif route == "/v1/feedback":
                body = {"request_id": seed["request_id"], "label": "suspicious"}
            else:
                body = make(customers[k % len(customers)], k)
            r = client.post(route, json=body, headers=headers)
            assert r.status_code < 500 or route == "/v1/admin/drift", (route, r.status_code, r.text)
            bodies.append((route, r.text))
    for path in ("/readyz", "/livez", "/healthz", "/docs.json", "/"):
        bodies.append((path, client.get(path).text))
    engine.shadow.drain()
    shadow = _shadow_rows(state)
    decisions = _decision_rows(state)
    champion_scores = {round(s, 6) for _, s in decisions.values()}
    shadow_only = {round(s, 6) for _, s, _, _ in shadow.values()} - champion_scores
    assert len(shadow) >= 7 and shadow_only  # the shadow scored the decisions above, and scored some otherwise
    for route, text in bodies:
        if route.startswith("/v1/"):  # (the HTML page's CSS has box-shadow)
            assert "shadow" not in text.lower(), route
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        for key, value in _leaves(doc):
            assert not ("version" in key and str(value) == SHADOW_VERSION), (route, key)
            if isinstance(value, float):
                assert round(value, 6) not in shadow_only, (route, key, value)


def test_a_reload_reloads_the_shadow_and_refuses_a_shadow_that_no_longer_fits(shadow_env: dict[str, Any]) -> None:
    client, engine, loader = shadow_env["client"], shadow_env["engine"], shadow_env["loader"]
    try:
        loader.versions["908"] = FakeModelSet("908", weight=2.0)
        loader.promote("challenger", "908")
        assert client.post("/v1/admin/reload", json={}, headers=ADMIN).status_code == 200
        assert engine.shadow.model.version == "908"
        odd = FakeModelSet("909")
        odd.metadata["feature_params_hash"] = "other-parameters"
        loader.versions["909"] = odd
        loader.promote("challenger", "909")
        r = client.post("/v1/admin/reload", json={}, headers=ADMIN)
        assert r.status_code == 409 and r.json()["code"] == "shadow_mismatch", r.text
        assert "AML_SHADOW" in r.json()["error"] and "909" not in r.text  # the shadow's version stays in the log
        assert engine.shadow.model.version == "908" and engine.model.version == "1"  # nothing changed
    finally:
        loader.promote("challenger", SHADOW_VERSION)
        assert client.post("/v1/admin/reload", json={}, headers=ADMIN).status_code == 200
    assert engine.shadow.model.version == SHADOW_VERSION


def test_a_shadow_that_cannot_read_the_champions_row_is_refused_at_start(tmp_path: Path, tiny_bank: Path) -> None:
    from amlscore.serving.config import Settings, SettingsError
    from amlscore.serving.scoring import ScoringEngine

    odd = FakeModelSet("5")
    odd.feature_names = tuple(reversed(odd.feature_names))
    odd.check_features = lambda names, **kw: None  # type: ignore[method-assign] - reads any order
    loader = FakeLoader({"1": FakeModelSet("1"), "5": odd}, {"champion": "1"})
    settings = Settings(data_dir=tiny_bank, state_dir=tmp_path, shadow="version:5", audit_sync="normal")
    with pytest.raises(SettingsError, match="AML_SHADOW.*feature names"):
        ScoringEngine(settings, loader=loader)


def test_the_shadow_setting_is_validated() -> None:
    from amlscore.serving.config import Settings, SettingsError

    assert Settings.from_env({"AML_SHADOW": "off"}).shadow_ref is None
    assert Settings.from_env({"AML_SHADOW": "challenger"}).shadow_ref == ("challenger", None)
    assert Settings.from_env({"AML_SHADOW": "version:12"}).shadow_ref == (None, "12")
    with pytest.raises(SettingsError, match="AML_SHADOW"):
        Settings.from_env({"AML_SHADOW": "version:twelve"})
    assert Settings.from_env({"AML_SHADOW": "challenger"}).to_env()["AML_SHADOW"] == "challenger"


# -- the queue: full drops and counts, never blocks ----------------------------------------------------
def test_a_full_queue_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    from amlscore.serving.shadow import ShadowItem, ShadowScorer

    model = LoadedModel(model_set=FakeModelSet("3", weight=2.0), name="aml-model-set", version="3", alias="challenger",
                        source="models:/aml-model-set/3")
    log = AuditLog(tmp_path / "audit.sqlite", sync="normal")
    counted: list[int] = []
    scorer = ShadowScorer(model, log, max_queue=2, on_drop=counted.append)  # not started: nothing is taken yet
    x = np.zeros(len(model.model_set.feature_names))
    items = [ShadowItem(f"R{i}", f"T{i}", x + i) for i in range(5)]
    assert scorer.offer(items[:3]) == 1
    assert scorer.offer(items[3:]) == 2
    assert counted == [1, 2] and scorer.dropped == 3
    scorer.start()
    scorer.drain()
    assert scorer.scored == 2 and log.shadow_count() == 2
    scorer.close()
    log.close()
    assert verify_chain(tmp_path / "audit.sqlite").rows["shadow_scores"] == 2


# -- the chain covers shadow_scores ---------------------------------------------------------------------
def _record(i: int, decided_at: str, score: float, alert: bool) -> AuditRecord:
    rec = {"txn_id": f"T{i}", "amount": 10.0 + i}
    return AuditRecord(request_id=f"R{i}", txn_id=f"T{i}", customer_id="C1", decided_at=decided_at,
                       caller_key_id="k", caller_role="channel", endpoint="score", batch_id=None,
                       input_hash=input_hash(rec), input=rec, features=np.arange(3.0), suspicion_score=score,
                       alert=alert, model_name="m", model_version="1", feature_set_version="f",
                       feature_params_hash="p", rules_config_hash="r", decision={"i": i})


def _shadow(i: int, score: float, alert: bool) -> ShadowScore:
    return ShadowScore(request_id=f"R{i}", txn_id=f"T{i}", model_name="m", model_version="2", suspicion_score=score,
                       alert=alert, components={"rule_score": 1.0}, scored_at="2026-01-01T00:00:01Z")


CHAMPION = [(10.0, True), (60.0, True), (70.0, True), (20.0, False), (30.0, False), (90.0, True)]
SHADOW = [(15.0, False), (65.0, True), (50.0, True), (55.0, True), (25.0, False)]  # T5 has no shadow score
DISPOSITIONS = {"T1": "suspicious", "T2": "not_suspicious", "T3": "suspicious", "T5": "suspicious"}


@pytest.fixture
def compared_state(tmp_path: Path) -> Path:
    """Six decisions (three in January, three in February), five with a shadow score, four dispositions."""
    from amlscore.serving.feedback import FeedbackStore, make_entry

    log = AuditLog(tmp_path / "audit.sqlite", sync="normal")
    log.append([_record(i, "2026-01-01T00:00:00Z" if i < 3 else "2026-02-01T00:00:00Z", *CHAMPION[i])
                for i in range(6)])
    log.submit_shadow([_shadow(i, *SHADOW[i]) for i in range(3)]).result()
    log.submit_shadow([_shadow(i, *SHADOW[i]) for i in range(3, 5)]).result()
    log.close()
    store = FeedbackStore(tmp_path / "feedback.sqlite", tmp_path / "feedback")
    first_label = {"T1": "not_suspicious"}  # revised later: the latest disposition counts
    for txn, label in [*first_label.items(), *DISPOSITIONS.items()]:
        i = int(txn[1:])
        store.record(make_entry(request_id=f"R{i}", txn_id=txn, customer_id="C1", txn_day="2026-01-01", label=label,
                                typology=None, analyst=None, note=None, report_date="2026-01-01", caller_key_id="k",
                                caller_role="compliance", model_version="1", alert=CHAMPION[i][1],
                                score=CHAMPION[i][0], transaction_json="{}"))
    store.close()
    return tmp_path


def _tamper(state: Path, sql: str) -> None:
    db = sqlite3.connect(state / "audit.sqlite")
    for op in ("update", "delete"):
        db.execute(f"DROP TRIGGER IF EXISTS shadow_scores_no_{op}")
    db.execute(sql)
    db.commit()
    db.close()


def test_shadow_scores_are_append_only_and_covered_by_verify(compared_state: Path) -> None:
    report = verify_chain(compared_state / "audit.sqlite")
    assert report.intact and report.rows["shadow_scores"] == 5
    head = json.loads((compared_state / "audit.head").read_text())
    assert head["tables"]["shadow_scores"]["rows"] == 5
    db = sqlite3.connect(compared_state / "audit.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE shadow_scores SET alert = 0 WHERE seq = 2")
    db.close()
    _tamper(compared_state, "UPDATE shadow_scores SET suspicion_score = 1 WHERE seq = 3")
    broken = verify_chain(compared_state / "audit.sqlite").broken
    assert broken is not None and (broken.table, broken.seq) == ("shadow_scores", 3)


def test_a_cut_shadow_tail_shows_against_the_checkpoint(compared_state: Path) -> None:
    _tamper(compared_state, "DELETE FROM shadow_scores WHERE seq = 5")
    broken = verify_chain(compared_state / "audit.sqlite").broken
    assert broken is not None and broken.table == "shadow_scores" and "removed from its end" in broken.reason


# -- amlscore compare -------------------------------------------------------------------------------------
def test_compare_counts_by_hand(compared_state: Path) -> None:
    from amlscore.monitoring.compare import compare_shadow

    c = compare_shadow(compared_state)
    assert (c.decisions, c.compared) == (6, 5)
    # champion alerts T0 T1 T2; shadow alerts T1 T2 T3; T4 neither; T5 has no shadow score
    assert (c.both_alert, c.only_champion, c.only_shadow, c.neither) == (2, 1, 1, 1)
    assert (c.champion.alerts, c.shadow.alerts) == (3, 3)
    assert c.champion.alert_rate == pytest.approx(3 / 5)
    # dispositions on compared decisions: T1 suspicious (revised), T2 not, T3 suspicious
    assert c.dispositions == 3
    assert (c.champion.dispositions_on_alerts, c.champion.suspicious_on_alerts) == (2, 1)
    assert c.champion.precision == pytest.approx(0.5)
    assert (c.shadow.dispositions_on_alerts, c.shadow.suspicious_on_alerts) == (3, 2)
    assert c.shadow.precision == pytest.approx(2 / 3)
    assert c.champion.model_versions == ["1"] and c.shadow.model_versions == ["2"]
    champ = [s for s, _ in CHAMPION[:5]]
    shadow = [s for s, _ in SHADOW]
    assert c.pearson == pytest.approx(float(np.corrcoef(champ, shadow)[0, 1]))
    # ranks 1,4,5,2,3 against 1,5,3,4,2: squared differences 0+1+4+4+1 = 10, 1 - 6 * 10 / (5 * 24) = 0.5
    assert c.spearman == pytest.approx(0.5)
    import datetime as dt

    feb = compare_shadow(compared_state, since=dt.date(2026, 1, 15))
    assert (feb.decisions, feb.compared) == (3, 2)  # T3, T4 (T5 has no shadow score)
    assert (feb.champion.alerts, feb.shadow.alerts, feb.only_shadow) == (0, 1, 1)
    assert feb.shadow.precision == 1.0 and feb.champion.precision is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "amlscore.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_compare_command_prints_the_table_and_writes_json(compared_state: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "compare.json"
    done = _cli("compare", "--audit", str(compared_state), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 of 6 decisions" in done.stdout and "only champion 1" in done.stdout and "50.0%" in done.stdout
    doc = json.loads(out.read_text())
    assert doc["both_alert"] == 2 and doc["shadow"]["precision"] == pytest.approx(2 / 3)
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _cli("compare", "--audit", str(empty))
    assert done.returncode == 2 and "no audit log" in done.stderr and "Traceback" not in done.stderr
